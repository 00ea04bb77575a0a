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

/// What the syncer knows: the ERP's latest figure per SKU and warehouse (with the change sequence it came with),
/// and the units of Shopify orders the ERP does not count yet. One per process, shared by every shop.
///
/// Pending units: an order Shopify accepted (`orders/create`) holds its lines back in the warehouse that allocates
/// Shopify orders until the ERP's stock shows it: a stock change naming the order (`order_ref`, the forwarder's
/// external reference), or `pendingTTL` for ERPs whose movements do not name their document. A cancellation
/// releases what is still held. A stock change naming an order that arrives before the order itself is
/// remembered, so the order's lines are then not held at all.
public actor StockPicture {
    struct Figure {
        var available: Int
        var seq: Int64
        /// Bumped by every applied change: a full sync keeps a figure a change replaced while it was reading.
        var generation: Int
    }

    struct PendingOrder {
        var warehouse: String
        var lines: [String: Int]
        var acceptedAt: ContinuousClock.Instant
    }

    private var figures: [StockKey: Figure] = [:]
    private var generation = 0
    /// shop id -> order ref -> pending lines.
    private var pending: [String: [String: PendingOrder]] = [:]
    /// "orderRef|sku" -> when the ERP's stock showed it (an allocation that came before its order).
    private var allocatedEarly: [String: ContinuousClock.Instant] = [:]
    /// "shop|orderRef" -> when it was cancelled (a cancellation that came before its order's creation).
    private var cancelledEarly: [String: ContinuousClock.Instant] = [:]
    /// shop id -> stock key -> highest change sequence written to (or confirmed in) that shop.
    private var confirmed: [String: [StockKey: Int64]] = [:]
    /// shop id -> stock key -> the change sequence a message is writing right now.
    private var inFlight: [String: [StockKey: Int64]] = [:]
    public let pendingTTL: Duration

    public init(pendingTTL: Duration = .seconds(900)) { self.pendingTTL = pendingTTL }

    public enum Applied: Sendable, Equatable {
        /// Newer than anything known: the figure was taken.
        case newer
        /// The same change again (the feed's copy of a pushed change, a redelivery): the figure stands.
        case same
        /// An older change arriving late: ignored (a newer figure is already known).
        case older
    }

    /// Takes an ERP stock change if it is at least as new as the figure held (by the ERP's sequence), and releases
    /// the pending units of the order it names.
    public func apply(_ change: ERPStockChange) -> Applied {
        let key = StockKey(sku: change.sku, warehouse: change.warehouse)
        if let ref = change.orderRef { release(orderRef: ref, sku: change.sku) }
        if let held = figures[key] {
            if change.seq < held.seq { return .older }
            if change.seq == held.seq { return .same }
        }
        generation += 1
        figures[key] = Figure(available: change.available, seq: change.seq, generation: generation)
        return .newer
    }

    /// The ERP's figure, if known.
    public func available(_ key: StockKey) -> Int? { figures[key]?.available }
    public func sequence(_ key: StockKey) -> Int64? { figures[key]?.seq }

    /// A point in the change history, for `adopt`.
    public var currentGeneration: Int { generation }

    /// Takes snapshot figures read by a full sync, except where a change arrived after `since` (it is newer than
    /// the snapshot page it replaced). Returns the keys adopted.
    @discardableResult
    public func adopt(_ levels: [StockKey: Int], since: Int) -> Int {
        var adopted = 0
        for (key, available) in levels {
            if let held = figures[key], held.generation > since { continue }
            generation += 1
            figures[key] = Figure(available: available, seq: figures[key]?.seq ?? 0, generation: generation)
            adopted += 1
        }
        return adopted
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

    // MARK: Pending orders

    /// Holds back an accepted order's lines (SKU -> units) in `warehouse`. Lines the ERP already showed are not
    /// held. The same order twice (a duplicate webhook) holds once.
    public func accept(shop: String, orderRef: String, warehouse: String, lines: [String: Int]) {
        expire()
        guard pending[shop]?[orderRef] == nil, cancelledEarly["\(shop)|\(orderRef)"] == nil else { return }
        var held = lines.filter { $0.value > 0 }
        for sku in held.keys where allocatedEarly.removeValue(forKey: "\(orderRef)|\(sku)") != nil { held[sku] = nil }
        guard !held.isEmpty else { return }
        pending[shop, default: [:]][orderRef] = PendingOrder(warehouse: warehouse, lines: held, acceptedAt: .now)
    }

    /// The order was cancelled in Shopify: nothing of it is held back any more.
    public func cancel(shop: String, orderRef: String) {
        if pending[shop]?.removeValue(forKey: orderRef) == nil { cancelledEarly["\(shop)|\(orderRef)"] = .now }
    }

    private func release(orderRef: String, sku: String) {
        for shop in pending.keys where pending[shop]?[orderRef] != nil {
            pending[shop]![orderRef]!.lines[sku] = nil
            if pending[shop]![orderRef]!.lines.isEmpty { pending[shop]![orderRef] = nil }
            return
        }
        allocatedEarly["\(orderRef)|\(sku)"] = .now
    }

    /// Units of `shop`'s accepted orders that the ERP's figure for `key` does not count yet.
    public func pendingUnits(shop: String, _ key: StockKey) -> Int {
        expire()
        return pending[shop]?.values.reduce(0) { $0 + ($1.warehouse == key.warehouse ? ($1.lines[key.sku] ?? 0) : 0) } ?? 0
    }

    /// Orders held back, per shop (for the metrics and `/readyz` details).
    public func pendingOrders(shop: String) -> Int { pending[shop]?.count ?? 0 }

    private func expire() {
        let cutoff = ContinuousClock.now - pendingTTL
        for shop in pending.keys {
            pending[shop] = pending[shop]!.filter { $0.value.acceptedAt > cutoff }
        }
        allocatedEarly = allocatedEarly.filter { $0.value > cutoff }
        cancelledEarly = cancelledEarly.filter { $0.value > cutoff }
    }
}
