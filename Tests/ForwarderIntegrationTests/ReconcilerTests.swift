import BridgeDomain
import BridgeMessaging
import BridgeRuntime
import BridgeTestSupport
import ERPSimulator
import Foundation
import Logging
import Messaging
import OrderForwarding
import Reconciliation
import ServiceLifecycle
import Shopify
import ShopifySimulator
import Testing

/// The reconciler's orders domain with both simulators and the real broker: shopify-sim (Admin API over HTTP, its
/// webhooks through ingest) -> order-forwarder -> erp-sim, and the reconciler comparing the two and healing
/// through `q.orders`.
@Suite("reconciler, orders: lost webhooks found and healed through the forwarder, reported exactly", .serialized)
struct ReconcilerTests {
    /// An in-process reconciler wired as the executable wires it (configuration keys, `BridgeRuntime`,
    /// `ReconcilerProcess.build`).
    struct RunningReconciler {
        let process: ReconcilerProcess
        let group: ServiceGroup
        let task: Task<Void, any Error>

        func stop() async {
            await group.triggerGracefulShutdown()
            _ = await task.result
        }

        /// As kill -9 would: every task cancelled, the run in progress left unacknowledged.
        func kill() async {
            task.cancel()
            _ = await task.result
        }
    }

    static func startReconciler(
        _ h: ForwarderHarness, admin: TestShopifyAdmin, reports: String, verifyWait: Duration = .seconds(30),
        afterHeal: (@Sendable (Int) async throws -> Void)? = nil
    ) async throws -> RunningReconciler {
        let env = [
            "BROKER_URL": h.broker.url(vhost: h.vhost), "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "0",
            "TOPOLOGY_RETRY_DELAYS": ForwarderHarness.settings.retryDelays.map(BridgeTopology.label).joined(separator: ","),
            "SHOPS": ForwarderHarness.shopId, "SHOP_ACME_DOMAIN": ForwarderHarness.shopDomain,
            "SHOP_ACME_WEBHOOK_SECRETS": "unused-in-reconciler-tests", "SHOP_ACME_ADMIN_TOKEN": TestShopifyAdmin.token,
            "SHOP_ACME_ADMIN_URL": "http://127.0.0.1:\(admin.port)", "SHOP_ACME_PLAN": "plus",
            "ERP_BASE_URL": h.erpURL, "ERP_API_KEY": ForwarderHarness.apiKey, "ERP_TIMEOUT": "30s",
            "RECONCILER_REPORTS_DIR": reports, "RECONCILER_SETTLE": "0s", "RECONCILER_ORDERS_SCHEDULE": "off",
            "RECONCILER_VERIFY_WAIT": "\(verifyWait.wholeMilliseconds)ms",
            "RECONCILER_INVENTORY_SCHEDULE": "off", "RECONCILER_PRICES_SCHEDULE": "off", "RECONCILER_CATALOGUE_SCHEDULE": "off",
        ]
        let config = try await BridgeConfig.load(filePath: nil, environment: env, defaultHTTPPort: 0)
        var logger = Logger(label: "reconciler")
        logger.logLevel = .warning
        let runtime = try BridgeRuntime.make(.reconciler, config: config, logger: logger)
        let process = try ReconcilerProcess.build(
            config: config, consumer: runtime.consumer!, publisher: runtime.publisher!, logger: logger,
            leaseRetry: .milliseconds(200), afterHeal: afterHeal)
        let group = runtime.serviceGroup(services: process.services, handlesSignals: false)
        let task = Task { try await group.run() }
        _ = await eventually(timeout: .seconds(30)) { process.lease.isActive }
        return RunningReconciler(process: process, group: group, task: task)
    }

    /// Queues a run as `bridgectl reconcile run` does and waits for its report file.
    static func reconcile(
        _ h: ForwarderHarness, reports: String, dryRun: Bool = false, runId: String = ReportStore.newRunId(),
        timeout: Duration = .seconds(120)
    ) async throws -> ReconcileReport? {
        let request = ReconcileRequest(runId: runId, domain: .orders, shop: ForwarderHarness.shopId, dryRun: dryRun, trigger: "bridgectl")
        try await request.publish(on: h.publisher, appId: "test")
        let store = ReportStore(directory: reports)
        var found: ReconcileReport?
        _ = await eventually(timeout: timeout) {
            found = try? store.report(runId: runId)
            return found != nil
        }
        return found
    }

