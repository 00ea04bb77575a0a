import BridgeDomain
import BridgeTestSupport
import Foundation
import Ledger
import Logging
import Testing

/// The ledgers under test: SQLite always; PostgreSQL when `BRIDGE_TEST_POSTGRES_URL` is set (`./dev test` and CI
/// start a private PostgreSQL and set it).
enum LedgerKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres
    var testDescription: String { rawValue }

    static var postgresURL: String? { ProcessInfo.processInfo.environment["BRIDGE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 } }

    /// Both, always: without `BRIDGE_TEST_POSTGRES_URL` the PostgreSQL case is skipped loudly (failed in CI).
    static var available: [LedgerKind] { allCases }

    /// Runs `body` with a fresh ledger (a new file, or a new PostgreSQL schema-free database table set).
    func with(_ body: @Sendable (any OrderLedger) async throws -> Void) async throws {
        switch self {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-\(UUID().uuidString)")
            defer { try? FileManager.default.removeItem(at: dir) }
            let ledger = try SQLiteOrderLedger(path: dir.appendingPathComponent("l.sqlite").path)
            try await ledger.migrate()
            try await body(ledger)
        case .postgres:
            try TestDependency.require(
                Self.postgresURL != nil, "PostgreSQL (BRIDGE_TEST_POSTGRES_URL)",
                install: "apt-get install postgresql, then run ./dev test (it starts a private one and sets the URL)")
            guard case .postgres(let host, let port, let user, let password, let db)? = LedgerLocation(Self.postgresURL ?? "") else {
                Issue.record("BRIDGE_TEST_POSTGRES_URL is not a postgres:// URL")
                return
            }
            let ledger = PostgresOrderLedger(
                host: host, port: port, user: user, password: password, database: db, logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await ledger.run() }
                try await ledger.migrate()
                try await body(ledger)
                group.cancelAll()
            }
        }
    }
}

@Suite("Ledger: versions only move forward, one lease holder per order, refunds once (SQLite and PostgreSQL)")
struct LedgerTests {
    /// Unique per test run so PostgreSQL tests never see each other's rows.
    static func shop() -> String { "t\(UUID().uuidString.prefix(8).lowercased())" }

    @Test("record stores newer versions only; equal and older ones are refused", arguments: LedgerKind.available)
    func versions(kind: LedgerKind) async throws {
        try await kind.with { ledger in
            let shop = Self.shop()
            let v1 = OrderVersion(updatedAtMs: 1000, triggeredAtMs: 5)
            #expect(try await ledger.entry(shop: shop, orderId: 1) == nil)
            #expect(try await ledger.record(shop: shop, orderId: 1, version: v1, erpDocument: "SO-1"))
            #expect(try await ledger.record(shop: shop, orderId: 1, version: v1, erpDocument: "SO-1") == false)
            #expect(try await ledger.record(shop: shop, orderId: 1, version: .init(updatedAtMs: 999, triggeredAtMs: 9), erpDocument: "X") == false)
            // Same updated_at, later trigger: newer (the tie-break).
            #expect(try await ledger.record(shop: shop, orderId: 1, version: .init(updatedAtMs: 1000, triggeredAtMs: 6), erpDocument: "SO-1"))
            #expect(try await ledger.record(shop: shop, orderId: 1, version: .init(updatedAtMs: 2000, triggeredAtMs: 0), erpDocument: "SO-1"))
            let e = try #require(try await ledger.entry(shop: shop, orderId: 1))
            #expect(e.version == .init(updatedAtMs: 2000, triggeredAtMs: 0))
            #expect(e.erpDocument == "SO-1")
            // Ids beyond 2^53 are exact.
            let big: Int64 = 9_007_199_254_740_993
            #expect(try await ledger.record(shop: shop, orderId: big, version: v1, erpDocument: "SO-2"))
            #expect(try await ledger.entry(shop: shop, orderId: big)?.orderId == big)
            #expect(try await ledger.entry(shop: shop, orderId: big - 1) == nil)
        }
    }

