import BridgeDomain
import BridgeMessaging
import ERP
import Foundation
import Logging
import Messaging
import Metrics
import ServiceLifecycle
import Shopify

/// `bridgectl inventory sync`'s request, sent to the active syncer on `q.erp-inventory` (through `bridge.work`).
public struct FullSyncRequest: Codable, Sendable {
    public static let topic = "inventory.sync.requested"
    public static let completedTopic = BridgeEvents.inventorySyncCompleted
    public var shop: String
    public var dryRun: Bool
    public var runId: String

    public init(shop: String, dryRun: Bool, runId: String) {
        self.shop = shop
        self.dryRun = dryRun
        self.runId = runId
    }

    enum CodingKeys: String, CodingKey {
        case shop
        case dryRun = "dry_run"
        case runId = "run_id"
    }
}

/// The reconciler's decision for the active syncer, on `q.erp-inventory` (through `bridge.work`): these levels of
/// one shop drifted from the ERP's figure; bring them back. The syncer decides the figure itself, on fresh reads and
/// its own picture (compare-and-set; re-read from the ERP where the reconciler saw another figure), so a correction that arrives after a sale or a newer ERP change writes the
/// current target, and one that finds the level already right writes nothing. Safe to replay.
public struct InventoryCorrection: Codable, Sendable, Equatable {
    public static let topic = "inventory.correct"
    public struct Key: Codable, Sendable, Equatable {
        public var sku: String
        public var warehouse: String
        /// The ERP's figure when the reconciler read it. One the syncer does not hold means it missed a change (a
        /// lost push): it reads the ERP's snapshot again before it corrects.
        public var erpAvailable: Int?
        public init(sku: String, warehouse: String, erpAvailable: Int? = nil) {
            self.sku = sku
            self.warehouse = warehouse
            self.erpAvailable = erpAvailable
        }

        enum CodingKeys: String, CodingKey {
            case sku, warehouse
            case erpAvailable = "erp_available"
        }
    }
    public var shop: String
    public var runId: String
    public var keys: [Key]

    public init(shop: String, runId: String, keys: [Key]) {
        self.shop = shop
        self.runId = runId
        self.keys = keys
    }

    enum CodingKeys: String, CodingKey {
        case shop, keys
        case runId = "run_id"
    }

    /// Published confirmed and mandatory to `q.erp-inventory`, message id `<run id>-<chunk>`.
    public func publish(on publisher: AMQPConnection, chunk: Int) async throws {
        let id = "\(Self.topic)-\(runId)-\(chunk)"
        let envelope = InboundEnvelope(
            source: .reconciler, shopDomain: nil, topic: Self.topic, deliveryId: id, eventId: id,
            receivedAt: Timestamp.string(milliseconds: Timestamp.milliseconds(Date())))
        try await publisher.publish(
            exchange: BridgeTopology.work, routingKey: BridgeTopology.erpInventory.name, body: Array(try JSONEncoder().encode(self)),
            properties: envelope.properties(appId: "shopify-erp-bridge/reconciler"), mandatory: true)
    }
}

/// What one full sync of one shop found and did.
public struct FullSyncReport: Sendable, Codable, Equatable {
    public var shop: String
    public var runId: String
    public var dryRun: Bool
    /// Levels compared (ERP SKU x mapped warehouse, with the SKU in Shopify).
    public var compared = 0
    /// Levels whose Shopify figure differed from the target.
    public var drifted = 0
    /// Sum of |Shopify - target| over the drifted levels.
    public var driftUnits = 0
    /// Levels written (0 in a dry run).
    public var corrected = 0
    /// Rows Shopify refused, with its code (the item is not stocked at the location...).
    public var rejected: [String: String] = [:]
    /// ERP SKUs with no variant in Shopify (first 20), and how many in all.
    public var unknownSKUs: [String] = []
    public var unknownSKUCount = 0
    /// Levels the ERP has for a mapped warehouse that Shopify does not stock at the location.
    public var notStocked = 0
    /// Levels that already matched the rule.
    public var inSync = 0
    public var seconds: Double = 0
    /// Of `seconds`: reading Shopify (the bulk query) and writing the corrections.
    public var shopifyReadSeconds: Double = 0
    public var writeSeconds: Double = 0
    /// Admin API calls and cost points the corrections took, and how many came back THROTTLED.
    public var writeCalls = 0
    public var writePoints = 0
    public var writeThrottled = 0
    /// The first drifted levels (for the report and `--dry-run`): SKU@warehouse, Shopify's figure, the target.
    public var samples: [Sample] = []

