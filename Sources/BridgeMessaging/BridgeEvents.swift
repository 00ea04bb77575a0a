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
    /// A queue worker's periodic state (body: `WorkerHeartbeat`): what the alerter's error-rate, circuit and silence
    /// rules read.
    public static let workerHeartbeat = "worker.heartbeat"
    /// What queue workers did with each delivery, batched (body: `TraceBatch`): the alerter keeps them in its trace
    /// journal, which `bridgectl trace` reads.
    public static let traced = "message.traced"

    /// The body of `worker.heartbeat`, sent by every queue worker every `interval`: its circuit and its counts since
    /// it started. The counts are cumulative, so a lost heartbeat loses no information (the next one carries it) and
    /// the alerter takes differences over its window.
    public struct WorkerHeartbeat: Codable, Sendable, Equatable {
        /// Handled and failed deliveries of one shop (`-` when the envelope names none).
        public struct Counts: Codable, Sendable, Equatable {
            /// Settled deliveries: every outcome, failures included.
            public var handled: Int
            /// Of those, the ones that failed: retried later or dead-lettered.
            public var failed: Int
            public init(handled: Int = 0, failed: Int = 0) {
                self.handled = handled
                self.failed = failed
            }
        }

        public var queue: String
        /// One worker of one process: `<host>:<pid>:<queue>`.
        public var instance: String
        /// When it was sent, ISO-8601 UTC with milliseconds.
        public var at: String
        /// How often the worker sends one, in seconds (the alerter forgets a worker silent for three of them).
        public var intervalSeconds: Double
        /// `closed`, `open` or `half_open`; nil: the worker has no circuit.
        public var circuit: String?
        /// Since when the circuit is in that state, ISO-8601.
        public var circuitSince: String?
        /// Cumulative counts by shop domain since the worker started.
        public var shops: [String: Counts]

        public init(
            queue: String, instance: String, at: Date = Date(), intervalSeconds: Double, circuit: String?, circuitSince: Date?,
            shops: [String: Counts]
        ) {
            self.queue = queue
            self.instance = instance
            self.at = Timestamp.string(milliseconds: Timestamp.milliseconds(at))
            self.intervalSeconds = intervalSeconds
            self.circuit = circuit
            self.circuitSince = circuitSince.map { Timestamp.string(milliseconds: Timestamp.milliseconds($0)) }
            self.shops = shops
        }

        enum CodingKeys: String, CodingKey {
            case queue, instance, at, circuit, shops
            case intervalSeconds = "interval_seconds"
            case circuitSince = "circuit_since"
        }
    }

    /// One settled delivery as a worker saw it: the step of a message's journey that `bridgectl trace` prints.
    /// Ingest's receipt and a replay from the dead-letter queue are not separate events: the envelope carries them
    /// (`received_at`, `replayed_at`) into every step, and the journal shows them from there.
    public struct TraceStep: Codable, Sendable, Equatable {
        /// When the worker settled the delivery, ISO-8601 UTC with milliseconds.
        public var at: String
        public var queue: String
        /// `<host>:<pid>:<id>` of the worker.
        public var instance: String
        public var shop: String?
        public var topic: String
        /// The delivery id (Shopify's `X-Shopify-Webhook-Id` for webhooks).
        public var webhookId: String
        public var eventId: String?
        /// What the message is about, as the handler found it (an order id); nil until a handler sets it.
        public var subject: String?
        /// `handled`, `retry`, `dead_lettered` or `requeued`.
        public var result: String
        /// The handler's outcome label (`created`, `stale_skipped`...) or the failure's error class.
        public var outcome: String
        /// The failure's message; for a success what the handler recorded (the ERP document).
        public var detail: String?
        public var attempt: Int
        public var replays: Int
        public var redelivered: Bool
        public var receivedAt: String?
        public var triggeredAt: String?
        public var replayedAt: String?
        public var durationMs: Int

        public init(
            at: Date = Date(), queue: String, instance: String, shop: String?, topic: String, webhookId: String, eventId: String?,
            subject: String?, result: String, outcome: String, detail: String?, attempt: Int, replays: Int, redelivered: Bool,
            receivedAt: String?, triggeredAt: String?, replayedAt: String?, durationMs: Int
        ) {
            self.at = Timestamp.string(milliseconds: Timestamp.milliseconds(at))
            self.queue = queue
            self.instance = instance
            self.shop = shop
            self.topic = topic
            self.webhookId = webhookId
            self.eventId = eventId
            self.subject = subject
            self.result = result
            self.outcome = outcome
            self.detail = detail
            self.attempt = attempt
            self.replays = replays
            self.redelivered = redelivered
            self.receivedAt = receivedAt
            self.triggeredAt = triggeredAt
            self.replayedAt = replayedAt
            self.durationMs = durationMs
        }

        enum CodingKeys: String, CodingKey {
            case at, queue, instance, shop, topic, subject, result, outcome, detail, attempt, replays, redelivered
            case webhookId = "webhook_id"
            case eventId = "event_id"
            case receivedAt = "received_at"
            case triggeredAt = "triggered_at"
            case replayedAt = "replayed_at"
            case durationMs = "duration_ms"
        }
    }

    /// The body of `message.traced`: a worker's steps since its last batch.
    public struct TraceBatch: Codable, Sendable, Equatable {
        public var steps: [TraceStep]
        public init(steps: [TraceStep]) { self.steps = steps }
    }

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
        appId: String, expiration: Duration? = nil, on publisher: AMQPConnection, logger: Logger
    ) async {
        let envelope = InboundEnvelope(
            source: source, shopDomain: shopDomain, topic: topic, deliveryId: "\(topic)-\(key)-\(UUID().uuidString.prefix(8))",
            receivedAt: Timestamp.string(milliseconds: Timestamp.milliseconds(Date())))
        do {
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = [.sortedKeys]
            var properties = envelope.properties(appId: appId)
            // A periodic event is worth nothing once the next one is out: it expires instead of piling up while the
            // alerter is down.
            if let expiration { properties.expiration = "\(expiration.wholeMilliseconds)" }
            try await publisher.publish(
                exchange: BridgeTopology.events, routingKey: topic, body: Array(try encoder.encode(body)),
                properties: properties, mandatory: false)
        } catch {
            logger.warning("could not publish an event", metadata: ["event": "\(topic)", "error": "\(error)"])
        }
    }
}
