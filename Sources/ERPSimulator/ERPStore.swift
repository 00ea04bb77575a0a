import Foundation
import Hummingbird
import NIOCore

/// The ERP simulator's state: sales order documents, credit notes, customers, known SKUs, injected faults, and the
/// log of every call that reached it.
///
/// Two contract profiles (`Profile`): `upsert` (an actor, so an upsert by external reference is atomic: 50
/// concurrent identical calls create one order) and `plain`, which, like most real ERPs, protects the bridge from
/// nothing: creates duplicate, overwrites are blind. Tests of the bridge's guarantees run against both.
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

    public struct Customer: Sendable, Equatable, Codable {
        public var externalRef: String
        public var customerNumber: String
        public var document: Data
        public var writes: Int
    }

    public struct CreditNote: Sendable, Equatable, Codable {
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
        /// A price list's answer travels back a uniform 0...`answerJitterMs` after the ERP read it: two reads can
        /// arrive in the other order than the ERP answered them, as over a real network.
        public var answerJitterMs: Int = 0

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
            case answerJitterMs = "answer_jitter_ms"
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
            answerJitterMs = try c.decodeIfPresent(Int.self, forKey: .answerJitterMs) ?? 0
        }
    }

    /// Which contract the simulated ERP offers (docs/erp-api.yaml); chosen per run (`erp-sim --profile`).
    public enum Profile: String, Sendable, CaseIterable, Codable {
        /// Atomic, version-aware upsert by external reference; refunds recorded once per refund reference.
        case upsert
        /// What most ERPs offer: `POST` always creates a new document (even for a reference it already holds), lookup
        /// by reference is a filter that can return several documents, update overwrites by document number with no
        /// version check, credit notes are created on every call. Nothing here protects the bridge.
        case plain
    }

    /// One API call that reached the ERP's logic (past authentication and injected faults), stale or not, in order.
    public struct Call: Sendable, Equatable, Codable {
        public var seq: Int
        /// upsert, create, update, find, record_refund, create_credit_note, find_credit_notes, upsert_customer
        public var operation: String
        public var ref: String?
        public var document: String?
        public var version: String?
        /// created, updated, stale_ignored, existing, found_N, not_found, unknown_sku, order_not_found
        public var outcome: String

        /// Whether the call wrote (or tried to write) a sales order version.
        public var isOrderWrite: Bool { ["upsert", "create", "update"].contains(operation) }
    }

    public enum UpsertResult: Sendable, Equatable {
        case created(SalesOrder)
        case updated(SalesOrder)
        case stale(SalesOrder)
        case unknownSKU(String)
    }

    public enum WriteResult: Sendable, Equatable {
        case written(SalesOrder)
        case notFound
        case unknownSKU(String)
    }

    public enum RefundResult: Sendable, Equatable {
        case created(CreditNote)
        case existing(CreditNote)
        case orderNotFound
    }

    public nonisolated let profile: Profile
    /// Documents by document number; references to their documents (several only if the bridge created duplicates).
    private var documents: [String: SalesOrder] = [:]
    private var byRef: [String: [String]] = [:]
    private var customers: [String: Customer] = [:]
    private var creditNotes: [String: CreditNote] = [:]
    private var creditNotesByRefund: [String: [String]] = [:]
    private var nextDocument = 1
    private(set) var knownSKUs: Set<String>
    public private(set) var faults = Faults()
    /// Every call that reached the ERP's logic, in order (what tests assert on, not only the final state).
    public private(set) var calls: [Call] = []

    public init(skus: Set<String>, profile: Profile = .upsert, honoursIdempotencyKeys: Bool = false) {
        knownSKUs = skus
        self.profile = profile
        self.honoursIdempotencyKeys = honoursIdempotencyKeys
    }

    /// Plain profile: whether a create carrying an `Idempotency-Key` already seen answers the first document (or credit
    /// note) instead of creating another. Off by default: most plain ERPs have no such key, and the bridge's own
    /// fence is what the default proves (`erp-sim --idempotency-keys` turns it on).
    public private(set) var honoursIdempotencyKeys: Bool
    public func setHonoursIdempotencyKeys(_ on: Bool) { honoursIdempotencyKeys = on }
    /// Keys seen by a create: the document or credit note number they created. Not part of a backup (`State`): an ERP
    /// restored from one has forgotten them, as a real one would.
    private var idempotencyKeys: [String: String] = [:]

    public func setFaults(_ f: Faults) { faults = f }

    /// Everything a restart keeps (`erp-sim --state`): documents, customers, credit notes, items, the next document
    /// number and the call log. Injected faults are not kept: a restarted ERP comes back healthy.
    public struct State: Codable, Sendable {
        var documents: [String: SalesOrder]
        var byRef: [String: [String]]
        var customers: [String: Customer]
        var creditNotes: [String: CreditNote]
        var creditNotesByRefund: [String: [String]]
        var nextDocument: Int
        var knownSKUs: Set<String>
        var calls: [Call]

        /// Sales orders the state holds.
        public var salesOrderCount: Int { documents.count }
    }

    public var state: State {
        State(
            documents: documents, byRef: byRef, customers: customers, creditNotes: creditNotes,
            creditNotesByRefund: creditNotesByRefund, nextDocument: nextDocument, knownSKUs: knownSKUs, calls: calls)
    }

    /// Replaces the empty store with a saved one (before serving); `alsoKnown`: items given on this start's command
    /// line (`--item`), known whatever the saved state says.
    public func restore(_ s: State, alsoKnown: Set<String> = []) {
        documents = s.documents
        byRef = s.byRef
        customers = s.customers
        creditNotes = s.creditNotes
        creditNotesByRefund = s.creditNotesByRefund
        nextDocument = s.nextDocument
        knownSKUs = s.knownSKUs.union(alsoKnown)
        calls = s.calls
    }

    /// The ERP restored from a backup taken before any of the bridge's writes: every sales order, customer and
    /// credit note is gone; document numbers go on from where they were, the call log stays.
    public func restoreEmptyBackup() {
        restoreBackup(
            State(
                documents: [:], byRef: [:], customers: [:], creditNotes: [:], creditNotesByRefund: [:], nextDocument: nextDocument,
                knownSKUs: knownSKUs, calls: []))
    }

    /// The ERP restored from a backup taken earlier (`state` at that time): sales orders, customers and credit notes
    /// as they were then; what was written since is gone. Document numbers go on from where they are now, the call
    /// log stays (it is the test's record, not the ERP's data).
    public func restoreBackup(_ backup: State) {
        documents = backup.documents
        byRef = backup.byRef
        customers = backup.customers
        creditNotes = backup.creditNotes
        creditNotesByRefund = backup.creditNotesByRefund
        idempotencyKeys = [:]
        log("restore_backup", ref: nil, "restored")
    }

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
    /// Authorised requests received, counted on arrival (before any injected delay): a test sees a call is in the
    /// ERP's hands while it is still being "processed".
    public private(set) var arrivals = 0
    func recordArrival() { arrivals += 1 }
    public func addSKUs(_ skus: [String]) { knownSKUs.formUnion(skus) }
    /// Items the ERP does not have: lines with them are refused with 422 `unknown_sku`.
    public func removeSKUs(_ skus: [String]) { knownSKUs.subtract(skus) }

    private func log(_ operation: String, ref: String?, document: String? = nil, version: String? = nil, _ outcome: String) {
        calls.append(Call(seq: calls.count + 1, operation: operation, ref: ref, document: document, version: version, outcome: outcome))
    }

    private func newDocument(
        ref: String, version: String, status: String, currency: String, total: Decimal, lines: [Line], document: Data, now: Date
    ) -> SalesOrder {
        let order = SalesOrder(
            externalRef: ref, documentNumber: String(format: "SO-%06d", nextDocument), version: version, status: status,
            currency: currency, total: total, lines: lines, updatedAt: now, document: document, createdAt: now)
        nextDocument += 1
        documents[order.documentNumber] = order
        byRef[ref, default: []].append(order.documentNumber)
        return order
    }

    private func overwrite(
        _ number: String, version: String, status: String, currency: String, total: Decimal, lines: [Line], document: Data, now: Date
    ) -> SalesOrder? {
        guard var existing = documents[number] else { return nil }
        existing.version = version
        existing.status = status
        existing.currency = currency
        existing.total = total
        existing.lines = lines
        existing.document = document
        existing.updatedAt = now
        documents[number] = existing
        return existing
    }

    /// Upsert profile: creates or updates by external reference; an older version never overwrites a newer one.
    public func upsert(
        ref: String, version: String, status: String, currency: String, total: Decimal, lines: [Line],
        document: Data = Data("{}".utf8), now: Date = Date()
    ) -> UpsertResult {
        if let bad = lines.first(where: { !knownSKUs.contains($0.sku) }) {
            log("upsert", ref: ref, version: version, "unknown_sku")
            return .unknownSKU(bad.sku)
        }
        if let number = byRef[ref]?.first, let existing = documents[number] {
            guard Self.isNewer(version, than: existing.version) else {
                log("upsert", ref: ref, document: number, version: version, "stale_ignored")
                return .stale(existing)
            }
            let updated = overwrite(
                number, version: version, status: status, currency: currency, total: total, lines: lines, document: document, now: now)
            log("upsert", ref: ref, document: number, version: version, "updated")
            return .updated(updated ?? existing)
        }
        let order = newDocument(
            ref: ref, version: version, status: status, currency: currency, total: total, lines: lines, document: document, now: now)
        log("upsert", ref: ref, document: order.documentNumber, version: version, "created")
        return .created(order)
    }

    /// Plain profile: always a new document, whatever the store already holds for `ref`.
    public func create(
        ref: String, version: String, status: String, currency: String, total: Decimal, lines: [Line],
        document: Data = Data("{}".utf8), now: Date = Date(), idempotencyKey: String? = nil
    ) -> WriteResult {
        if honoursIdempotencyKeys, let key = idempotencyKey, let number = idempotencyKeys[key], let first = documents[number] {
            log("create", ref: ref, document: number, version: version, "idempotent_repeat")
            return .written(first)
        }
        if let bad = lines.first(where: { !knownSKUs.contains($0.sku) }) {
            log("create", ref: ref, version: version, "unknown_sku")
            return .unknownSKU(bad.sku)
        }
        let order = newDocument(
            ref: ref, version: version, status: status, currency: currency, total: total, lines: lines, document: document, now: now)
        if honoursIdempotencyKeys, let key = idempotencyKey { idempotencyKeys[key] = order.documentNumber }
        log("create", ref: ref, document: order.documentNumber, version: version, "created")
        return .written(order)
    }

    /// Plain profile: overwrites document `number` unconditionally (no version check).
    public func update(
        number: String, version: String, status: String, currency: String, total: Decimal, lines: [Line],
        document: Data = Data("{}".utf8), now: Date = Date()
    ) -> WriteResult {
        let ref = documents[number]?.externalRef
        if let bad = lines.first(where: { !knownSKUs.contains($0.sku) }) {
            log("update", ref: ref, document: number, version: version, "unknown_sku")
            return .unknownSKU(bad.sku)
        }
        guard
            let o = overwrite(
                number, version: version, status: status, currency: currency, total: total, lines: lines, document: document, now: now)
        else {
            log("update", ref: nil, document: number, version: version, "not_found")
            return .notFound
        }
        log("update", ref: ref, document: number, version: version, "updated")
        return .written(o)
    }

    /// Plain profile: every document holding `ref` (a filtered list: several if the bridge created duplicates).
    public func find(ref: String) -> [SalesOrder] {
        let found = (byRef[ref] ?? []).compactMap { documents[$0] }
        log("find", ref: ref, "found_\(found.count)")
        return found
    }

    /// The first document for a reference (what tests compare; duplicates are counted by `duplicatedRefs`).
    public func order(ref: String) -> SalesOrder? { byRef[ref]?.first.flatMap { documents[$0] } }
    public func order(number: String) -> SalesOrder? { documents[number] }

    /// Creation time (ms since the epoch) per external reference: what end-to-end latency is measured against.
    public func creationTimes() -> [String: Int64] {
        var out: [String: Int64] = [:]
        for (ref, numbers) in byRef {
            if let first = numbers.first, let o = documents[first] {
                out[ref] = Int64((o.createdAt.timeIntervalSince1970 * 1000).rounded())
            }
        }
        return out
    }

    /// Creates or updates a customer by external reference (last write wins; customers carry no version).
    public func upsertCustomer(ref: String, document: Data) -> Customer {
        var c = customers[ref] ?? Customer(
            externalRef: ref, customerNumber: String(format: "C-%06d", customers.count + 1), document: document, writes: 0)
        c.document = document
        c.writes += 1
        customers[ref] = c
        log("upsert_customer", ref: ref, document: c.customerNumber, c.writes == 1 ? "created" : "updated")
        return c
    }

    public func customer(ref: String) -> Customer? { customers[ref] }
    public var customerCount: Int { customers.count }

    private func newCreditNote(refundRef: String, order number: String, amount: Decimal) -> CreditNote {
        let note = CreditNote(
            refundRef: refundRef, orderRef: documents[number]?.externalRef ?? number,
            number: String(format: "CN-%06d", creditNotes.count + 1), amount: amount)
        creditNotes[note.number] = note
        creditNotesByRefund[refundRef, default: []].append(note.number)
        documents[number]?.refundedTotal += amount
        return note
    }

    /// Upsert profile: records a refund once per refund reference; a replay returns the original credit note.
    public func recordRefund(orderRef: String, refundRef: String, amount: Decimal) -> RefundResult {
        if let existing = creditNotesByRefund[refundRef]?.first.flatMap({ creditNotes[$0] }) {
            log("record_refund", ref: refundRef, document: existing.number, "existing")
            return .existing(existing)
        }
        guard let number = byRef[orderRef]?.first else {
            log("record_refund", ref: refundRef, "order_not_found")
            return .orderNotFound
        }
        let note = newCreditNote(refundRef: refundRef, order: number, amount: amount)
        log("record_refund", ref: refundRef, document: note.number, "created")
        return .created(note)
    }

    /// Plain profile: a new credit note against document `orderNumber` on every call.
    public func createCreditNote(orderNumber: String, refundRef: String, amount: Decimal, idempotencyKey: String? = nil) -> RefundResult {
        if honoursIdempotencyKeys, let key = idempotencyKey, let number = idempotencyKeys[key], let first = creditNotes[number] {
            log("create_credit_note", ref: refundRef, document: number, "idempotent_repeat")
            return .existing(first)
        }
        guard documents[orderNumber] != nil else {
            log("create_credit_note", ref: refundRef, document: orderNumber, "order_not_found")
            return .orderNotFound
        }
        let note = newCreditNote(refundRef: refundRef, order: orderNumber, amount: amount)
        if honoursIdempotencyKeys, let key = idempotencyKey { idempotencyKeys[key] = note.number }
        log("create_credit_note", ref: refundRef, document: note.number, "created")
        return .created(note)
    }

    /// Plain profile: every credit note carrying `refundRef`.
    public func findCreditNotes(refundRef: String) -> [CreditNote] {
        let found = (creditNotesByRefund[refundRef] ?? []).compactMap { creditNotes[$0] }
        log("find_credit_notes", ref: refundRef, "found_\(found.count)")
        return found
    }

    public var creditNoteCount: Int { creditNotes.count }
    /// Refund references with more than one credit note: must always be empty.
    public func duplicatedRefunds() -> [String] { creditNotesByRefund.filter { $0.value.count > 1 }.map(\.key) }

    public func orders(changedSince: Date) -> [SalesOrder] {
        documents.values.filter { $0.updatedAt >= changedSince }.sorted { $0.updatedAt < $1.updatedAt }
    }

    /// Order writes that took effect per reference (from the call log): documents created, versions overwritten.
    public func writeCounts(ref: String) -> (creates: Int, updates: Int) {
        let writes = self.writes(ref: ref)
        return (writes.filter { $0.outcome == "created" }.count, writes.filter { $0.outcome == "updated" }.count)
    }

    /// Every order write the bridge sent for `ref`, in arrival order, stale or not.
    /// Every call naming `ref`, in the order the simulator processed them.
    public func calls(ref: String) -> [Call] { calls.filter { $0.ref == ref } }
    public func writes(ref: String) -> [Call] { calls.filter { $0.ref == ref && $0.isOrderWrite } }

    /// References held by more than one document: must always be empty (the duplicates a test looks for).
    public func duplicatedRefs() -> [String] { byRef.filter { $0.value.count > 1 }.map(\.key) }
    public var totalUpdates: Int { calls.filter { $0.isOrderWrite && $0.outcome == "updated" }.count }
    /// Documents held (a duplicate counts twice).
    public var orderCount: Int { documents.count }

    /// Versions compare component by component (`<updated_at>|<triggered_at>`, each ISO-8601, as the bridge sends
    /// them); equal versions are not newer (replays are no-ops).
    static func isNewer(_ a: String, than b: String) -> Bool {
        let style = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
        let pa = a.split(separator: "|").map(String.init)
        let pb = b.split(separator: "|").map(String.init)
        for i in 0..<max(pa.count, pb.count) {
            let x = i < pa.count ? pa[i] : ""
            let y = i < pb.count ? pb[i] : ""
            if x == y { continue }
            if let dx = try? style.parse(x), let dy = try? style.parse(y) {
                if dx == dy { continue }
                return dx > dy
            }
            return x > y
        }
        return false
    }
}
