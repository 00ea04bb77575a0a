import BridgeDomain
import BridgeMessaging
import Foundation
import Messaging

/// How the reconciler heals an order the ERP lacks or holds behind (Shopify owns orders): the order's current
/// Shopify state is sent to `q.orders` through `bridge.work`, marked as a reconciliation replay (source
/// `reconciler`, `x-bridge-reconcile-run`), and the order-forwarder writes it like any webhook, with its
/// idempotency and version order.
///
/// Its version is the time the reconciler read the order: a state read at that moment reflects every change whose
/// `X-Shopify-Triggered-At` is earlier, so it orders after the webhooks the ledger recorded (which is what lets a
/// replay through where the ledger believes the order was written: an ERP restored from an older backup) and
/// before any change made after the read (a webhook that overtakes the replay is never overwritten by it).
public struct OrderReplay: Sendable, Equatable {
    public var shopDomain: String
    public var orderId: Int64
    /// The order as Shopify's REST resource, the body of an `orders/updated` webhook.
    public var body: [UInt8]
    /// When the reconciler read the order from Shopify.
    public var readAt: Date
    public var runId: String
    /// `orders/updated`, or `refunds/create` for one of the order's refunds (`refunds(of:)`).
    public var topic: String
    /// The refund's id when `topic` is `refunds/create`.
    public var refundId: Int64?

    public init(
        shopDomain: String, orderId: Int64, body: [UInt8], readAt: Date, runId: String, topic: String = "orders/updated",
        refundId: Int64? = nil
    ) {
        self.shopDomain = shopDomain
        self.orderId = orderId
        self.body = body
        self.readAt = readAt
        self.runId = runId
        self.topic = topic
        self.refundId = refundId
    }

    /// The refunds in the order's REST resource, each as the body of a `refunds/create` webhook (Shopify embeds the
    /// same refund resource): the forwarder records each once per refund reference, so the ones the ERP has are
    /// no-ops and the ones it lacks (a dropped webhook) are booked.
    public func refunds() -> [OrderReplay] {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            let refunds = object["refunds"] as? [[String: Any]]
        else { return [] }
        return refunds.compactMap { refund in
            guard let id = (refund["id"] as? NSNumber)?.int64Value, let data = try? JSONSerialization.data(withJSONObject: refund) else {
                return nil
            }
            return OrderReplay(
                shopDomain: shopDomain, orderId: orderId, body: Array(data), readAt: readAt, runId: runId, topic: "refunds/create", refundId: id)
        }
    }

    public var envelope: InboundEnvelope {
        let read = Timestamp.string(milliseconds: Timestamp.milliseconds(readAt))
        let id = refundId.map { "\(orderId)-refund-\($0)" } ?? "\(orderId)"
        return InboundEnvelope(
            source: .reconciler, shopDomain: shopDomain, topic: topic, deliveryId: "reconcile-\(runId)-\(id)",
            triggeredAt: read, receivedAt: read, reconcileRun: runId)
    }

    /// Publishes the replay, confirmed by the broker (mandatory: a missing `q.orders` binding is an error, not a
    /// silent drop).
    public func publish(on connection: AMQPConnection) async throws {
        try await connection.publish(
            exchange: BridgeTopology.work, routingKey: BridgeTopology.orders.name, body: body,
            properties: envelope.properties(appId: "shopify-erp-bridge/reconciler"))
    }
}
