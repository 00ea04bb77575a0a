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

    public init(shopDomain: String, orderId: Int64, body: [UInt8], readAt: Date, runId: String) {
        self.shopDomain = shopDomain
        self.orderId = orderId
        self.body = body
        self.readAt = readAt
        self.runId = runId
    }

    public var envelope: InboundEnvelope {
        let read = Timestamp.string(milliseconds: Timestamp.milliseconds(readAt))
        return InboundEnvelope(
            source: .reconciler, shopDomain: shopDomain, topic: "orders/updated", deliveryId: "reconcile-\(runId)-\(orderId)",
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
