import BridgeDomain
import ERP
import Foundation
import Logging
import Shopify

/// The catalogue (products belong to the ERP; creating them in Shopify is out of scope): the ERP's SKUs (its stock
/// snapshot) against Shopify's variants (one bulk query), by SKU. Everything is reported, nothing written:
///
/// - `missing_in_shopify`: an ERP SKU no variant carries (its stock and B2B prices cannot reach Shopify);
/// - `missing_in_erp`: a variant SKU the ERP does not know (orders for it need the catch-all item);
/// - `duplicate_sku`: several variants share one SKU (stock and prices would go to one of them);
/// - `variant_gone`: a SKU the previous run saw on a variant that no longer exists (deleted, or re-created under a
///   new id: fixed prices and levels written to the old one are gone with it).
///
/// Each SKU counts once in `checked`, and once in `matched` or `reported` (a SKU may differ in several ways).
public struct CatalogueReconciler: Sendable {
    public let shop: BridgeConfig.Shop
    public let client: ShopifyAdminClient
    public let erp: RESTERPClient
    public let settings: ReconcilerSettings
    public let reports: ReportStore
    let logger: Logger

    public init(
        shop: BridgeConfig.Shop, client: ShopifyAdminClient, erp: RESTERPClient, settings: ReconcilerSettings, reports: ReportStore,
        logger: Logger
    ) {
        self.shop = shop
        self.client = client
        self.erp = erp
        self.settings = settings
        self.reports = reports
        self.logger = logger
    }

    public func run(_ request: ReconcileRequest, resumed: Bool, progress: ReconcileProgress.Sink?) async throws -> ReconcileReport {
        var report = ReconcileReport(
            runId: request.runId, domain: .catalogue, shop: shop.id, dryRun: request.dryRun, trigger: request.trigger, startedAt: Date())
        report.resumed = resumed
        report.readMode = "bulk variants, ERP snapshot"
        let pointsBefore = client.stats.pointsUsed
        await progress?(.init(runId: request.runId, phase: "reading the ERP's items", done: 0, total: nil))
        let erpSKUs = Set(try await erp.inventorySnapshot().levels.map(\.sku))
        await progress?(.init(runId: request.runId, phase: "reading Shopify's variants", done: 0, total: nil))
        let variants = try await client.variantPrices()
        var bySKU: [String: [String]] = [:]
        for v in variants { bySKU[v.sku, default: []].append(v.variantId) }
        let liveVariants = Set(variants.map(\.variantId))
        let previous = reports.catalogueMap(shop: shop.id)

        var differing: Set<String> = []
        func differ(_ kind: String, _ sku: String, shopify: String?, erp: String?, ref: String? = nil) {
            differing.insert(sku)
            report.record(.init(kind: kind, id: sku, ref: ref, shopify: shopify, erp: erp, action: "reported"), itemised: settings.itemised)
        }
        let all = erpSKUs.union(bySKU.keys).union(previous.keys).sorted()
        for sku in all {
            let ids = bySKU[sku] ?? []
            if let old = previous[sku], !liveVariants.contains(old) {
                differ("variant_gone", sku, shopify: ids.isEmpty ? "none" : ids.joined(separator: ","), erp: nil, ref: old)
            }
            if erpSKUs.contains(sku) && ids.isEmpty {
                differ("missing_in_shopify", sku, shopify: "none", erp: "item")
            } else if !erpSKUs.contains(sku) && !ids.isEmpty {
                differ("missing_in_erp", sku, shopify: ids.joined(separator: ","), erp: "none")
            }
            if ids.count > 1 { differ("duplicate_sku", sku, shopify: ids.joined(separator: ","), erp: erpSKUs.contains(sku) ? "item" : "none") }
        }
        // A SKU only the previous run knew, gone from both systems now, is not an item of this catalogue.
        let items = all.filter { erpSKUs.contains($0) || bySKU[$0] != nil || differing.contains($0) }
        report.checked = items.count
        report.reported = differing.count
        report.matched = items.count - differing.count
        if !request.dryRun {
            // Remember what this run saw (one variant per SKU: the first of duplicates).
            try reports.saveCatalogueMap(bySKU.compactMapValues(\.first), shop: shop.id)
        }
        report.pointsUsed = client.stats.pointsUsed - pointsBefore
        report.finishedAt = Date()
        return report
    }
}
