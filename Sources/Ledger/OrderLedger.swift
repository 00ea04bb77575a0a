import BridgeDomain
import Foundation
import ServiceLifecycle

/// The version of a Shopify order state: payload `updated_at`, then `X-Shopify-Triggered-At` as the tie-break
/// (both milliseconds since the epoch). Later compares greater.
public struct OrderVersion: Comparable, Sendable, Hashable, CustomStringConvertible {
    public var updatedAtMs: Int64
    public var triggeredAtMs: Int64

    public init(updatedAtMs: Int64, triggeredAtMs: Int64) {
        self.updatedAtMs = updatedAtMs
        self.triggeredAtMs = triggeredAtMs
    }

    public static func < (a: OrderVersion, b: OrderVersion) -> Bool {
        (a.updatedAtMs, a.triggeredAtMs) < (b.updatedAtMs, b.triggeredAtMs)
    }

    public var description: String { erpVersion }

    /// The version as the ERP receives it: `<updated_at>|<triggered_at>`, both UTC with exactly three fraction
    /// digits (`2026-11-27T15:00:00.000Z|2026-11-27T15:00:00.412Z`). Fixed width, so byte order is version order
    /// with the ledger's own tie-break: two changes within Shopify's one-second `updated_at` are ordered the same way
    /// by the ERP and by the ledger (sending `updated_at` alone made the ERP ignore the later one as stale).
    public var erpVersion: String {
        Timestamp.string(milliseconds: updatedAtMs) + "|" + Timestamp.string(milliseconds: triggeredAtMs)
    }

    /// Parses `erpVersion` (or a bare `updated_at`, as versions were sent before the tie-break was added).
    public init?(erpVersion: String) {
        let parts = erpVersion.split(separator: "|", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let u = Timestamp.milliseconds(String(parts[0])) else { return nil }
        var t: Int64 = 0
        if parts.count == 2 {
            guard let parsed = Timestamp.milliseconds(String(parts[1])) else { return nil }
            t = parsed
        }
        self.init(updatedAtMs: u, triggeredAtMs: t)
    }
}

/// The outcome of `acquire`.
public enum LeaseResult: Sendable, Equatable {
    /// The caller holds the order's lease; the entry is what was applied before (nil: never forwarded).
    case acquired(LedgerEntry?)
    /// Another worker holds an unexpired lease.
    case busy
}

/// A version applied to the ERP, to record on release.
public struct AppliedVersion: Sendable, Equatable {
    public var version: OrderVersion
    public var erpDocument: String
    public init(version: OrderVersion, erpDocument: String) {
        self.version = version
        self.erpDocument = erpDocument
    }
}

/// What the ledger knows about one forwarded order.
public struct LedgerEntry: Sendable, Equatable {
    public var shop: String
    public var orderId: Int64
    public var version: OrderVersion
    public var erpDocument: String
    public var appliedAtMs: Int64
}

/// A write the forwarder is about to send to an ERP that cannot deduplicate it (the plain profile): a create or an
/// overwrite of the order's sales order, or a credit note. Recorded under the order's lease before the call, touched
/// again when the call fails with an unknown outcome (a timeout, a 5xx, a connection lost after sending), cleared
/// when its outcome is recorded. While one stands younger than `order_forwarder.unknown_outcome_wait`, the ERP may
/// still commit it: no other write of the order is made. Older, the reference is looked up before writing again.
public enum WriteIntent: Sendable, Hashable {
    case salesOrder
    case creditNote(refundId: Int64)

    var kind: String {
        switch self {
        case .salesOrder: return "sales_order"
        case .creditNote: return "credit_note"
        }
    }

    var key: Int64 {
        switch self {
        case .salesOrder: return 0
        case .creditNote(let id): return id
        }
    }
}

/// Ledger failures the forwarder handles on their own.
public enum LedgerError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The worker's lease was taken over (it expired while the worker was still busy): the worker must not record.
    case leaseLost(shop: String, orderId: Int64)

    public var description: String {
        switch self {
        case .leaseLost(let shop, let orderId):
            return "lease of order \(orderId) (shop \(shop)) was taken over by another worker before the result was recorded"
        }
    }
}

