import BridgeDomain
import Crypto
import Foundation
import Logging
import Metrics
import Shopify

/// What Shopify shows of a level, read in one go: `available` and `committed` (units of unfulfilled orders).
public struct LevelFigures: Sendable, Equatable {
    public var available: Int
    public var committed: Int

    public init(available: Int, committed: Int = 0) {
        self.available = available
        self.committed = committed
    }
}

/// One inventory level in Shopify: an inventory item at a location (Admin API global ids).
public struct LevelKey: Hashable, Sendable, CustomStringConvertible {
    public var inventoryItemId: String
    public var locationId: String

    public init(inventoryItemId: String, locationId: String) {
        self.inventoryItemId = inventoryItemId
        self.locationId = locationId
    }

    public var description: String { "\(inventoryItemId)@\(locationId)" }
}

/// What the writer did with one batch of desired levels.
public struct LevelWriteReport: Sendable, Equatable {
    /// Written, with the quantity read before and the one set.
    public var written: [LevelKey: (from: Int, to: Int)] = [:]
    /// Already at the desired figure: nothing sent.
    public var unchanged: Set<LevelKey> = []
    /// Refused by Shopify for a reason of their own (unknown item, not stocked at the location...), with the code:
    /// dead-lettered or reported by the caller; they never block the other rows.
    public var rejected: [LevelKey: String] = [:]
    /// Compare-and-set conflicts (a sale or a manual edit moved a level between read and write), each re-read.
    public var staleConflicts = 0
    /// Levels that moved between every read and write of theirs (another app adjusting them as fast as the writer
    /// reads): not written this time; the caller tries them again later.
    public var keptMoving: Set<LevelKey> = []
    public init() {}

    public static func == (a: Self, b: Self) -> Bool {
        a.unchanged == b.unchanged && a.rejected == b.rejected && a.staleConflicts == b.staleConflicts && a.keptMoving == b.keptMoving
            && a.written.mapValues { [$0.from, $0.to] } == b.written.mapValues { [$0.from, $0.to] }
    }
}

/// Sets Shopify's `available` to desired figures, never blindly: each figure is decided on `available` and
/// `committed` read together a moment before, and each row carries `changeFromQuantity` = the `available` just read
/// (compare-and-set), so a sale, a cancellation's restock or an edit in between is refused as stale and decided
/// again. (Writing the `on_hand` that gives the figure, compared on `on_hand`, was tried: it lets a cancellation's
/// restock through when the rule's pending units are at zero, and the sale race oversold under load.) Each call
/// carries a deterministic `@idempotent` key derived from the decision that
/// asked for it (an ERP event, a sync run) and its rows, so a call retried after a timeout changes nothing twice,
/// while the same change asked for again later by another decision (a level back at 50 and set to 40 again) is a
/// new call and not answered from Shopify's memory of the first. At most 250 rows per call.
///
/// `CHANGE_FROM_QUANTITY_STALE` (Shopify rejects the whole call): the rows are read again and the call rebuilt from
/// the fresh figures. A row Shopify refuses for a reason of its own is taken out and reported; the other rows are
/// sent again without it, so one bad row never blocks 249 good ones.
public final class InventoryLevelWriter: Sendable {
    /// Decides the figure to write for each level from what was just read (nil: leave it alone).
    public typealias Decide = @Sendable ([LevelKey: LevelFigures]) async -> [LevelKey: Int]

    public let client: ShopifyAdminClient
    let shopId: String
    let maxRounds: Int
    let logger: Logger
    /// Told of every figure before its call is sent and after the answer (echo recognition).
    let memory: LevelMemory?
    /// Asked before every write: false while this process cannot confirm it is the one writer (`ActiveLease.mayWrite`).
    let fence: (@Sendable () -> Bool)?
    /// A test seam: runs after the levels were read and before they are written (a sale "between" the two).
    let afterRead: (@Sendable () async -> Void)?

    public init(
        client: ShopifyAdminClient, logger: Logger, maxRounds: Int = 8, memory: LevelMemory? = nil,
        afterRead: (@Sendable () async -> Void)? = nil, fence: (@Sendable () -> Bool)? = nil
    ) {
        self.fence = fence
        self.client = client
        self.shopId = client.configuration.shopId
        self.maxRounds = maxRounds
        self.logger = logger
        self.memory = memory
        self.afterRead = afterRead
    }

