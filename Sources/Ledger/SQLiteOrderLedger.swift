import BridgeDomain
import Messaging
import Foundation
import GRDB
import ServiceLifecycle

/// The default ledger: an SQLite file (WAL mode) through GRDB. Several forwarder processes on one host may share
/// the file; across hosts use `PostgresOrderLedger`.
public final class SQLiteOrderLedger: OrderLedger {
    private let pool: DatabasePool

    /// Milliseconds since the epoch by SQLite's clock.
    private static let nowMs = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"

    public init(path: String) throws {
        var config = Configuration()
        // Writers from several processes queue behind each other instead of failing with SQLITE_BUSY.
        // SQLite's own busy handler sleeps up to 100 ms between tries; writers from several processes would queue
        // behind those sleeps. Retry every millisecond instead, for up to ~10 s.
        config.busyMode = .callback { tries in
            usleep(1000)
            return tries < 10_000
        }
        // WAL + synchronous=NORMAL: no corruption on a crash; a power loss may forget the last commits, which only
        // means re-sending an upsert the ERP already holds (idempotent, version-checked). Saves an fsync per write.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        let dir = (path as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        pool = try DatabasePool(path: path, configuration: config)
    }

    public func migrate() async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS forwarded_orders (
                        shop TEXT NOT NULL, order_id INTEGER NOT NULL,
                        updated_at_ms INTEGER NOT NULL, triggered_at_ms INTEGER NOT NULL,
                        erp_document TEXT NOT NULL, applied_at_ms INTEGER NOT NULL,
                        PRIMARY KEY (shop, order_id));
                    CREATE TABLE IF NOT EXISTS order_locks (
                        shop TEXT NOT NULL, order_id INTEGER NOT NULL, owner TEXT NOT NULL,
                        expires_at_ms INTEGER NOT NULL, PRIMARY KEY (shop, order_id));
                    CREATE TABLE IF NOT EXISTS forwarded_refunds (
                        shop TEXT NOT NULL, refund_id INTEGER NOT NULL, order_id INTEGER NOT NULL,
                        erp_document TEXT NOT NULL, applied_at_ms INTEGER NOT NULL,
                        PRIMARY KEY (shop, refund_id));
                    CREATE TABLE IF NOT EXISTS write_intents (
                        shop TEXT NOT NULL, order_id INTEGER NOT NULL, kind TEXT NOT NULL, key INTEGER NOT NULL,
                        owner TEXT NOT NULL, at_ms INTEGER NOT NULL, PRIMARY KEY (shop, order_id, kind, key));
                    """)
        }
    }

    public func entry(shop: String, orderId: Int64) async throws -> LedgerEntry? {
        try await pool.read { db in try Self.entry(db, shop: shop, orderId: orderId) }
    }

    static func entry(_ db: Database, shop: String, orderId: Int64) throws -> LedgerEntry? {
            guard
                let row = try Row.fetchOne(
                    db,
                    sql: "SELECT updated_at_ms, triggered_at_ms, erp_document, applied_at_ms FROM forwarded_orders WHERE shop = ? AND order_id = ?",
                    arguments: [shop, orderId])
            else { return nil }
            return LedgerEntry(
                shop: shop, orderId: orderId,
                version: OrderVersion(updatedAtMs: row[0], triggeredAtMs: row[1]),
                erpDocument: row[2], appliedAtMs: row[3])
    }

    public func record(shop: String, orderId: Int64, version: OrderVersion, erpDocument: String) async throws -> Bool {
        try await pool.write { db in try Self.record(db, shop: shop, orderId: orderId, version: version, erpDocument: erpDocument) }
    }

    static func record(_ db: Database, shop: String, orderId: Int64, version: OrderVersion, erpDocument: String) throws -> Bool {
            try db.execute(
                sql: """
                    INSERT INTO forwarded_orders (shop, order_id, updated_at_ms, triggered_at_ms, erp_document, applied_at_ms)
                    VALUES (?, ?, ?, ?, ?, \(Self.nowMs))
                    ON CONFLICT (shop, order_id) DO UPDATE SET
                        updated_at_ms = excluded.updated_at_ms, triggered_at_ms = excluded.triggered_at_ms,
                        erp_document = excluded.erp_document, applied_at_ms = excluded.applied_at_ms
                    WHERE (excluded.updated_at_ms, excluded.triggered_at_ms)
                        > (forwarded_orders.updated_at_ms, forwarded_orders.triggered_at_ms)
                    """,
                arguments: [shop, orderId, version.updatedAtMs, version.triggeredAtMs, erpDocument])
            return db.changesCount == 1
    }

    public func tryLock(shop: String, orderId: Int64, owner: String, ttl: Duration) async throws -> Bool {
        try await pool.write { db in try Self.tryLock(db, shop: shop, orderId: orderId, owner: owner, ttl: ttl) }
    }

    static func tryLock(_ db: Database, shop: String, orderId: Int64, owner: String, ttl: Duration) throws -> Bool {
            try db.execute(
                sql: """
                    INSERT INTO order_locks (shop, order_id, owner, expires_at_ms) VALUES (?, ?, ?, \(Self.nowMs) + ?)
                    ON CONFLICT (shop, order_id) DO UPDATE SET owner = excluded.owner, expires_at_ms = excluded.expires_at_ms
                    WHERE order_locks.expires_at_ms < \(Self.nowMs) OR order_locks.owner = excluded.owner
                    """,
                arguments: [shop, orderId, owner, ttl.wholeMilliseconds])
            return db.changesCount == 1
    }

    public func renew(shop: String, orderId: Int64, owner: String, ttl: Duration) async throws -> Bool {
        try await pool.write { db in
            try db.execute(
                sql: "UPDATE order_locks SET expires_at_ms = \(Self.nowMs) + ? WHERE shop = ? AND order_id = ? AND owner = ?",
                arguments: [ttl.wholeMilliseconds, shop, orderId, owner])
            return db.changesCount == 1
        }
    }

    public func unlock(shop: String, orderId: Int64, owner: String) async throws {
        try await pool.write { db in try Self.unlock(db, shop: shop, orderId: orderId, owner: owner) }
    }

    static func unlock(_ db: Database, shop: String, orderId: Int64, owner: String) throws {
        try db.execute(
            sql: "DELETE FROM order_locks WHERE shop = ? AND order_id = ? AND owner = ?", arguments: [shop, orderId, owner])
    }

    public func acquire(shop: String, orderId: Int64, owner: String, ttl: Duration) async throws -> LeaseResult {
        // Look before taking the write lock: a worker waiting for another process's lease polls with reads only
        // (WAL readers never block writers), so waiting forwarders do not contend for the database's one writer.
        let heldElsewhere = try await pool.read { db in
            try Bool.fetchOne(
                db,
                sql: "SELECT EXISTS (SELECT 1 FROM order_locks WHERE shop = ? AND order_id = ? AND owner != ? AND expires_at_ms >= \(Self.nowMs))",
                arguments: [shop, orderId, owner]) ?? false
        }
        if heldElsewhere { return .busy }
        return try await pool.write { db in
            guard try Self.tryLock(db, shop: shop, orderId: orderId, owner: owner, ttl: ttl) else { return .busy }
            return .acquired(try Self.entry(db, shop: shop, orderId: orderId))
        }
    }

    public func release(shop: String, orderId: Int64, owner: String, recording: AppliedVersion?) async throws -> Bool {
        try await pool.write { db in
            var recorded = false
            if let r = recording {
                // Fenced: a worker whose lease was taken over records nothing.
                guard try Self.holds(db, shop: shop, orderId: orderId, owner: owner) else {
                    throw LedgerError.leaseLost(shop: shop, orderId: orderId)
                }
                recorded = try Self.record(db, shop: shop, orderId: orderId, version: r.version, erpDocument: r.erpDocument)
                try Self.deleteIntent(db, .salesOrder, shop: shop, orderId: orderId)
            }
            try Self.unlock(db, shop: shop, orderId: orderId, owner: owner)
            return recorded
        }
    }

    static func holds(_ db: Database, shop: String, orderId: Int64, owner: String) throws -> Bool {
        try Bool.fetchOne(
            db, sql: "SELECT EXISTS (SELECT 1 FROM order_locks WHERE shop = ? AND order_id = ? AND owner = ?)",
            arguments: [shop, orderId, owner]) ?? false
    }

    public func markIntent(_ intent: WriteIntent, shop: String, orderId: Int64, owner: String) async throws -> Bool {
        try await pool.write { db in
            guard try Self.holds(db, shop: shop, orderId: orderId, owner: owner) else { return false }
            try db.execute(
                sql: """
                    INSERT INTO write_intents (shop, order_id, kind, key, owner, at_ms) VALUES (?, ?, ?, ?, ?, \(Self.nowMs))
                    ON CONFLICT (shop, order_id, kind, key) DO UPDATE SET owner = excluded.owner, at_ms = excluded.at_ms
                    """,
                arguments: [shop, orderId, intent.kind, intent.key, owner])
            return true
        }
    }

    public func intentAge(_ intent: WriteIntent, shop: String, orderId: Int64) async throws -> Duration? {
        try await pool.read { db in
            try Int64.fetchOne(
                db, sql: "SELECT \(Self.nowMs) - at_ms FROM write_intents WHERE shop = ? AND order_id = ? AND kind = ? AND key = ?",
                arguments: [shop, orderId, intent.kind, intent.key]
            ).map { .milliseconds(max(0, $0)) }
        }
    }

    public func clearIntent(_ intent: WriteIntent, shop: String, orderId: Int64, owner: String) async throws -> Bool {
        try await pool.write { db in
            guard try Self.holds(db, shop: shop, orderId: orderId, owner: owner) else { return false }
            try Self.deleteIntent(db, intent, shop: shop, orderId: orderId)
            return true
        }
    }

    static func deleteIntent(_ db: Database, _ intent: WriteIntent, shop: String, orderId: Int64) throws {
        try db.execute(
            sql: "DELETE FROM write_intents WHERE shop = ? AND order_id = ? AND kind = ? AND key = ?",
            arguments: [shop, orderId, intent.kind, intent.key])
    }

    public func refundDocument(shop: String, refundId: Int64) async throws -> String? {
        try await pool.read { db in
            try String.fetchOne(
                db, sql: "SELECT erp_document FROM forwarded_refunds WHERE shop = ? AND refund_id = ?", arguments: [shop, refundId])
        }
    }

    public func recordRefund(shop: String, refundId: Int64, orderId: Int64, erpDocument: String) async throws {
        try await pool.write { db in
            try db.execute(
                sql: """
                    INSERT INTO forwarded_refunds (shop, refund_id, order_id, erp_document, applied_at_ms)
                    VALUES (?, ?, ?, ?, \(Self.nowMs)) ON CONFLICT (shop, refund_id) DO NOTHING
                    """,
                arguments: [shop, refundId, orderId, erpDocument])
            try Self.deleteIntent(db, .creditNote(refundId: refundId), shop: shop, orderId: orderId)
        }
    }

    public func orderCount() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM forwarded_orders") ?? 0 }
    }

    /// Nothing runs in the background; waits for shutdown so the ledger outlives the forwarder in a ServiceGroup.
    public func run() async throws {
        try? await gracefulShutdown()
    }
}