    public init(shop: String, runId: String, dryRun: Bool) {
        self.shop = shop
        self.runId = runId
        self.dryRun = dryRun
    }

    public struct Sample: Sendable, Codable, Equatable {
        public var sku: String
        public var warehouse: String
        public var shopify: Int
        public var target: Int
    }

    enum CodingKeys: String, CodingKey {
        case shop, dryRun = "dry_run", runId = "run_id", compared, drifted, driftUnits = "drift_units", corrected, rejected
        case unknownSKUs = "unknown_skus", unknownSKUCount = "unknown_sku_count", notStocked = "not_stocked"
        case inSync = "in_sync", seconds, samples, shopifyReadSeconds = "shopify_read_seconds"
        case writeSeconds = "write_seconds", writeCalls = "write_calls", writePoints = "write_points"
        case writeThrottled = "write_throttled"
    }
}

/// The periodic correction: the ERP's whole snapshot against Shopify's levels read with one bulk query (JSONL),
/// every difference written through the same compare-and-set writer (the bulk figures serve as the first compare
/// value; a level a sale moved since is re-read). The bulk read also (re)loads the shop's SKU map. Drift is
/// exported per run (`inventory_drift_units` histogram, `inventory_sync_corrected_total`,
/// `inventory_sync_runs_total{outcome}`) and published on `bridge.events` as `inventory.sync.completed`.
public struct FullSync: Sendable {
    public let erp: RESTERPClient
    public let picture: StockPicture
    /// Publishes the run's event; nil: no event (bridgectl's dry run).
    public let publisher: AMQPConnection?
    let logger: Logger

    public init(erp: RESTERPClient, picture: StockPicture, publisher: AMQPConnection?, logger: Logger) {
        self.erp = erp
        self.picture = picture
        self.publisher = publisher
        self.logger = logger
    }

    /// Reads the ERP's snapshot into the picture (a figure a newer change replaced is kept: by arrival during the
    /// read, and with `bySequence` by the sequence each page reflects).
    ///
    /// - Parameter bySequence: the adopted figures take their page's sequence, so changes up to it still queued are
    ///   skipped as older. Only for a run that then writes every level of every shop (the scheduled full sync): a
    ///   caller that writes some levels only (the reconciler's correction, a sync of one shop) would leave the
    ///   others' queued changes skipped and their new figures unwritten until the next full sync.
    public func readERP(bySequence: Bool = false) async throws -> [StockKey: Int] {
        let since = await picture.currentGeneration
        var levels: [StockKey: Int] = [:]
        var adopt: [StockKey: (available: Int, asOfSeq: Int64?)] = [:]
        let snapshot = try await erp.inventorySnapshot()
        for l in snapshot.levels {
            let key = StockKey(sku: l.sku, warehouse: l.warehouse)
            levels[key] = l.available
            adopt[key] = (l.available, bySequence ? l.asOfSeq : nil)
        }
        await picture.adopt(adopt, since: since)
        await picture.offerFeedStart(snapshot.feedCursor, final: true)
        return levels
    }