    /// Writes fixed figures (the last per key wins), 250 rows per call.
    ///
    /// - Parameter decision: what asked for these figures, stable across retries of the same request (the ERP
    ///   event's id, the full sync's run id): part of every idempotency key.
    public func write(
        _ desired: [LevelKey: Int], decision: String, reason: String = "correction"
    ) async throws(ShopifyAdminError) -> LevelWriteReport {
        try await write(Set(desired.keys), decision: decision, reason: reason) { _ in desired }
    }

    /// Writes what `decide` makes of each level's fresh figures, 250 rows per call: the figures are read (or
    /// `known`, for the first round: the full sync's bulk read), decided, and written compare-and-set; a conflict
    /// reads and decides again.
    ///
    /// - Parameter movingRounds: how many reads and writes of its own a level that moved between its read and its
    ///   write gets before it is reported `keptMoving` (nil: `maxRounds`). The coalesced delta path gives it one (a
    ///   sale that moved a level once is written at once) and leaves a level that keeps moving to a paced retry
    ///   outside the shop's write pipeline (`ShopInventorySync`), so it never holds up the writes behind it.
    public func write(
        _ keys: Set<LevelKey>, decision: String, reason: String = "correction", known: [LevelKey: LevelFigures]? = nil,
        movingRounds: Int? = nil, decide: Decide
    ) async throws(ShopifyAdminError) -> LevelWriteReport {
        var report = LevelWriteReport()
        let sorted = keys.sorted { $0.description < $1.description }
        var start = 0
        while start < sorted.count {
            let chunk = Array(sorted[start..<min(start + 250, sorted.count)])
            try await writeChunk(
                chunk, decision: decision, reason: reason, known: known, movingRounds: movingRounds ?? maxRounds, decide: decide,
                into: &report)
            start += 250
        }
        return report
    }

    private func writeChunk(
        _ chunk: [LevelKey], decision: String, reason: String, known: [LevelKey: LevelFigures]?, movingRounds: Int,
        decide: Decide, into report: inout LevelWriteReport
    ) async throws(ShopifyAdminError) {
        // Shopify refuses a whole call when one row is stale. The rows that were not stale still hold (their figures
        // were not what moved): they are sent again at once, without reading; the rows that moved get calls of their
        // own (`writeMoving`), so a level another app or a POS keeps adjusting never holds back the others.
        let current: [LevelKey: LevelFigures]
        if let known {
            current = Dictionary(chunk.compactMap { k in known[k].map { (k, $0) } }, uniquingKeysWith: { a, _ in a })
        } else {
            current = try await read(chunk)
        }
        await afterRead?()
        var rows = try await decideRows(chunk, current: current, decide: decide, into: &report)
        var moving: [LevelKey] = []
        var round = 0
        while !rows.isEmpty {
            round += 1
            // Applied: nothing comes back. Refused: the stale rows and the still valid ones (a row refused for a
            // reason of its own is reported and dropped).
            let outcome = try await send(rows, decision: decision, reason: reason, into: &report)
            moving += outcome.stale
            rows = outcome.stillValid
            if round >= maxRounds {
                moving += rows.map(\.key)
                break
            }
        }
        // One read and one call for all the rows that moved (a busy shop has several: sales, cancellations); only
        // those that moved again get calls of their own.
        if moving.count > 1 {
            let again = try await read(moving)
            await afterRead?()
            let retry = try await decideRows(moving, current: again, decide: decide, into: &report)
            moving = []
            if !retry.isEmpty {
                let outcome = try await send(retry, decision: decision, reason: reason, into: &report)
                moving = outcome.stale
                if !outcome.stillValid.isEmpty {
                    let last = try await send(outcome.stillValid, decision: decision, reason: reason, into: &report)
                    moving += last.stale + last.stillValid.map(\.key)
                }
            }
        }
        for key in moving {
            try await writeMoving(key, decision: decision, reason: reason, rounds: movingRounds, decide: decide, into: &report)
        }
    }

