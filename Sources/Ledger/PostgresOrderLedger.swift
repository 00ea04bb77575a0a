import BridgeDomain
import Messaging
import Foundation
import Logging
import PostgresNIO

/// The ledger for forwarders on several hosts: PostgreSQL through postgres-nio's pooled client. Same tables and
/// semantics as `SQLiteOrderLedger`; lease times come from the server's clock.
public final class PostgresOrderLedger: OrderLedger {
    private let client: PostgresClient
    private let logger: Logger

    public init(host: String, port: Int, user: String, password: String?, database: String, logger: Logger) {
        var config = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: .disable)
        config.options.maximumConnections = 16
        config.options.connectTimeout = .seconds(5)
        client = PostgresClient(configuration: config, backgroundLogger: logger)
        self.logger = logger
    }

    private static let nowMs = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

    public func run() async throws {
        await client.run()
    }

    /// Creates the tables under a transaction-scoped advisory lock, so forwarders starting together on several hosts
    /// do not race on `CREATE TABLE IF NOT EXISTS` (which is not safe under concurrency in PostgreSQL).
    public func migrate() async throws {
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query("SELECT pg_advisory_xact_lock(7042420001)", logger: logger)
            for statement in Self.schema {
                try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
            }
        }
    }

    static let schema = [
        """
        CREATE TABLE IF NOT EXISTS forwarded_orders (
            shop TEXT NOT NULL, order_id BIGINT NOT NULL,
            updated_at_ms BIGINT NOT NULL, triggered_at_ms BIGINT NOT NULL,
            erp_document TEXT NOT NULL, applied_at_ms BIGINT NOT NULL,
            PRIMARY KEY (shop, order_id))
        """,
        """
        CREATE TABLE IF NOT EXISTS order_locks (
            shop TEXT NOT NULL, order_id BIGINT NOT NULL, owner TEXT NOT NULL,
            expires_at_ms BIGINT NOT NULL, PRIMARY KEY (shop, order_id))
        """,
        """
        CREATE TABLE IF NOT EXISTS write_intents (
            shop TEXT NOT NULL, order_id BIGINT NOT NULL, kind TEXT NOT NULL, key BIGINT NOT NULL,
            owner TEXT NOT NULL, at_ms BIGINT NOT NULL, PRIMARY KEY (shop, order_id, kind, key))
        """,
        """
        CREATE TABLE IF NOT EXISTS forwarded_refunds (
            shop TEXT NOT NULL, refund_id BIGINT NOT NULL, order_id BIGINT NOT NULL,
            erp_document TEXT NOT NULL, applied_at_ms BIGINT NOT NULL,
            PRIMARY KEY (shop, refund_id))
        """,
    ]

    public func entry(shop: String, orderId: Int64) async throws -> LedgerEntry? {
        let rows = try await client.query(
            "SELECT updated_at_ms, triggered_at_ms, erp_document, applied_at_ms FROM forwarded_orders WHERE shop = \(shop) AND order_id = \(orderId)")
        for try await (u, t, doc, applied) in rows.decode((Int64, Int64, String, Int64).self) {
            return LedgerEntry(
                shop: shop, orderId: orderId, version: OrderVersion(updatedAtMs: u, triggeredAtMs: t), erpDocument: doc,
                appliedAtMs: applied)
        }
        return nil
    }

    public func record(shop: String, orderId: Int64, version: OrderVersion, erpDocument: String) async throws -> Bool {
        let q: PostgresQuery = """
            INSERT INTO forwarded_orders (shop, order_id, updated_at_ms, triggered_at_ms, erp_document, applied_at_ms)
            VALUES (\(shop), \(orderId), \(version.updatedAtMs), \(version.triggeredAtMs), \(erpDocument), \(unescaped: Self.nowMs))
            ON CONFLICT (shop, order_id) DO UPDATE SET
                updated_at_ms = excluded.updated_at_ms, triggered_at_ms = excluded.triggered_at_ms,
                erp_document = excluded.erp_document, applied_at_ms = excluded.applied_at_ms
            WHERE (excluded.updated_at_ms, excluded.triggered_at_ms)
                > (forwarded_orders.updated_at_ms, forwarded_orders.triggered_at_ms)
            RETURNING order_id
            """
        return try await returnsRow(q)
    }

    public func tryLock(shop: String, orderId: Int64, owner: String, ttl: Duration) async throws -> Bool {
        let ttlMs = ttl.wholeMilliseconds
        let q: PostgresQuery = """
            INSERT INTO order_locks (shop, order_id, owner, expires_at_ms) VALUES (\(shop), \(orderId), \(owner), \(unescaped: Self.nowMs) + \(ttlMs))
            ON CONFLICT (shop, order_id) DO UPDATE SET owner = excluded.owner, expires_at_ms = excluded.expires_at_ms
            WHERE order_locks.expires_at_ms < \(unescaped: Self.nowMs) OR order_locks.owner = excluded.owner
            RETURNING owner
            """
        return try await returnsRow(q)
    }

    public func unlock(shop: String, orderId: Int64, owner: String) async throws {
        try await client.query("DELETE FROM order_locks WHERE shop = \(shop) AND order_id = \(orderId) AND owner = \(owner)")
    }

    public func acquire(shop: String, orderId: Int64, owner: String, ttl: Duration) async throws -> LeaseResult {
        // Two statements, in this order. Under READ COMMITTED every statement reads its own snapshot: a single
        // statement that takes the lease (freed by another worker's commit) and reads the applied version could read
        // it from a snapshot taken before that commit, i.e. the version before the other worker's. The second
        // statement starts after the lease is held, so it sees everything the previous holder committed.
        guard try await tryLock(shop: shop, orderId: orderId, owner: owner, ttl: ttl) else { return .busy }
        return .acquired(try await entry(shop: shop, orderId: orderId))
    }

    public func release(shop: String, orderId: Int64, owner: String, recording: AppliedVersion?) async throws -> Bool {
        guard let r = recording else {
            try await unlock(shop: shop, orderId: orderId, owner: owner)
            return false
        }
        // One transaction: check that `owner` still holds the lease (locking its row, so nobody takes it over
        // meanwhile), record the version if newer, release the lease. A worker whose lease was taken over records
        // nothing (fencing).
        do {
            return try await recordAndRelease(shop: shop, orderId: orderId, owner: owner, r)
        } catch let e as PostgresTransactionError {
            // postgres-nio wraps what the transaction's body threw (leaseLost): hand that on as it is.
            throw e.closureError ?? e
        }
    }

    private func recordAndRelease(shop: String, orderId: Int64, owner: String, _ r: AppliedVersion) async throws -> Bool {
        try await client.withTransaction(logger: logger) { connection in
            let held = try await connection.query(
                "SELECT 1 FROM order_locks WHERE shop = \(shop) AND order_id = \(orderId) AND owner = \(owner) FOR UPDATE",
                logger: logger)
            var holds = false
            for try await _ in held { holds = true }
            guard holds else { throw LedgerError.leaseLost(shop: shop, orderId: orderId) }
            let rows = try await connection.query(
                """
                INSERT INTO forwarded_orders (shop, order_id, updated_at_ms, triggered_at_ms, erp_document, applied_at_ms)
                VALUES (\(shop), \(orderId), \(r.version.updatedAtMs), \(r.version.triggeredAtMs), \(r.erpDocument), \(unescaped: Self.nowMs))
                ON CONFLICT (shop, order_id) DO UPDATE SET
                    updated_at_ms = excluded.updated_at_ms, triggered_at_ms = excluded.triggered_at_ms,
                    erp_document = excluded.erp_document, applied_at_ms = excluded.applied_at_ms
                WHERE (excluded.updated_at_ms, excluded.triggered_at_ms)
                    > (forwarded_orders.updated_at_ms, forwarded_orders.triggered_at_ms)
                RETURNING order_id
                """, logger: logger)
            var recorded = false
            for try await _ in rows { recorded = true }
            try await connection.query(
                "DELETE FROM write_intents WHERE shop = \(shop) AND order_id = \(orderId) AND kind = \(WriteIntent.salesOrder.kind) AND key = 0",
                logger: logger)
            try await connection.query(
                "DELETE FROM order_locks WHERE shop = \(shop) AND order_id = \(orderId) AND owner = \(owner)", logger: logger)
            return recorded
        }
    }

    public func markIntent(_ intent: WriteIntent, shop: String, orderId: Int64, owner: String) async throws -> Bool {
        let q: PostgresQuery = """
            INSERT INTO write_intents (shop, order_id, kind, key, owner, at_ms)
            SELECT \(shop), \(orderId), \(intent.kind), \(intent.key), \(owner), \(unescaped: Self.nowMs)
            WHERE EXISTS (SELECT 1 FROM order_locks WHERE shop = \(shop) AND order_id = \(orderId) AND owner = \(owner))
            ON CONFLICT (shop, order_id, kind, key) DO UPDATE SET owner = excluded.owner, at_ms = excluded.at_ms
            RETURNING 1
            """
        return try await returnsRow(q)
    }

    public func intentAge(_ intent: WriteIntent, shop: String, orderId: Int64) async throws -> Duration? {
        let rows = try await client.query(
            "SELECT \(unescaped: Self.nowMs) - at_ms FROM write_intents WHERE shop = \(shop) AND order_id = \(orderId) AND kind = \(intent.kind) AND key = \(intent.key)")
        for try await age in rows.decode(Int64.self) { return .milliseconds(max(0, age)) }
        return nil
    }

    public func clearIntent(_ intent: WriteIntent, shop: String, orderId: Int64, owner: String) async throws -> Bool {
        // One statement: the intent goes only while the lease is still this owner's (another worker's newer intent
        // is never removed).
        try await returnsRow(
            """
            DELETE FROM write_intents WHERE shop = \(shop) AND order_id = \(orderId) AND kind = \(intent.kind) AND key = \(intent.key)
            AND EXISTS (SELECT 1 FROM order_locks WHERE shop = \(shop) AND order_id = \(orderId) AND owner = \(owner))
            RETURNING 1
            """)
    }

    public func renew(shop: String, orderId: Int64, owner: String, ttl: Duration) async throws -> Bool {
        try await returnsRow(
            """
            UPDATE order_locks SET expires_at_ms = \(unescaped: Self.nowMs) + \(ttl.wholeMilliseconds)
            WHERE shop = \(shop) AND order_id = \(orderId) AND owner = \(owner) RETURNING 1
            """)
    }

    public func refundDocument(shop: String, refundId: Int64) async throws -> String? {
        let rows = try await client.query(
            "SELECT erp_document FROM forwarded_refunds WHERE shop = \(shop) AND refund_id = \(refundId)")
        for try await doc in rows.decode(String.self) { return doc }
        return nil
    }

    public func recordRefund(shop: String, refundId: Int64, orderId: Int64, erpDocument: String) async throws {
        let q: PostgresQuery = """
            INSERT INTO forwarded_refunds (shop, refund_id, order_id, erp_document, applied_at_ms)
            VALUES (\(shop), \(refundId), \(orderId), \(erpDocument), \(unescaped: Self.nowMs)) ON CONFLICT (shop, refund_id) DO NOTHING
            """
        let intent = WriteIntent.creditNote(refundId: refundId)
        let logger = self.logger
        do {
            try await client.withTransaction(logger: logger) { connection in
                try await connection.query(q, logger: logger)
                try await connection.query(
                    "DELETE FROM write_intents WHERE shop = \(shop) AND order_id = \(orderId) AND kind = \(intent.kind) AND key = \(intent.key)",
                    logger: logger)
            }
        } catch let e as PostgresTransactionError {
            throw e.closureError ?? e
        }
    }

    public func orderCount() async throws -> Int {
        let rows = try await client.query("SELECT COUNT(*) FROM forwarded_orders")
        for try await n in rows.decode(Int64.self) { return Int(n) }
        return 0
    }

    private func returnsRow(_ q: PostgresQuery) async throws -> Bool {
        let rows = try await client.query(q)
        var any = false
        for try await _ in rows { any = true }
        return any
    }
}