    /// Counts what the ERP holds for open sales orders (the allocation count lives in memory: after a restart or a
    /// takeover it starts from the ERP's own figures). An ERP without the endpoint (404) leaves the count to the
    /// stock changes from now on: Shopify then shows less of those orders' SKUs (never more) until they are
    /// fulfilled.
    public func loadAllocations() async throws {
        guard let open = try await openAllocations() else {
            logger.warning(
                "the ERP has no open-allocations endpoint: units it holds for orders placed before this start are not counted",
                metadata: ["endpoint": "/api/v1/inventory/allocations", "effect": "Shopify shows less of those SKUs until the orders are fulfilled"])
            return
        }
        let orders = await picture.adoptAllocations(open)
        await picture.offerFeedStart(open.feedCursor, final: false)
        logger.info(
            "allocations counted from the ERP",
            metadata: ["orders": "\(orders)", "lines": "\(open.allocations.count)", "as_of_seq": "\(open.asOfSeq)"])
    }

    /// Reads from Shopify what it still commits for each order the ERP holds units for and this syncer has no
    /// version of yet (at start, after `loadAllocations`: the order webhooks of before the start were taken by the
    /// process that ran then). Without it such an order's units would count as pending although the ERP holds them:
    /// Shopify would show less. An order Shopify no longer has commits nothing and needs no version.
    public func loadCommitments(_ shop: ShopInventorySync) async throws {
        let shopId = shop.shop.id
        let ids = await picture.ordersWithoutCommitment(shop: shopId).compactMap(ERPReference.orderId(ofSalesOrder:))
        guard !ids.isEmpty else { return }
        let started = ContinuousClock.now
        let orders = try await shop.client.orderLines(ids: ids)
        for o in orders {
            // `unfulfilledQuantity` is not lowered by units removed in an edit or refunded; `currentQuantity` is.
            let units = StockPicture.Commitment.perSKU(o.lines.map { ($0.sku, min($0.unfulfilled, $0.current)) })
            let taken = StockPicture.Commitment.perSKU(o.lines.map { ($0.sku, $0.current) })
            // A one-second version: a webhook of the same second is merged with it (the less shown), not ordered.
            let version = Timestamp.milliseconds(o.updatedAt) ?? 0
            await picture.observe(
                shop: shopId, orderRef: ERPReference.salesOrder(shop: shopId, orderId: o.orderId),
                .init(version: version, units: units, taken: taken, cancelled: o.cancelled, exact: false))
        }
        if orders.count < ids.count {
            // Not found by the search (deleted, or older than the app may read): they commit nothing in Shopify that
            // this syncer can see; their ERP allocation matches nothing.
            logger.notice(
                "orders the ERP holds units for not found in Shopify", metadata: ["shop": "\(shopId)", "missing": "\(ids.count - orders.count)"])
        }
        logger.info(
            "open orders the ERP holds units for read from Shopify",
            metadata: [
                "shop": "\(shopId)", "orders": "\(ids.count)", "found": "\(orders.count)",
                "seconds": "\((ContinuousClock.now - started).seconds)",
            ])
    }

    /// The ERP's open allocations; nil when it does not offer them (404).
    private func openAllocations() async throws(ERPError) -> ERPOpenAllocations? {
        do {
            return try await erp.openAllocations()
        } catch {
            if error.code == .notFound { return nil }
            throw error
        }
    }

    /// Reads Shopify's levels with a bulk query and loads the shop's SKU map from it.
    public func readShopify(_ shop: ShopInventorySync) async throws -> ShopifyInventorySnapshot {
        let lines = try await shop.client.runBulkQuery(ShopifyAdminDocuments.bulkInventoryQuery)
        let snapshot = try ShopifyInventorySnapshot(jsonl: lines)
        await shop.catalogue.load(snapshot.itemsBySKU)
        return snapshot
    }

