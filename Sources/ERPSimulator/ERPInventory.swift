import Foundation
import SimulatorKit

/// The ERP's stock and B2B prices: a snapshot per SKU and warehouse (paged), an append-only change feed read by
/// cursor, and price lists per customer group. Seeded; stock moves through `move` (the admin API, or
/// `randomMovements`), and every movement can be pushed as a signed event (`ERPPusher`).
public actor ERPInventory {
    public struct Level: Sendable, Equatable, Codable {
        public var sku: String
        public var warehouse: String
        public var available: Int
        public var updatedAt: Date
    }

    public struct Change: Sendable, Equatable, Codable {
        public var seq: Int64
        public var sku: String
        public var warehouse: String
        public var available: Int
        public var changedAt: Date
        /// The sales order whose allocation moved the stock (its external reference); nil for other movements.
        public var orderRef: String? = nil
        /// The movement's quantity (negative: taken), given with `orderRef`.
        public var quantity: Int? = nil
    }

    public struct PriceList: Sendable, Equatable, Codable {
        public var id: String
        public var name: String
        public var currency: String
        public var customerGroup: String
        public var prices: [Price]

        public static func == (a: PriceList, b: PriceList) -> Bool {
            a.id == b.id && a.prices.map(\.sku) == b.prices.map(\.sku) && a.prices.map(\.unitPrice) == b.prices.map(\.unitPrice)
        }
    }

    /// One item's price on a list, from a minimum quantity.
    public struct Price: Sendable, Equatable, Codable {
        public var sku: String
        public var unitPrice: Decimal
        public var minQuantity: Int
    }

    /// Units of one SKU a sales order was promised (its lines) and took from stock.
    struct Allocation: Sendable, Codable {
        var promised: Int
        var taken: Int
    }

    public nonisolated let warehouses: [String]
    private var levels: [String: Level] = [:]  // "sku|warehouse"
    private var sortedKeys: [String] = []
    public private(set) var changes: [Change] = []
    public private(set) var priceLists: [PriceList] = []
    private var rng: SplitMix64
    /// Per sales-order document and SKU: units promised (the order's lines) and taken from stock (what a
    /// cancellation or an edit gives back; the difference is backordered).
    private var allocations: [String: [String: Allocation]] = [:]
    /// Sales-order document -> the Shopify order's external reference it was created for.
    private var documentRefs: [String: String] = [:]
    /// The warehouse sales orders are allocated from (the ERP's default fulfilment warehouse).
    public nonisolated let allocationWarehouse: String
    /// Units ordered that the warehouse did not have when the order arrived: the oversell counter. A bridge that
    /// keeps Shopify at or below the ERP's figure keeps it at 0.
    public private(set) var oversoldUnits = 0
    /// Orders (documents) with at least one unit short.
    public private(set) var oversoldOrders: Set<String> = []
    private var listeners: [@Sendable (Change) async -> Void] = []
    private var priceListeners: [@Sendable (PriceChange) async -> Void] = []
    /// Price changes so far (their sequence numbers are 1...n).
    public private(set) var priceChanges = 0

    /// A B2B price the ERP changed (pushed as `price.changed`).
    public struct PriceChange: Sendable, Equatable {
        public var seq: Int64
        public var priceList: String
        public var sku: String
        public var unitPrice: Decimal
        public var currency: String
        public var changedAt: Date
    }

    public init(skus: Int = 1000, warehouses: Int = 2, seed: UInt64 = 42, initialStock: ClosedRange<Int> = 0...500) {
        self.warehouses = (1...max(1, warehouses)).map { "WH-\($0)" }
        self.allocationWarehouse = self.warehouses[0]
        var rng = SplitMix64(seed: seed)
        let now = Date()
        var levels: [String: Level] = [:]
        for n in 1...max(1, skus) {
            for w in self.warehouses {
                let span = UInt64(initialStock.upperBound - initialStock.lowerBound + 1)
                let qty = initialStock.lowerBound + Int(rng.next() % span)
                levels["\(SimulatedCatalogue.sku(n))|\(w)"] = Level(sku: SimulatedCatalogue.sku(n), warehouse: w, available: qty, updatedAt: now)
            }
        }
        self.levels = levels
        sortedKeys = levels.keys.sorted()
        // (One draw per SKU, where the price lists' prices were once drawn: the seed's later stock movements stay
        // what they were, so scenarios such as the sale race keep their known sequence.)
        for _ in 1...max(1, skus) { _ = rng.next() }
        // Two B2B price lists, wholesale at 60% and distributors at 50% of the item's retail price (from 10 and 50
        // units), and the retail list: the ERP's copy of the DTC prices Shopify owns (they agree with shopify-sim's).
        func list(_ id: String, _ name: String, _ group: String, _ share: Int, _ minQuantity: Int) -> PriceList {
            PriceList(
                id: id, name: name, currency: "EUR", customerGroup: group,
                prices: (1...max(1, skus)).map {
                    Price(sku: SimulatedCatalogue.sku($0), unitPrice: (SimulatedCatalogue.listPrice($0) * Decimal(share) / 100).roundedToCents, minQuantity: minQuantity)
                })
        }
        priceLists = [
            list("PL-WHOLESALE", "Wholesale", "wholesale", 60, 10), list("PL-DISTRIBUTOR", "Distributors", "distributor", 50, 50),
            list("PL-RETAIL", "Retail", "retail", 100, 1),
        ]
        self.rng = rng
    }

    /// Calls `listener` for every price change from now on (push mode).
    public func onPriceChange(_ listener: @escaping @Sendable (PriceChange) async -> Void) { priceListeners.append(listener) }

    /// The price of `sku` on list `list`.
    public func price(list: String, sku: String) -> Decimal? {
        priceLists.first { $0.id == list }?.prices.first { $0.sku == sku }?.unitPrice
    }

    /// Changes a price on a list (a new contract price); `notify: false`: its push is lost.
    @discardableResult
    public func setPrice(list: String, sku: String, unitPrice: Decimal, at date: Date = Date(), notify: Bool = true) async -> PriceChange? {
        guard let l = priceLists.firstIndex(where: { $0.id == list }),
            let i = priceLists[l].prices.firstIndex(where: { $0.sku == sku })
        else { return nil }
        priceLists[l].prices[i].unitPrice = unitPrice
        priceChanges += 1
        let change = PriceChange(
            seq: Int64(priceChanges), priceList: list, sku: sku, unitPrice: unitPrice, currency: priceLists[l].currency, changedAt: date)
        if notify { for listener in priceListeners { await listener(change) } }
        return change
    }

    /// Calls `listener` for every change from now on (push mode).
    public func onChange(_ listener: @escaping @Sendable (Change) async -> Void) { listeners.append(listener) }

    public func level(sku: String, warehouse: String) -> Level? { levels["\(sku)|\(warehouse)"] }

    /// A page of the snapshot, ordered by SKU then warehouse; `offset` is the page token. `asOf`: the change
    /// sequence the page reflects (every change up to it is in its figures; the feed's cursor there is the same
    /// number).
    public func snapshot(offset: Int, limit: Int) -> (levels: [Level], next: Int?, asOf: Int64) {
        let end = min(sortedKeys.count, offset + limit)
        guard offset < end else { return ([], nil, Int64(changes.count)) }
        return (sortedKeys[offset..<end].compactMap { levels[$0] }, end < sortedKeys.count ? end : nil, Int64(changes.count))
    }

    /// The cursors the change feed was read from, in order (the simulator's record of who polled from where).
    public private(set) var feedCursorsRead: [Int64] = []

    /// Changes after `cursor` (a sequence number), oldest first.
    public func changes(after cursor: Int64, limit: Int) -> [Change] {
        if feedCursorsRead.count < 100_000 { feedCursorsRead.append(cursor) }
        // seq n is at index n - 1.
        let start = Int(max(0, cursor))
        guard start < changes.count else { return [] }
        return Array(changes[start..<min(changes.count, start + limit)])
    }

    /// Sets a level (a goods receipt, a pick, a count) and records the change in the feed. `notify: false`: a change
    /// whose push is lost (the listeners are not told; the feed still has it).
    @discardableResult
    public func move(
        sku: String, warehouse: String, available: Int, at date: Date = Date(), orderRef: String? = nil, quantity: Int? = nil,
        notify: Bool = true
    ) async -> Change? {
        let key = "\(sku)|\(warehouse)"
        guard var level = levels[key] else { return nil }
        level.available = available
        level.updatedAt = date
        levels[key] = level
        let change = Change(
            seq: Int64(changes.count + 1), sku: sku, warehouse: warehouse, available: available, changedAt: date, orderRef: orderRef,
            quantity: quantity)
        changes.append(change)
        if notify { for l in listeners { await l(change) } }
        return change
    }

    /// Moves a level by `delta` units (a receipt, another channel's sale), never below zero, read and set in one step:
    /// a caller that read the level and then set `available` could overwrite an allocation made in between.
    @discardableResult
    public func adjust(sku: String, warehouse: String, by delta: Int, at date: Date = Date()) async -> Change? {
        guard let level = levels["\(sku)|\(warehouse)"] else { return nil }
        return await move(sku: sku, warehouse: warehouse, available: max(0, level.available + delta), at: date)
    }

    /// A sales order arrived, changed or was cancelled (document `document`, external reference `orderRef`):
    /// allocates its lines from the allocation warehouse, as an ERP commits stock to a confirmed order. An edit
    /// allocates or gives back the difference; a cancellation gives back what was taken. Units the warehouse does
    /// not have are counted as oversold (the order is backordered) and never taken below zero. A duplicate
    /// document (a second ERP order for one Shopify order) allocates again, as it would in a real ERP. SKUs this
    /// ERP keeps no stock for (a catch-all item) are ignored.
    public func allocate(document: String, orderRef: String, lines: [(sku: String, quantity: Int)], cancelled: Bool) async {
        var wanted: [String: Int] = [:]
        if !cancelled { for l in lines { wanted[l.sku, default: 0] += l.quantity } }
        var held = allocations[document] ?? [:]
        for sku in Set(wanted.keys).union(held.keys).sorted() {
            let key = "\(sku)|\(allocationWarehouse)"
            guard let level = levels[key] else { continue }
            let want = wanted[sku] ?? 0
            var line = held[sku] ?? Allocation(promised: 0, taken: 0)
            if want > line.promised {
                // Take what the warehouse has; the rest is backordered and counted as oversold.
                let need = want - line.promised
                let take = min(need, level.available)
                if take < need {
                    oversoldUnits += need - take
                    oversoldOrders.insert(document)
                }
                line = Allocation(promised: want, taken: line.taken + take)
                if take > 0 {
                    await move(
                        sku: sku, warehouse: allocationWarehouse, available: level.available - take, orderRef: orderRef,
                        quantity: -take)
                }
            } else if want < line.promised {
                // A smaller promise cancels the backorder first, then gives back what was taken.
                let back = max(0, line.taken - want)
                line = Allocation(promised: want, taken: line.taken - back)
                if back > 0 {
                    await move(
                        sku: sku, warehouse: allocationWarehouse, available: level.available + back, orderRef: orderRef,
                        quantity: back)
                }
            }
            held[sku] = line.promised > 0 ? line : nil
        }
        allocations[document] = held.isEmpty ? nil : held
        documentRefs[document] = held.isEmpty ? nil : orderRef
    }

    /// What the ERP holds for open sales orders: units taken per order reference and SKU (the allocation
    /// warehouse), summed over documents (a duplicate document holds its own units), and the change sequence the
    /// figures are current at (`GET /api/v1/inventory/allocations`).
    public func openAllocations() -> (items: [(orderRef: String, sku: String, warehouse: String, quantity: Int)], asOf: Int64) {
        var sums: [String: [String: Int]] = [:]
        for (document, lines) in allocations {
            guard let ref = documentRefs[document] else { continue }
            for (sku, line) in lines where line.taken > 0 { sums[ref, default: [:]][sku, default: 0] += line.taken }
        }
        let items = sums.keys.sorted().flatMap { ref in
            sums[ref]!.keys.sorted().map { (orderRef: ref, sku: $0, warehouse: allocationWarehouse, quantity: sums[ref]![$0]!) }
        }
        return (items, Int64(changes.count))
    }

    /// `count` seeded random movements (receipts and picks) over the first `skuRange` SKUs.
    public func randomMovements(_ count: Int, skuRange: Int = 100) async -> [Change] {
        var out: [Change] = []
        for _ in 0..<count {
            let n = 1 + Int(rng.next() % UInt64(max(1, skuRange)))
            let w = warehouses[Int(rng.next() % UInt64(warehouses.count))]
            let current = levels["\(SimulatedCatalogue.sku(n))|\(w)"]?.available ?? 0
            let delta = Int(rng.next() % 41) - 20
            if let c = await move(sku: SimulatedCatalogue.sku(n), warehouse: w, available: max(0, current + delta)) { out.append(c) }
        }
        return out
    }

    public var levelCount: Int { levels.count }

    /// Everything a restart keeps (`erp-sim --state`): stock, the change feed (consumers' cursors point into it),
    /// price lists, allocations and the oversell counter, the random source's position.
    public struct State: Codable, Sendable {
        var levels: [Level]
        var changes: [Change]
        var priceLists: [PriceList]
        var priceChanges: Int
        var rng: SplitMix64
        var allocations: [String: [String: Allocation]]
        var documentRefs: [String: String]
        var oversoldUnits: Int
        var oversoldOrders: Set<String>
    }

    public var state: State {
        State(
            levels: sortedKeys.compactMap { levels[$0] }, changes: changes, priceLists: priceLists, priceChanges: priceChanges,
            rng: rng, allocations: allocations, documentRefs: documentRefs, oversoldUnits: oversoldUnits, oversoldOrders: oversoldOrders)
    }

    /// Replaces the seeded state with a saved one (before serving).
    public func restore(_ s: State) {
        levels = Dictionary(s.levels.map { ("\($0.sku)|\($0.warehouse)", $0) }, uniquingKeysWith: { $1 })
        sortedKeys = levels.keys.sorted()
        changes = s.changes
        priceLists = s.priceLists
        priceChanges = s.priceChanges
        rng = s.rng
        allocations = s.allocations
        documentRefs = s.documentRefs
        oversoldUnits = s.oversoldUnits
        oversoldOrders = s.oversoldOrders
    }
}
