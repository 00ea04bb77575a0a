import BridgeDomain
import BridgeMessaging
import ERP
import Foundation
import Logging
import Messaging
import PriceSync
import Shopify

/// Prices, both owners at once:
///
/// - **B2B** (the ERP owns them): every ERP price list in `shop.<id>.price_lists` against the fixed prices of its
///   Shopify price list. `b2b_price_missing` (no fixed price yet) and `b2b_price_differs` are healed by the one
///   writer of B2B prices, the active inventory-syncer: the reconciler sends each a `price.changed` hint on
///   `q.erp-prices` (the syncer reads the ERP's price then and writes it where it still differs), then reads both
///   lists again until Shopify has the ERP's current price, for up to `reconciler.verify_wait`. Only those count as
///   healed; the rest are reported `heal_unconfirmed` (a price Shopify refuses is dead-lettered by the syncer with its
///   code). `unknown_sku`: an ERP price for a SKU Shopify has no variant for, reported.
/// - **DTC** (Shopify owns them): each variant's own price against the ERP's copy (`shop.<id>.dtc_price_list`);
///   `dtc_price_differs` is reported and never written, in either direction (the ERP's copy is the ERP's business).
///
/// A policy that does not let B2B prices flow into Shopify turns every B2B difference into a report.
public struct PricesReconciler: Sendable {
    public let sync: B2BPriceSync
    public let settings: ReconcilerSettings
    /// Where the hints go (`bridge.work` -> `q.erp-prices`), when an inventory-syncer runs (the one writer of B2B
    /// prices); nil: no syncer runs (`inventory_syncer.enabled: false`), so the reconciler is the only writer and
    /// writes the prices itself (`B2BPriceSync.write`, on a fresh ERP read, 250 a call).
    let publisher: AMQPConnection?
    let logger: Logger

    public init(sync: B2BPriceSync, settings: ReconcilerSettings, publisher: AMQPConnection?, logger: Logger) {
        self.publisher = publisher
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

        // Hints of every list first, then one wait for all of them (a run stays well inside the broker's
        // consumer_timeout whatever the number of lists).
        var sent: [(differences: [B2BPriceSync.Difference], erpList: String, shopifyList: String)] = []
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
                        action: mayHeal ? (request.dryRun ? "would_heal" : (publisher == nil ? "healed" : "sent_to_syncer")) : "reported"),
                    itemised: settings.itemised)
            }
            for sku in c.unknownSKUs {
                report.record(.init(kind: "unknown_sku", id: sku, ref: erpList, shopify: "none", action: "reported"), itemised: settings.itemised)
            }
            report.reported += c.unknownSKUs.count
            if heal && !c.differences.isEmpty, let publisher {
                for d in c.differences { try await Self.hint(erpList: erpList, sku: d.sku, runId: request.runId, on: publisher) }
                logger.info(
                    "B2B price differences sent to the syncer", metadata: ["price_list": "\(erpList)", "prices": "\(c.differences.count)"])
                sent.append((c.differences, erpList, c.shopifyList))
            } else if heal && !c.differences.isEmpty {
                let result = try await sync.write(c.differences, erpList: erpList, logger: logger)
                let healed = result.written + result.unchanged
                report.healed += healed
                report.reported += c.differences.count - healed
                logger.info(
                    "B2B prices healed",
                    metadata: ["price_list": "\(erpList)", "written": "\(result.written)", "refused": "\(result.refused.count)"])
            } else {
                report.reported += c.differences.count
            }
        }

        let deadline = ContinuousClock.now + settings.verifyWait
        for s in sent {
            try await confirm(s.differences, erpList: s.erpList, shopifyList: s.shopifyList, deadline: deadline, into: &report, runId: request.runId)
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

    /// A `price.changed` hint for the syncer, as the ERP would push it (the syncer reads the price itself),
    /// published confirmed and mandatory through `bridge.work`.
    static func hint(erpList: String, sku: String, runId: String, on publisher: AMQPConnection) async throws {
        let id = "price.correct-\(runId)-\(erpList)-\(sku)"
        let envelope = InboundEnvelope(
            source: .reconciler, shopDomain: nil, topic: "price.changed", deliveryId: id, eventId: id,
            receivedAt: Timestamp.string(milliseconds: Timestamp.milliseconds(Date())))
        let body = try JSONSerialization.data(withJSONObject: ["price_list": erpList, "sku": sku])
        try await publisher.publish(
            exchange: BridgeTopology.work, routingKey: BridgeTopology.erpPrices.name, body: Array(body),
            properties: envelope.properties(appId: "shopify-erp-bridge/reconciler"), mandatory: true)
    }

    /// Reads both lists again (0.5 s, doubling to 5 s) until each difference sent has Shopify at the ERP's current
    /// price, for up to `reconciler.verify_wait`: those count as healed, the rest are reported `heal_unconfirmed`
    /// (the next run compares them again). A read either side refuses is tried again in the next round.
    func confirm(
        _ sent: [B2BPriceSync.Difference], erpList: String, shopifyList: String, deadline: ContinuousClock.Instant,
        into report: inout ReconcileReport, runId: String
    ) async throws {
        var pending = Dictionary(sent.map { ($0.sku, $0) }, uniquingKeysWith: { a, _ in a })
        var pause = Duration.milliseconds(500)
        var failedReads = 0
        while !pending.isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: min(pause, deadline - ContinuousClock.now))
            pause = min(pause * 2, .seconds(5))
            let shopify: ShopifyFixedPrices
            var erpPrices: [String: Decimal] = [:]
            do {
                guard let s = try await sync.client.fixedPrices(priceList: shopifyList) else { break }
                shopify = s
                let skus = pending.keys.sorted()
                for start in stride(from: 0, to: skus.count, by: 250) {
                    let chunk = Array(skus[start..<min(skus.count, start + 250)])
                    erpPrices.merge(try await sync.erp.priceList(erpList, skus: chunk).prices) { a, _ in a }
                }
            } catch {
                failedReads += 1
                continue
            }
            for (sku, d) in pending {
                // Off the ERP's list meanwhile: nothing left to heal (reported as such).
                guard let price = erpPrices[sku] else {
                    pending[sku] = nil
                    report.reported += 1
                    report.record(
                        .init(kind: "b2b_price_removed_from_erp", id: sku, ref: erpList, action: "reported"), itemised: settings.itemised)
                    continue
                }
                if shopify.prices[d.variantId] == price {
                    pending[sku] = nil
                    report.healed += 1
                }
            }
        }
        if failedReads > 0 {
            logger.warning(
                "reads failed while confirming B2B prices sent to the syncer (those stay unconfirmed unless a later read matched)",
                metadata: ["run_id": "\(runId)", "price_list": "\(erpList)", "failed_reads": "\(failedReads)"])
        }
        for sku in pending.keys.sorted() {
            report.reported += 1
            report.record(.init(kind: "heal_unconfirmed", id: sku, ref: erpList, action: "reported"), itemised: settings.itemised)
        }
        if !pending.isEmpty {
            logger.warning(
                "B2B prices sent to the syncer not yet in Shopify: reported heal_unconfirmed",
                metadata: ["run_id": "\(runId)", "price_list": "\(erpList)", "unconfirmed": "\(pending.count)", "wait": "\(settings.verifyWait)"])
        }
    }
}
