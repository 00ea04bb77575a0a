import ERP
import Foundation
import Metrics

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
/// with), the units it holds for each Shopify order (allocated, not shipped), and what Shopify still commits for each
/// order. One per process, shared by every shop.
///
/// The stock rule needs the units Shopify sold that the ERP does not count yet. They are counted per order and SKU,
/// never netted across orders (`pendingUnits`): an order's ERP allocation covers that order's units only. A
/// cancellation or a partial fulfilment in Shopify that the ERP has not seen yet leaves the order's allocation larger
/// than what Shopify still commits for it; netted against other orders, that surplus would let Shopify sell units
/// the ERP has not given back (the sale race oversold that way under load).
///
/// - ERP side: an allocation is a stock change naming the order (`order_ref`) with its `quantity`; each change is
///   counted once, whatever order its copies arrive in; at start the ERP's open allocations are read.
/// - Shopify side: each order webhook (`orders/create`, `updated`, `cancelled`, `fulfilled`, `partially_fulfilled`)
///   says per line what Shopify still commits (`fulfillable_quantity`; zero once cancelled), the newest version of
///   the order winning; at start the orders the ERP holds units for are read from Shopify (`loadCommitments`).
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
    /// Order ref -> change sequences whose allocation was counted for it (a change's copies count once); dropped
    /// with the order when it is fulfilled.
    private var counted: [String: Set<Int64>] = [:]
    /// Orders fulfilled recently: a late copy of one of their allocation changes counts nothing. Bounded.
    private var released = RecentSet(limit: 100_000)
    /// Allocation movements up to this sequence are in the figures loaded from the ERP (`adoptAllocations`).
    private var allocationsAsOf: Int64 = 0
    /// shop id -> order ref -> what Shopify still commits for the order, per SKU, as of its newest version seen.
    private var commitments: [String: [String: Commitment]] = [:]
    /// shop id -> SKU -> orders with an allocation or a commitment of it (what `pendingUnits` walks).
    private var ordersBySKU: [String: [String: Set<String>]] = [:]
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
            // An order Shopify fulfilled before the ERP had it is done once the ERP holds its units.
            _ = closeIfSettled(shop: shop, orderRef: ref)
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
        if after > 0 { ordersBySKU[shop, default: [:]][key.sku, default: []].insert(orderRef) }
    }

    /// One order as Shopify last described it, per SKU (lines without a SKU left out).
    public struct Commitment: Sendable, Equatable {
        /// The order's version: `X-Shopify-Triggered-At` in milliseconds, else its `updated_at`.
        public var version: Int64
        /// Units Shopify still commits (`fulfillable_quantity`: not yet fulfilled, cancelled or removed).
        public var units: [String: Int]
        /// Units the order took from stock, fulfilled or not (`current_quantity`: less what was cancelled or
        /// removed). A fulfilment in Shopify moves units from `units` out of Shopify's `committed`, but the ERP
        /// counts them as its own stock until it has the order: they stay pending until then.
        public var taken: [String: Int]
        /// Cancelled: nothing is committed or taken, whatever version comes later.
        public var cancelled: Bool
        /// The version is exact (a webhook's trigger time in milliseconds); false for one-second figures (a read of
        /// the order, `updated_at`): another version of the same second is merged with it, not ordered.
        public var exact: Bool
        /// When Shopify stopped committing anything for it while the ERP did not hold all it took (kept pending).
        var closedAt: ContinuousClock.Instant?

        public init(version: Int64, units: [String: Int], taken: [String: Int]? = nil, cancelled: Bool, exact: Bool = true) {
            self.version = version
            self.units = cancelled ? [:] : units.filter { $0.value > 0 }
            self.taken = cancelled ? [:] : (taken ?? units).merging(units, uniquingKeysWith: max).filter { $0.value > 0 }
            self.cancelled = cancelled
            self.exact = exact
        }

        /// Two versions that cannot be ordered (the same second, one of them not exact): what both say, counted
        /// so that Shopify shows the less: the smaller commitment (less matched against the ERP's allocation), the
        /// larger taken (more pending), cancelled if either is.
        func merged(with other: Commitment) -> Commitment {
            if cancelled || other.cancelled { return Commitment(version: max(version, other.version), units: [:], cancelled: true) }
            var units: [String: Int] = [:]
            for sku in Set(self.units.keys).intersection(other.units.keys) { units[sku] = min(self.units[sku]!, other.units[sku]!) }
            return Commitment(
                version: max(version, other.version), units: units, taken: taken.merging(other.taken, uniquingKeysWith: max),
                cancelled: false, exact: exact && other.exact)
        }

        /// Nothing left in Shopify's `committed`: fulfilled, cancelled or every line removed.
        public var closed: Bool { units.isEmpty }

        /// Units per SKU of an order's lines (a line without a SKU left out, a negative figure counted as none).
        public static func perSKU(_ lines: [(sku: String?, units: Int)]) -> [String: Int] {
            var out: [String: Int] = [:]
            for line in lines {
                guard let sku = line.sku, !sku.isEmpty else { continue }
                out[sku, default: 0] += max(0, line.units)
            }
            return out
        }
    }

    /// Takes an order's version from Shopify (a webhook, or the read at start) unless a newer one is held. Two
    /// versions that cannot be ordered (the same millisecond, or the same second with one of them a one-second
    /// figure) are merged (`merged(with:)`): what Shopify shows errs towards less, never more. A cancellation
    /// is final. An order is forgotten (its ERP allocation with it, and a late copy of an older version counts
    /// nothing) once Shopify commits nothing for it and the ERP holds every unit it took: cancelled, or fulfilled
    /// and in the ERP. An order Shopify fulfilled before the ERP has it stays, its units pending, until the ERP
    /// allocates them (`apply`).
    ///
    /// Returns the ERP levels where the ERP holds units this order now covers where it did not before (the order was
    /// unknown, or commits more): Shopify's levels of them may show more now.
    @discardableResult
    public func observe(shop: String, orderRef: String, _ commitment: Commitment) -> Set<StockKey> {
        if released.contains(orderRef) { return [] }
        let held = commitments[shop]?[orderRef]
        var next = commitment
        if let held {
            if held.cancelled { return [] }
            let sameSecond = held.version / 1000 == next.version / 1000
            if held.version == next.version || (sameSecond && !(held.exact && next.exact)) {
                next = held.merged(with: next)
            } else if held.version > next.version {
                return []
            }
        }
        next.closedAt = next.closed ? (held?.closedAt ?? ContinuousClock.now) : nil
        commitments[shop, default: [:]][orderRef] = next
        observed += 1
        if observed % 1000 == 0 { expireKept() }
        if closeIfSettled(shop: shop, orderRef: orderRef) { return [] }
        var covered: Set<StockKey> = []
        for (sku, units) in next.taken {
            ordersBySKU[shop, default: [:]][sku, default: []].insert(orderRef)
            guard (next.units[sku] ?? 0) > (held?.units[sku] ?? 0) || units > (held?.taken[sku] ?? 0) else { continue }
            for (key, held) in allocations[shop]?[orderRef] ?? [:] where key.sku == sku && held > 0 { covered.insert(key) }
        }
        return covered
    }

    private var observed = 0
    /// How long an order Shopify fulfilled is kept pending for the ERP to hold its units (`keptPending`): an ERP that
    /// never gets the order is the forwarder's failure (dead-lettered, alerted, healed by the reconciler), and
    /// Shopify would show those units less until then.
    let keepPendingFor: Duration = .seconds(3600)

    /// Orders kept pending: Shopify fulfilled them and the ERP does not hold all they took.
    public var keptPending: Int { commitments.values.reduce(0) { $0 + $1.values.filter { $0.closedAt != nil }.count } }

    /// Forgets orders kept pending longer than `keepPendingFor` (counted: `inventory_pending_orders_expired_total`).
    private func expireKept() {
        let now = ContinuousClock.now
        for (shop, orders) in commitments {
            for (ref, c) in orders {
                guard let at = c.closedAt, at.duration(to: now) > keepPendingFor else { continue }
                close(shop: shop, orderRef: ref)
                Counter(label: "inventory_pending_orders_expired_total", dimensions: [("shop", shop)]).increment()
            }
        }
    }

    /// The ERP levels the ERP holds units of `orderRef` at.
    public func allocationKeys(shop: String, orderRef: String) -> Set<StockKey> {
        Set((allocations[shop]?[orderRef] ?? [:]).keys)
    }

    /// Forgets an order Shopify commits nothing for whose taken units the ERP holds (or that was cancelled).
    private func closeIfSettled(shop: String, orderRef: String) -> Bool {
        guard let c = commitments[shop]?[orderRef], c.closed else { return false }
        guard c.cancelled || c.taken.allSatisfy({ allocated(shop: shop, orderRef: orderRef, sku: $0.key) >= $0.value }) else {
            return false
        }
        close(shop: shop, orderRef: orderRef)
        return true
    }

    private func close(shop: String, orderRef: String) {
        counted[orderRef] = nil
        released.insert(orderRef)
        var skus: Set<String> = Set(commitments[shop]?.removeValue(forKey: orderRef)?.taken.keys.map { $0 } ?? [])
        if let lines = allocations[shop]?.removeValue(forKey: orderRef) {
            for key in lines.keys { skus.insert(key.sku) }
        }
        for sku in skus {
            ordersBySKU[shop]?[sku]?.remove(orderRef)
            if ordersBySKU[shop]?[sku]?.isEmpty == true { ordersBySKU[shop]![sku] = nil }
        }
    }

    private func allocated(shop: String, orderRef: String, sku: String) -> Int {
        (allocations[shop]?[orderRef] ?? [:]).reduce(0) { $0 + ($1.key.sku == sku ? $1.value : 0) }
    }

    /// Units of `shop`'s orders at `key` that Shopify sold and the ERP does not hold yet, given Shopify's
    /// `committed` there (read together with `available`, so a sale is never half seen). Per order, never netted:
    /// the larger of
    /// - `committed` less, per order, the units the ERP holds for it up to what Shopify still commits for it (an
    ///   order this syncer has not heard of yet counts in full: its webhook may still be queued), and
    /// - the units each known order took beyond what the ERP holds for it (covers an order whose cancellation or
    ///   fulfilment Shopify has counted and this syncer not yet, and an order Shopify fulfilled before the ERP had
    ///   it: out of `committed`, still in the ERP's figure).
    ///
    /// With every order's latest version known, the units of unknown orders (`committed` beyond what known orders
    /// commit there) plus the second sum is exact; the two sums alone are lower bounds. The largest of the three
    /// stands. A version this syncer has not seen yet can still hide units: an order Shopify fulfilled or cancelled
    /// (its units matched against the ERP's hold, or counted as committed, when they are not) while another's webhook
    /// is also not in yet. The window is the order webhooks' lag behind the level read.
    public func pendingUnits(shop: String, _ key: StockKey, committed: Int) -> Int {
        var matched = 0
        var unheld = 0
        var known = 0
        for ref in ordersBySKU[shop]?[key.sku] ?? [] {
            guard let order = commitments[shop]?[ref] else { continue }
            let here = allocations[shop]?[ref]?[key] ?? 0
            let everywhere = allocated(shop: shop, orderRef: ref, sku: key.sku)
            let units = order.units[key.sku] ?? 0
            matched += min(here, units)
            // An order counts where the ERP allocates it from, or, before the ERP has allocated any, at every
            // warehouse of the SKU (which location Shopify commits it at is not in the order's webhook): less shown
            // elsewhere for that while, never more.
            guard everywhere == 0 || here > 0 else { continue }
            known += units
            unheld += max(0, (order.taken[key.sku] ?? 0) - everywhere)
        }
        // Exact with every order known: the units of orders not known yet (what `committed` holds beyond the known
        // ones) plus what each known order took beyond the ERP's hold. The other two are each a lower bound then,
        // and the larger of the three stands when a version is stale.
        return max(0, committed - matched, unheld, max(0, committed - known) + unheld)
    }

    /// Orders of `shop` the ERP holds units for whose Shopify version this syncer has not seen (read at start).
    public func ordersWithoutCommitment(shop: String) -> [String] {
        (allocations[shop] ?? [:]).keys.filter { commitments[shop]?[$0] == nil }.sorted()
    }

    /// Replaces the allocation count with what the ERP says it holds for open sales orders (at start, when this
    /// process becomes the active syncer: the count lives in memory). Movements up to `asOfSeq` are in these
    /// figures; later ones count as they arrive. Orders not named by a Shopify shop's reference are skipped.
    /// Returns the orders counted.
    @discardableResult
    public func adoptAllocations(_ open: ERPOpenAllocations) -> Int {
        allocations = [:]
        counted = [:]
        for (shop, orders) in ordersBySKU {
            ordersBySKU[shop] = orders.mapValues { $0.filter { commitments[shop]?[$0] != nil } }.filter { !$0.value.isEmpty }
        }
        allocationsAsOf = open.asOfSeq
        for a in open.allocations where a.quantity > 0 && !released.contains(a.orderRef) {
            guard let shop = ERPReference.shop(ofSalesOrder: a.orderRef) else { continue }
            allocate(shop: shop, orderRef: a.orderRef, StockKey(sku: a.sku, warehouse: a.warehouse), units: a.quantity)
        }
        return allocations.values.reduce(0) { $0 + $1.count }
    }


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
