import BridgeDomain
import Foundation
import Messaging
import Synchronization

/// A dead letter as an operator sees it: why it failed, how often, since when, for which shop and order.
public struct DeadLetterSummary: Sendable, Equatable {
    public let messageId: String?
    public let shop: String?
    public let topic: String?
    /// The Shopify order id when the body is an order or refund payload.
    public let orderId: String?
    public let errorClass: String?
    public let errorMessage: String?
    public let attempts: Int64
    public let firstFailureAt: String?
    /// `x-first-death-reason` when the broker dead-lettered it (e.g. `delivery_limit`).
    public let brokerReason: String?
    public let originQueue: String?
    public let bytes: Int

    init(_ m: GotMessage) {
        let h = m.properties.headers
        messageId = m.properties.messageId
        shop = h[EnvelopeHeader.shop]?.stringValue
        topic = h[EnvelopeHeader.topic]?.stringValue
        errorClass = h[EnvelopeHeader.errorClass]?.stringValue
        errorMessage = h[EnvelopeHeader.errorMessage]?.stringValue
        attempts = h[EnvelopeHeader.attempt]?.intValue ?? h["x-delivery-count"]?.intValue ?? 0
        firstFailureAt = h[EnvelopeHeader.firstFailureAt]?.stringValue
        brokerReason = h["x-first-death-reason"]?.stringValue
        originQueue = h[EnvelopeHeader.originQueue]?.stringValue ?? h["x-first-death-queue"]?.stringValue
        bytes = m.body.count
        orderId = Self.orderId(topic: topic, body: m.body)
    }

    /// The top-level `id` (orders) or `order_id` (refunds). Order ids exceed 2^53: decoded as `Int64` by
    /// `JSONDecoder` (exact for integers), never through a Double; nested ids (line items, customers) are ignored.
    static func orderId(topic: String?, body: [UInt8]) -> String? {
        struct OrderBody: Decodable { var id: Int64 }
        struct RefundBody: Decodable {
            var orderId: Int64
            enum CodingKeys: String, CodingKey { case orderId = "order_id" }
        }
        guard let topic else { return nil }
        let data = Data(body)
        if topic.hasPrefix("orders/") {
            return (try? JSONDecoder().decode(OrderBody.self, from: data)).map { String($0.id) }
        }
        if topic.hasPrefix("refunds/") {
            return (try? JSONDecoder().decode(RefundBody.self, from: data)).map { String($0.orderId) }
        }
        return nil
    }
}

/// Operator tooling for the dead-letter queues (`bridgectl dlq ...`).
public enum DeadLetters {
    /// `orders` or `q.orders` -> the work queue name.
    public static func workQueue(named name: String) throws -> String {
        let candidates = BridgeTopology.workQueues.map(\.name)
        let full = name.hasPrefix("q.") ? name : "q." + name
        guard candidates.contains(full) else {
            throw ConfigError(key: "--queue", problem: "unknown queue '\(name)'", fix: "use one of: \(candidates.joined(separator: ", "))")
        }
        return full
    }

    /// The queue's ready-message count once it holds still: messages another reader just gave back take a moment to
    /// count again (at most ~2 s of waiting).
    static func settledCount(_ connection: AMQPConnection, _ queue: String) async throws -> Int {
        var count = try await connection.queueCounts(queue).messages
        for _ in 0..<8 {
            try await Task.sleep(for: .milliseconds(250))
            let again = try await connection.queueCounts(queue).messages
            if again == count { break }
            count = again
        }
        return count
    }

    /// Reads up to `limit` messages of `queue` without removing them: each is handed back at once.
    static func peek(_ connection: AMQPConnection, _ queue: String, limit: Int) async throws -> [GotMessage] {
        try await connection.withChannel { ops in
            var got: [GotMessage] = []
            while got.count < limit, let m = try ops.get(queue, autoAck: false) { got.append(m) }
            for m in got { try ops.rejectGot(m.deliveryTag, requeue: true) }
            return got
        }
    }

