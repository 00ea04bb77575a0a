import BridgeDomain
import BridgeMessaging
import Foundation
import Messaging

/// How the reconciler heals an order the ERP lacks or holds behind (Shopify owns orders): the order's current
/// Shopify state is sent to `q.orders` through `bridge.work`, marked as a reconciliation replay (source
/// `reconciler`, `x-bridge-reconcile-run`), and the order-forwarder writes it like any webhook, with its
/// idempotency and version order.
///
/// Its version comes from Shopify's clock only: the state's own `updated_at`, with Shopify's time of the read as the
/// tie-break (the REST answer's `Date` header, whole seconds; `<updated_at>|<read>`). A change Shopify makes after
/// the read has a later version (a later `updated_at`, or the same second and a trigger time after the read), so a
/// replay never undoes a change it did not see, whatever the reconciler's clock says (the reconciler's own read time
/// was used before, and a reconciler clock ahead of Shopify's let a replay undo a same-second change). A change
/// before the read, in the same `updated_at` second, sorts before the replay as soon as the read's whole second is
/// later than `updated_at`, so a lost same-second change is healed; read within that same second (or without a
/// `Date` header), the tie-break is `updated_at` itself and such a change waits for the next run. The forwarder
/// does not hold a replay against its ledger (the ledger may describe an ERP since restored from a backup): it asks
/// the ERP, which keeps whatever is as new or newer (the upsert profile's version check; the plain profile's lookup).
///
/// `readAt` (the reconciler's clock at the read) is only the delivery's receive time, for traces and logs.
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
    /// Shopify's clock when the reconciler read the order (its answer's `Date` header), if known.
    public var shopifyReadAt: Date?

    public init(
        shopDomain: String, orderId: Int64, body: [UInt8], readAt: Date, runId: String, topic: String = "orders/updated",
        refundId: Int64? = nil, shopifyReadAt: Date? = nil
    ) {
        self.shopifyReadAt = shopifyReadAt
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
                shopDomain: shopDomain, orderId: orderId, body: Array(data), readAt: readAt, runId: runId, topic: "refunds/create", refundId: id,
                shopifyReadAt: shopifyReadAt)
        }
    }

    public var envelope: InboundEnvelope {
        let read = Timestamp.string(milliseconds: Timestamp.milliseconds(readAt))
        let id = refundId.map { "\(orderId)-refund-\($0)" } ?? "\(orderId)"
        return InboundEnvelope(
            source: .reconciler, shopDomain: shopDomain, topic: topic, deliveryId: "reconcile-\(runId)-\(id)",
            triggeredAt: shopifyUpdatedAt ?? read, receivedAt: read, reconcileRun: runId)
    }

    /// The replay's tie-break from Shopify's clock: the read's whole second when it is later than the state's
    /// `updated_at`, else `updated_at` itself; nil for a refund or a body without `updated_at`.
    var shopifyUpdatedAt: String? {
        guard refundId == nil, let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            let updated = object["updated_at"] as? String, let ms = Timestamp.milliseconds(updated)
        else { return nil }
        let read = shopifyReadAt.map { Timestamp.milliseconds($0) / 1000 * 1000 } ?? 0
        return Timestamp.string(milliseconds: max(ms, read))
    }

    /// Publishes the replay, confirmed by the broker (mandatory: a missing `q.orders` binding is an error, not a
    /// silent drop).
    public func publish(on connection: AMQPConnection) async throws {
        try await connection.publish(
            exchange: BridgeTopology.work, routingKey: BridgeTopology.orders.name, body: body,
            properties: envelope.properties(appId: "shopify-erp-bridge/reconciler"))
    }
}
