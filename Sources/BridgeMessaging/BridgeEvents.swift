import BridgeDomain
import Foundation
import Logging
import Messaging

/// The bridge's own events on `bridge.events`, defined once: their routing keys and bodies. Every process publishes
/// here (a message dead-lettered, a sync's or a reconciliation's result); the alerter consumes them all through
/// `q.alerter`, and `bridgectl` waits on the ones it asked for. Events are information: they are published
/// unconfirmed to whoever listens (`mandatory: false`), and a failure to publish one is only logged.
public enum BridgeEvents {
    /// A message left its work queue for the dead-letter queue (body: `DeadLettered`).
    public static let deadLettered = "message.dead_lettered"
    /// A reconciliation run finished, completed or failed (body: the reconciler's report).
    public static let reconcileCompleted = "reconcile.completed"
    /// A reconciliation run's progress (body: the reconciler's progress line).
    public static let reconcileProgress = "reconcile.progress"
    /// An inventory full sync finished (body: the syncer's report).
    public static let inventorySyncCompleted = "inventory.sync.completed"

    /// The body of `message.dead_lettered`. `error` is the failure's message as the worker logged it (it names ids,
    /// never personal data or secrets: handlers' messages are written that way).
    public struct DeadLettered: Codable, Sendable, Equatable {
        public var queue: String
        public var deadLetterQueue: String
        public var errorClass: String
        public var error: String
        public var shop: String?
        public var topic: String?
        public var messageId: String?
        /// When it was dead-lettered, ISO-8601 UTC with milliseconds.
        public var at: String

        public init(queue: String, errorClass: String, error: String, shop: String?, topic: String?, messageId: String?, at: Date = Date()) {
            self.queue = queue
            self.deadLetterQueue = BridgeTopology.deadLetterQueue(of: queue)
            self.errorClass = errorClass
            self.error = String(error.prefix(500))
            self.shop = shop
            self.topic = topic
            self.messageId = messageId
            self.at = Timestamp.string(milliseconds: Timestamp.milliseconds(at))
        }

        enum CodingKeys: String, CodingKey {
            case queue, error, shop, topic, at
            case deadLetterQueue = "dead_letter_queue"
            case errorClass = "error_class"
            case messageId = "message_id"
        }
    }

    /// Publishes an event (see the type's note: unconfirmed routing, a failure logged and swallowed).
    public static func publish(
        _ topic: String, body: some Encodable, key: String, source: InboundEnvelope.Source = .bridge, shopDomain: String? = nil,
        appId: String, on publisher: AMQPConnection, logger: Logger
    ) async {
        let envelope = InboundEnvelope(
            source: source, shopDomain: shopDomain, topic: topic, deliveryId: "\(topic)-\(key)-\(UUID().uuidString.prefix(8))",
            receivedAt: Timestamp.string(milliseconds: Timestamp.milliseconds(Date())))
        do {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.sortedKeys]
            try await publisher.publish(
                exchange: BridgeTopology.events, routingKey: topic, body: Array(try encoder.encode(body)),
                properties: envelope.properties(appId: appId), mandatory: false)
        } catch {
            logger.warning("could not publish an event", metadata: ["event": "\(topic)", "error": "\(error)"])
        }
    }
}
