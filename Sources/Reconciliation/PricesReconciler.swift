import BridgeDomain
import ERP
import Foundation
import Logging
import PriceSync
import Shopify

/// Prices, both owners at once:
///
/// - **B2B** (the ERP owns them): every ERP price list in `shop.<id>.price_lists` against the fixed prices of its
///   Shopify price list. `b2b_price_missing` (no fixed price yet) and `b2b_price_differs` are healed by writing the
///   ERP's price (`B2BPriceSync.write`: changed ones only, on a fresh ERP read, 250 a call within the cost budget);
///   `unknown_sku`: an ERP price for a SKU Shopify has no variant for, reported.
/// - **DTC** (Shopify owns them): each variant's own price against the ERP's copy (`shop.<id>.dtc_price_list`);
///   `dtc_price_differs` is reported and never written, in either direction (the ERP's copy is the ERP's business).
///
/// A policy that does not let B2B prices flow into Shopify turns every B2B difference into a report.
public struct PricesReconciler: Sendable {
    public let sync: B2BPriceSync
    public let settings: ReconcilerSettings
    let logger: Logger

    public init(sync: B2BPriceSync, settings: ReconcilerSettings, logger: Logger) {
        self.sync = sync
        self.settings = settings
        self.logger = logger
    }

    public var shop: BridgeConfig.Shop { sync.shop }

    public func run(_ request: ReconcileRequest, resumed: Bool, progress: ReconcileProgress.Sink?) async throws -> ReconcileReport {
        var report = ReconcileReport(
            runId: request.runId, domain: .prices, shop: shop.id, dryRun: request.dryRun, trigger: request.trigger, startedAt: Date())
        report.resumed = resumed
        report.readMode = "bulk variants, paged price lists"
        let client = sync.client
        let pointsBefore = client.stats.pointsUsed
        let policy = sync.policy
        let mayHeal = policy.mayWrite(.b2bPrices, into: .shopify)
        if !mayHeal {
            logger.warning(
                "source_of_truth does not let B2B prices flow into Shopify: differences are reported, not healed",
                metadata: ["owner": "\(policy.owner(of: .b2bPrices))"])
        }
        await progress?(.init(runId: request.runId, phase: "reading Shopify variants", done: 0, total: nil))
        let variants = try await client.variantPrices()
        let variantBySKU = Dictionary(variants.map { ($0.sku, $0.variantId) }, uniquingKeysWith: { a, _ in a })

        for (n, erpList) in shop.priceLists.keys.sorted().enumerated() {
            await progress?(.init(runId: request.runId, phase: "B2B price list \(erpList)", done: n, total: shop.priceLists.count))
            let list = try await sync.erp.priceList(erpList)
            let c = try await sync.compare(list, variants: variantBySKU)
            report.checked += c.checked
            report.matched += c.matched
            let heal = mayHeal && !request.dryRun
            for d in c.differences {
                report.record(
                    .init(
                        kind: d.shopify == nil ? "b2b_price_missing" : "b2b_price_differs", id: d.sku, ref: erpList,
                        shopify: d.shopify.map { "\($0) \(c.currency)" } ?? "none", erp: "\(d.erp) \(c.currency)",
                        action: mayHeal ? (request.dryRun ? "would_heal" : "healed") : "reported"),
                    itemised: settings.itemised)
            }
            for sku in c.unknownSKUs {
                report.record(.init(kind: "unknown_sku", id: sku, ref: erpList, shopify: "none", action: "reported"), itemised: settings.itemised)
            }
            report.reported += c.unknownSKUs.count
            if heal && !c.differences.isEmpty {
                let result = try await sync.write(c.differences, erpList: erpList, logger: logger)
                let healed = result.written + result.unchanged
                report.healed += healed
                report.reported += c.differences.count - healed
                logger.info(
                    "B2B prices healed",
                    metadata: [
                        "price_list": "\(erpList)", "written": "\(result.written)", "changed_since_read": "\(result.changedSinceRead)",
                        "refused": "\(result.refused.count)",
                    ])
            } else {
                report.reported += c.differences.count
            }
        }

        if let dtcList = shop.dtcPriceList {
            await progress?(.init(runId: request.runId, phase: "DTC prices against \(dtcList)", done: 0, total: variants.count))
            let erpCopy = try await sync.erp.priceList(dtcList)
            for v in variants.sorted(by: { $0.sku < $1.sku }) {
                guard let erpPrice = erpCopy.prices[v.sku] else { continue }
                report.checked += 1
                if erpPrice == v.price {
                    report.matched += 1
                } else {
                    report.reported += 1
                    report.record(
                        .init(
                            kind: "dtc_price_differs", id: v.sku, ref: dtcList, shopify: "\(v.price)", erp: "\(erpPrice) \(erpCopy.currency)",
                            action: "reported"),
                        itemised: settings.itemised)
                }
            }
        }
        report.pointsUsed = client.stats.pointsUsed - pointsBefore
        report.finishedAt = Date()
        return report
    }
}
