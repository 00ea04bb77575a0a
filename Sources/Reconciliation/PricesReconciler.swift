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
    /// Where the hints go (`bridge.work` -> `q.erp-prices`); nil: differences are reported, not healed.
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
                        action: mayHeal ? (request.dryRun ? "would_heal" : "sent_to_syncer") : "reported"),
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
                try await confirm(c.differences, erpList: erpList, shopifyList: c.shopifyList, into: &report, runId: request.runId)
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
        _ sent: [B2BPriceSync.Difference], erpList: String, shopifyList: String, into report: inout ReconcileReport, runId: String
    ) async throws {
        var pending = Dictionary(sent.map { ($0.sku, $0) }, uniquingKeysWith: { a, _ in a })
        let deadline = ContinuousClock.now + settings.verifyWait
        var pause = Duration.milliseconds(500)
        while !pending.isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: min(pause, deadline - ContinuousClock.now))
            pause = min(pause * 2, .seconds(5))
            guard let erp = try? await sync.erp.priceList(erpList, skus: pending.keys.sorted()),
                let shopify = try? await sync.client.fixedPrices(priceList: shopifyList)
            else { continue }
            for (sku, d) in pending {
                // Off the ERP's list meanwhile: nothing left to heal.
                guard let price = erp.prices[sku] else {
                    pending[sku] = nil
                    continue
                }
                if shopify.prices[d.variantId] == price {
                    pending[sku] = nil
                    report.healed += 1
                }
            }
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
