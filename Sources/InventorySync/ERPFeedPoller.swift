import BridgeDomain
import BridgeMessaging
import ERP
import Foundation
import Logging
import Messaging
import Metrics
import ServiceLifecycle
import Worker

/// For ERPs that cannot push: polls `GET /api/v1/inventory/changes?cursor=` and enqueues each change on
/// `q.erp-inventory` (through `bridge.work`, publisher-confirmed), where it is handled exactly like a pushed one;
/// with push on as well, the second copy of a change is recognised by its sequence and changes nothing. The cursor
/// is saved to `inventory_syncer.state_path` only after the broker confirmed every change before it, so a crash
/// re-polls (and re-enqueues harmlessly) instead of skipping. Runs only while this process holds the lease.
public struct ERPFeedPoller: Service {
    let erp: RESTERPClient
    let picture: StockPicture
    let publisher: AMQPConnection
    let interval: Duration
    let cursorFile: CursorFile
    let lease: ActiveLease?
    let logger: Logger

    public init(
        erp: RESTERPClient, picture: StockPicture, publisher: AMQPConnection, interval: Duration, statePath: String,
        lease: ActiveLease?, logger: Logger
    ) {
        self.erp = erp
        self.picture = picture
        self.publisher = publisher
        self.interval = interval
        self.cursorFile = CursorFile(path: statePath)
        self.lease = lease
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await lease?.waitUntilActive()
            guard var cursor = await startingCursor() else { return }
            logger.info("polling the ERP's stock change feed", metadata: ["cursor": "\(cursor)", "interval": "\(interval)"])
            let polls = Counter(label: "inventory_feed_polls_total")
            let enqueued = Counter(label: "inventory_feed_changes_total")
            let failures = Counter(label: "inventory_feed_failures_total")
            while !Task.isCancelled {
                var full = false
                do {
                    let page = try await erp.inventoryChanges(after: cursor, limit: 500)
                    polls.increment()
                    for change in page.changes { try await enqueue(change) }
                    enqueued.increment(by: page.changes.count)
                    if page.cursor != cursor, !page.changes.isEmpty {
                        cursor = page.cursor
                        try cursorFile.save(cursor)
                    }
                    full = page.changes.count == 500
                } catch is CancellationError {
                    return
                } catch {
                    failures.increment()
                    logger.warning("ERP change feed poll failed; trying again", metadata: ["error": "\(error)", "cursor": "\(cursor)"])
                }
                if !full { try? await Task.sleep(for: interval) }
            }
        }
    }

    /// The saved cursor; without one (a first start, a standby on another machine), the cursor of the ERP
    /// figures this process loaded at start (`StockPicture.feedStart`): changes before it are in them, so the feed's
    /// whole history is not read again. From an ERP that gives no cursor: "0". Nil when cancelled while waiting.
    func startingCursor() async -> String? {
        if let saved = cursorFile.load() { return saved }
        while !(await picture.feedStartKnown) {
            guard (try? await Task.sleep(for: .milliseconds(100))) != nil else { return nil }
        }
        let cursor = await picture.feedStart ?? "0"
        logger.info("no saved feed cursor: starting where the ERP figures loaded at start stand", metadata: ["cursor": "\(cursor)"])
        return cursor
    }

    func enqueue(_ change: ERPStockChange) async throws {
        let id = "erp-feed-\(change.seq)"
        let envelope = InboundEnvelope(
            source: .erp, shopDomain: nil, topic: "inventory.changed", deliveryId: id, eventId: id,
            triggeredAt: change.changedAt, receivedAt: Timestamp.string(milliseconds: Timestamp.milliseconds(Date())))
        try await publisher.publish(
            exchange: BridgeTopology.work, routingKey: BridgeTopology.erpInventory.name,
            body: Array(try JSONEncoder().encode(change)), properties: envelope.properties())
    }
}

/// The feed cursor on disk: a small JSON file written atomically (write a temporary file, rename).
struct CursorFile: Sendable {
    let path: String

    struct State: Codable { var erp_feed_cursor: String }

    func load() -> String? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return (try? JSONDecoder().decode(State.self, from: data))?.erp_feed_cursor
    }

    func save(_ cursor: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try JSONEncoder().encode(State(erp_feed_cursor: cursor)).write(to: url, options: .atomic)
    }
}
