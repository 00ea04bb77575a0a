import Foundation

/// One webhook-worthy event, as Shopify would send it: topic, REST JSON body, event id, trigger time.
public struct WebhookEvent: Sendable {
    public var topic: String
    public var body: Data
    public var eventId: String
    public var triggeredAt: Date
    /// The order the event is about (for the delivery log), if any.
    public var orderId: Int64?

    public init(topic: String, body: Data, eventId: String, triggeredAt: Date, orderId: Int64?) {
        self.topic = topic
        self.body = body
        self.eventId = eventId
        self.triggeredAt = triggeredAt
        self.orderId = orderId
    }
}

/// The simulated shop: a catalogue and stock generated from a seed (variants x locations), and orders. Every change
/// returns the webhooks Shopify would emit for it: orders place and decrement `available` (orders/create,
/// orders/paid, inventory_levels/update per line), updates, cancellations and refunds.
public actor ShopifyStore {
    public struct Variant: Sendable, Equatable {
        public var variantId: Int64
        public var inventoryItemId: Int64
        public var sku: String
        public var price: Decimal
    }

    public nonisolated let domain: String
    public nonisolated let locations: [Int64]
    public private(set) var variants: [Variant]
    /// inventory item id -> location id -> available
    public private(set) var stock: [Int64: [Int64: Int]] = [:]
    public private(set) var orders: [Int64: ShopifyOrderFixture] = [:]
    private var nextOrderId: Int64
    private var nextRefundId: Int64 = 900_000_000_001
    private var nextEvent: Int64 = 1
    private var rng: SplitMix64

    /// - Parameters: `skus` variants (SKU-00001...), `locations` locations, `initialStock` units each, from `seed`.
    public init(domain: String, seed: UInt64 = 42, skus: Int = 1000, locations: Int = 2, initialStock: Int = 100_000) {
        self.domain = domain
        self.locations = (1...max(1, locations)).map { 70_000_000_000 + Int64($0) }
        var rng = SplitMix64(seed: seed)
        var variants: [Variant] = []
        var stock: [Int64: [Int64: Int]] = [:]
        for n in 1...max(1, skus) {
            let cents = 500 + Int(rng.next() % 9500)
            let v = Variant(
                variantId: 40_000_000_000 + Int64(n), inventoryItemId: 45_000_000_000 + Int64(n), sku: OrderGenerator.sku(n),
                price: Decimal(cents) / 100)
            variants.append(v)
            stock[v.inventoryItemId] = Dictionary(uniqueKeysWithValues: self.locations.map { ($0, initialStock) })
        }
        self.variants = variants
        self.stock = stock
        self.rng = rng
        // Order ids above 2^53, as real ones are.
        nextOrderId = 9_007_199_254_740_993 + Int64(seed % 1000) * 1_000_000_000
    }

    private func event(_ topic: String, _ body: Data, orderId: Int64?, at date: Date) -> WebhookEvent {
        defer { nextEvent += 1 }
        return WebhookEvent(topic: topic, body: body, eventId: "\(domain)-\(nextEvent)", triggeredAt: date, orderId: orderId)
    }

    private func levelUpdate(item: Int64, location: Int64, at date: Date) -> WebhookEvent {
        let available = stock[item]?[location] ?? 0
        let body: [String: Any] = [
            "inventory_item_id": item, "location_id": location, "available": available,
            "updated_at": ShopifyOrderFixture.iso(date),
            "admin_graphql_api_id": "gid://shopify/InventoryLevel/\(item)?inventory_item_id=\(item)",
        ]
        return event("inventory_levels/update", (try? JSONSerialization.data(withJSONObject: body)) ?? Data(), orderId: nil, at: date)
    }

    /// A customer places an order: 1-`maxLines` lines, SKUs skewed towards the first ones (a sale's bestsellers).
    public func placeOrder(maxLines: Int = 4, skew: Double = 2, at date: Date = Date()) -> [WebhookEvent] {
        let id = nextOrderId
        nextOrderId += 1
        var lines: [ShopifyOrderFixture.Line] = []
        var used: Set<Int> = []
        let count = 1 + Int(rng.next() % UInt64(max(1, maxLines)))
        for j in 0..<count {
            let u = Double(rng.next() % 1_000_000) / 1_000_000
            var index = Int(pow(u, skew) * Double(variants.count - 1))
            while used.contains(index) { index = (index + 1) % variants.count }
            used.insert(index)
            let v = variants[index]
            let qty = 1 + Int(rng.next() % 3)
            let discount = rng.next() % 5 == 0 ? (v.price * Decimal(qty) / 10).roundedToCents : 0
            let tax = ((v.price * Decimal(qty) - discount) * Decimal(19) / 100).roundedToCents
            lines.append(
                .init(id: (id % 1_000_000_000) * 100 + Int64(j), sku: v.sku, variantId: v.variantId, quantity: qty, price: v.price,
                    discount: discount, tax: tax))
        }
        // Now and then a custom line without SKU (gift wrap), as real shops have.
        if rng.next() % 50 == 0 {
            lines.append(.init(id: (id % 1_000_000_000) * 100 + 99, sku: nil, title: "Geschenkverpackung 🎁", quantity: 1, price: Decimal(string: "2.50")!))
        }
        var order = ShopifyOrderFixture(id: id, updatedAt: date, lines: lines)
        order.shipping = [.init(price: Decimal(string: "4.95")!, tax: Decimal(string: "0.94")!)]
        order.customerId = rng.next() % 5 == 0 ? nil : 7_000_000_000_000 + Int64(rng.next() % 100_000)
        order.financialStatus = "paid"
        orders[id] = order
        var events = [event("orders/create", order.json(), orderId: id, at: date), event("orders/paid", order.json(), orderId: id, at: date)]
        let location = locations[0]
        for line in lines {
            guard let v = line.variantId, let item = variants.first(where: { $0.variantId == v })?.inventoryItemId else { continue }
            stock[item, default: [:]][location, default: 0] -= line.quantity
            events.append(levelUpdate(item: item, location: location, at: date))
        }
        return events
    }

    /// Picks an existing order deterministically (for updates, cancels, refunds).
    public func pickOrder() -> Int64? {
        guard !orders.isEmpty else { return nil }
        let ids = orders.keys.sorted()
        return ids[Int(rng.next() % UInt64(ids.count))]
    }

    /// The order changes (a tag, a note): orders/updated with a later `updated_at`.
    public func updateOrder(_ id: Int64, at date: Date = Date()) -> [WebhookEvent] {
        guard var o = orders[id] else { return [] }
        o.updatedAt = max(date, o.updatedAt.addingTimeInterval(1))
        orders[id] = o
        return [event("orders/updated", o.json(), orderId: id, at: date)]
    }

    /// Cancels: orders/cancelled (and the stock comes back: inventory_levels/update).
    public func cancelOrder(_ id: Int64, at date: Date = Date()) -> [WebhookEvent] {
        guard var o = orders[id], !o.cancelled else { return [] }
        o.cancelled = true
        o.financialStatus = "voided"
        o.updatedAt = max(date, o.updatedAt.addingTimeInterval(1))
        orders[id] = o
        var events = [event("orders/cancelled", o.json(), orderId: id, at: date)]
        for line in o.lines {
            guard let v = line.variantId, let item = variants.first(where: { $0.variantId == v })?.inventoryItemId else { continue }
            stock[item, default: [:]][locations[0], default: 0] += line.quantity
            events.append(levelUpdate(item: item, location: locations[0], at: date))
        }
        return events
    }

    /// Refunds part of an order: refunds/create and orders/updated carrying the refund.
    public func refundOrder(_ id: Int64, at date: Date = Date()) -> [WebhookEvent] {
        guard var o = orders[id], !o.cancelled else { return [] }
        let refunded = o.refunds.reduce(Decimal(0)) { $0 + $1.amount }
        let amount = min(Decimal(5), o.total - refunded)
        guard amount > 0 else { return [] }
        let refundId = nextRefundId
        nextRefundId += 1
        o.refunds.append((id: refundId, amount: amount))
        o.financialStatus = "partially_refunded"
        o.updatedAt = max(date, o.updatedAt.addingTimeInterval(1))
        orders[id] = o
        return [
            event("refunds/create", o.refundJSON(id: refundId, amount: amount), orderId: id, at: date),
            event("orders/updated", o.json(), orderId: id, at: date),
        ]
    }

    public func available(item: Int64, location: Int64) -> Int? { stock[item]?[location] }
    public var orderCount: Int { orders.count }
}
