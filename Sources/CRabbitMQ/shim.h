#ifndef BRIDGE_CRABBITMQ_SHIM_H
#define BRIDGE_CRABBITMQ_SHIM_H
// rabbitmq-c 0.11 uses the old flat header layout and needs <sys/time.h> first.
#include <sys/time.h>
#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_tcp_socket.h>
#include <amqp_ssl_socket.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <linux/sockios.h>

// eventfd wakes a connection thread out of poll().
static inline int bridge_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

// Bytes in a TCP socket's send queue (sent but not acknowledged by the peer, plus not yet sent); -1 on error.
// The connection thread writes only while this leaves room in the send buffer, so a broker that stops reading (resource
// alarm, frozen, partitioned) can never block it inside a send.
static inline int bridge_socket_outq(int fd) {
    int n = 0;
    return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -1;
}

// The send buffer's size in bytes (the kernel's figure, which includes its bookkeeping); -1 on error.
static inline int bridge_socket_sndbuf(int fd) {
    int n = 0;
    socklen_t len = sizeof(n);
    return getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, &len) == 0 ? n : -1;
}

// TCP_USER_TIMEOUT: the kernel drops the connection when sent data stays unacknowledged this long (a silent
// partition), instead of retransmitting for ~15 minutes.
static inline int bridge_socket_set_user_timeout(int fd, unsigned int ms) {
    return setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &ms, sizeof(ms));
}

// amqp_login_with_properties is variadic: Swift cannot call it, so it is wrapped here.
// Always SASL PLAIN with user and password.
static inline amqp_rpc_reply_t bridge_amqp_login(amqp_connection_state_t state, const char *vhost, int channel_max,
                                                 int frame_max, int heartbeat, const amqp_table_t *properties,
                                                 const char *user, const char *password) {
    return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat, properties,
                                      AMQP_SASL_METHOD_PLAIN, user, password);
}

// Method ids are cast macros that Swift cannot import; re-exported as constants.
static const amqp_method_number_t BRIDGE_BASIC_ACK_METHOD = AMQP_BASIC_ACK_METHOD;
static const amqp_method_number_t BRIDGE_BASIC_NACK_METHOD = AMQP_BASIC_NACK_METHOD;
static const amqp_method_number_t BRIDGE_BASIC_RETURN_METHOD = AMQP_BASIC_RETURN_METHOD;
static const amqp_method_number_t BRIDGE_BASIC_DELIVER_METHOD = AMQP_BASIC_DELIVER_METHOD;
static const amqp_method_number_t BRIDGE_BASIC_CANCEL_METHOD = AMQP_BASIC_CANCEL_METHOD;
static const amqp_method_number_t BRIDGE_BASIC_CANCEL_OK_METHOD = AMQP_BASIC_CANCEL_OK_METHOD;
static const amqp_method_number_t BRIDGE_CHANNEL_CLOSE_METHOD = AMQP_CHANNEL_CLOSE_METHOD;
static const amqp_method_number_t BRIDGE_CHANNEL_CLOSE_OK_METHOD = AMQP_CHANNEL_CLOSE_OK_METHOD;
static const amqp_method_number_t BRIDGE_CONNECTION_CLOSE_METHOD = AMQP_CONNECTION_CLOSE_METHOD;
static const amqp_method_number_t BRIDGE_CONNECTION_CLOSE_OK_METHOD = AMQP_CONNECTION_CLOSE_OK_METHOD;
static const amqp_method_number_t BRIDGE_CONNECTION_BLOCKED_METHOD = AMQP_CONNECTION_BLOCKED_METHOD;
static const amqp_method_number_t BRIDGE_CONNECTION_UNBLOCKED_METHOD = AMQP_CONNECTION_UNBLOCKED_METHOD;
static const amqp_method_number_t BRIDGE_BASIC_GET_OK_METHOD = AMQP_BASIC_GET_OK_METHOD;
static const amqp_method_number_t BRIDGE_BASIC_GET_EMPTY_METHOD = AMQP_BASIC_GET_EMPTY_METHOD;
static const amqp_flags_t BRIDGE_BASIC_CONTENT_TYPE_FLAG = AMQP_BASIC_CONTENT_TYPE_FLAG;
static const amqp_flags_t BRIDGE_BASIC_HEADERS_FLAG = AMQP_BASIC_HEADERS_FLAG;
static const amqp_flags_t BRIDGE_BASIC_DELIVERY_MODE_FLAG = AMQP_BASIC_DELIVERY_MODE_FLAG;
static const amqp_flags_t BRIDGE_BASIC_CORRELATION_ID_FLAG = AMQP_BASIC_CORRELATION_ID_FLAG;
static const amqp_flags_t BRIDGE_BASIC_MESSAGE_ID_FLAG = AMQP_BASIC_MESSAGE_ID_FLAG;
static const amqp_flags_t BRIDGE_BASIC_TIMESTAMP_FLAG = AMQP_BASIC_TIMESTAMP_FLAG;
static const amqp_flags_t BRIDGE_BASIC_TYPE_FLAG = AMQP_BASIC_TYPE_FLAG;
static const amqp_flags_t BRIDGE_BASIC_APP_ID_FLAG = AMQP_BASIC_APP_ID_FLAG;
static const amqp_flags_t BRIDGE_BASIC_EXPIRATION_FLAG = AMQP_BASIC_EXPIRATION_FLAG;
#endif
