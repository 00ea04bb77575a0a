import Foundation

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

    public var description: String { "\(updatedAtMs).\(triggeredAtMs)" }
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

    /// Releases the lease if `owner` still holds it.
    func unlock(shop: String, orderId: Int64, owner: String) async throws

    /// `tryLock` and `entry` in one transaction: the lease and what was applied so far, or `.busy`.
    func acquire(shop: String, orderId: Int64, owner: String, ttl: Duration) async throws -> LeaseResult

    /// `record` (when given) and `unlock` in one transaction. Returns whether a version was recorded.
    @discardableResult
    func release(shop: String, orderId: Int64, owner: String, recording: AppliedVersion?) async throws -> Bool

    func refundDocument(shop: String, refundId: Int64) async throws -> String?
    func recordRefund(shop: String, refundId: Int64, orderId: Int64, erpDocument: String) async throws

    /// Number of orders recorded (tests and metrics).
    func orderCount() async throws -> Int

    /// Runs whatever the ledger needs in the background (a connection pool) until graceful shutdown or
    /// cancellation. Run it before using the ledger.
    func run() async throws
}


import ServiceLifecycle

/// Runs a ledger's background work as a lifecycle service.
public struct LedgerService: Service {
    public let ledger: any OrderLedger
    public init(ledger: any OrderLedger) { self.ledger = ledger }
    public func run() async throws { try await ledger.run() }
}
