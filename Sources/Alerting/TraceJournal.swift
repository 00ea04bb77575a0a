import BridgeDomain
import BridgeMessaging
import Foundation
import GRDB

/// The alerter's record of what the workers did with each delivery (`message.traced` events), kept in SQLite for
/// `alerter.trace_retention`, and the journey of one order or one webhook read back from it (`GET /trace`,
/// `bridgectl trace`).
///
/// What it can show is what the workers recorded: a message still waiting in its queue, or one whose steps were
/// dropped (the alerter was down longer than the events' queue kept them), has no steps; the ledger and the
/// dead-letter queue remain the authority for what was applied and what waits.
public final class TraceJournal: Sendable {
    private let db: DatabaseQueue
    public let retention: Duration

    /// `path`: an SQLite file, or `:memory:`.
    public init(path: String, retention: Duration = .seconds(7 * 86400)) throws {
        self.retention = retention
        if path == ":memory:" || path.isEmpty {
            db = try DatabaseQueue()
        } else {
            let dir = (path as NSString).deletingLastPathComponent
            if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
            var config = Configuration()
            config.prepareDatabase { db in
                try db.execute(sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA synchronous = NORMAL")
            }
            db = try DatabaseQueue(path: path, configuration: config)
        }
        try db.write { db in
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS trace_steps (
                        id INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, shop TEXT, webhook_id TEXT NOT NULL,
                        subject TEXT, step TEXT NOT NULL);
                    CREATE INDEX IF NOT EXISTS trace_steps_subject ON trace_steps (subject);
                    CREATE INDEX IF NOT EXISTS trace_steps_webhook ON trace_steps (webhook_id);
                    CREATE INDEX IF NOT EXISTS trace_steps_at ON trace_steps (at_ms);
                    """)
        }
    }

    /// Stores a batch of steps (one transaction).
    public func append(_ steps: [BridgeEvents.TraceStep]) throws {
        guard !steps.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let rows = try steps.map { s in
            (Timestamp.milliseconds(s.at) ?? 0, s.shop, s.webhookId, s.subject, String(decoding: try encoder.encode(s), as: UTF8.self))
        }
        try db.write { db in
            let statement = try db.makeStatement(sql: "INSERT INTO trace_steps (at_ms, shop, webhook_id, subject, step) VALUES (?, ?, ?, ?, ?)")
            for r in rows { try statement.execute(arguments: [r.0, r.1, r.2, r.3, r.4]) }
        }
    }

    /// Deletes steps older than the retention; returns how many.
    @discardableResult
    public func prune(now: Date = Date()) throws -> Int {
        let cutoff = Timestamp.milliseconds(now) - Int64(retention.wholeMilliseconds)
        return try db.write { db in
            try db.execute(sql: "DELETE FROM trace_steps WHERE at_ms < ?", arguments: [cutoff])
            return db.changesCount
        }
    }

    public var count: Int { (try? db.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM trace_steps") ?? 0 }) ?? 0 }

    /// The steps of an order (`order`: every delivery a worker found to be about it, and every other step of those
    /// deliveries) or of one delivery (`webhook`), optionally of one shop, in time order.
    public func steps(order: String? = nil, webhook: String? = nil, shop: String? = nil, limit: Int = 2000) throws -> [BridgeEvents.TraceStep] {
        var webhooks: Set<String> = []
        if let webhook { webhooks.insert(webhook) }
        let raw: [String] = try db.read { db in
            if let order {
                let ids = try String.fetchAll(
                    db, sql: "SELECT DISTINCT webhook_id FROM trace_steps WHERE subject = ? AND (? IS NULL OR shop = ?)",
                    arguments: [order, shop, shop])
                webhooks.formUnion(ids)
            }
            guard !webhooks.isEmpty else { return [] }
            let marks = Array(repeating: "?", count: webhooks.count).joined(separator: ", ")
            var arguments = StatementArguments(Array(webhooks))
            arguments += [shop, shop, limit]
            return try String.fetchAll(
                db,
                sql: "SELECT step FROM trace_steps WHERE webhook_id IN (\(marks)) AND (? IS NULL OR shop = ?) ORDER BY at_ms, id LIMIT ?",
                arguments: arguments)
        }
        let decoder = JSONDecoder()
        return raw.compactMap { try? decoder.decode(BridgeEvents.TraceStep.self, from: Data($0.utf8)) }
    }
}

/// One line of a message's journey as `bridgectl trace` prints it.
public struct TraceLine: Codable, Sendable, Equatable {
    public var at: String
    /// `shopify`, `ingest`, `bridgectl` or the work queue.
    public var actor: String
    /// `triggered`, `received`, `replayed`, or the worker's result: `handled`, `retry`, `dead_lettered`, `requeued`.
    public var event: String
    /// The handler's outcome (`created`...) or the error class.
    public var outcome: String?
    public var detail: String?
    public var webhookId: String
    public var topic: String
    public var shop: String?
    /// Deliveries of this message to a worker so far, this one included (restarts at 1 after a replay).
    public var delivery: Int?
    public var instance: String?

    enum CodingKeys: String, CodingKey {
        case at, actor, event, outcome, detail, topic, shop, delivery, instance
        case webhookId = "webhook_id"
    }

    /// The journey: Shopify's trigger, ingest's receipt and each replay (read from the envelopes the steps carry),
    /// then every step, in time order (ties in that order).
    public static func journey(_ steps: [BridgeEvents.TraceStep]) -> [TraceLine] {
        var lines: [(ms: Int64, rank: Int, line: TraceLine)] = []
        var seen: Set<String> = []
        func once(_ key: String) -> Bool { seen.insert(key).inserted }
        for s in steps {
            if let t = s.triggeredAt, let ms = Timestamp.milliseconds(t), once("t|\(s.webhookId)|\(t)") {
                lines.append((ms, 0, TraceLine(at: Timestamp.string(milliseconds: ms), actor: "shopify", event: "triggered", webhookId: s.webhookId, topic: s.topic, shop: s.shop)))
            }
            if let r = s.receivedAt, let ms = Timestamp.milliseconds(r), once("r|\(s.webhookId)|\(r)") {
                lines.append(
                    (ms, 1, TraceLine(at: Timestamp.string(milliseconds: ms), actor: "ingest", event: "received", detail: "enqueued for \(s.queue)", webhookId: s.webhookId, topic: s.topic, shop: s.shop)))
            }
            if let r = s.replayedAt, let ms = Timestamp.milliseconds(r), once("p|\(s.webhookId)|\(r)") {
                lines.append(
                    (ms, 2, TraceLine(
                        at: Timestamp.string(milliseconds: ms), actor: "bridgectl", event: "replayed", detail: "from \(BridgeTopology.deadLetterQueue(of: s.queue)) (replay \(s.replays))",
                        webhookId: s.webhookId, topic: s.topic, shop: s.shop)))
            }
            let ms = Timestamp.milliseconds(s.at) ?? 0
            lines.append(
                (ms, 3, TraceLine(
                    at: s.at, actor: s.queue, event: s.result, outcome: s.outcome, detail: s.detail, webhookId: s.webhookId, topic: s.topic,
                    shop: s.shop, delivery: s.attempt + 1, instance: s.instance)))
        }
        return lines.enumerated().sorted { a, b in
            (a.element.ms, a.element.rank, a.offset) < (b.element.ms, b.element.rank, b.offset)
        }.map(\.element.line)
    }
}

extension TraceLine {
    /// The journey as `bridgectl trace` prints it: one line per step, then what to do about a delivery that ended
    /// dead-lettered.
    public static func render(_ lines: [TraceLine], subject: String) -> String {
        guard !lines.isEmpty else {
            return "\(subject): no steps recorded. Not yet handled (still queued: bridgectl status), older than "
                + "alerter.trace_retention, or a different id (order ids are Shopify's numeric ids)."
        }
        let webhooks = lines.reduce(into: [String]()) { if !$0.contains($1.webhookId) { $0.append($1.webhookId) } }
        var out = ["\(subject): \(webhooks.count) deliver\(webhooks.count == 1 ? "y" : "ies") (\(webhooks.joined(separator: ", "))), \(lines.count) steps"]
        let actorWidth = min(28, lines.map { $0.actor.count + ($0.delivery.map { " #\($0)".count } ?? 0) }.max() ?? 10)
        for l in lines {
            let actor = l.actor + (l.delivery.map { " #\($0)" } ?? "")
            var text = "\(l.at)  \(actor.padding(toLength: actorWidth, withPad: " ", startingAt: 0))  \(l.event.padding(toLength: 13, withPad: " ", startingAt: 0))  \(l.topic)"
            if let o = l.outcome { text += "  \(o)" }
            if let d = l.detail { text += ": \(d)" }
            if webhooks.count > 1 { text += "  [\(l.webhookId)]" }
            out.append(text)
        }
        // A delivery whose last step is a dead-letter waits in the DLQ (unless it was replayed since).
        for w in webhooks {
            guard let last = lines.last(where: { $0.webhookId == w }), last.event == "dead_lettered" else { continue }
            out.append("")
            out.append(
                "\(w) was dead-lettered (\(last.outcome ?? "?")) and not replayed since: bridgectl dlq show --queue \(last.actor) --id \(w); "
                    + "after the fix, bridgectl dlq replay --queue \(last.actor) --id \(w)")
        }
        return out.joined(separator: "\n")
    }
}
