import BridgeDomain
import BridgeMessaging
import BridgeTestSupport
import ERPSimulator
import Foundation
import Hummingbird
import Ingest
import Ledger
import Logging
import Messaging
import OrderForwarding
import Shopify
import ShopifySimulator
import Testing

/// The whole order path with both simulators: shopify-sim's sale (creates, updates, cancellations, refunds) with
/// duplicate and reordered webhooks -> ingest (HMAC, confirmed publish) -> broker -> order-forwarder -> erp-sim.
@Suite("A sale end to end: shopify-sim -> ingest -> broker -> order-forwarder -> erp-sim", .serialized)
struct SaleEndToEndTests {
    static let secret = "shpss_sale_secret_0123456789"

    static func startIngest(_ h: ForwarderHarness) async throws -> (String, Task<Void, any Error>) {
        let config = try await BridgeConfig.load(
            filePath: nil,
            environment: [
                "BROKER_URL": h.broker.url(vhost: h.vhost), "SHOPS": ForwarderHarness.shopId,
                "SHOP_ACME_DOMAIN": ForwarderHarness.shopDomain, "SHOP_ACME_WEBHOOK_SECRETS": secret,
                "SHOP_ACME_ADMIN_TOKEN": "unused",
            ],
            defaultHTTPPort: 0)
        var logger = Logger(label: "ingest")
        logger.logLevel = .warning
        let router = Router()
        IngestService(config: config, publisher: h.publisher, logger: logger).addRoutes(to: router)
        let (port, task) = await TestHTTPServer.start(router, label: "ingest")
        return ("http://127.0.0.1:\(port)/webhooks/shopify", task)
    }

    @Test(
        "after a sale with duplicates, reordering and several changes per second, every ERP order equals Shopify's latest state, once",
        arguments: ERPStore.Profile.allCases)
    func sale(profile: ERPStore.Profile) async throws {
        let h = try await ForwarderHarness.make("sale", profile: profile)
        // Custom lines without SKU (gift wrap) are booked on a catch-all ERP item.
        let f = try await h.startForwarder(mapping: .init(missingSKU: .catchAll, catchAllItem: "SKU-00001"))
        let (ingestURL, ingestTask) = try await Self.startIngest(h)
        let store = ShopifyStore(domain: ForwarderHarness.shopDomain, seed: 5, skus: 200)
        let deliverer = WebhookDeliverer(domain: ForwarderHarness.shopDomain, secret: Self.secret, policy: .init(timeScale: 0.001))
        await deliverer.subscribe(topic: "*", url: ingestURL)
        var faults = WebhookDeliverer.Faults()
        faults.duplicateRate = 0.2
        faults.maxDelayMs = 50
        await deliverer.setFaults(faults)

        let result = await TrafficGenerator(store: store, deliverer: deliverer).run(
            SaleProfile(
                orders: 300, ordersPerSecond: 0, updateShare: 0.3, cancelShare: 0.05, refundShare: 0.1, sameSecondShare: 0.3, seed: 21,
                concurrency: 32))
        #expect(result.placed == 300)
        let delivered = await deliverer.log
        #expect(delivered.allSatisfy { $0.outcome == .delivered }, "ingest answered 2xx to every webhook")

        let orders = await store.orders
        let triggered = await store.lastTriggeredMs
        // The realism this test depends on: many orders changed more than once within one updated_at second.
        #expect(result.updated >= 60, "same-second edits happen (\(result.updated) updates)")
        #expect(await eventually(timeout: .seconds(120)) { await h.store.orderCount == orders.count })
        // Wait for the last versions and refunds to land, then compare every order.
        func mismatches() async throws -> [String] {
            var bad: [String] = []
            for (id, o) in orders {
                guard let erp = await h.store.order(ref: h.ref(id)) else {
                    bad.append("\(id): missing")
                    continue
                }
                if erp.status != (o.cancelled ? "cancelled" : "open") { bad.append("\(id): status \(erp.status)") }
                let written = (try? JSONSerialization.jsonObject(with: erp.document)) as? [String: Any]
                if written?["financial_status"] as? String != o.financialStatus {
                    bad.append("\(id): financial_status \(written?["financial_status"] ?? "none") != \(o.financialStatus)")
                }
                if erp.total != o.total { bad.append("\(id): total \(erp.total) != \(o.total)") }
                let refunded = o.refunds.reduce(Decimal(0)) { $0 + $1.amount }
                if erp.refundedTotal != refunded { bad.append("\(id): refunded \(erp.refundedTotal) != \(refunded)") }
            }
            return bad
        }
        var bad: [String] = []
        let settled = await eventually(timeout: .seconds(60)) {
            bad = (try? await mismatches()) ?? ["comparison failed"]
            return bad.isEmpty
        }
        #expect(settled, "first mismatches: \(bad.prefix(5))")
        // And each ERP order carries the version of Shopify's last change (updated_at, then the trigger time).
        var versions: [String] = []
        for (id, o) in orders {
            let shopify = try ShopifyOrder.decode(Array(o.json()))
            let version = OrderVersion(updatedAtMs: Timestamp.milliseconds(shopify.updatedAt) ?? 0, triggeredAtMs: triggered[id] ?? 0)
            if let erp = await h.store.order(ref: h.ref(id)), erp.version != version.erpVersion {
                versions.append("\(id): version \(erp.version) != \(version.erpVersion)")
            }
        }
        #expect(versions.isEmpty, "first: \(versions.prefix(5))")
        #expect(await h.store.duplicatedRefs().isEmpty)
        #expect(await h.refundProblems().isEmpty)
        let problems = await h.callLogProblems(Array(orders.keys), strict: true)
        #expect(problems.isEmpty, "first: \(problems.prefix(5))")
        #expect(try await h.publisher.queueCounts(BridgeTopology.deadLetterQueue(of: BridgeTopology.orders.name)).messages == 0)
        print("sale: \(result.placed) orders, \(result.updated) updates, \(result.cancelled) cancellations, \(result.refunded) refunds, \(delivered.count) deliveries (\(delivered.filter(\.duplicated).count) duplicated)")

        ingestTask.cancel()
        await deliverer.shutdown()
        await f.stop()
        await h.close()
    }
}