/// The forwarder's idempotency and ordering store.
///
/// - Per order: the last version applied to the ERP and the ERP document number. A version not newer than the
///   stored one is skipped; `record` only ever moves forward, even when two writers race.
/// - Per order: a lease, so two workers (in one process or on several hosts) never apply versions of the same order
///   at once. A lease expires on its own if its holder dies (kill -9), after `ttl`.
/// - Per refund: the ERP credit note, so a refund is recorded once.
///
/// Times for leases come from the database's clock, so hosts with skewed clocks agree.
public protocol OrderLedger: Sendable {
    /// Creates tables if missing. Safe to call from every process at start.
    func migrate() async throws

    func entry(shop: String, orderId: Int64) async throws -> LedgerEntry?

    /// Stores `version` and `erpDocument` if `version` is newer than what is stored (or nothing is). Returns whether
    /// it was stored.
    @discardableResult
    func record(shop: String, orderId: Int64, version: OrderVersion, erpDocument: String) async throws -> Bool

    /// Takes or renews the order's lease for `owner`. False when another owner holds an unexpired lease.
    func tryLock(shop: String, orderId: Int64, owner: String, ttl: Duration) async throws -> Bool

    /// Extends `owner`'s lease by `ttl` from now, only while it is still theirs: false once another owner took it
    /// over (or it was released). Unlike `tryLock`, never takes a lease back that was lost: a holder that was paused
    /// past its lease learns it lost the order instead of silently taking it again.
    func renew(shop: String, orderId: Int64, owner: String, ttl: Duration) async throws -> Bool

    /// Releases the lease if `owner` still holds it.
    func unlock(shop: String, orderId: Int64, owner: String) async throws

    /// `tryLock` and `entry` in one transaction: the lease and what was applied so far, or `.busy`.
    func acquire(shop: String, orderId: Int64, owner: String, ttl: Duration) async throws -> LeaseResult

    /// `record` (when given) and `unlock` in one transaction. Returns whether a version was recorded. Fenced: with a
    /// recording, throws `LedgerError.leaseLost` (and records nothing) if `owner` no longer holds the lease. A
    /// recording settles the order's `.salesOrder` write intent (cleared in the same transaction).
    @discardableResult
    func release(shop: String, orderId: Int64, owner: String, recording: AppliedVersion?) async throws -> Bool

    /// Records `intent` for the order, if `owner` still holds its lease (else false: another worker took over).
    func markIntent(_ intent: WriteIntent, shop: String, orderId: Int64, owner: String) async throws -> Bool

    /// How long ago (by the database's clock) `intent` was marked or last touched; nil when none stands: its write
    /// may still be committed by the ERP while younger than the unknown-outcome wait.
    func intentAge(_ intent: WriteIntent, shop: String, orderId: Int64) async throws -> Duration?

    /// Removes `intent` once its outcome is known (the write certainly did not happen), if `owner` still holds the
    /// order's lease.
    @discardableResult
    func clearIntent(_ intent: WriteIntent, shop: String, orderId: Int64, owner: String) async throws -> Bool

    func refundDocument(shop: String, refundId: Int64) async throws -> String?
    /// Records the refund's credit note (once) and settles its `.creditNote` write intent.
    func recordRefund(shop: String, refundId: Int64, orderId: Int64, erpDocument: String) async throws

    /// Number of orders recorded (tests and metrics).
    func orderCount() async throws -> Int

    /// Runs whatever the ledger needs in the background (a connection pool) until graceful shutdown or
    /// cancellation. Run it before using the ledger.
    func run() async throws
}

extension OrderLedger {
    /// Whether an intent stands for `intent` (its write was sent, or is about to be, and its outcome not recorded).
    public func hasIntent(_ intent: WriteIntent, shop: String, orderId: Int64) async throws -> Bool {
        try await intentAge(intent, shop: shop, orderId: orderId) != nil
    }
}

/// Runs a ledger's background work as a lifecycle service.
public struct LedgerService: Service {
    public let ledger: any OrderLedger
    public init(ledger: any OrderLedger) { self.ledger = ledger }
    public func run() async throws { try await ledger.run() }
}
