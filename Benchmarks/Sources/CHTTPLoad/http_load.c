#define _GNU_SOURCE
#include "http_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    int fd;
    long n;            /* request in flight, -1 when idle */
    uint64_t started;  /* ns */
    char head[1024];
    size_t head_len;
    const uint8_t *body;
    size_t body_len;
    size_t sent;       /* bytes of head + body sent */
    char in[8192];
    size_t in_len;
} conn_t;

static int fcntl_nonblock(int fd) {
    int flags = fcntl(fd, F_GETFL, 0);
    return (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) ? -1 : 0;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Sends what is left of the current request; 0 when all is sent, 1 when the socket is full, -1 on error. */
static int flush_request(conn_t *c) {
    while (c->sent < c->head_len + c->body_len) {
        struct iovec iov[2];
        int iovcnt = 0;
        if (c->sent < c->head_len) {
            iov[iovcnt].iov_base = c->head + c->sent;
            iov[iovcnt].iov_len = c->head_len - c->sent;
            iovcnt++;
            iov[iovcnt].iov_base = (void *)c->body;
            iov[iovcnt].iov_len = c->body_len;
            iovcnt++;
        } else {
            size_t off = c->sent - c->head_len;
            iov[iovcnt].iov_base = (void *)(c->body + off);
            iov[iovcnt].iov_len = c->body_len - off;
            iovcnt++;
        }
        ssize_t w = writev(c->fd, iov, iovcnt);
        if (w < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
            if (errno == EINTR) continue;
            return -1;
        }
        c->sent += (size_t)w;
    }
    return 0;
}

static void start_request(conn_t *c, long n, uint64_t started, const char *shop, const char *topic, const char *prefix,
                          const uint8_t *const *bodies, const size_t *lens, const char *const *sigs, size_t nbodies) {
    size_t i = (size_t)n % nbodies;
    c->n = n;
    c->started = started;
    c->body = bodies[i];
    c->body_len = lens[i];
    c->sent = 0;
    int len = snprintf(c->head, sizeof c->head,
                       "POST /webhooks/shopify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                       "X-Shopify-Topic: %s\r\nX-Shopify-Shop-Domain: %s\r\nX-Shopify-API-Version: 2026-07\r\n"
                       "X-Shopify-Hmac-Sha256: %s\r\nX-Shopify-Webhook-Id: %s-%ld\r\n"
                       "X-Shopify-Triggered-At: 2026-11-27T10:00:00Z\r\nContent-Length: %zu\r\n\r\n",
                       topic, shop, sigs[i], prefix, n, c->body_len);
    c->head_len = (size_t)len;
}

/* A complete response in c->in: returns its total length and sets *status, or 0 if incomplete. */
static size_t parse_response(conn_t *c, int *status) {
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end) return 0;
    size_t head_len = (size_t)(end - c->in) + 4;
    long content_length = 0;
    char *p = c->in;
    while (p < end) {
        char *line_end = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        if (!line_end) break;
        if ((size_t)(line_end - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) content_length = strtol(p + 15, NULL, 10);
        p = line_end + 2;
    }
    if (c->in_len < head_len + (size_t)content_length) return 0;
    *status = (c->in_len >= 12) ? atoi(c->in + 9) : 0;
    return head_len + (size_t)content_length;
}

int bridge_http_load(int port, int connections, const char *shop, const char *topic, const char *prefix,
                     const uint8_t *const *bodies, const size_t *body_lengths, const char *const *signatures,
                     size_t nbodies, long total, double rate, uint64_t *latencies_ns, int *statuses,
                     double *seconds) {
    int ep = epoll_create1(0);
    if (ep < 0) return -errno;
    conn_t *conns = calloc((size_t)connections, sizeof(conn_t));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = inet_addr("127.0.0.1");
    int rc = 0;
    for (int i = 0; i < connections; i++) {
        conn_t *c = &conns[i];
        c->n = -1;
        c->fd = socket(AF_INET, SOCK_STREAM, 0);
        if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&addr, sizeof addr) != 0) { rc = -errno; goto done; }
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fcntl_nonblock(c->fd) != 0) { rc = -errno; goto done; }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
        epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    }
    uint64_t start = now_ns();
    uint64_t interval = rate > 0 ? (uint64_t)(1e9 / rate) : 0;
    long next = 0, done_count = 0;
    /* Closed loop: every connection starts one request. */
    if (interval == 0) {
        for (int i = 0; i < connections && next < total; i++) {
            start_request(&conns[i], next, now_ns(), shop, topic, prefix, bodies, body_lengths, signatures, nbodies);
            next++;
            if (flush_request(&conns[i]) < 0) { rc = -errno; goto done; }
        }
    }
    struct epoll_event events[256];
    while (done_count < total) {
        struct timespec timeout = {.tv_sec = 0, .tv_nsec = 100000000};
        if (interval > 0 && next < total) {
            /* Offer every request whose time has come to an idle connection. */
            uint64_t t = now_ns();
            for (int i = 0; i < connections && next < total; i++) {
                uint64_t due = start + (uint64_t)next * interval;
                if (due > t) break;
                if (conns[i].n >= 0) continue;
                start_request(&conns[i], next, due, shop, topic, prefix, bodies, body_lengths, signatures, nbodies);
                next++;
                if (flush_request(&conns[i]) < 0) { rc = -errno; goto done; }
            }
            uint64_t due = start + (uint64_t)next * interval;
            t = now_ns();
            uint64_t wait = due > t ? due - t : 0;
            if (wait < 100000000ull) timeout.tv_nsec = (long)wait;
        }
        /* Nanosecond timeout: millisecond rounding would either spin or send in bursts. */
        int ready = epoll_pwait2(ep, events, 256, &timeout, NULL);
        if (ready < 0) {
            if (errno == EINTR) continue;
            rc = -errno;
            goto done;
        }
        for (int e = 0; e < ready; e++) {
            conn_t *c = events[e].data.ptr;
            if ((events[e].events & EPOLLOUT) && c->n >= 0 && c->sent < c->head_len + c->body_len) {
                if (flush_request(c) < 0) { rc = -EPIPE; goto done; }
            }
            if (!(events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP))) continue;
            for (;;) {
                ssize_t r = read(c->fd, c->in + c->in_len, sizeof c->in - c->in_len);
                if (r < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                    if (errno == EINTR) continue;
                    rc = -errno;
                    goto done;
                }
                if (r == 0) { rc = -ECONNRESET; goto done; }
                c->in_len += (size_t)r;
                int status = 0;
                size_t used;
                while (c->n >= 0 && (used = parse_response(c, &status)) > 0) {
                    latencies_ns[c->n] = now_ns() - c->started;
                    statuses[c->n] = status;
                    done_count++;
                    memmove(c->in, c->in + used, c->in_len - used);
                    c->in_len -= used;
                    c->n = -1;
                    if (interval == 0 && next < total) {
                        start_request(c, next, now_ns(), shop, topic, prefix, bodies, body_lengths, signatures, nbodies);
                        next++;
                        if (flush_request(c) < 0) { rc = -EPIPE; goto done; }
                    }
                }
                if (c->in_len == sizeof c->in) { rc = -EMSGSIZE; goto done; }
            }
        }
    }
    *seconds = (double)(now_ns() - start) / 1e9;
done:
    for (int i = 0; i < connections; i++) if (conns[i].fd > 0) close(conns[i].fd);
    free(conns);
    close(ep);
    return rc;
}
