import BridgeDomain
import ERP
import Foundation
import InventorySync
import Logging
import Messaging
import Metrics
import Shopify

/// Inventory (the ERP owns it): every SKU x mapped warehouse of the ERP's snapshot against Shopify's level, through
/// the syncer's own rule (ERP available - safety stock - units Shopify sold that the ERP has not allocated yet,
/// read from the ERP's open allocations at the start of the run), with the syncer's comparison (`FullSync.compare`).
///
/// - A level off by more than `reconciler.inventory.allowance` units: `drift_up` (Shopify shows more than the ERP
///   allows: an oversell risk) or `drift_down`; healed by a correction command to the active inventory-syncer on
///   `q.erp-inventory` (`InventoryCorrection`): the reconciler decides which levels, the syncer writes, on fresh
///   figures and compare-and-set, so a sale or an ERP change since the read is not overwritten with a stale figure.
/// - Off by at most the allowance: `within_allowance`, reported (changes in flight through the queues).
/// - ERP SKUs without a Shopify variant: `unknown_sku`, reported (the catalogue's business).
///
/// Nothing is written into the ERP, and nothing into Shopify by the reconciler itself; a policy that does not let
/// inventory flow into Shopify turns every difference into a report. A redelivered run repeats the comparison:
/// corrections are idempotent (a level already right is not written).
public struct InventoryReconciler: Sendable {
    public let shop: BridgeConfig.Shop
    public let client: ShopifyAdminClient
    public let erp: RESTERPClient
    public let publisher: AMQPConnection
    public let policy: SourceOfTruthPolicy
    public let settings: ReconcilerSettings
    public let syncerSettings: InventorySyncerSettings
    let logger: Logger

    /// Levels per correction command.
    static let chunk = 1000

    public init(
        shop: BridgeConfig.Shop, client: ShopifyAdminClient, erp: RESTERPClient, publisher: AMQPConnection,
        policy: SourceOfTruthPolicy, settings: ReconcilerSettings, syncerSettings: InventorySyncerSettings, logger: Logger
    ) {
        self.shop = shop
        self.client = client
        self.erp = erp
        self.publisher = publisher
        self.policy = policy
        self.settings = settings
        self.syncerSettings = syncerSettings
        self.logger = logger
    }

    /// Drift histogram buckets (units off), as in the report.
    static let buckets: [(label: String, upTo: Int)] = [("1", 1), ("2-5", 5), ("6-20", 20), ("21-100", 100), (">100", Int.max)]

    static func bucket(_ units: Int) -> String { buckets.first { units <= $0.upTo }!.label }

    public func run(_ request: ReconcileRequest, resumed: Bool, progress: ReconcileProgress.Sink?) async throws -> ReconcileReport {
        var report = ReconcileReport(
            runId: request.runId, domain: .inventory, shop: shop.id, dryRun: request.dryRun, trigger: request.trigger, startedAt: Date())
        report.resumed = resumed
        report.readMode = "bulk"
        let pointsBefore = client.stats.pointsUsed
        let mayHeal = policy.mayWrite(.inventory, into: .shopify)
        if !mayHeal {
            logger.warning(
                "source_of_truth does not let inventory flow into Shopify: differences are reported, not healed",
                metadata: ["owner": "\(policy.owner(of: .inventory))"])
        }
        // A picture of the ERP of this run's own: the snapshot and the open allocations, read now.
        let picture = StockPicture()
        let sync = FullSync(erp: erp, picture: picture, publisher: nil, logger: logger)
        let shopSide = ShopInventorySync(
            shop: shop, client: client, picture: picture, settings: syncerSettings, policy: policy, logger: logger)
        await progress?(.init(runId: request.runId, phase: "reading ERP stock", done: 0, total: nil))
        try await sync.loadAllocations()
        try await sync.loadCommitments(shopSide)
        let erpLevels = try await sync.readERP()
        await progress?(.init(runId: request.runId, phase: "reading Shopify levels", done: 0, total: nil))
        let snapshot = try await sync.readShopify(shopSide)
        await progress?(.init(runId: request.runId, phase: "comparing", done: 0, total: erpLevels.count))
        var counts = FullSyncReport(shop: shop.id, runId: request.runId, dryRun: true)
        let (drifts, unknown) = await FullSync.compare(shopSide, erpLevels: erpLevels, snapshot: snapshot, into: &counts)
        report.checked = counts.compared
        report.matched = counts.inSync

        let histogram = Recorder(label: "reconcile_inventory_drift_units", dimensions: [("shop", shop.id)], aggregate: true)
        var corrections: [InventoryCorrection.Key] = []
        var buckets: [String: Int] = [:]
        for d in drifts {
            let off = abs(d.shopify - d.target)
            histogram.record(off)
            buckets[Self.bucket(off), default: 0] += 1
            let within = off <= settings.inventoryAllowance
            let heals = mayHeal && !within
            let kind = within ? "within_allowance" : (d.shopify > d.target ? "drift_up" : "drift_down")
            report.record(
                .init(
                    kind: kind, id: d.key.description, ref: d.level.inventoryItemId, shopify: "\(d.shopify)", erp: "\(d.target)",
                    action: heals ? (request.dryRun ? "would_heal" : "healed") : "reported"),
                itemised: settings.itemised)
            if heals && !request.dryRun {
                corrections.append(.init(sku: d.key.sku, warehouse: d.key.warehouse, erpAvailable: erpLevels[d.key]))
                report.healed += 1
            } else {
                report.reported += 1
            }
        }
        report.driftHistogram = buckets
        report.checked += unknown.count
        for sku in unknown.sorted() {
            report.reported += 1
            report.record(.init(kind: "unknown_sku", id: sku, shopify: "none", action: "reported"), itemised: settings.itemised)
        }
        if !corrections.isEmpty {
            try policy.authorize(.inventory, into: .shopify)
            for (n, start) in stride(from: 0, to: corrections.count, by: Self.chunk).enumerated() {
                let keys = Array(corrections[start..<min(corrections.count, start + Self.chunk)])
                try await InventoryCorrection(shop: shop.id, runId: request.runId, keys: keys).publish(on: publisher, chunk: n)
            }
        }
        report.pointsUsed = client.stats.pointsUsed - pointsBefore
        report.finishedAt = Date()
        return report
    }
}
