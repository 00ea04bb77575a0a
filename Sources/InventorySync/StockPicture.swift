import ERP
import Foundation

/// A SKU in an ERP warehouse.
public struct StockKey: Hashable, Sendable, CustomStringConvertible {
    public var sku: String
    public var warehouse: String
    public init(sku: String, warehouse: String) {
        self.sku = sku
        self.warehouse = warehouse
    }
    public var description: String { "\(sku)@\(warehouse)" }
}

/// What the syncer knows of the ERP: its latest figure per SKU and warehouse (with the change sequence it came
/// with), and the units it holds for each Shopify order (allocated, not shipped). One per process, shared by every
/// shop.
///
/// The allocations are what make the stock rule exact: Shopify's `committed` counts every unfulfilled order, read
/// atomically with `available`; the units of those orders the ERP has already allocated are in the ERP's figure
/// already; the difference is what Shopify sold that the ERP does not count yet (`LevelTargets`). An allocation is
/// a stock change naming the order (`order_ref`) with its `quantity`; each change is counted once, whatever order
/// its copies arrive in. When Shopify fulfils an order its `committed` drops, and so does what is counted here.
public actor StockPicture {
    struct Figure {
        var available: Int
        var seq: Int64
        /// Bumped by every applied change: a full sync keeps a figure a change replaced while it was reading.
        var generation: Int
    }

    private var figures: [StockKey: Figure] = [:]
    private var generation = 0
    /// shop id -> order ref -> stock key -> units the ERP holds for the order.
    private var allocations: [String: [String: [StockKey: Int]]] = [:]
    /// shop id -> stock key -> the sum of `allocations` over the shop's orders.
    private var allocatedTotals: [String: [StockKey: Int]] = [:]
    /// Order ref -> change sequences whose allocation was counted for it (a change's copies count once); dropped
    /// with the order when it is fulfilled.
    private var counted: [String: Set<Int64>] = [:]
    /// Orders fulfilled recently: a late copy of one of their allocation changes counts nothing. Bounded.
    private var released = RecentSet(limit: 100_000)
    /// Allocation movements up to this sequence are in the figures loaded from the ERP (`adoptAllocations`).
    private var allocationsAsOf: Int64 = 0
    /// shop id -> stock key -> highest change sequence written to (or confirmed in) that shop.
    private var confirmed: [String: [StockKey: Int64]] = [:]
    /// shop id -> stock key -> the change sequence a message is writing right now.
    private var inFlight: [String: [StockKey: Int64]] = [:]

    public init() {}

    public enum Applied: Sendable, Equatable {
        /// Newer than anything known: the figure was taken.
        case newer
        /// The same change again (the feed's copy of a pushed change, a redelivery): the figure stands.
        case same
        /// An older change arriving late: its figure is ignored (a newer one is known); its allocation still counts.
        case older
    }

    /// Takes an ERP stock change if it is at least as new as the figure held (by the ERP's sequence), and counts
    /// the allocation it carries, once.
    public func apply(_ change: ERPStockChange) -> Applied {
        let key = StockKey(sku: change.sku, warehouse: change.warehouse)
        if let ref = change.orderRef, let quantity = change.quantity, let shop = ERPReference.shop(ofSalesOrder: ref),
            change.seq > allocationsAsOf, !released.contains(ref), counted[ref, default: []].insert(change.seq).inserted
        {
            allocate(shop: shop, orderRef: ref, key, units: -quantity)
        }
        if let held = figures[key] {
            if change.seq < held.seq { return .older }
            if change.seq == held.seq { return .same }
        }
        generation += 1
        figures[key] = Figure(available: change.available, seq: change.seq, generation: generation)
        return .newer
    }

    private func allocate(shop: String, orderRef: String, _ key: StockKey, units: Int) {
        let before = allocations[shop]?[orderRef]?[key] ?? 0
        let after = max(0, before + units)
        allocations[shop, default: [:]][orderRef, default: [:]][key] = after == 0 ? nil : after
        if allocations[shop]?[orderRef]?.isEmpty == true { allocations[shop]![orderRef] = nil }
        allocatedTotals[shop, default: [:]][key, default: 0] += after - before
    }

    /// Shopify fulfilled the order: its units leave Shopify's `committed`, so they leave the count here too.
    public func fulfilled(shop: String, orderRef: String) {
        counted[orderRef] = nil
        released.insert(orderRef)
        guard let lines = allocations[shop]?.removeValue(forKey: orderRef) else { return }
        for (key, units) in lines { allocatedTotals[shop]![key, default: 0] -= units }
    }

    /// Replaces the allocation count with what the ERP says it holds for open sales orders (at start, when this
    /// process becomes the active syncer: the count lives in memory). Movements up to `asOfSeq` are in these
    /// figures; later ones count as they arrive. Orders not named by a Shopify shop's reference are skipped.
    /// Returns the orders counted.
    @discardableResult
    public func adoptAllocations(_ open: ERPOpenAllocations) -> Int {
        allocations = [:]
        allocatedTotals = [:]
        counted = [:]
        allocationsAsOf = open.asOfSeq
        for a in open.allocations where a.quantity > 0 && !released.contains(a.orderRef) {
            guard let shop = ERPReference.shop(ofSalesOrder: a.orderRef) else { continue }
            allocate(shop: shop, orderRef: a.orderRef, StockKey(sku: a.sku, warehouse: a.warehouse), units: a.quantity)
        }
        return allocations.values.reduce(0) { $0 + $1.count }
    }

    /// Units the ERP holds for `shop`'s orders in `key`.
    public func allocatedUnits(shop: String, _ key: StockKey) -> Int { allocatedTotals[shop]?[key] ?? 0 }

    /// The ERP's figure, if known.
    public func available(_ key: StockKey) -> Int? { figures[key]?.available }
    public func sequence(_ key: StockKey) -> Int64? { figures[key]?.seq }

    /// A point in the change history, for `adopt`.
    public var currentGeneration: Int { generation }

    /// Takes snapshot figures read by a full sync. A figure with the change sequence its page reflects
    /// (`asOfSeq`) is taken unless a newer change is held, and takes that sequence: a change up to it (still queued,
    /// retried, redelivered after a takeover) is older than the figure and never applied after it. Without one (an
    /// ERP that does not say), a figure is taken unless a change arrived after `since` (the read's start). Returns
    /// the keys adopted.
    @discardableResult
    public func adopt(_ levels: [StockKey: (available: Int, asOfSeq: Int64?)], since: Int) -> Int {
        var adopted = 0
        for (key, level) in levels {
            let held = figures[key]
            let seq: Int64
            if let asOf = level.asOfSeq {
                if let held, held.seq > asOf { continue }
                seq = asOf
            } else {
                if let held, held.generation > since { continue }
                seq = held?.seq ?? 0
            }
            generation += 1
            figures[key] = Figure(available: level.available, seq: seq, generation: generation)
            adopted += 1
        }
        return adopted
    }

    // MARK: Where the change feed starts when no cursor was saved

    /// The feed cursor a poller without a saved one starts from: the earliest of the open allocations' and the
    /// first snapshot's (changes before it are in both; from it on each is applied, or skipped as older with its
    /// allocation still counted). Nil with `feedStartKnown`: the ERP gave none (the whole feed is read).
    public private(set) var feedStart: String?
    public private(set) var feedStartKnown = false

    /// Offered by the allocations' read (first) and the snapshot's (then known); the first cursor offered stands.
    public func offerFeedStart(_ cursor: String?, final: Bool) {
        if feedStart == nil, let cursor { feedStart = cursor }
        if final { feedStartKnown = true }
    }

    // MARK: Written sequences (push and feed on together write each change once)

    /// Whether `seq` for `key` is already in `shop` (written, or found already there).
    public func isConfirmed(_ seq: Int64, _ key: StockKey, shop: String) -> Bool {
        (confirmed[shop]?[key] ?? -1) >= seq
    }

    /// Takes `seq` for `key` in `shop` unless it (or a newer one) is confirmed or being written by another
    /// message right now (the other copy of a change, pushed and polled). A message that cannot claim is the
    /// twin of one that will be written, retried or redelivered: it has nothing left to do.
    public func claim(_ seq: Int64, _ key: StockKey, shop: String) -> Bool {
        if isConfirmed(seq, key, shop: shop) { return false }
        if let busy = inFlight[shop]?[key], busy >= seq { return false }
        inFlight[shop, default: [:]][key] = seq
        return true
    }

    /// The claimed write is done: `written` confirms it; a failure leaves it to the retry.
    public func finish(_ seq: Int64, _ key: StockKey, shop: String, written: Bool) {
        if inFlight[shop]?[key] == seq { inFlight[shop]![key] = nil }
        if written { confirm(seq, key, shop: shop) }
    }

    public func confirm(_ seq: Int64, _ key: StockKey, shop: String) {
        if (confirmed[shop]?[key] ?? -1) < seq { confirmed[shop, default: [:]][key] = seq }
    }
}

/// A set that forgets its oldest members beyond `limit`.
struct RecentSet {
    let limit: Int
    private var members: Set<String> = []
    private var order: [String] = []
    private var head = 0

    init(limit: Int) { self.limit = limit }

    func contains(_ s: String) -> Bool { members.contains(s) }

    mutating func insert(_ s: String) {
        guard members.insert(s).inserted else { return }
        order.append(s)
        if members.count > limit {
            members.remove(order[head])
            head += 1
            if head > limit {
                order.removeFirst(head)
                head = 0
            }
        }
    }
}