    /// One shop: compare (with `erpLevels` from `readERP`) and, unless `dryRun`, correct.
    public func run(
        _ shop: ShopInventorySync, erpLevels: [StockKey: Int], dryRun: Bool, runId: String = UUID().uuidString.lowercased(),
        catalogueLoaded: (@Sendable () async -> Void)? = nil
    ) async throws -> FullSyncReport {
        let started = ContinuousClock.now
        var report = FullSyncReport(shop: shop.shop.id, runId: runId, dryRun: dryRun)
        let snapshot = try await readShopify(shop)
        report.shopifyReadSeconds = (ContinuousClock.now - started).seconds
        await catalogueLoaded?()
        let comparison = await Self.compare(shop, erpLevels: erpLevels, snapshot: snapshot, into: &report)
        let drift = Recorder(label: "inventory_drift_units", dimensions: [("shop", shop.shop.id)], aggregate: true)
        for d in comparison.drifts { drift.record(abs(d.shopify - d.target)) }
        let corrections = Set(comparison.drifts.map(\.level))
        let names = Dictionary(comparison.drifts.map { ($0.level, $0.key) }, uniquingKeysWith: { a, _ in a })
        if !dryRun, !corrections.isEmpty {
            let writeStarted = ContinuousClock.now
            let before = shop.client.stats
            // The bulk figures chose the levels to correct; each is read again right before its write and decided on
            // that read (about 4 points a level), so the decision rests on figures the compare-and-set checks, not
            // on minutes-old ones: a sale plus an equal receipt since the bulk read cannot slip through.
            let written = try await shop.correct(corrections, known: nil, decision: "sync-\(runId)")
            let after = shop.client.stats
            report.writeSeconds = (ContinuousClock.now - writeStarted).seconds
            report.writeCalls = after.requests - before.requests
            report.writePoints = after.pointsUsed - before.pointsUsed
            report.writeThrottled = after.throttled - before.throttled
            report.corrected = written.written.count
            report.rejected = Dictionary(
                written.rejected.map { (names[$0.key].map(\.description) ?? $0.key.description, $0.value) },
                uniquingKeysWith: { a, _ in a })
            Counter(label: "inventory_sync_corrected_total", dimensions: [("shop", shop.shop.id)]).increment(by: report.corrected)
        }
        report.seconds = (ContinuousClock.now - started).seconds
        Counter(label: "inventory_sync_runs_total", dimensions: [("shop", shop.shop.id), ("outcome", "completed")]).increment()
        logger.notice(
            "inventory full sync completed",
            metadata: [
                "shop": "\(shop.shop.id)", "run_id": "\(runId)", "dry_run": "\(dryRun)", "compared": "\(report.compared)",
                "drifted": "\(report.drifted)", "drift_units": "\(report.driftUnits)", "corrected": "\(report.corrected)",
                "rejected": "\(report.rejected.count)", "unknown_skus": "\(report.unknownSKUCount)",
                "seconds": "\(String(format: "%.1f", report.seconds))",
            ])
        if let publisher { await publish(report, publisher) }
        return report
    }

    /// One level whose Shopify figure differs from what the rule says it should show.
    public struct Drift: Sendable, Equatable {
        public var key: StockKey
        public var level: LevelKey
        public var shopify: Int
        public var target: Int
    }

