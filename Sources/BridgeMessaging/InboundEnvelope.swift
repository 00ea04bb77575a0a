import BridgeDomain
import Foundation
import Messaging

/// The message contract between ingest (which writes it) and every consumer (which reads it through this type):
/// who sent the message, for which shop and topic, its delivery identity and Shopify's timing, and how often the
/// bridge has retried or replayed it. The body is never touched: it stays the sender's bytes, verifiable again.
///
/// Header names live in `EnvelopeHeader` only; changing one is a one-line change there.
public struct InboundEnvelope: Sendable, Equatable {
    public enum Source: String, Sendable {
        case shopify, erp
        /// Re-sent by the reconciler (its current state from the owning system, marked as a replay).
        case reconciler
        /// The bridge's own events on `bridge.events` (a sync's result, a failure) and the commands it sends itself
        /// (the ERP feed poller's changes).
        case bridge
    }

    public var source: Source
    /// The shop's myshopify domain (Shopify messages); nil for ERP events, which are not per shop.
    public var shopDomain: String?
    /// Shopify's webhook topic (`orders/create`) or the ERP event (`inventory.changed`).
    public var topic: String
    /// The delivery's identity: `X-Shopify-Webhook-Id`, or the ERP's event id. Also the AMQP message id.
    public var deliveryId: String
    /// `X-Shopify-Event-Id` (the same event retried keeps it), or the ERP's event id.
    public var eventId: String?
    /// When the sender says the event happened (`X-Shopify-Triggered-At`), ISO-8601 as sent.
    public var triggeredAt: String?
    public var apiVersion: String?
    /// When ingest received it, ISO-8601 UTC.
    public var receivedAt: String?
    /// Retries so far (0 on the first delivery); restarts at 0 on a DLQ replay.
    public var attempt: Int
    /// How often the message was replayed from its dead-letter queue.
    public var replays: Int
    /// When it was last replayed from its dead-letter queue (`bridgectl dlq replay`), ISO-8601.
    public var replayedAt: String?
    /// The reconciliation run that re-sent this state (source `reconciler`): the owning system's current state,
    /// read at `triggeredAt`, to be written even where the bridge believes it was written before.
    public var reconcileRun: String?

    public init(
        source: Source, shopDomain: String?, topic: String, deliveryId: String, eventId: String? = nil,
        triggeredAt: String? = nil, apiVersion: String? = nil, receivedAt: String? = nil, attempt: Int = 0, replays: Int = 0,
        reconcileRun: String? = nil, replayedAt: String? = nil
    ) {
        self.replayedAt = replayedAt
        self.source = source
        self.shopDomain = shopDomain
        self.topic = topic
        self.deliveryId = deliveryId
        self.eventId = eventId
        self.triggeredAt = triggeredAt
        self.apiVersion = apiVersion
        self.receivedAt = receivedAt
        self.attempt = attempt
        self.replays = replays
        self.reconcileRun = reconcileRun
    }

    /// `triggeredAt` in milliseconds since 1970, when it parses.
    public var triggeredAtMs: Int64? { triggeredAt.flatMap(Timestamp.milliseconds) }

    /// The headers this envelope travels in.
    public var headers: AMQPTable {
        var h: AMQPTable = [
            EnvelopeHeader.source: .string(source.rawValue),
            EnvelopeHeader.topic: .string(topic),
        ]
        if source == .erp {
            h[EnvelopeHeader.eventId] = .string(eventId ?? deliveryId)
        } else {
            h[EnvelopeHeader.webhookId] = .string(deliveryId)
            if let eventId { h[EnvelopeHeader.eventId] = .string(eventId) }
        }
        if let shopDomain { h[EnvelopeHeader.shop] = .string(shopDomain) }
        if let triggeredAt { h[EnvelopeHeader.triggeredAt] = .string(triggeredAt) }
        if let apiVersion { h[EnvelopeHeader.apiVersion] = .string(apiVersion) }
        if let receivedAt { h[EnvelopeHeader.receivedAt] = .string(receivedAt) }
        if attempt > 0 { h[EnvelopeHeader.attempt] = .int(Int64(attempt)) }
        if replays > 0 { h[EnvelopeHeader.replays] = .int(Int64(replays)) }
        if let replayedAt { h[EnvelopeHeader.replayedAt] = .string(replayedAt) }
        if let reconcileRun { h[EnvelopeHeader.reconcileRun] = .string(reconcileRun) }
        return h
    }

    /// Persistent message properties for publishing this envelope: message and correlation id = the delivery id,
    /// type = the topic.
    public func properties(timestamp: Date = Date(), appId: String = "shopify-erp-bridge/ingest") -> MessageProperties {
        MessageProperties(
            messageId: deliveryId, correlationId: deliveryId, contentType: "application/json", type: topic,
            appId: appId, timestamp: timestamp, headers: headers)
    }

    /// Reads the envelope of a delivered message. Messages published before the envelope had every header (or by
    /// hand) fall back to the AMQP properties: type for the topic, message id for the delivery id.
    public init(properties: MessageProperties, routingKey: String = "") {
        let h = properties.headers
        source = h[EnvelopeHeader.source]?.stringValue.flatMap(Source.init(rawValue:)) ?? .shopify
        shopDomain = h[EnvelopeHeader.shop]?.stringValue
        topic =
            h[EnvelopeHeader.topic]?.stringValue ?? properties.type
            ?? routingKey.replacingOccurrences(of: ".", with: "/")
        eventId = h[EnvelopeHeader.eventId]?.stringValue
        deliveryId = h[EnvelopeHeader.webhookId]?.stringValue ?? eventId ?? properties.messageId ?? "-"
        triggeredAt = h[EnvelopeHeader.triggeredAt]?.stringValue
        apiVersion = h[EnvelopeHeader.apiVersion]?.stringValue
        receivedAt = h[EnvelopeHeader.receivedAt]?.stringValue
        attempt = Int(h[EnvelopeHeader.attempt]?.intValue ?? 0)
        replays = Int(h[EnvelopeHeader.replays]?.intValue ?? 0)
        replayedAt = h[EnvelopeHeader.replayedAt]?.stringValue
        reconcileRun = h[EnvelopeHeader.reconcileRun]?.stringValue
    }

    public init(_ delivery: AMQPDelivery) {
        self.init(properties: delivery.properties, routingKey: delivery.routingKey)
    }
}