    /// Waits until the forwarder has nothing left: `q.orders` empty and no settlement for a second and a half.
    static func quiesce(_ h: ForwarderHarness, _ f: RunningForwarder) async throws {
        var last = -1
        var stableSince = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < deadline {
            let settled = f.forwarder.settledTotal
            let ready = try await h.publisher.queueCounts(BridgeTopology.orders.name).messages
            if settled != last || ready > 0 {
                last = settled
                stableSince = .now
            } else if ContinuousClock.now - stableSince > .milliseconds(1500) {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    /// The oracle, from both simulators' memory (not through any API the reconciler uses): every Shopify order
    /// whose ERP copy is missing or differs in version, status, financial status, total or refunded amount.
    static func differing(_ h: ForwarderHarness, _ shop: ShopifyStore) async -> (missing: Set<Int64>, differing: Set<Int64>) {
        var missing: Set<Int64> = []
        var differing: Set<Int64> = []
        for (id, o) in await shop.orders {
            guard let erp = await h.store.order(ref: h.ref(id)) else {
                missing.insert(id)
                differing.insert(id)
                continue
            }
            let shopifySecond = Int64(o.updatedAt.timeIntervalSince1970.rounded(.down))
            let erpUpdated = erp.version.split(separator: "|").first.flatMap { Timestamp.milliseconds(String($0)) } ?? 0
            let written = (try? JSONSerialization.jsonObject(with: erp.document)) as? [String: Any]
            if erpUpdated / 1000 != shopifySecond || erp.status != (o.cancelled ? "cancelled" : "open") || erp.total != o.total
                || erp.refundedTotal != o.refunded || written?["financial_status"] as? String != o.financialStatus
            {
                differing.insert(id)
            }
        }
        return (missing, differing)
    }

    @Test(
        "a sale with 5% of webhooks lost: one run heals every order the ERP lacks or holds behind, a second run finds nothing, the counts are exact, Shopify is never written",
        arguments: ERPStore.Profile.allCases)
    func lostWebhooksHealed(profile: ERPStore.Profile) async throws {
        let h = try await ForwarderHarness.make("reconcile", profile: profile)
        let f = try await h.startForwarder(mapping: .init(missingSKU: .catchAll, catchAllItem: "SKU-00001"))
        let (ingestURL, ingestTask) = try await SaleEndToEndTests.startIngest(h)
        let admin = try await TestShopifyAdmin.start(
            skus: 200, webhookSecret: SaleEndToEndTests.secret, deliveryPolicy: .init(timeScale: 0.001), seed: 11)
        await admin.deliverer.subscribe(topic: "*", url: ingestURL)
        var faults = WebhookDeliverer.Faults()
        faults.dropRate = 0.05
        await admin.deliverer.setFaults(faults)
        let result = await TrafficGenerator(store: admin.store, deliverer: admin.deliverer).run(
            SaleProfile(
                orders: 200, ordersPerSecond: 0, updateShare: 0.3, cancelShare: 0.05, refundShare: 0.15, sameSecondShare: 0.2, seed: 31,
                concurrency: 32))
        #expect(result.placed == 200)
        // The random drops can spare every order's last visible change (a lost tag edit within the same second, or
        // a lost orders/paid, leaves nothing this oracle compares): lose one cancellation for certain, so every run
        // has something to heal.
        let victim = try #require(await admin.store.orders.values.filter { !$0.cancelled }.map(\.id).min())
        var dropAll = faults
        dropAll.dropRate = 1
        await admin.deliverer.setFaults(dropAll)
        await admin.deliverer.deliver(await admin.store.cancelOrder(victim))
        await admin.deliverer.setFaults(faults)
        let dropped = await admin.deliverer.log.filter { $0.outcome == .dropped }.count
        try await Self.quiesce(h, f)
        let before = await Self.differing(h, admin.store)
        #expect(dropped > 0 && before.differing.contains(victim), "the sale lost webhooks (\(dropped)) and the ERP is behind on some orders")
        let shopifyBefore = await admin.store.orders.mapValues(\.updatedAt)
        let reports = h.dir.appendingPathComponent("reports").path
        let r = try await Self.startReconciler(h, admin: admin, reports: reports)

        let first = try #require(try await Self.reconcile(h, reports: reports))
        #expect(first.error == nil)
        #expect(first.checked == result.placed, "every order of the window compared")
        #expect(first.healed == before.differing.count, "healed exactly the orders that differed: \(first.summary)")
        #expect(first.matched == result.placed - before.differing.count)
        #expect(first.mismatches["missing_in_erp", default: 0] == before.missing.count)
        #expect(first.reported == 0 && first.mismatches["orphan_in_erp"] == nil && first.mismatches["duplicate_in_erp"] == nil)
        #expect(admin.api.restReads.load(ordering: .relaxed) == before.differing.count, "one REST read per order healed")

        try await Self.quiesce(h, f)
        let after = await Self.differing(h, admin.store)
        #expect(after.differing.isEmpty, "every ERP order equals Shopify's latest state: \(after.differing.sorted().prefix(5))")
        let second = try #require(try await Self.reconcile(h, reports: reports))
        #expect(second.checked == result.placed && second.matched == result.placed)
        #expect(second.healed == 0 && second.reported == 0 && second.mismatches.isEmpty, "\(second.summary)")

        // Orders belong to Shopify: reconciling them never wrote into Shopify.
        #expect(admin.api.mutationCalls.withLock { $0 }.isEmpty)
        #expect(await admin.store.orders.mapValues(\.updatedAt) == shopifyBefore)
        #expect(await h.store.duplicatedRefs().isEmpty)
        #expect(await h.refundProblems().isEmpty)
        let store = ReportStore(directory: reports)
        #expect(store.runIds() == [second.runId, first.runId])
        let markdown = try String(contentsOfFile: reports + "/\(first.runId).md", encoding: .utf8)
        #expect(markdown.contains("| healed | \(first.healed) |"))
        print("reconcile (\(profile)): \(dropped) webhooks lost, \(first.summary), \(first.pointsUsed) points; then \(second.summary)")

        await r.stop()
        ingestTask.cancel()
        await admin.stop()
        await f.stop()
        await h.close()
    }

    /// `forwarderDown`: the forwarder stops before the run, so what the killed delivery re-sent is still missing in
    /// the ERP when the run resumes (only the healing log keeps it from being read and re-sent again); otherwise it has
    /// reached the ERP and matches (and is still counted healed by this run).
    @Test(
        "a dry run heals nothing; a run killed mid-way is redelivered and resumes: each missing order written once, read once",
        arguments: [false, true])
    func killedRunResumes(forwarderDown: Bool) async throws {
        let h = try await ForwarderHarness.make("reconcile-kill", profile: .plain)
        var f = try await h.startForwarder(mapping: .init(missingSKU: .catchAll, catchAllItem: "SKU-00001"))
        let admin = try await TestShopifyAdmin.start(skus: 200, seed: 12)
        // Ten orders whose webhooks never left Shopify.
        for _ in 0..<10 { _ = await admin.store.placeOrder() }
        let ids = await admin.store.orders.keys.sorted()
        #expect(ids.count == 10)
        let reports = h.dir.appendingPathComponent("reports").path

        let stopAt = Shared<Int?>(3)
        let reached = Shared(false)
        let killed = try await Self.startReconciler(h, admin: admin, reports: reports) { healed in
            guard healed == stopAt.withLock({ $0 }) else { return }
            reached.withLock { $0 = true }
            // Hangs here, as a process would that is about to be killed.
            try await Task.sleep(for: .seconds(3600))
        }
        let dry = try #require(try await Self.reconcile(h, reports: reports, dryRun: true))
        #expect(dry.mismatches["missing_in_erp"] == 10 && dry.healed == 0 && dry.reported == 10)
        #expect(dry.differences.allSatisfy { $0.action == "would_heal" })
        try await Self.quiesce(h, f)
        #expect(await h.store.orderCount == 0, "a dry run writes nothing")
        if forwarderDown { await f.stop() }

        let runId = ReportStore.newRunId()
        let request = ReconcileRequest(runId: runId, domain: .orders, shop: ForwarderHarness.shopId, trigger: "bridgectl")
        try await request.publish(on: h.publisher, appId: "test")
        #expect(await eventually { reached.withLock { $0 } }, "the run healed three orders, then hung")
        await killed.kill()
        if !forwarderDown {
            #expect(await eventually { await h.store.orderCount == 3 }, "the three re-sent orders reached the ERP")
        }

        // With the forwarder down nothing re-sent reaches the ERP: the run waits `verify_wait` and counts none healed.
        let restarted = try await Self.startReconciler(h, admin: admin, reports: reports, verifyWait: forwarderDown ? .seconds(3) : .seconds(30))
        let store = ReportStore(directory: reports)
        var report: ReconcileReport?
        #expect(await eventually(timeout: .seconds(60)) {
            report = try? store.report(runId: runId)
            return report != nil
        })
        #expect(report?.resumed == true)
        if forwarderDown {
            #expect(report?.healed == 0 && report?.reported == 10, "nothing healed until the ERP shows it: \(report?.summary ?? "no report")")
            #expect(report?.mismatches["heal_unconfirmed"] == 10, "\(report?.summary ?? "no report")")
        } else {
            #expect(report?.healed == 10, "\(report?.summary ?? "no report")")
            #expect(report?.mismatches["healed_before_resume"] == 3, "\(report?.summary ?? "no report")")
        }
        if forwarderDown {
            #expect(await h.store.orderCount == 0)
            f = try await h.startForwarder(mapping: .init(missingSKU: .catchAll, catchAllItem: "SKU-00001"))
        }
        try await Self.quiesce(h, f)
        // The re-sent orders reached the ERP once the forwarder was back: the next run finds them all matching.
        let next = try #require(try await Self.reconcile(h, reports: reports))
        #expect(next.healed == 0 && next.matched == 10 && next.reported == 0, "\(next.summary)")
        #expect(await Self.differing(h, admin.store).differing.isEmpty)
        #expect(admin.api.restReads.load(ordering: .relaxed) == 10, "each order read (and re-sent) once across both processes")
        for id in ids {
            let writes = await h.store.writes(ref: h.ref(id))
            #expect(writes.count == 1, "order \(id) written once: \(writes.map(\.operation))")
        }
        #expect(await h.store.duplicatedRefs().isEmpty)
        #expect(try await h.publisher.queueCounts(BridgeTopology.deadLetterQueue(of: BridgeTopology.reconcile.name)).messages == 0)
        await restarted.stop()
        await admin.stop()
        await f.stop()
        await h.close()
    }

    @Test(
        "an ERP restored from an empty backup after orders with refunds: one run restores every sales order and credit note (the ledger holds them all), the next finds nothing to heal",
        arguments: ERPStore.Profile.allCases)
    func restoredBackupHealedWhole(profile: ERPStore.Profile) async throws {
        let h = try await ForwarderHarness.make("reconcile-restore", profile: profile)
        let f = try await h.startForwarder(mapping: .init(missingSKU: .catchAll, catchAllItem: "SKU-00001"))
        let admin = try await TestShopifyAdmin.start(skus: 200, seed: 17)
        // Twelve orders whose webhooks never left Shopify, every third refunded twice.
        for _ in 0..<12 { _ = await admin.store.placeOrder() }
        let ids = await admin.store.orders.keys.sorted()
        for id in ids.enumerated().filter({ $0.offset % 3 == 0 }).map(\.element) {
            _ = await admin.store.refundOrder(id)
            _ = await admin.store.refundOrder(id)
        }
        let refunds = await admin.store.orders.values.reduce(0) { $0 + $1.refunds.count }
        #expect(refunds == 8)
        let reports = h.dir.appendingPathComponent("reports").path
        let reconciler = try await Self.startReconciler(h, admin: admin, reports: reports)

        let first = try #require(try await Self.reconcile(h, reports: reports))
        #expect(first.healed == 12, "\(first.summary)")
        try await Self.quiesce(h, f)
        #expect(await Self.differing(h, admin.store).differing.isEmpty, "the first run brought every order in")
        #expect(await h.store.creditNoteCount == refunds)

        // The ERP comes back from a backup taken before any of it; the forwarder's ledger still holds everything.
        await h.store.restoreEmptyBackup()
        let second = try #require(try await Self.reconcile(h, reports: reports))
        #expect(second.healed == 12, "\(second.summary)")
        try await Self.quiesce(h, f)
        let after = await Self.differing(h, admin.store)
        #expect(after.differing.isEmpty, "every order and refunded amount restored; differing: \(after.differing.sorted().prefix(5))")
        #expect(await h.store.creditNoteCount == refunds, "each refund booked once in the restored ERP")
        #expect(await h.store.duplicatedRefunds().isEmpty)
        #expect(await h.store.duplicatedRefs().isEmpty)

        let third = try #require(try await Self.reconcile(h, reports: reports))
        #expect(third.healed == 0 && third.matched == 12, "nothing left to heal: \(third.summary)")
        #expect(try await h.publisher.queueCounts(BridgeTopology.deadLetterQueue(of: BridgeTopology.orders.name)).messages == 0)
        await reconciler.stop()
        await admin.stop()
        await f.stop()
        await h.close()
    }
}
