/// An error from the messaging layer: a stable code, a human message, and whether retrying can help.
///
/// Retryable vs. permanent is decided here, where the error is born, so callers never guess.
public struct AMQPError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        /// TCP/TLS connect, login or handshake failed.
        case connectFailed = "connect_failed"
        /// The connection was lost; an in-flight publish has an unknown outcome and was not confirmed.
        case connectionLost = "connection_lost"
        /// No connection right now (reconnecting); nothing was sent.
        case notConnected = "not_connected"
        /// The broker blocked publishing (resource alarm); nothing was sent.
        case blocked = "blocked"
        /// The broker answered `basic.nack` (e.g. queue full with `overflow=reject-publish`).
        case nacked = "nacked"
        /// A mandatory publish was unroutable and came back as `basic.return`.
        case unroutable = "unroutable"
        /// No confirm arrived in time; the outcome is unknown.
        case confirmTimeout = "confirm_timeout"
        /// The broker closed the channel or connection with a protocol error (e.g. 404, 406, 403).
        case channelClosed = "channel_closed"
        /// The broker cancelled our consumer (queue deleted, node down).
        case consumerCancelled = "consumer_cancelled"
        /// An ack/nack for a delivery from a connection that is gone; the broker will redeliver it.
        case staleDelivery = "stale_delivery"
        /// The connection was closed by us.
        case closed = "closed"
        /// Bad URL or options.
        case invalidConfiguration = "invalid_configuration"
    }

    public var code: Code
    public var message: String
    public var isRetryable: Bool
    /// The AMQP reply code (e.g. 404, 406, 312) or the rabbitmq-c status, where there is one.
    public var replyCode: Int?

    public init(_ code: Code, _ message: String, retryable: Bool? = nil, replyCode: Int? = nil) {
        self.code = code
        self.message = message
        self.replyCode = replyCode
        self.isRetryable = retryable ?? Self.defaultRetryable(code)
    }

    static func defaultRetryable(_ code: Code) -> Bool {
        switch code {
        case .connectFailed, .connectionLost, .notConnected, .blocked, .nacked, .confirmTimeout,
            .consumerCancelled, .staleDelivery:
            return true
        case .unroutable, .channelClosed, .closed, .invalidConfiguration:
            return false
        }
    }

    public var description: String {
        var s = "AMQPError(\(code.rawValue)): \(message)"
        if let replyCode { s += " [\(replyCode)]" }
        return s
    }
}