    /// Up to `limit` dead letters of `workQueue`, without removing them.
    public static func list(_ connection: AMQPConnection, workQueue: String, limit: Int) async throws -> (total: Int, letters: [DeadLetterSummary]) {
        let dlq = BridgeTopology.deadLetterQueue(of: workQueue)
        let total = try await settledCount(connection, dlq)
        let letters = try await peek(connection, dlq, limit: min(limit, total)).map(DeadLetterSummary.init)
        return (total, letters)
    }

    /// One dead letter by message id, with its body and every header (nil if not found among the first `scan`).
    public static func show(_ connection: AMQPConnection, workQueue: String, messageId: String, scan: Int = 10_000) async throws -> GotMessage? {
        let dlq = BridgeTopology.deadLetterQueue(of: workQueue)
        let total = try await settledCount(connection, dlq)
        return try await peek(connection, dlq, limit: min(scan, total)).first { $0.properties.messageId == messageId }
    }

    /// Moves dead letters back to their work queue (all, or those whose message id is in `ids`).
    ///
    /// Each message is republished to `bridge.work` (confirmed) before it is acked from the DLQ: interrupted at any
    /// point, a message is in the DLQ, in the work queue, or (briefly) in both; never lost. Consumers are
    /// idempotent, so a duplicate is harmless. The attempt count restarts, so a replayed message gets every retry
    /// level again. Returns how many were replayed.
    @discardableResult
    public static func replay(
        _ connection: AMQPConnection, workQueue: String, ids: Set<String>? = nil, now: Date = Date()
    ) async throws -> Int {
        let dlq = BridgeTopology.deadLetterQueue(of: workQueue)
        let total = try await settledCount(connection, dlq)
        guard total > 0 else { return 0 }
        let consumer = try await connection.consume(queue: dlq, prefetch: 64, consumerTagPrefix: "bridgectl.replay")
        // Bounded: if the queue runs dry early (someone else took messages), stop after 3 s without a delivery.
        let lastDelivery = Mutex(ContinuousClock.now)
        let watchdog = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                if ContinuousClock.now - lastDelivery.withLock({ $0 }) > .seconds(3) {
                    consumer.cancel()
                    return
                }
            }
        }
        defer {
            watchdog.cancel()
            consumer.cancel()
        }
        var seen = 0
        var replayed = 0
        var skipped: Set<String> = []
        for try await d in consumer.deliveries {
            lastDelivery.withLock { $0 = .now }
            seen += 1
            let id = d.properties.messageId ?? ""
            if let ids, !ids.contains(id) {
                // Not selected: back to the DLQ. Seeing it again means every message has come by once.
                if !skipped.insert(id).inserted {
                    try await d.reject(requeue: true)
                    break
                }
                try await d.reject(requeue: true)
            } else {
                var properties = d.properties
                for key in EnvelopeHeader.brokerBookkeeping + [EnvelopeHeader.attempt, EnvelopeHeader.deferrals] { properties.headers[key] = nil }
                properties.headers[EnvelopeHeader.replayedAt] = .string(Timestamp.string(milliseconds: Timestamp.milliseconds(now)))
                properties.headers[EnvelopeHeader.replays] = .int((d.properties.headers[EnvelopeHeader.replays]?.intValue ?? 0) + 1)
                properties.expiration = nil
                properties.persistent = true
                let target = d.properties.headers[EnvelopeHeader.originQueue]?.stringValue ?? workQueue
                try await connection.publish(exchange: BridgeTopology.work, routingKey: target, body: d.body, properties: properties)
                try await d.ack()
                replayed += 1
            }
            if seen >= total { break }
        }
        return replayed
    }

    /// Deletes every dead letter of `workQueue`; returns how many.
    @discardableResult
    public static func purge(_ connection: AMQPConnection, workQueue: String) async throws -> Int {
        let dlq = BridgeTopology.deadLetterQueue(of: workQueue)
        return try await connection.withChannel { try $0.purgeQueue(dlq) }
    }
}
