import Alerting
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
import ServiceLifecycle
import Synchronization
import Testing
import Worker

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

    /// shopify-sim's shop (200 SKUs) and its webhook deliverer, signing with the sale secret and delivering every topic
    /// to `ingestURL` (Shopify's retries time-scaled by `timeScale`: 0.001 puts its four hours in ~14 s), with
    /// `duplicateRate` of the webhooks twice and each delayed up to `maxDelayMs` (they overtake each other).
    static func shop(
        seed: UInt64, ingestURL: String, duplicateRate: Double, maxDelayMs: Int, timeScale: Double = 0.001
    ) async -> (ShopifyStore, WebhookDeliverer) {
        let store = ShopifyStore(domain: ForwarderHarness.shopDomain, seed: seed, skus: 200)
        let deliverer = WebhookDeliverer(domain: ForwarderHarness.shopDomain, secret: secret, policy: .init(timeScale: timeScale))
        await deliverer.subscribe(topic: "*", url: ingestURL)
        var faults = WebhookDeliverer.Faults()
        faults.duplicateRate = duplicateRate
        faults.maxDelayMs = maxDelayMs
        await deliverer.setFaults(faults)
        return (store, deliverer)
    }

    @Test(
        "after a sale with duplicates, reordering and several changes per second, every ERP order equals Shopify's latest state, once",
        arguments: ERPStore.Profile.allCases)
    func sale(profile: ERPStore.Profile) async throws {
        let h = try await ForwarderHarness.make("sale", profile: profile)
        // Custom lines without SKU (gift wrap) are booked on a catch-all ERP item.
        let f = try await h.startForwarder(mapping: .init(missingSKU: .catchAll, catchAllItem: "SKU-00001"))
        let (ingestURL, ingestTask) = try await Self.startIngest(h)
        let (store, deliverer) = await Self.shop(seed: 5, ingestURL: ingestURL, duplicateRate: 0.2, maxDelayMs: 50)

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
        var bad: [String] = []
        let settled = await eventually(timeout: .seconds(60)) {
            bad = await h.mismatches(orders)
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

    /// Every notice, with when it arrived.
    final class Inbox: AlertChannel, Sendable {
        let notices = Mutex<[(ContinuousClock.Instant, AlertNotice)]>([])
        var name: String { "inbox" }
        func send(_ notice: AlertNotice) async throws { notices.withLock { $0.append((.now, notice)) } }
    }

    @Test("a human hears of it within a minute: during a sale the ERP refuses a SKU (422), the orders land in the DLQ with the SKU, and the alerter (at its production interval) notifies dead_letters with that SKU and the replay command")
    func refusedSKUAlerts() async throws {
        let h = try await ForwarderHarness.make("sale-alert", profile: .upsert)
        // The ERP lacks the shop's three most sold items.
        let refused = ["SKU-00001", "SKU-00002", "SKU-00003"]
        await h.store.removeSKUs(refused)
        let f = try await h.startForwarder(mapping: .init(missingSKU: .catchAll, catchAllItem: "SKU-00010"))
        let (ingestURL, ingestTask) = try await Self.startIngest(h)
        var logger = Logger(label: "alerter")
        logger.logLevel = .critical
        let alerterConnection = try await h.broker.connect(vhost: h.vhost, name: "sale-alerter")
        let inbox = Inbox()
        let settings = AlerterSettings()  // interval 15 s, as in production
        #expect(settings.interval == .seconds(15))
        let state = AlerterState()
        let notifier = Notifier(channels: [inbox], repeatInterval: settings.repeatInterval, logger: logger)
        let evaluator = AlertEvaluator(
            settings: settings, state: state, notifier: notifier, connection: alerterConnection,
            watched: [(BridgeTopology.orders.name, "order-forwarder")], logger: logger)
        let events = QueueWorker(
            settings: .init(queue: BridgeTopology.alerter.name, prefetch: 8, retryDelays: [.seconds(1)]),
            handler: EventsHandler(state: state), consumer: alerterConnection, publisher: h.publisher, logger: logger)
        let alerter = ServiceGroup(configuration: .init(services: [.init(service: evaluator), .init(service: events)], logger: logger))
        let alerterTask = Task { try await alerter.run() }

        let store = ShopifyStore(domain: ForwarderHarness.shopDomain, seed: 7, skus: 200)
        let deliverer = WebhookDeliverer(domain: ForwarderHarness.shopDomain, secret: Self.secret, policy: .init(timeScale: 0.001))
        await deliverer.subscribe(topic: "*", url: ingestURL)
        let started = ContinuousClock.now
        let result = await TrafficGenerator(store: store, deliverer: deliverer).run(
            SaleProfile(orders: 100, ordersPerSecond: 20, updateShare: 0, cancelShare: 0, refundShare: 0, sameSecondShare: 0, seed: 3, concurrency: 8))
        #expect(result.placed == 100)
        let affected = await store.orders.values.filter { o in
            ((try? JSONSerialization.jsonObject(with: Data(o.json()))) as? [String: Any]).map { order in
                ((order["line_items"] as? [[String: Any]]) ?? []).contains { refused.contains($0["sku"] as? String ?? "") }
            } ?? false
        }.count
        #expect(affected > 0, "the sale sold a refused SKU")

        #expect(await eventually(timeout: .seconds(75)) { !inbox.notices.withLock { $0.isEmpty } })
        let (arrived, notice) = try #require(inbox.notices.withLock { $0.first })
        let elapsed = arrived - started
        #expect(elapsed < .seconds(60), "the alert came \(elapsed) after the sale started")
        #expect(notice.state == .firing && notice.alert.rule == "dead_letters" && notice.alert.shop == ForwarderHarness.shopDomain, "\(notice)")
        #expect(notice.alert.figures["last_error_class"] == "erp_unknown_sku", "\(notice.alert.figures)")
        #expect(refused.contains { notice.alert.figures["last_error"]?.contains($0) == true }, "the SKU is named: \(notice.alert.figures)")
        #expect(notice.alert.command.contains("bridgectl dlq replay --queue q.orders --all") && notice.text.contains("bridgectl dlq replay"))
        let dead = try await h.publisher.queueCounts(BridgeTopology.deadLetterQueue(of: BridgeTopology.orders.name)).messages
        #expect(dead >= 1 && dead <= affected * 2, "\(dead) dead letters for \(affected) orders with a refused SKU")
        print("refused SKU: \(affected) of 100 orders affected, \(dead) dead letters, alert after \(elapsed)")

        await alerter.triggerGracefulShutdown()
        _ = await alerterTask.result
        await alerterConnection.close()
        ingestTask.cancel()
        await deliverer.shutdown()
        await f.stop()
        await h.close()
    }
}