    @Test("50 concurrent writers of random versions leave the highest one", arguments: LedgerKind.available)
    func concurrentRecords(kind: LedgerKind) async throws {
        try await kind.with { ledger in
            let shop = Self.shop()
            let versions = (1...50).map { OrderVersion(updatedAtMs: Int64($0 % 7) * 1000, triggeredAtMs: Int64($0)) }.shuffled()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for v in versions {
                    group.addTask { try await ledger.record(shop: shop, orderId: 42, version: v, erpDocument: "SO-42") }
                }
                try await group.waitForAll()
            }
            #expect(try await ledger.entry(shop: shop, orderId: 42)?.version == versions.max())
        }
    }

    @Test("one lease holder per order; renewal by the holder; release; expiry frees a dead holder's lease", arguments: LedgerKind.available)
    func leases(kind: LedgerKind) async throws {
        try await kind.with { ledger in
            let shop = Self.shop()
            #expect(try await ledger.tryLock(shop: shop, orderId: 1, owner: "a", ttl: .seconds(30)))
            #expect(try await ledger.tryLock(shop: shop, orderId: 1, owner: "b", ttl: .seconds(30)) == false)
            #expect(try await ledger.tryLock(shop: shop, orderId: 2, owner: "b", ttl: .seconds(30)), "other orders are independent")
            #expect(try await ledger.tryLock(shop: shop, orderId: 1, owner: "a", ttl: .seconds(30)), "the holder renews")
            try await ledger.unlock(shop: shop, orderId: 1, owner: "b")  // not the holder: no effect
            #expect(try await ledger.tryLock(shop: shop, orderId: 1, owner: "b", ttl: .seconds(30)) == false)
            try await ledger.unlock(shop: shop, orderId: 1, owner: "a")
            let taken = ContinuousClock.now
            #expect(try await ledger.tryLock(shop: shop, orderId: 1, owner: "b", ttl: .seconds(2)))
            // b dies holding it: refused while the lease runs (checked only if this machine was quick enough to ask
            // within the lease), then the lease expires by itself.
            let refused = try await ledger.tryLock(shop: shop, orderId: 1, owner: "c", ttl: .seconds(30)) == false
            if ContinuousClock.now - taken < .milliseconds(1500) { #expect(refused) }
            try await Task.sleep(until: taken.advanced(by: .milliseconds(2500)))
            #expect(try await ledger.tryLock(shop: shop, orderId: 1, owner: "c", ttl: .seconds(30)))
        }
    }

    @Test("of 20 concurrent contenders exactly one gets the lease", arguments: LedgerKind.available)
    func contention(kind: LedgerKind) async throws {
        try await kind.with { ledger in
            let shop = Self.shop()
            let winners = try await withThrowingTaskGroup(of: Bool.self) { group in
                for i in 0..<20 {
                    group.addTask { try await ledger.tryLock(shop: shop, orderId: 7, owner: "w\(i)", ttl: .seconds(30)) }
                }
                var n = 0
                for try await won in group where won { n += 1 }
                return n
            }
            #expect(winners == 1)
        }
    }

    @Test("acquire returns the lease with the applied entry in one step; release records and frees it", arguments: LedgerKind.available)
    func acquireRelease(kind: LedgerKind) async throws {
        try await kind.with { ledger in
            let shop = Self.shop()
            #expect(try await ledger.acquire(shop: shop, orderId: 3, owner: "a", ttl: .seconds(30)) == .acquired(nil))
            #expect(try await ledger.acquire(shop: shop, orderId: 3, owner: "b", ttl: .seconds(30)) == .busy)
            let v = OrderVersion(updatedAtMs: 10, triggeredAtMs: 1)
            #expect(try await ledger.release(shop: shop, orderId: 3, owner: "a", recording: .init(version: v, erpDocument: "SO-3")))
            guard case .acquired(let entry?) = try await ledger.acquire(shop: shop, orderId: 3, owner: "b", ttl: .seconds(30)) else {
                Issue.record("expected the lease with the entry")
                return
            }
            #expect(entry.version == v)
            #expect(entry.erpDocument == "SO-3")
            // An older version is not recorded, but the lease is still released.
            #expect(try await ledger.release(shop: shop, orderId: 3, owner: "b", recording: .init(version: .init(updatedAtMs: 5, triggeredAtMs: 0), erpDocument: "X")) == false)
            #expect(try await ledger.acquire(shop: shop, orderId: 3, owner: "c", ttl: .seconds(30)) != .busy)
            #expect(try await ledger.entry(shop: shop, orderId: 3)?.version == v)
        }
    }

    @Test("a worker whose lease expired and was taken over cannot record (fencing), nor announce a create", arguments: LedgerKind.available)
    func fencing(kind: LedgerKind) async throws {
        try await kind.with { (ledger: any OrderLedger) async throws in
            let shop = Self.shop()
            #expect(try await ledger.acquire(shop: shop, orderId: 8, owner: "slow", ttl: .milliseconds(200)) == .acquired(nil))
            #expect(try await ledger.markIntent(.salesOrder, shop: shop, orderId: 8, owner: "slow"))
            // The slow worker's ERP call outlives its lease; another worker takes the order over.
            #expect(try await eventually(timeout: .seconds(10)) {
                try await ledger.acquire(shop: shop, orderId: 8, owner: "fast", ttl: .seconds(30)) != .busy
            })
            await #expect(throws: LedgerError.leaseLost(shop: shop, orderId: 8)) {
                try await ledger.release(shop: shop, orderId: 8, owner: "slow", recording: .init(version: .init(updatedAtMs: 9, triggeredAtMs: 9), erpDocument: "SO-SLOW"))
            }
            #expect(try await ledger.markIntent(.creditNote(refundId: 1), shop: shop, orderId: 8, owner: "slow") == false)
            #expect(try await ledger.entry(shop: shop, orderId: 8) == nil, "the fenced worker recorded nothing")
            // The new holder records; the intent the first worker left is visible to it (look up before creating).
            #expect(try await ledger.hasIntent(.salesOrder, shop: shop, orderId: 8))
            #expect(try await ledger.hasIntent(.creditNote(refundId: 1), shop: shop, orderId: 8) == false)
            #expect(try await ledger.release(shop: shop, orderId: 8, owner: "fast", recording: .init(version: .init(updatedAtMs: 9, triggeredAtMs: 9), erpDocument: "SO-FAST")))
            #expect(try await ledger.entry(shop: shop, orderId: 8)?.erpDocument == "SO-FAST")
        }
    }

    @Test("a worker taking a lease just freed by another's commit reads that commit's version (two workers racing)", arguments: LedgerKind.available)
    func leaseAfterCommitSeesVersion(kind: LedgerKind) async throws {
        try await kind.with { (ledger: any OrderLedger) async throws in
            let shop = Self.shop()
            // Two workers alternate on one order; each applies "the next version" after what it read under the lease.
            // If a lease taken right after the other's commit read the version from before it, a version would be
            // applied twice (or go backwards): every recorded version must be exactly one more than the last.
            let rounds = 150
            let applied = Shared<[Int64]>([])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in ["w1", "w2"] {
                    group.addTask {
                        while applied.value.count < rounds {
                            guard case .acquired(let entry) = try await ledger.acquire(shop: shop, orderId: 77, owner: worker, ttl: .seconds(30)) else {
                                await Task.yield()
                                continue
                            }
                            let next = (entry?.version.updatedAtMs ?? 0) + 1
                            applied.withLock { $0.append(next) }
                            _ = try await ledger.release(
                                shop: shop, orderId: 77, owner: worker,
                                recording: .init(version: .init(updatedAtMs: next, triggeredAtMs: 0), erpDocument: "SO-77"))
                        }
                    }
                }
                try await group.waitForAll()
            }
            let versions = applied.value
            #expect(versions == Array(1...Int64(versions.count)), "a version was read stale: \(versions.prefix(20))")
        }
    }

    @Test(
        "write intents: aged by the database's clock, cleared only by their lease holder, settled by the record; renewal never takes back a lost lease",
        arguments: LedgerKind.available)
    func intentsAndRenewal(kind: LedgerKind) async throws {
        try await kind.with { (ledger: any OrderLedger) async throws in
            let shop = Self.shop()
            #expect(try await ledger.intentAge(.salesOrder, shop: shop, orderId: 3) == nil)
            #expect(try await ledger.acquire(shop: shop, orderId: 3, owner: "a", ttl: .milliseconds(300)) == .acquired(nil))
            #expect(try await ledger.markIntent(.salesOrder, shop: shop, orderId: 3, owner: "a"))
            #expect(try await ledger.markIntent(.creditNote(refundId: 5), shop: shop, orderId: 3, owner: "a"))
            try await Task.sleep(for: .milliseconds(400))
            let age = try #require(try await ledger.intentAge(.salesOrder, shop: shop, orderId: 3))
            #expect(age >= .milliseconds(350) && age < .seconds(30), "aged \(age)")
            // a's lease expired; b takes the order. a can neither renew, nor clear b's view of the intent.
            #expect(try await ledger.acquire(shop: shop, orderId: 3, owner: "b", ttl: .seconds(30)) == .acquired(nil))
            #expect(try await ledger.renew(shop: shop, orderId: 3, owner: "a", ttl: .seconds(30)) == false)
            #expect(try await ledger.clearIntent(.salesOrder, shop: shop, orderId: 3, owner: "a") == false)
            #expect(try await ledger.hasIntent(.salesOrder, shop: shop, orderId: 3))
            #expect(try await ledger.renew(shop: shop, orderId: 3, owner: "b", ttl: .seconds(30)))
            // Touching the intent restarts its age.
            let touched = ContinuousClock.now
            #expect(try await ledger.markIntent(.salesOrder, shop: shop, orderId: 3, owner: "b"))
            let fresh = try #require(try await ledger.intentAge(.salesOrder, shop: shop, orderId: 3))
            // Younger than the time since the touch (and some clock granularity), however slow the machine is.
            let since = touched.duration(to: .now)
            #expect(fresh <= since + .milliseconds(100) && fresh < age, "aged \(fresh) \(since) after the touch")
            // The record settles the sales order's intent, not the credit note's; the refund's record settles that.
            #expect(try await ledger.release(shop: shop, orderId: 3, owner: "b", recording: .init(version: .init(updatedAtMs: 1, triggeredAtMs: 1), erpDocument: "SO-1")))
            #expect(try await ledger.hasIntent(.salesOrder, shop: shop, orderId: 3) == false)
            #expect(try await ledger.hasIntent(.creditNote(refundId: 5), shop: shop, orderId: 3))
            try await ledger.recordRefund(shop: shop, refundId: 5, orderId: 3, erpDocument: "CN-1")
            #expect(try await ledger.hasIntent(.creditNote(refundId: 5), shop: shop, orderId: 3) == false)
            // A holder clears an intent whose write certainly did not happen; a released lease cannot be renewed.
            #expect(try await ledger.acquire(shop: shop, orderId: 3, owner: "c", ttl: .seconds(30)) == .acquired(try await ledger.entry(shop: shop, orderId: 3)))
            #expect(try await ledger.markIntent(.salesOrder, shop: shop, orderId: 3, owner: "c"))
            #expect(try await ledger.clearIntent(.salesOrder, shop: shop, orderId: 3, owner: "c"))
            #expect(try await ledger.hasIntent(.salesOrder, shop: shop, orderId: 3) == false)
            try await ledger.unlock(shop: shop, orderId: 3, owner: "c")
            #expect(try await ledger.renew(shop: shop, orderId: 3, owner: "c", ttl: .seconds(30)) == false)
        }
    }

    @Test("a refund is recorded once; the first credit note stays", arguments: LedgerKind.available)
    func refunds(kind: LedgerKind) async throws {
        try await kind.with { ledger in
            let shop = Self.shop()
            #expect(try await ledger.refundDocument(shop: shop, refundId: 5) == nil)
            try await ledger.recordRefund(shop: shop, refundId: 5, orderId: 1, erpDocument: "CN-1")
            try await ledger.recordRefund(shop: shop, refundId: 5, orderId: 1, erpDocument: "CN-2")
            #expect(try await ledger.refundDocument(shop: shop, refundId: 5) == "CN-1")
        }
    }

    @Test("ledger locations parse; passwords never appear in their log form")
    func locations() {
        #expect(LedgerLocation("sqlite:data/l.sqlite") == .sqlite(path: "data/l.sqlite"))
        #expect(LedgerLocation("sqlite:///var/lib/bridge/l.sqlite") == .sqlite(path: "/var/lib/bridge/l.sqlite"))
        let pg = LedgerLocation("postgres://bridge:s3cret@db.internal:6543/ledger")
        #expect(pg == .postgres(host: "db.internal", port: 6543, user: "bridge", password: "s3cret", database: "ledger"))
        #expect(pg?.redacted.contains("s3cret") == false)
        #expect(LedgerLocation("mysql://x") == nil)
        #expect(LedgerLocation("sqlite:") == nil)
    }
}
