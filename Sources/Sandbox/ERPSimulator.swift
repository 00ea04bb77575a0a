import Foundation
import Hummingbird
import NIOCore

/// The ERP simulator's state: sales orders keyed by external reference, known SKUs, injected faults.
///
/// An actor, so an upsert by external reference is atomic: 50 concurrent identical calls create one order.
public actor ERPStore {
    public struct SalesOrder: Codable, Sendable, Equatable {
        public var externalRef: String
        public var documentNumber: String
        public var version: String
        public var status: String
        public var currency: String
        public var total: Decimal
        public var lines: [Line]
        public var updatedAt: Date
        /// The whole document as last written (JSON), returned on read.
        public var document: Data = Data("{}".utf8)
        public var refundedTotal: Decimal = 0
        public var createdAt: Date = Date()
    }

    public struct Customer: Sendable, Equatable {
        public var externalRef: String
        public var customerNumber: String
        public var document: Data
        public var writes: Int
    }

    public struct CreditNote: Sendable, Equatable {
        public var refundRef: String
        public var orderRef: String
        public var number: String
        public var amount: Decimal
    }

    public struct Line: Codable, Sendable, Equatable {
        public var sku: String
        public var quantity: Int
        public var unitPrice: Decimal

        enum CodingKeys: String, CodingKey {
            case sku, quantity
            case unitPrice = "unit_price"
        }
    }

    /// Faults switched at runtime through `PUT /_admin/faults`.
    public struct Faults: Codable, Sendable, Equatable {
        /// Extra latency on every API call: `latencyMs` plus a uniform 0...`latencyJitterMs`, and for a
        /// `slowRate` share of calls `slowMs` more (the tail of a real latency distribution).
        public var latencyMs: Int = 0
        public var latencyJitterMs: Int = 0
        public var slowRate: Double = 0
        public var slowMs: Int = 2000
        /// Share of API calls that hang for `hangMs` (a timeout from the caller's side) and then get 504.
        public var timeoutRate: Double = 0
        public var hangMs: Int = 60_000
        /// Share of API calls answered with `errorStatus` (0...1).
        public var errorRate: Double = 0
        public var errorStatus: Int = 503
        /// When set, every API call gets 429 with this Retry-After (seconds).
        public var rateLimitedRetryAfter: Int?

        enum CodingKeys: String, CodingKey {
            case latencyMs = "latency_ms"
            case latencyJitterMs = "latency_jitter_ms"
            case slowRate = "slow_rate"
            case slowMs = "slow_ms"
            case timeoutRate = "timeout_rate"
            case hangMs = "hang_ms"
            case errorRate = "error_rate"
            case errorStatus = "error_status"
            case rateLimitedRetryAfter = "rate_limited_retry_after"
        }
        public init() {}

        /// Every key is optional: a missing one keeps its default (no fault).
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            latencyMs = try c.decodeIfPresent(Int.self, forKey: .latencyMs) ?? 0
            latencyJitterMs = try c.decodeIfPresent(Int.self, forKey: .latencyJitterMs) ?? 0
            slowRate = try c.decodeIfPresent(Double.self, forKey: .slowRate) ?? 0
            slowMs = try c.decodeIfPresent(Int.self, forKey: .slowMs) ?? 2000
            timeoutRate = try c.decodeIfPresent(Double.self, forKey: .timeoutRate) ?? 0
            hangMs = try c.decodeIfPresent(Int.self, forKey: .hangMs) ?? 60_000
            errorRate = try c.decodeIfPresent(Double.self, forKey: .errorRate) ?? 0
            errorStatus = try c.decodeIfPresent(Int.self, forKey: .errorStatus) ?? 503
            rateLimitedRetryAfter = try c.decodeIfPresent(Int.self, forKey: .rateLimitedRetryAfter)
        }
    }

    public enum UpsertResult: Sendable, Equatable {
        case created(SalesOrder)
        case updated(SalesOrder)
        case stale(SalesOrder)
        case unknownSKU(String)
    }

    private var orders: [String: SalesOrder] = [:]
    private var customers: [String: Customer] = [:]
    private var creditNotes: [String: CreditNote] = [:]
    private var writes: [String: (creates: Int, updates: Int)] = [:]
    private var nextDocument = 1
    private(set) var knownSKUs: Set<String>
    public private(set) var faults = Faults()

    public init(skus: Set<String>) {
        knownSKUs = skus
    }

    public func setFaults(_ f: Faults) { faults = f }

    /// A requested maintenance window, taken by the server loop (`ERPSimulatorServer`).
    private var pendingMaintenance: Duration?
    public func requestMaintenance(_ d: Duration) { pendingMaintenance = d }
    func takeMaintenanceRequest() -> Duration? {
        defer { pendingMaintenance = nil }
        return pendingMaintenance
    }

    /// API calls answered with an injected fault (429 or error status) so far.
    public private(set) var faultHits = 0
    func recordFaultHit() { faultHits += 1 }
    public func addSKUs(_ skus: [String]) { knownSKUs.formUnion(skus) }

    /// Creates or updates by external reference; an older version never overwrites a newer one.
    public func upsert(
        ref: String, version: String, status: String, currency: String, total: Decimal, lines: [Line],
        document: Data = Data("{}".utf8), now: Date = Date()
    ) -> UpsertResult {
        if let bad = lines.first(where: { !knownSKUs.contains($0.sku) }) { return .unknownSKU(bad.sku) }
        if var existing = orders[ref] {
            guard Self.isNewer(version, than: existing.version) else { return .stale(existing) }
            existing.version = version
            existing.status = status
            existing.currency = currency
            existing.total = total
            existing.lines = lines
            existing.document = document
            existing.updatedAt = now
            orders[ref] = existing
            writes[ref, default: (0, 0)].updates += 1
            return .updated(existing)
        }
        let order = SalesOrder(
            externalRef: ref, documentNumber: String(format: "SO-%06d", nextDocument), version: version, status: status,
            currency: currency, total: total, lines: lines, updatedAt: now, document: document, createdAt: now)
        nextDocument += 1
        orders[ref] = order
        writes[ref, default: (0, 0)].creates += 1
        return .created(order)
    }

    public func order(ref: String) -> SalesOrder? { orders[ref] }

    /// Creation time (ms since the epoch) per external reference: what end-to-end latency is measured against.
    public func creationTimes() -> [String: Int64] {
        orders.mapValues { Int64(($0.createdAt.timeIntervalSince1970 * 1000).rounded()) }
    }

    /// Creates or updates a customer by external reference (last write wins; customers carry no version).
    public func upsertCustomer(ref: String, document: Data) -> Customer {
        var c = customers[ref] ?? Customer(
            externalRef: ref, customerNumber: String(format: "C-%06d", customers.count + 1), document: document, writes: 0)
        c.document = document
        c.writes += 1
        customers[ref] = c
        return c
    }

    public func customer(ref: String) -> Customer? { customers[ref] }
    public var customerCount: Int { customers.count }

    public enum RefundResult: Sendable, Equatable {
        case created(CreditNote)
        case existing(CreditNote)
        case orderNotFound
    }

    /// Records a refund once per refund reference; a replay returns the original credit note.
    public func recordRefund(orderRef: String, refundRef: String, amount: Decimal) -> RefundResult {
        if let existing = creditNotes[refundRef] { return .existing(existing) }
        guard var order = orders[orderRef] else { return .orderNotFound }
        let note = CreditNote(
            refundRef: refundRef, orderRef: orderRef, number: String(format: "CN-%06d", creditNotes.count + 1), amount: amount)
        creditNotes[refundRef] = note
        order.refundedTotal += amount
        orders[orderRef] = order
        return .created(note)
    }

    public var creditNoteCount: Int { creditNotes.count }

    public func orders(changedSince: Date) -> [SalesOrder] {
        orders.values.filter { $0.updatedAt >= changedSince }.sorted { $0.updatedAt < $1.updatedAt }
    }

    public func writeCounts(ref: String) -> (creates: Int, updates: Int) { writes[ref] ?? (0, 0) }

    /// References created more than once: must always be empty (the duplicates a test looks for).
    public func duplicatedRefs() -> [String] { writes.filter { $0.value.creates > 1 }.map(\.key) }
    public var totalUpdates: Int { writes.values.reduce(0) { $0 + $1.updates } }
    public var orderCount: Int { orders.count }

    /// Versions are ISO-8601 timestamps (Shopify `updated_at`); equal versions are not newer (replays are no-ops).
    static func isNewer(_ a: String, than b: String) -> Bool {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        if let da = try? style.parse(a), let db = try? style.parse(b) { return da > db }
        return a > b
    }
}