    /// One level that moved between its read and its write, alone in its calls: read, decided and written again,
    /// `rounds` times at most, pausing between rounds (0.25 s, doubling to 4 s). Still moving then: reported
    /// `keptMoving` (the caller tries it again later, paced); never an outage.
    private func writeMoving(
        _ key: LevelKey, decision: String, reason: String, rounds: Int, decide: Decide, into report: inout LevelWriteReport
    ) async throws(ShopifyAdminError) {
        var pause = Duration.milliseconds(250)
        for round in 0..<max(1, rounds) {
            if round > 0 {
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(4))
            }
            let current = try await read([key])
            await afterRead?()
            let rows = try await decideRows([key], current: current, decide: decide, into: &report)
            if rows.isEmpty { return }
            let outcome = try await send(rows, decision: decision, reason: reason, into: &report)
            if outcome.stale.isEmpty { return }
        }
        report.keptMoving.insert(key)
        Counter(label: "inventory_level_kept_moving_total", dimensions: [("shop", shopId)]).increment()
        logger.info(
            "inventory level kept moving while being written; tried again later",
            metadata: ["inventory_level": "\(key)", "rounds": "\(rounds)"])
    }

    /// The rows to send for `keys` from the figures just read: a level not stocked at its location is reported, one
    /// already at its figure counted unchanged.
    private func decideRows(
        _ keys: [LevelKey], current: [LevelKey: LevelFigures], decide: Decide, into report: inout LevelWriteReport
    ) async throws(ShopifyAdminError) -> [Row] {
        // Picked by key from `current`, not filtered out of it: a full sync's `known` holds every level of the
        // shop, and filtering 300,000 levels by a 250-key array once a chunk made the syncer, not Shopify's
        // budget, the limit (about 2 s a call at 100,000 SKUs x 3).
        let seen = Dictionary(keys.compactMap { key in current[key].map { (key, $0) } }, uniquingKeysWith: { a, _ in a })
        let desired = await decide(seen)
        var rows: [Row] = []
        for key in keys {
            guard let now = current[key] else {
                report.rejected[key] = "ITEM_NOT_STOCKED_AT_LOCATION"
                continue
            }
            guard let quantity = desired[key] else { continue }
            if now.available == quantity {
                report.unchanged.insert(key)
            } else {
                rows.append(
                    Row(key: key, quantity: quantity, changeFrom: now.available))
            }
        }
        return rows
    }

    /// One call. Applied: recorded as written. Refused: rows Shopify refuses for a reason of their own are reported;
    /// the stale ones and the rows still valid (refused only with their call) are returned apart.
    private func send(
        _ rows: [Row], decision: String, reason: String, into report: inout LevelWriteReport
    ) async throws(ShopifyAdminError) -> (stale: [LevelKey], stillValid: [Row]) {
        let figures = Dictionary(rows.map { ($0.key, $0.quantity) }, uniquingKeysWith: { _, b in b })
        if let fence, !fence() {
            Counter(label: "inventory_fenced_writes_total", dimensions: [("shop", shopId)]).increment()
            logger.warning("not writing: this syncer cannot confirm it holds the lease (inventory_syncer.lease_ttl)")
            throw .unavailable("this syncer cannot confirm its lease: not writing to Shopify")
        }
        await memory?.willSend(figures)
        let errors: [UserError]
        do {
            errors = try await set(rows, decision: decision, reason: reason)
        } catch {
            await memory?.sent(figures, applied: true)
            throw error
        }
        await memory?.sent(figures, applied: errors.isEmpty)
        if errors.isEmpty {
            for r in rows { report.written[r.key] = (r.changeFrom, r.quantity) }
            return ([], [])
        }
        var stale: Set<LevelKey> = []
        var refused: Set<LevelKey> = []
        for e in errors {
            guard let i = e.rowIndex, i < rows.count else {
                // Not about a row (the reason, the name): nothing can be written until the code is fixed.
                throw .graphQL(["inventorySetQuantities: \(e.code ?? "?"): \(e.message)"])
            }
            if e.code == "CHANGE_FROM_QUANTITY_STALE" {
                stale.insert(rows[i].key)
                continue
            }
            report.rejected[rows[i].key] = e.code ?? "UNKNOWN"
            refused.insert(rows[i].key)
            logger.warning(
                "inventory row refused", metadata: ["inventory_level": "\(rows[i].key)", "code": "\(e.code ?? "?")", "reason": "\(e.message)"])
        }
        if !stale.isEmpty {
            report.staleConflicts += stale.count
            Counter(label: "inventory_cas_conflicts_total", dimensions: [("shop", shopId)]).increment(by: stale.count)
            logger.info("levels moved between read and write; the others go again at once", metadata: ["rows": "\(stale.count)"])
        }
        let stillValid = rows.filter { !stale.contains($0.key) && !refused.contains($0.key) }
        return (rows.filter { stale.contains($0.key) }.map(\.key), stillValid)
    }

    struct Row {
        var key: LevelKey
        /// The `available` to set, and the one read (the compare value).
        var quantity: Int
        var changeFrom: Int
    }

    struct UserError: Decodable, Sendable {
        var code: String?
        var field: [String]?
        var message: String
        /// `["input", "quantities", "3", ...]` -> 3.
        var rowIndex: Int? {
            guard let f = field, f.count >= 3, f[1] == "quantities" else { return nil }
            return Int(f[2])
        }
    }

    /// The idempotency key of a call: the same decision with the same rows (quantity and compare value) gives the
    /// same key, so a call repeated after a timeout is recognised by Shopify; a call rebuilt from fresh figures, or
    /// asked for by another decision, gets a new one. `attempt` > 0 after `IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED`
    /// (Shopify: retry with a new key).
    static func idempotencyKey(shop: String, decision: String, reason: String, rows: [Row], attempt: Int = 0) -> String {
        let text = "\(shop)|\(decision)|\(attempt)|available|\(reason)|"
            + rows.map { "\($0.key)=\($0.quantity)/\($0.changeFrom)" }.joined(separator: ",")
        return SHA256.hash(data: Data(text.utf8)).prefix(16).map { String(format: "%02x", $0) }.joined()
    }

    private func set(_ rows: [Row], decision: String, reason: String) async throws(ShopifyAdminError) -> [UserError] {
        struct Quantity: Encodable, Sendable {
            var inventoryItemId: String
            var locationId: String
            var quantity: Int
            var changeFromQuantity: Int
        }
        struct Input: Encodable, Sendable {
            var name = "available"
            var reason: String
            var referenceDocumentUri: String
            var quantities: [Quantity]
        }
        struct Variables: Encodable, Sendable {
            var input: Input
            var idempotencyKey: String
        }
        struct Answer: Decodable, Sendable {
            struct Payload: Decodable, Sendable { var userErrors: [UserError] }
            var inventorySetQuantities: Payload?
        }
        let quantities = rows.map {
            Quantity(
                inventoryItemId: $0.key.inventoryItemId, locationId: $0.key.locationId, quantity: $0.quantity,
                changeFromQuantity: $0.changeFrom)
        }
        var attempt = 0
        for _ in 0..<5 {
            let key = Self.idempotencyKey(shop: shopId, decision: decision, reason: reason, rows: rows, attempt: attempt)
            let variables = Variables(
                input: Input(
                    reason: reason, referenceDocumentUri: "gid://shopify-erp-bridge/InventorySync/\(key)",
                    quantities: quantities),
                idempotencyKey: key)
            // The fence again right before the request leaves (after any wait for points).
            let answer = try await client.execute(
                ShopifyAdminDocuments.setQuantities, variables: variables, expectedCost: 10, as: Answer.self, mayProceed: fence)
            let errors = answer.inventorySetQuantities?.userErrors ?? []
            // Another call with this key is still running (a retry overtook the first): wait and ask again.
            if errors.contains(where: { $0.code == "IDEMPOTENCY_CONCURRENT_REQUEST" }) {
                try? await Task.sleep(for: .milliseconds(500))
                continue
            }
            // The first call with this key failed on Shopify's side: Shopify asks for a new key.
            if errors.contains(where: { $0.code == "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED" }) {
                attempt += 1
                continue
            }
            return errors
        }
        throw .unavailable("inventorySetQuantities: the same idempotency key stayed in use")
    }

    /// Reads `available` and `committed` of each level, up to 50 levels a call (cost about 4 each).
    func read(_ keys: [LevelKey]) async throws(ShopifyAdminError) -> [LevelKey: LevelFigures] {
        var out: [LevelKey: LevelFigures] = [:]
        var start = 0
        while start < keys.count {
            let chunk = Array(keys[start..<min(start + 50, keys.count)])
            let document = ShopifyAdminDocuments.levels(count: chunk.count)
            var variables: [String: String] = [:]
            for (i, k) in chunk.enumerated() {
                variables["i\(i)"] = k.inventoryItemId
                variables["l\(i)"] = k.locationId
            }
            let answer = try await client.execute(
                document, variables: variables, expectedCost: 4 * chunk.count, as: [String: LevelAnswer?].self)
            for (i, k) in chunk.enumerated() {
                guard let quantities = answer["r\(i)"]??.inventoryLevel?.quantities,
                    let available = quantities.first(where: { $0.name == "available" })?.quantity
                else { continue }
                out[k] = LevelFigures(available: available, committed: quantities.first(where: { $0.name == "committed" })?.quantity ?? 0)
            }
            start += 50
        }
        return out
    }

    struct LevelAnswer: Decodable, Sendable {
        struct Level: Decodable, Sendable {
            struct Quantity: Decodable, Sendable {
                var name: String
                var quantity: Int
            }
            var quantities: [Quantity]
        }
        var inventoryLevel: Level?
    }
}
