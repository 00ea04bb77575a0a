import BridgeDomain
import Foundation
import Messaging

/// Why processing a message failed, classified once where the failure is born.
public struct ProcessingFailure: Error, Sendable, CustomStringConvertible {
    /// A short stable class for metrics and headers (`erp_unavailable`, `mapping_error`, `invalid_json`...).
    public let errorClass: String
    /// A human message without secrets or personal data.
    public let message: String
    /// Transient failures walk the retry levels; permanent ones go to the dead-letter queue at once.
    public let retryable: Bool

    public init(errorClass: String, message: String, retryable: Bool) {
        self.errorClass = errorClass
        self.message = message
        self.retryable = retryable
    }

    public var description: String { "\(errorClass): \(message)" }
}

/// Sends a failed delivery to its next delayed-retry level, or to its dead-letter queue after the last level (or at
/// once for a permanent failure), with the attempt count, first failure time, error class and message in headers.
///
/// The republish is confirmed before the original is acked, so a crash in between duplicates (never loses) the
/// message; consumers are idempotent.
public struct FailureRouter: Sendable {
    public enum Outcome: Sendable, Equatable {
        case retried(level: Int, delay: Duration)
        case deadLettered
        /// Parked on a retry level without counting an attempt (`park`).
        case parked(delay: Duration)
    }

    public let publisher: AMQPConnection
    public let queue: String
    public let retryDelays: [Duration]

    public init(publisher: AMQPConnection, queue: String, retryDelays: [Duration]) {
        self.publisher = publisher
        self.queue = queue
        self.retryDelays = retryDelays
    }

    /// The retry level a message waiting `wait` is parked on: the longest delay not above it (it comes back no later
    /// than needed, and is parked again for the rest), else the shortest.
    public func parkingDelay(for wait: Duration) -> Duration {
        retryDelays.last(where: { $0 <= wait }) ?? retryDelays[0]
    }

    /// Parks `delivery` on a retry level for about `wait` without counting an attempt, then acks it: for a message
    /// that is not failing but cannot be decided yet (an earlier write's outcome is unknown), or that was held
    /// unsettled for as long as the broker allows. Its delivery count starts again in the work queue, so waiting
    /// never walks it towards the dead-letter queue. Confirmed before the ack, like `route`.
    @discardableResult
    public func park(_ delivery: AMQPDelivery, reason: ProcessingFailure, wait: Duration, deferral: Bool = false) async throws -> Outcome {
        var properties = delivery.properties
        var headers = properties.headers
        for key in EnvelopeHeader.brokerBookkeeping { headers[key] = nil }
        headers[EnvelopeHeader.parked] = .int((headers[EnvelopeHeader.parked]?.intValue ?? 0) + 1)
        if deferral { headers[EnvelopeHeader.deferrals] = .int((headers[EnvelopeHeader.deferrals]?.intValue ?? 0) + 1) }
        headers[EnvelopeHeader.parkedReason] = .string(String("\(reason.errorClass): \(reason.message)".prefix(1000)))
        headers[EnvelopeHeader.originQueue] = .string(queue)
        properties.headers = headers
        properties.persistent = true
        let delay = parkingDelay(for: wait)
        properties.expiration = String(max(1, delay.wholeMilliseconds))
        try await publisher.publish(
            exchange: BridgeTopology.retry, routingKey: BridgeTopology.retryRoutingKey(of: queue, delay: delay),
            body: delivery.body, properties: properties)
        try await delivery.ack()
        return .parked(delay: delay)
    }

    /// Republishes `delivery` to retry or DLQ (confirmed), then acks it. If the republish fails the error is thrown
    /// and the delivery is left unsettled for the caller to `nack(requeue: true)`.
    @discardableResult
    public func route(_ delivery: AMQPDelivery, failure: ProcessingFailure, now: Date = Date()) async throws -> Outcome {
        let attempt = Int(delivery.properties.headers[EnvelopeHeader.attempt]?.intValue ?? 0)
        var properties = delivery.properties
        var headers = properties.headers
        // Broker bookkeeping from earlier hops is not ours to carry along.
        for key in EnvelopeHeader.brokerBookkeeping { headers[key] = nil }
        headers[EnvelopeHeader.attempt] = .int(Int64(attempt + 1))
        if headers[EnvelopeHeader.firstFailureAt] == nil {
            headers[EnvelopeHeader.firstFailureAt] = .string(now.formatted(.iso8601))
        }
        headers[EnvelopeHeader.errorClass] = .string(failure.errorClass)
        headers[EnvelopeHeader.errorMessage] = .string(String(failure.message.prefix(1000)))
        headers[EnvelopeHeader.originQueue] = .string(queue)
        properties.headers = headers
        properties.persistent = true

        let outcome: Outcome
        if failure.retryable, attempt < retryDelays.count {
            let delay = retryDelays[attempt]
            // Jitter: expire between 80% and 100% of the level's delay (the queue TTL caps it).
            let ms = delay.wholeMilliseconds
            properties.expiration = String(Int64.random(in: max(1, ms * 8 / 10)...max(1, ms)))
            try await publisher.publish(
                exchange: BridgeTopology.retry, routingKey: BridgeTopology.retryRoutingKey(of: queue, delay: delay),
                body: delivery.body, properties: properties)
            outcome = .retried(level: attempt + 1, delay: delay)
        } else {
            properties.expiration = nil
            try await publisher.publish(
                exchange: BridgeTopology.deadLetter, routingKey: queue, body: delivery.body, properties: properties)
            outcome = .deadLettered
        }
        try await delivery.ack()
        return outcome
    }
}
