#ifndef BRIDGE_RAW_BENCH_H
#define BRIDGE_RAW_BENCH_H
#include <stdint.h>

/// A raw rabbitmq-c confirmed-publish loop: the baseline the Swift publisher is measured against.
/// Publishes `count` persistent messages of `body_size` bytes to the default exchange with routing key `queue`, keeping
/// `inflight` unconfirmed at most. Returns elapsed seconds, or a negative value on error.
double bridge_raw_publish_bench(const char *host, int port, const char *user, const char *password, const char *vhost,
                                const char *queue, int count, int inflight, int body_size);
#endif
