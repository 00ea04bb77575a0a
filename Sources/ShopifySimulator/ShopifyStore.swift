import Foundation
import SimulatorKit

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
    public struct Variant: Sendable, Equatable, Codable {
        public var variantId: Int64
        public var inventoryItemId: Int64
        public var sku: String
        public var price: Decimal
    }

    public nonisolated let domain: String
    public nonisolated let locations: [Int64]
    public nonisolated let createdAt: Date
    public private(set) var variants: [Variant]
    /// inventory item id -> index in `variants` (and variant id -> index).
    private var itemIndex: [Int64: Int]
    private(set) var variantIndex: [Int64: Int]
    /// inventory item id -> location id -> available
    public private(set) var stock: [Int64: [Int64: Int]] = [:]
    /// inventory item id -> location id -> committed (ordered, not yet shipped); on_hand = available + committed.
    public private(set) var committed: [Int64: [Int64: Int]] = [:]
    /// inventory item id -> location id -> when the level last changed.
    public private(set) var levelUpdatedAt: [Int64: [Int64: Date]] = [:]
    public private(set) var orders: [Int64: ShopifyOrderFixture] = [:]
    /// B2B price lists (`ShopifyStore+PriceLists.swift`): two, in EUR, with no fixed prices until a client adds them.
    public internal(set) var priceLists: [PriceList] = ShopifyStore.seededPriceLists
    /// price list -> variant -> how many mutations changed its fixed price (what tests count).
    public internal(set) var priceWrites: [Int64: [Int64: Int]] = [:]
    /// list -> variant -> fixed prices written, in order (not kept across a restart).
    public internal(set) var priceHistory: [Int64: [Int64: [Decimal]]] = [:]
    private var idempotency = IdempotencyRecords()
    /// Answers for the next `inventorySetQuantities` calls, set by a test (`IDEMPOTENCY_CONCURRENT_REQUEST`,
    /// `IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED`): each is answered once, in order, with nothing applied.
    public private(set) var idempotencyFaults: [String] = []
    /// inventory item -> location -> how many `inventorySetQuantities` calls changed the level (what tests count).
    public private(set) var levelWrites: [Int64: [Int64: Int]] = [:]
    /// Checkout sells beyond `available` (a shop that lets customers buy out-of-stock items); off: as Shopify does
    /// for tracked items that deny overselling, a line without enough stock is refused.
    public private(set) var allowOverselling = false
    /// Checkouts refused because nothing in the cart was in stock.
    public private(set) var refusedCheckouts = 0
    /// Lines left out of orders because their item was out of stock.
    public private(set) var refusedLines = 0
    private var nextAdjustmentGroup: Int64 = 1
    private var nextOrderId: Int64
    private var nextRefundId: Int64 = 900_000_000_001
    private var nextEvent: Int64 = 1
    private var rng: SplitMix64
    /// Per order, when its last event was triggered (ms): every later event of the order is triggered later.
    public private(set) var lastTriggeredMs: [Int64: Int64] = [:]

    /// - Parameters: `skus` variants (SKU-00001...), `locations` locations, `initialStock` units each, from `seed`.
    public init(domain: String, seed: UInt64 = 42, skus: Int = 1000, locations: Int = 2, initialStock: Int = 100_000) {
        self.domain = domain
        self.createdAt = Date()
        self.locations = (1...max(1, locations)).map { 70_000_000_000 + Int64($0) }
        var rng = SplitMix64(seed: seed)
        var variants: [Variant] = []
        var stock: [Int64: [Int64: Int]] = [:]
        for n in 1...max(1, skus) {
            _ = rng.next()  // (the price's draw before it came from the shared catalogue: the rest of the seed's data stays)
            let v = Variant(
                variantId: 40_000_000_000 + Int64(n), inventoryItemId: 45_000_000_000 + Int64(n), sku: OrderGenerator.sku(n),
                price: SimulatedCatalogue.listPrice(n))
            variants.append(v)
            stock[v.inventoryItemId] = Dictionary(uniqueKeysWithValues: self.locations.map { ($0, initialStock) })
        }
        self.variants = variants
        self.stock = stock
        self.itemIndex = Dictionary(uniqueKeysWithValues: variants.enumerated().map { ($1.inventoryItemId, $0) })
        self.variantIndex = Dictionary(uniqueKeysWithValues: variants.enumerated().map { ($1.variantId, $0) })
        self.rng = rng
        // Order ids above 2^53, as real ones are.
        nextOrderId = 9_007_199_254_740_993 + Int64(seed % 1000) * 1_000_000_000
    }

    private func event(_ topic: String, _ body: Data, orderId: Int64?, at date: Date) -> WebhookEvent {
        defer { nextEvent += 1 }
        return WebhookEvent(topic: topic, body: body, eventId: "\(domain)-\(nextEvent)", triggeredAt: date, orderId: orderId)
    }

    /// The trigger time of the order's next event: `date` to the millisecond, and always after its previous event.
    private func triggered(_ id: Int64, at date: Date) -> Date {
        var ms = Int64((date.timeIntervalSince1970 * 1000).rounded())
        if let last = lastTriggeredMs[id], ms <= last { ms = last + 1 }
        lastTriggeredMs[id] = ms
        return Date(timeIntervalSince1970: Double(ms) / 1000)
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

    public func setAllowOverselling(_ allow: Bool) { allowOverselling = allow }

    /// Whether a cancellation puts the units back in `available` (Shopify's `orderCancel(restock:)`, the admin's
    /// "restock items" box; on by default). A shop whose stock the ERP owns may cancel without restocking and let the
    /// ERP's release come back through the bridge: a restock makes the units sellable in Shopify before the ERP has
    /// them back, which only safety stock covers.
    public private(set) var restockOnCancel = true
    public func setRestockOnCancel(_ restock: Bool) { restockOnCancel = restock }

    func setPrice(at index: Int, _ price: Decimal) { variants[index].price = price }

    /// Variants a merchant deleted: no longer listed by `productVariants` or `inventoryItems`.
    public private(set) var deletedVariants: Set<Int64> = []

    /// A merchant deletes the variant with `sku`.
    public func deleteVariant(sku: String) -> Int64? {
        guard let v = variants.first(where: { $0.sku == sku && !deletedVariants.contains($0.variantId) }) else { return nil }
        deletedVariants.insert(v.variantId)
        return v.variantId
    }

    /// A merchant edits a variant's SKU.
    public func setVariantSKU(_ sku: String, to newSKU: String) -> Bool {
        guard let i = variants.firstIndex(where: { $0.sku == sku }) else { return false }
        variants[i].sku = newSKU
        return true
    }

    public func injectIdempotencyFaults(_ codes: [String]) { idempotencyFaults += codes }

    /// Levels changed by `inventorySetQuantities` so far, counted per call that changed them.
    public var totalLevelWrites: Int { levelWrites.values.reduce(0) { $0 + $1.values.reduce(0, +) } }

    /// Staff edit a level by hand in the admin (or another app does): `available` set at `location`, with the
    /// `inventory_levels/update` webhook Shopify sends. Nil for an unknown item or location.
    public func setAvailable(item: Int64, location: Int64, available: Int, at date: Date = Date()) -> WebhookEvent? {
        guard stock[item]?[location] != nil else { return nil }
        stock[item]![location] = available
        levelUpdatedAt[item, default: [:]][location] = date
        return levelUpdate(item: item, location: location, at: date)
    }

    /// Staff stop stocking an item at a location (`inventoryDeactivate`): its level is gone, and a write to it is
    /// refused with `ITEM_NOT_STOCKED_AT_LOCATION`, as Shopify does.
    public func unstock(item: Int64, location: Int64) {
        stock[item]?[location] = nil
        committed[item]?[location] = nil
        levelUpdatedAt[item]?[location] = nil
    }

    /// The inventory item of a SKU.
    public func inventoryItem(sku: String) -> Int64? { variants.first { $0.sku == sku }?.inventoryItemId }

    /// A customer places an order: 1-`maxLines` lines, SKUs skewed towards the first ones (a sale's bestsellers).
    /// A line whose item has less `available` than its quantity at the first location is left out (Shopify's
    /// checkout refuses it) unless `allowOverselling`; with no line left the checkout is refused and nothing is
    /// emitted.
    public func placeOrder(maxLines: Int = 4, skew: Double = 2, customLines: Bool = true, at date: Date = Date()) -> [WebhookEvent] {
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
            if !allowOverselling, (stock[v.inventoryItemId]?[locations[0]] ?? 0) < qty {
                refusedLines += 1
                continue
            }
            let discount = rng.next() % 5 == 0 ? (v.price * Decimal(qty) / 10).roundedToCents : 0
            let tax = ((v.price * Decimal(qty) - discount) * Decimal(19) / 100).roundedToCents
            lines.append(
                .init(id: (id % 1_000_000_000) * 100 + Int64(j), sku: v.sku, variantId: v.variantId, quantity: qty, price: v.price,
                    discount: discount, tax: tax))
        }
        guard !lines.isEmpty else {
            refusedCheckouts += 1
            nextOrderId -= 1
            return []
        }
        // Now and then a custom line without SKU (gift wrap), as real shops have (the draw is made either way, so a
        // seed gives the same orders otherwise).
        if rng.next() % 50 == 0, customLines {
            lines.append(.init(id: (id % 1_000_000_000) * 100 + 99, sku: nil, title: "Geschenkverpackung 🎁", quantity: 1, price: Decimal(string: "2.50")!))
        }
        return record(ShopifyOrderFixture(id: id, updatedAt: date, lines: lines), at: date)
    }

    /// A customer orders `quantity` of the variant at `index` (0-based), one line, nothing else drawn: for tests that
    /// need a given SKU. Refused (nothing emitted) when the first location has less `available`, unless
    /// `allowOverselling`.
    public func placeOrder(variant index: Int, quantity: Int, at date: Date = Date()) -> [WebhookEvent] {
        let v = variants[index]
        guard allowOverselling || (stock[v.inventoryItemId]?[locations[0]] ?? 0) >= quantity else {
            refusedCheckouts += 1
            return []
        }
        let id = nextOrderId
        nextOrderId += 1
        let line = ShopifyOrderFixture.Line(id: (id % 1_000_000_000) * 100, sku: v.sku, variantId: v.variantId, quantity: quantity, price: v.price)
        return record(ShopifyOrderFixture(id: id, updatedAt: date, lines: [line]), at: date)
    }

    /// Books a placed order: its webhooks (created pending, paid a moment later), its units from `available` into
    /// `committed` at the first location.
    private func record(_ placed: ShopifyOrderFixture, at date: Date) -> [WebhookEvent] {
        var order = placed
        let id = order.id
        let lines = order.lines
        order.collectDutiesIfAbroad()
        order.shipping = [.init(price: Decimal(string: "4.95")!, tax: Decimal(string: "0.94")!)]
        order.customerId = rng.next() % 5 == 0 ? nil : 7_000_000_000_000 + Int64(rng.next() % 100_000)
        // Created pending, paid a few milliseconds later: the same `updated_at` second, as on a real store.
        order.financialStatus = "pending"
        let created = event("orders/create", order.json(), orderId: id, at: triggered(id, at: date))
        order.financialStatus = "paid"
        orders[id] = order
        let paidAt = triggered(id, at: date.addingTimeInterval(Double(1 + rng.next() % 200) / 1000))
        var events = [created, event("orders/paid", order.json(), orderId: id, at: paidAt)]
        let location = locations[0]
        for line in lines {
            guard let item = inventoryItem(ofVariant: line.variantId) else { continue }
            stock[item, default: [:]][location, default: 0] -= line.quantity
            committed[item, default: [:]][location, default: 0] += line.quantity
            levelUpdatedAt[item, default: [:]][location] = date
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

    /// The order changes (staff add a tag): orders/updated. Within the same second as the previous change its
    /// `updated_at` is the same (one-second resolution).
    public func updateOrder(_ id: Int64, at date: Date = Date()) -> [WebhookEvent] {
        guard var o = orders[id] else { return [] }
        let at = triggered(id, at: date)
        o.updatedAt = max(at, o.updatedAt)
        o.tags = o.tags.isEmpty ? "vip" : o.tags + ", edited-\(nextEvent)"
        orders[id] = o
        return [event("orders/updated", o.json(), orderId: id, at: at)]
    }

    /// Cancels: orders/cancelled (and the stock not yet shipped comes back: inventory_levels/update).
    public func cancelOrder(_ id: Int64, at date: Date = Date()) -> [WebhookEvent] {
        guard var o = orders[id], !o.cancelled else { return [] }
        o.cancelled = true
        o.financialStatus = "voided"
        let at = triggered(id, at: date)
        o.updatedAt = max(at, o.updatedAt)
        orders[id] = o
        var events = [event("orders/cancelled", o.json(), orderId: id, at: at)]
        for line in o.lines {
            // Only what was not shipped comes back.
            let units = line.fulfillable(cancelled: false)
            guard units > 0, let item = inventoryItem(ofVariant: line.variantId) else { continue }
            if restockOnCancel { stock[item, default: [:]][locations[0], default: 0] += units }
            committed[item, default: [:]][locations[0], default: 0] -= units
            levelUpdatedAt[item, default: [:]][locations[0]] = date
            events.append(levelUpdate(item: item, location: locations[0], at: date))
        }
        return events
    }

    /// Ships an order from the first location, as a merchant or a 3PL app does in Shopify (before or after the ERP
    /// ships it): all of it, or with `partial` one unit of its first unfinished line. The units leave `committed`
    /// (and `on_hand`; `available` is unchanged). Emits `orders/updated` and `orders/fulfilled` or
    /// `orders/partially_fulfilled`, as Shopify does; nothing for a cancelled or already fulfilled order.
    public func fulfilOrder(_ id: Int64, partial: Bool = false, at date: Date = Date()) -> [WebhookEvent] {
        guard var o = orders[id], !o.cancelled, o.fulfillmentStatus != "fulfilled" else { return [] }
        for j in o.lines.indices where o.lines[j].fulfillable(cancelled: false) > 0 {
            let units = partial ? 1 : o.lines[j].fulfillable(cancelled: false)
            o.lines[j].fulfilled = (o.lines[j].fulfilled ?? 0) + units
            if let item = inventoryItem(ofVariant: o.lines[j].variantId) {
                committed[item, default: [:]][locations[0], default: 0] -= units
                levelUpdatedAt[item, default: [:]][locations[0]] = date
            }
            if partial { break }
        }
        let at = triggered(id, at: date)
        o.updatedAt = max(at, o.updatedAt)
        orders[id] = o
        let topic = o.fulfillmentStatus == "fulfilled" ? "orders/fulfilled" : "orders/partially_fulfilled"
        return [event("orders/updated", o.json(), orderId: id, at: at), event(topic, o.json(), orderId: id, at: at)]
    }

    /// Refunds part of an order: refunds/create and orders/updated carrying the refund.
    public func refundOrder(_ id: Int64, at date: Date = Date()) -> [WebhookEvent] {
        guard var o = orders[id], !o.cancelled else { return [] }
        let refunded = o.refunds.reduce(Decimal(0)) { $0 + $1.amount }
        let amount = min(Decimal(5), o.total - refunded)
        guard amount > 0 else { return [] }
        let refundId = nextRefundId
        nextRefundId += 1
        o.refunds.append(.init(id: refundId, amount: amount))
        o.financialStatus = "partially_refunded"
        let at = triggered(id, at: date)
        o.updatedAt = max(at, o.updatedAt)
        orders[id] = o
        return [
            event("refunds/create", o.refundJSON(id: refundId, amount: amount), orderId: id, at: at),
            event("orders/updated", o.json(), orderId: id, at: triggered(id, at: at)),
        ]
    }

    public func available(item: Int64, location: Int64) -> Int? { stock[item]?[location] }

    /// The shop's numeric id (derived from the domain, stable).
    public nonisolated var shopId: Int64 { 60_000_000_000 + Int64(domain.utf8.reduce(0) { ($0 &* 31 &+ Int($1)) & 0xFFFFFF }) }

    public static let lifecycleTopics = ["app/uninstalled", "customers/data_request", "customers/redact", "shop/redact"]

    /// The app lifecycle and GDPR compliance webhooks, with Shopify's payload shapes: `app/uninstalled` (the shop),
    /// `customers/data_request` and `customers/redact` (a customer and their orders), `shop/redact` (48 hours after
    /// uninstall). Nil for another topic.
    public func lifecycleEvent(_ topic: String, customerId: Int64? = nil, at date: Date = Date()) -> WebhookEvent? {
        let customer = customerId ?? orders.values.compactMap(\.customerId).min() ?? 7_000_000_000_001
        let customerOrders = orders.values.filter { $0.customerId == customer }.map(\.id).sorted()
        let person: [String: Any] = ["id": customer, "email": "customer-\(customer)@example.com", "phone": "+4930\(customer % 10_000_000)"]
        let body: [String: Any]
        switch topic {
        case "app/uninstalled":
            body = [
                "id": shopId, "name": "Acme Demo", "email": "owner@example.com", "domain": domain, "myshopify_domain": domain,
                "country_code": "DE", "currency": "EUR", "plan_name": "basic", "created_at": ShopifyOrderFixture.iso(createdAt),
            ]
        case "customers/data_request":
            body = [
                "shop_id": shopId, "shop_domain": domain, "orders_requested": customerOrders, "customer": person,
                "data_request": ["id": 9_000 + nextEvent],
            ]
        case "customers/redact":
            body = ["shop_id": shopId, "shop_domain": domain, "customer": person, "orders_to_redact": customerOrders]
        case "shop/redact":
            body = ["shop_id": shopId, "shop_domain": domain]
        default:
            return nil
        }
        return event(topic, (try? JSONSerialization.data(withJSONObject: body)) ?? Data(), orderId: nil, at: date)
    }

    private func inventoryItem(ofVariant id: Int64?) -> Int64? {
        guard let id, let i = variantIndex[id] else { return nil }
        return variants[i].inventoryItemId
    }

    /// A consistent copy of the shop for one API request (copy-on-write: cheap).
    public func snapshot() -> ShopSnapshot {
        ShopSnapshot(
            domain: domain, createdAt: createdAt, locations: locations, variants: variants, itemIndex: itemIndex,
            variantIndex: variantIndex, stock: stock, committed: committed, levelUpdatedAt: levelUpdatedAt, orders: orders,
            priceLists: priceLists, deletedVariants: deletedVariants)
    }

    // MARK: inventorySetQuantities

    /// One row of `inventorySetQuantities`. `changeFrom` nil: no compare-and-set (an explicit null).
    public struct QuantityRow: Sendable, Hashable {
        public var item: Int64
        public var location: Int64
        public var quantity: Int
        public var changeFrom: Int?
        public init(item: Int64, location: Int64, quantity: Int, changeFrom: Int?) {
            self.item = item
            self.location = location
            self.quantity = quantity
            self.changeFrom = changeFrom
        }
    }

    public struct UserError: Sendable, Equatable {
        public var code: String
        public var field: [String]
        public var message: String
    }

    public struct Change: Sendable, Equatable {
        public var name: String
        public var delta: Int
        public var quantityAfterChange: Int
        public var item: Int64
        public var location: Int64
    }

    public enum SetQuantitiesOutcome: Sendable, Equatable {
        case applied(groupId: Int64, createdAt: Date, reason: String, reference: String?, changes: [Change])
        case rejected([UserError])
    }

    public static let inventoryReasons: Set<String> = [
        "correction", "cycle_count_available", "damaged", "movement_created", "movement_updated", "movement_received",
        "movement_canceled", "other", "promotion", "quality_control", "received", "reservation_created",
        "reservation_deleted", "reservation_updated", "restock", "safety_stock", "shrinkage",
    ]

    /// Shopify's `inventorySetQuantities`: validated as a whole (any user error: nothing changes), compare-and-set
    /// per row when `changeFrom` is given, and idempotent per key: the same key with the same input returns the
    /// first result without applying anything again; with a different input, IDEMPOTENCY_KEY_PARAMETER_MISMATCH.
    /// Returns the outcome and the `inventory_levels/update` webhooks the change emits (the echo).
    public func setQuantities(
        name: String, reason: String, reference: String?, rows: [QuantityRow], idempotencyKey: String, at date: Date = Date()
    ) -> (SetQuantitiesOutcome, [WebhookEvent]) {
        let fingerprint = "\(name)|\(reason)|\(reference ?? "")|" + rows.map { "\($0.item):\($0.location)=\($0.quantity)/\($0.changeFrom.map(String.init) ?? "null")" }.joined(separator: ",")
        if let fault = idempotencyFaults.first {
            // A fault the test asked for, answered as Shopify does, and nothing applied.
            idempotencyFaults.removeFirst()
            let message = fault == "IDEMPOTENCY_CONCURRENT_REQUEST"
                ? "A request with this idempotency key is already in progress." : "The previous attempt with this idempotency key failed."
            return (.rejected([UserError(code: fault, field: ["input"], message: message)]), [])
        }
        if let previous = idempotency.lookup(idempotencyKey) {
            guard previous.fingerprint == fingerprint else {
                return (.rejected([UserError(code: "IDEMPOTENCY_KEY_PARAMETER_MISMATCH", field: ["input"],
                    message: "The same idempotency key was used with different parameters.")]), [])
            }
            return (previous.outcome, [])
        }
        let outcome = applySet(name: name, reason: reason, reference: reference, rows: rows, at: date)
        idempotency.record(idempotencyKey, fingerprint: fingerprint, outcome: outcome)
        guard case .applied(_, _, _, _, let changes) = outcome else { return (outcome, []) }
        var seen: Set<[Int64]> = []
        let events = changes.compactMap { c -> WebhookEvent? in
            seen.insert([c.item, c.location]).inserted ? levelUpdate(item: c.item, location: c.location, at: date) : nil
        }
        return (outcome, events)
    }

    private func applySet(name: String, reason: String, reference: String?, rows: [QuantityRow], at date: Date) -> SetQuantitiesOutcome {
        var errors: [UserError] = []
        if name != "available" && name != "on_hand" {
            errors.append(.init(code: "INVALID_NAME", field: ["input", "name"], message: "The quantity name must be either 'available' or 'on_hand'."))
        }
        if !Self.inventoryReasons.contains(reason) {
            errors.append(.init(code: "INVALID_REASON", field: ["input", "reason"], message: "The specified reason is invalid."))
        }
        if let reference, URL(string: reference)?.scheme == nil {
            errors.append(.init(code: "INVALID_REFERENCE_DOCUMENT", field: ["input", "referenceDocumentUri"], message: "The reference document URI is invalid."))
        }
        var pairs: Set<[Int64]> = []
        for (i, row) in rows.enumerated() {
            let path = ["input", "quantities", "\(i)"]
            guard itemIndex[row.item] != nil else {
                errors.append(.init(code: "INVALID_INVENTORY_ITEM", field: path + ["inventoryItemId"], message: "The specified inventory item could not be found."))
                continue
            }
            guard locations.contains(row.location) else {
                errors.append(.init(code: "INVALID_LOCATION", field: path + ["locationId"], message: "The specified location could not be found."))
                continue
            }
            guard let available = stock[row.item]?[row.location] else {
                errors.append(.init(code: "ITEM_NOT_STOCKED_AT_LOCATION", field: path + ["locationId"], message: "The specified inventory item is not stocked at the location."))
                continue
            }
            if !pairs.insert([row.item, row.location]).inserted {
                errors.append(.init(code: "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR", field: path, message: "The combination of inventoryItemId and locationId must be unique."))
            }
            if row.quantity > 1_000_000_000 {
                errors.append(.init(code: "INVALID_QUANTITY_TOO_HIGH", field: path + ["quantity"], message: "The quantity can't be higher than 1,000,000,000."))
            } else if row.quantity < -1_000_000_000 {
                errors.append(.init(code: "INVALID_QUANTITY_TOO_LOW", field: path + ["quantity"], message: "The quantity can't be lower than -1,000,000,000."))
            } else if name == "on_hand" && row.quantity < 0 {
                errors.append(.init(code: "INVALID_QUANTITY_NEGATIVE", field: path + ["quantity"], message: "The quantity can't be negative."))
            }
            let current = name == "on_hand" ? available + (committed[row.item]?[row.location] ?? 0) : available
            if let expected = row.changeFrom, expected != current {
                errors.append(.init(code: "CHANGE_FROM_QUANTITY_STALE", field: path + ["changeFromQuantity"],
                    message: "The specified changeFromQuantity does not match the current quantity."))
            }
        }
        if !errors.isEmpty { return .rejected(errors) }
        var changes: [Change] = []
        for row in rows {
            let available = stock[row.item]![row.location]!
            let onHand = available + (committed[row.item]?[row.location] ?? 0)
            let delta = row.quantity - (name == "on_hand" ? onHand : available)
            guard delta != 0 else { continue }
            levelWrites[row.item, default: [:]][row.location, default: 0] += 1
            stock[row.item]![row.location] = available + delta
            levelUpdatedAt[row.item, default: [:]][row.location] = date
            let first = Change(name: name, delta: delta, quantityAfterChange: row.quantity, item: row.item, location: row.location)
            let other = name == "on_hand"
                ? Change(name: "available", delta: delta, quantityAfterChange: available + delta, item: row.item, location: row.location)
                : Change(name: "on_hand", delta: delta, quantityAfterChange: onHand + delta, item: row.item, location: row.location)
            changes += [first, other]
        }
        defer { nextAdjustmentGroup += 1 }
        return .applied(groupId: nextAdjustmentGroup, createdAt: date, reason: reason, reference: reference, changes: changes)
    }
    public var orderCount: Int { orders.count }

    /// Everything a restart keeps (`shopify-sim --state`): catalogue, levels, orders, price lists, counters and id
    /// sequences, the random source's position. Not kept: idempotency keys and webhook deliveries still retrying.
    public struct State: Codable, Sendable {
        var variants: [Variant]
        var deletedVariants: Set<Int64>
        var stock: [Int64: [Int64: Int]]
        var committed: [Int64: [Int64: Int]]
        var levelUpdatedAt: [Int64: [Int64: Date]]
        var orders: [Int64: ShopifyOrderFixture]
        var priceLists: [PriceList]
        var priceWrites: [Int64: [Int64: Int]]
        var levelWrites: [Int64: [Int64: Int]]
        var allowOverselling: Bool
        var refusedCheckouts: Int
        var refusedLines: Int
        var nextAdjustmentGroup: Int64
        var nextOrderId: Int64
        var nextRefundId: Int64
        var nextEvent: Int64
        var rng: SplitMix64
        var lastTriggeredMs: [Int64: Int64]
    }

    public var state: State {
        State(
            variants: variants, deletedVariants: deletedVariants, stock: stock, committed: committed,
            levelUpdatedAt: levelUpdatedAt, orders: orders, priceLists: priceLists, priceWrites: priceWrites,
            levelWrites: levelWrites, allowOverselling: allowOverselling, refusedCheckouts: refusedCheckouts,
            refusedLines: refusedLines, nextAdjustmentGroup: nextAdjustmentGroup, nextOrderId: nextOrderId,
            nextRefundId: nextRefundId, nextEvent: nextEvent, rng: rng, lastTriggeredMs: lastTriggeredMs)
    }

    /// Replaces the seeded shop with a saved one (before serving).
    public func restore(_ s: State) {
        variants = s.variants
        itemIndex = Dictionary(uniqueKeysWithValues: variants.enumerated().map { ($1.inventoryItemId, $0) })
        variantIndex = Dictionary(uniqueKeysWithValues: variants.enumerated().map { ($1.variantId, $0) })
        deletedVariants = s.deletedVariants
        stock = s.stock
        committed = s.committed
        levelUpdatedAt = s.levelUpdatedAt
        orders = s.orders
        priceLists = s.priceLists
        priceWrites = s.priceWrites
        levelWrites = s.levelWrites
        allowOverselling = s.allowOverselling
        refusedCheckouts = s.refusedCheckouts
        refusedLines = s.refusedLines
        nextAdjustmentGroup = s.nextAdjustmentGroup
        nextOrderId = s.nextOrderId
        nextRefundId = s.nextRefundId
        nextEvent = s.nextEvent
        rng = s.rng
        lastTriggeredMs = s.lastTriggeredMs
    }
}

/// Results of idempotent mutations by key, bounded (Shopify keeps keys for a day; the simulator keeps the newest).
struct IdempotencyRecords {
    var byKey: [String: (fingerprint: String, outcome: ShopifyStore.SetQuantitiesOutcome)] = [:]
    var order: [String] = []
    let limit = 50_000

    func lookup(_ key: String) -> (fingerprint: String, outcome: ShopifyStore.SetQuantitiesOutcome)? { byKey[key] }

    mutating func record(_ key: String, fingerprint: String, outcome: ShopifyStore.SetQuantitiesOutcome) {
        byKey[key] = (fingerprint, outcome)
        order.append(key)
        if order.count > limit {
            let drop = order.prefix(order.count - limit)
            for k in drop { byKey[k] = nil }
            order.removeFirst(drop.count)
        }
    }
}

/// The shop as one API request sees it.
public struct ShopSnapshot: Sendable {
    public var domain: String
    public var createdAt: Date
    public var locations: [Int64]
    public var variants: [ShopifyStore.Variant]
    var itemIndex: [Int64: Int]
    var variantIndex: [Int64: Int]
    public var stock: [Int64: [Int64: Int]]
    public var committed: [Int64: [Int64: Int]]
    public var levelUpdatedAt: [Int64: [Int64: Date]]
    public var orders: [Int64: ShopifyOrderFixture]
    public var priceLists: [ShopifyStore.PriceList]
    public var deletedVariants: Set<Int64>

    /// Nothing: what a mutation's request holds until its mutation took effect (it then takes a real snapshot).
    static let empty = ShopSnapshot(
        domain: "", createdAt: .distantPast, locations: [], variants: [], itemIndex: [:], variantIndex: [:], stock: [:],
        committed: [:], levelUpdatedAt: [:], orders: [:], priceLists: [], deletedVariants: [])

    /// The variants the shop still has.
    var liveVariants: [ShopifyStore.Variant] { deletedVariants.isEmpty ? variants : variants.filter { !deletedVariants.contains($0.variantId) } }

    func variant(item: Int64) -> ShopifyStore.Variant? { itemIndex[item].map { variants[$0] } }
    func variant(id: Int64) -> ShopifyStore.Variant? { variantIndex[id].map { variants[$0] } }
    func levelUpdated(item: Int64, location: Int64) -> Date { levelUpdatedAt[item]?[location] ?? createdAt }
    func itemUpdated(_ item: Int64) -> Date { levelUpdatedAt[item]?.values.max() ?? createdAt }
}
