import Foundation

/// Properties of a published or delivered message.
public struct MessageProperties: Sendable, Equatable {
    public var messageId: String?
    public var correlationId: String?
    public var contentType: String?
    public var type: String?
    public var appId: String?
    /// Seconds since 1970 (AMQP timestamps have one-second resolution).
    public var timestamp: Date?
    /// Per-message TTL in milliseconds, as a string per AMQP.
    public var expiration: String?
    public var persistent: Bool
    public var headers: AMQPTable

    public init(
        messageId: String? = nil,
        correlationId: String? = nil,
        contentType: String? = nil,
        type: String? = nil,
        appId: String? = nil,
        timestamp: Date? = nil,
        expiration: String? = nil,
        persistent: Bool = true,
        headers: AMQPTable = [:]
    ) {
        self.messageId = messageId
        self.correlationId = correlationId
        self.contentType = contentType
        self.type = type
        self.appId = appId
        self.timestamp = timestamp
        self.expiration = expiration
        self.persistent = persistent
        self.headers = headers
    }
}
