#ifndef BRIDGE_HTTP_LOAD_H
#define BRIDGE_HTTP_LOAD_H

#include <stddef.h>
#include <stdint.h>

/// A single-threaded epoll HTTP/1.1 load generator for ingest-bench: `connections` keep-alive connections to
/// 127.0.0.1:`port`, `total` POST /webhooks/shopify requests, request n carrying body n % nbodies with its
/// signature and the webhook id "<prefix>-<n>". Closed loop when `rate` is 0 (each connection sends its next request
/// when the previous answer arrived), otherwise requests are offered at `rate` per second on a fixed schedule
/// (latency measured from the scheduled time, so queueing in the generator counts: no coordinated omission).
/// Fills latencies_ns[n] and statuses[n] (0: no answer). Returns 0, or -errno on a connection failure.
/// Written here because no available load tool signs each request; one thread and no blocking sockets keep the
/// generator's own CPU use small on a machine it shares with the system under test.
int bridge_http_load(int port, int connections, const char *shop, const char *topic, const char *prefix,
                     const uint8_t *const *bodies, const size_t *body_lengths, const char *const *signatures,
                     size_t nbodies, long total, double rate, uint64_t *latencies_ns, int *statuses,
                     double *seconds);

#endif
