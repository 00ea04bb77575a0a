import Foundation
import SimulatorKit

/// A sale: orders placed at `ordersPerSecond` (0: as fast as deliveries go), with updates, cancellations and refunds
/// mixed in. The same seed gives the same sequence of operations (timing aside).
public struct SaleProfile: Codable, Sendable, Equatable {
    public var orders: Int
    public var ordersPerSecond: Double
    public var maxLines: Int
    /// 1: uniform SKUs; 2 and more: a few bestsellers take most of the sales.
    public var skuSkew: Double
    /// After each order, the chance of an update, a cancellation and a refund of some earlier order.
    public var updateShare: Double
    public var cancelShare: Double
    public var refundShare: Double
    /// After each order, the chance that staff edit it (a tag) and, less often, cancel it within the same second:
    /// changes a one-second `updated_at` cannot tell apart.
    public var sameSecondShare: Double
    public var seed: UInt64
    /// Deliveries in flight at most.
    public var concurrency: Int
    /// Now and then a custom line without SKU (gift wrap, about one order in fifty), as real shops have.
    public var customLines: Bool = true
    /// After each order, the chance that Shopify fulfils some earlier order (a merchant or a 3PL app shipping from
    /// Shopify, whether or not the ERP has shipped it): half of them partly (one unit), half in full. 0: none.
    public var fulfilShare: Double = 0

    public init(
        orders: Int = 1000, ordersPerSecond: Double = 50, maxLines: Int = 4, skuSkew: Double = 2, updateShare: Double = 0.2,
        cancelShare: Double = 0.03, refundShare: Double = 0.05, sameSecondShare: Double = 0.3, seed: UInt64 = 1,
        concurrency: Int = 64, fulfilShare: Double = 0
    ) {
        self.fulfilShare = fulfilShare
        self.orders = orders
        self.ordersPerSecond = ordersPerSecond
        self.maxLines = maxLines
        self.skuSkew = skuSkew
        self.updateShare = updateShare
        self.cancelShare = cancelShare
        self.refundShare = refundShare
        self.sameSecondShare = sameSecondShare
        self.seed = seed
        self.concurrency = concurrency
    }

    enum CodingKeys: String, CodingKey {
        case orders, seed, concurrency
        case customLines = "custom_lines"
        case ordersPerSecond = "orders_per_second"
        case maxLines = "max_lines"
        case skuSkew = "sku_skew"
        case updateShare = "update_share"
        case cancelShare = "cancel_share"
        case refundShare = "refund_share"
        case sameSecondShare = "same_second_share"
        case fulfilShare = "fulfil_share"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = SaleProfile()
        orders = try c.decodeIfPresent(Int.self, forKey: .orders) ?? d.orders
        ordersPerSecond = try c.decodeIfPresent(Double.self, forKey: .ordersPerSecond) ?? d.ordersPerSecond
        maxLines = try c.decodeIfPresent(Int.self, forKey: .maxLines) ?? d.maxLines
        skuSkew = try c.decodeIfPresent(Double.self, forKey: .skuSkew) ?? d.skuSkew
        updateShare = try c.decodeIfPresent(Double.self, forKey: .updateShare) ?? d.updateShare
        cancelShare = try c.decodeIfPresent(Double.self, forKey: .cancelShare) ?? d.cancelShare
        refundShare = try c.decodeIfPresent(Double.self, forKey: .refundShare) ?? d.refundShare
        sameSecondShare = try c.decodeIfPresent(Double.self, forKey: .sameSecondShare) ?? d.sameSecondShare
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        concurrency = try c.decodeIfPresent(Int.self, forKey: .concurrency) ?? d.concurrency
        customLines = try c.decodeIfPresent(Bool.self, forKey: .customLines) ?? d.customLines
        fulfilShare = try c.decodeIfPresent(Double.self, forKey: .fulfilShare) ?? d.fulfilShare
    }
}

/// What a traffic run did.
public struct TrafficResult: Sendable, Equatable, Codable {
    public var placed = 0
    /// Checkouts refused: nothing in the cart was in stock.
    public var refused = 0
    public var updated = 0
    public var cancelled = 0
    public var refunded = 0
    public var fulfilled = 0
    public var events = 0
    public var topics: [String] = []
}

/// Drives a `ShopifyStore` through a sale and hands every resulting webhook to the `WebhookDeliverer`.
public struct TrafficGenerator: Sendable {
    public let store: ShopifyStore
    public let deliverer: WebhookDeliverer

    public init(store: ShopifyStore, deliverer: WebhookDeliverer) {
        self.store = store
        self.deliverer = deliverer
    }

    /// Runs the sale and returns when every delivery finished (including retries). `recordTopics` keeps the topic
    /// sequence (tests compare runs).
    public func run(_ profile: SaleProfile, recordTopics: Bool = false) async -> TrafficResult {
        var rng = SplitMix64(seed: profile.seed)
        var result = TrafficResult()
        let clock = ContinuousClock()
        let start = clock.now
        func chance(_ p: Double) -> Bool { Double(rng.next() % 1_000_000) / 1_000_000 < p }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for n in 0..<profile.orders {
                if profile.ordersPerSecond > 0 {
                    try? await Task.sleep(until: start.advanced(by: .seconds(Double(n) / profile.ordersPerSecond)))
                }
                let now = Date()
                var events = await store.placeOrder(maxLines: profile.maxLines, skew: profile.skuSkew, customLines: profile.customLines, at: now)
                if events.isEmpty {
                    result.refused += 1
                } else {
                    result.placed += 1
                }
                if chance(profile.sameSecondShare), let id = events.first?.orderId {
                    // Staff tag the new order at once; now and then it is cancelled in the same second too.
                    events += await store.updateOrder(id, at: now.addingTimeInterval(0.3))
                    result.updated += 1
                    if chance(0.2) {
                        let e = await store.cancelOrder(id, at: now.addingTimeInterval(0.5))
                        if !e.isEmpty { result.cancelled += 1 }
                        events += e
                    }
                }
                if chance(profile.updateShare), let id = await store.pickOrder() {
                    events += await store.updateOrder(id)
                    result.updated += 1
                }
                if chance(profile.cancelShare), let id = await store.pickOrder() {
                    let e = await store.cancelOrder(id)
                    if !e.isEmpty { result.cancelled += 1 }
                    events += e
                }
                if chance(profile.refundShare), let id = await store.pickOrder() {
                    let e = await store.refundOrder(id)
                    if !e.isEmpty { result.refunded += 1 }
                    events += e
                }
                // Drawn only when asked for: a profile without fulfilments keeps its seed's sequence.
                if profile.fulfilShare > 0, chance(profile.fulfilShare), let id = await store.pickOrder() {
                    let e = await store.fulfilOrder(id, partial: chance(0.5))
                    if !e.isEmpty { result.fulfilled += 1 }
                    events += e
                }
                result.events += events.count
                if recordTopics { result.topics += events.map(\.topic) }
                if running >= max(1, profile.concurrency) {
                    await group.next()
                    running -= 1
                }
                running += 1
                let batch = events
                group.addTask { await deliverer.deliver(batch) }
            }
        }
        return result
    }
}
