// Benchmark baseline only: the simplest fast confirmed-publish loop rabbitmq-c allows, single-threaded, no Swift.
// Given the same advantages as the Swift publisher, so the ratio compares like with like: persistent, mandatory
// publishes (a basic.return would fail the run), written with the socket corked per burst (TCP_CORK), as the
// Swift connection thread writes the publishes that reach it together.
#include "raw_bench.h"
#include <sys/time.h>
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <string.h>
#include <time.h>

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

double bridge_raw_publish_bench(const char *host, int port, const char *user, const char *password, const char *vhost,
                                const char *queue, int count, int inflight, int body_size) {
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(conn);
    if (!socket || amqp_socket_open(socket, host, port) != 0) return -1;
    amqp_rpc_reply_t r = amqp_login(conn, vhost, 0, 131072, 30, AMQP_SASL_METHOD_PLAIN, user, password);
    if (r.reply_type != AMQP_RESPONSE_NORMAL) return -2;
    amqp_channel_open(conn, 1);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) return -3;
    amqp_confirm_select(conn, 1);
    if (amqp_get_rpc_reply(conn).reply_type != AMQP_RESPONSE_NORMAL) return -4;

    char *body = malloc(body_size);
    memset(body, 'a', body_size);
    unsigned char *confirmed = calloc(count + 2, 1);
    amqp_basic_properties_t props;
    props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
    props.delivery_mode = 2;
    amqp_bytes_t b = {.len = body_size, .bytes = body};
    long sent = 0, acked = 0, lowest = 1;
    double start = now_seconds();
    int fd = amqp_get_sockfd(conn);
    while (acked < count) {
        if (sent < count && sent - acked < inflight) {
            int on = 1, off = 0;
            setsockopt(fd, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
            while (sent < count && sent - acked < inflight) {
                if (amqp_basic_publish(conn, 1, amqp_empty_bytes, amqp_cstring_bytes(queue), 1, 0, &props, b) != 0) return -5;
                sent++;
            }
            setsockopt(fd, IPPROTO_TCP, TCP_CORK, &off, sizeof off);
        }
        amqp_frame_t frame;
        if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) return -6;
        if (frame.frame_type != AMQP_FRAME_METHOD) continue;
        if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *ack = frame.payload.method.decoded;
            long tag = (long)ack->delivery_tag;
            long from = ack->multiple ? lowest : tag;
            for (long t = from; t <= tag; t++) {
                if (!confirmed[t]) { confirmed[t] = 1; acked++; }
            }
            while (lowest <= count && confirmed[lowest]) lowest++;
        } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD) {
            return -7;
        } else if (frame.payload.method.id == AMQP_BASIC_RETURN_METHOD) {
            return -8;  // mandatory and unroutable: the baseline's queue must exist
        }
        amqp_maybe_release_buffers(conn);
    }
    double elapsed = now_seconds() - start;
    free(body);
    free(confirmed);
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    return elapsed;
}