    /// Compares the ERP's levels with Shopify's snapshot through the shop's rule (safety stock, units the ERP has
    /// not allocated to Shopify's orders yet): counts into `report` (compared, in sync, drifted, unknown SKUs, not
    /// stocked, the first 20 samples) and returns every drifted level. Writes nothing.
    public static func compare(
        _ shop: ShopInventorySync, erpLevels: [StockKey: Int], snapshot: ShopifyInventorySnapshot, into report: inout FullSyncReport
    ) async -> (drifts: [Drift], unknownSKUs: Set<String>) {
        var drifts: [Drift] = []
        var unknown: Set<String> = []
        for key in erpLevels.keys.sorted(by: { ($0.sku, $0.warehouse) < ($1.sku, $1.warehouse) }) {
            guard let location = shop.locations[key.warehouse] else { continue }
            guard let item = snapshot.itemsBySKU[key.sku] else {
                unknown.insert(key.sku)
                continue
            }
            let level = LevelKey(inventoryItemId: item, locationId: location)
            guard let figures = snapshot.levels[level] else {
                report.notStocked += 1
                continue
            }
            let shown = figures.available
            guard let target = await shop.targets.target(key, committed: figures.committed) else { continue }
            report.compared += 1
            if shown == target.quantity {
                report.inSync += 1
                continue
            }
            report.drifted += 1
            report.driftUnits += abs(shown - target.quantity)
            if report.samples.count < 20 {
                report.samples.append(.init(sku: key.sku, warehouse: key.warehouse, shopify: shown, target: target.quantity))
            }
            drifts.append(Drift(key: key, level: level, shopify: shown, target: target.quantity))
        }
        report.unknownSKUCount = unknown.count
        report.unknownSKUs = Array(unknown.sorted().prefix(20))
        return (drifts, unknown)
    }

    /// The run's result as an event on `bridge.events` (`inventory.sync.completed`, dry runs too: `bridgectl`
    /// waits for it); a failed publish is logged, the sync itself stands.
    func publish(_ report: FullSyncReport, _ publisher: AMQPConnection) async {
        let envelope = InboundEnvelope(
            source: .bridge, shopDomain: nil, topic: FullSyncRequest.completedTopic, deliveryId: "inventory-sync-\(report.runId)",
            eventId: "inventory-sync-\(report.runId)", receivedAt: Timestamp.string(milliseconds: Timestamp.milliseconds(Date())))
        do {
            let body = try JSONEncoder().encode(report)
            try await publisher.publish(
                exchange: BridgeTopology.events, routingKey: FullSyncRequest.completedTopic, body: Array(body),
                properties: envelope.properties(), mandatory: false)
        } catch {
            logger.warning("could not publish the sync's event", metadata: ["error": "\(error)"])
        }
    }
}

/// Runs the full sync at start (which also loads the SKU maps the deltas need) and every
/// `inventory_syncer.full_sync_interval`, while this process holds the lease. A failed run is logged, counted
/// (`inventory_sync_runs_total{outcome="failed"}`) and tried again after a short pause.
public struct FullSyncService: Service {
    let sync: FullSync
    let syncer: InventorySyncer
    let interval: Duration
    let logger: Logger

    public init(sync: FullSync, syncer: InventorySyncer, interval: Duration, logger: Logger) {
        self.sync = sync
        self.syncer = syncer
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await syncer.lease?.waitUntilActive()
            guard !syncer.shops.isEmpty else {
                logger.warning("no shops configured: the inventory-syncer has nothing to sync (shops, shop.<id>.*)")
                syncer.markCatalogueReady()
                try? await gracefulShutdown()
                return
            }
            var allocationsLoaded = false
            while !Task.isCancelled {
                var failed = false
                do {
                    if !allocationsLoaded {
                        try await sync.loadAllocations()
                        for shop in syncer.shops { try await sync.loadCommitments(shop) }
                        allocationsLoaded = true
                    }
                    let levels = try await sync.readERP(bySequence: true)
                    for (i, shop) in syncer.shops.enumerated() {
                        let syncer = self.syncer
                        let ready: (@Sendable () async -> Void)? =
                            i == syncer.shops.count - 1 ? { @Sendable in syncer.markCatalogueReady() } : nil
                        _ = try await sync.run(shop, erpLevels: levels, dryRun: false, catalogueLoaded: ready)
                    }
                } catch is CancellationError {
                    return
                } catch {
                    failed = true
                    Counter(label: "inventory_sync_runs_total", dimensions: [("shop", "*"), ("outcome", "failed")]).increment()
                    logger.error("inventory full sync failed; trying again", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: failed ? min(interval, .seconds(10)) : interval)
            }
        }
    }
}
