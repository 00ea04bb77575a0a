import BridgeDomain
import BridgeMessaging
import BridgeTestSupport
import ERP
import ERPSimulator
import Foundation
import Ledger
import Messaging
import OrderForwarding
import Shopify
import ShopifySimulator
import Testing

/// A plain ERP (create always creates, overwrite has no version check) that commits requests after the forwarder
/// gave up on them, and a forwarder paused mid-call while another takes its order over. Counted from erp-sim's own
/// documents and call log, never from the bridge's counters.
@Suite("order-forwarder: unknown outcomes and fencing against a plain ERP", .serialized)
struct UnknownOutcomeTests {
    static let dlq = BridgeTopology.deadLetterQueue(of: BridgeTopology.orders.name)

    @Test("a slow plain ERP that commits 30% of requests after the forwarder's timeout: every order and refund once, never an older version after a newer one, nothing dead-lettered")
    func slowPlainERP() async throws {
        let h = try await ForwarderHarness.make("unknown", profile: .plain)
        // The client gives up after 1 s; erp-sim still commits a slow request at 1.5 s. The order stays fenced for
        // 3 s after an unknown outcome, longer than the ERP takes.
        let f = try await h.startForwarder(
            mapping: .init(missingSKU: .catchAll, catchAllItem: "SKU-00001"), breakerThreshold: 50,
            environment: ["ERP_TIMEOUT": "1s", "ORDER_FORWARDER_UNKNOWN_OUTCOME_WAIT": "3s"])
        let (ingestURL, ingestTask) = try await SaleEndToEndTests.startIngest(h)
        var slow = ERPStore.Faults()
        slow.slowRate = 0.3
        slow.slowMs = 1500
        await h.store.setFaults(slow)
        let (store, deliverer) = await SaleEndToEndTests.shop(seed: 33, ingestURL: ingestURL, duplicateRate: 0.1, maxDelayMs: 50)
        let result = await TrafficGenerator(store: store, deliverer: deliverer).run(
            SaleProfile(
                orders: 200, ordersPerSecond: 0, updateShare: 0.3, cancelShare: 0.1, refundShare: 0.2, sameSecondShare: 0.2, seed: 34,
                concurrency: 16))
        #expect(result.placed == 200)
        let orders = await store.orders
        var bad: [String] = []
        let settled = await eventually(timeout: .seconds(240)) {
            bad = await h.mismatches(orders)
            return bad.isEmpty
        }
        #expect(settled, "first mismatches: \(bad.prefix(5))")
        let slowCalls = await h.store.arrivals
        // Everything the ERP holds, from its own records.
        let duplicated = await h.store.duplicatedRefs()
        #expect(duplicated.isEmpty, "\(duplicated.count) references with several sales orders, first: \(duplicated.prefix(3))")
        let refunds = await h.refundProblems()
        #expect(refunds.isEmpty, "\(refunds.count) refunds booked twice, first: \(refunds.prefix(3))")
        let problems = await h.callLogProblems(Array(orders.keys), strict: false)
        #expect(problems.isEmpty, "\(problems.count) orders written wrongly, first: \(problems.prefix(5))")
        for problem in problems.prefix(2) {
            let ref = String(problem.prefix { $0 != ":" })
            for call in await h.store.calls(ref: ref) { print("  \(ref) #\(call.seq) \(call.operation) \(call.version ?? "-") \(call.outcome)") }
        }
        #expect(try await h.publisher.queueCounts(Self.dlq).messages == 0)
        let salesOrders = await h.store.orderCount
        let settledCounts = f.forwarder.settledCounts
        print("slow plain ERP: \(result.placed) orders, \(result.updated) updates, \(result.cancelled) cancellations, \(result.refunded) refunds")
        print("slow plain ERP: \(slowCalls) ERP requests, \(salesOrders) sales orders, settled: \(settledCounts)")
        ingestTask.cancel()
        await deliverer.shutdown()
        await f.stop()
        await h.close()
    }

    @Test("a forwarder paused (SIGSTOP) past its lease while the ERP commits its create: the forwarder that takes over waits out the unknown outcome, finds the document and updates it; one sales order, nothing recorded by the paused one")
    func pausedHolderIsFenced() async throws {
        let h = try await ForwarderHarness.make("fenced", profile: .plain)
        var order = OrderGenerator(seed: 41, firstOrderId: 9_100_000_000_000).orders(1)[0]
        let ledger = try SQLiteOrderLedger(path: h.ledgerPath)
        let env = [
            "BROKER_URL": h.broker.url(vhost: h.vhost), "HTTP_PORT": "0", "HTTP_HOST": "127.0.0.1", "LOG_LEVEL": "warning",
            "TOPOLOGY_RETRY_DELAYS": "1s,2s", "SHOPS": ForwarderHarness.shopId,
            "SHOP_ACME_DOMAIN": ForwarderHarness.shopDomain, "SHOP_ACME_WEBHOOK_SECRETS": "unused-here",
            "SHOP_ACME_ADMIN_TOKEN": "unused-here", "ERP_BASE_URL": h.erpURL, "ERP_API_KEY": ForwarderHarness.apiKey,
            "ERP_PROFILE": "plain", "ERP_TIMEOUT": "10s", "ORDER_FORWARDER_UNKNOWN_OUTCOME_WAIT": "9s",
            "ORDER_FORWARDER_LEDGER": "sqlite:\(h.ledgerPath)", "ORDER_FORWARDER_LOCK_TTL": "2s", "ORDER_FORWARDER_LOCK_WAIT": "1s",
            // One delivery at a time: the broker would otherwise push the newer version to the stopped process too.
            "ORDER_FORWARDER_PREFETCH": "1", "ORDER_FORWARDER_CONCURRENCY": "1",
        ]
        // Every ERP call takes 8 s: the first forwarder's create is in the ERP's hands when it is paused, and the ERP
        // commits it 8 s later, long after the paused forwarder's lease expired and the second one took the order.
        var slow = ERPStore.Faults()
        slow.slowRate = 1
        slow.slowMs = 8000
        await h.store.setFaults(slow)
        let (paused, _) = try TestProcesses.launch("order-forwarder", environment: env)
        defer {
            kill(paused.processIdentifier, SIGCONT)
            if paused.isRunning { kill(paused.processIdentifier, SIGKILL) }
        }
        let before = await h.store.arrivals
        try await h.publish(order.json(), topic: "orders/create", webhookId: "wh-v1")
        #expect(await eventually(timeout: .seconds(60)) { await h.store.arrivals > before }, "the create reached the ERP")
        kill(paused.processIdentifier, SIGSTOP)
        await h.store.setFaults(.init())

        // A newer version, taken by a second forwarder once the paused one's lease has expired.
        order.updatedAt = order.updatedAt.addingTimeInterval(60)
        order.tags = "vip"
        let second = try await h.startForwarder(
            environment: [
                "ERP_TIMEOUT": "10s", "ORDER_FORWARDER_UNKNOWN_OUTCOME_WAIT": "9s", "ORDER_FORWARDER_LOCK_TTL": "2s",
                "ORDER_FORWARDER_LOCK_WAIT": "1s",
            ])
        try await h.publish(order.json(), topic: "orders/updated", webhookId: "wh-v2")
        let v2 = try OrderVersion(updatedAtMs: Timestamp.milliseconds(ShopifyOrder.decode(Array(order.json())).updatedAt) ?? 0, triggeredAtMs: 0)
        #expect(
            await eventually(timeout: .seconds(60)) {
                guard let erp = await h.store.order(ref: h.ref(order.id)) else { return false }
                return OrderVersion(erpVersion: erp.version).map { $0.updatedAtMs == v2.updatedAtMs } ?? false
            }, "the second forwarder wrote the newer version")

        // The ERP commits the paused forwarder's create in its own time, whatever the forwarders do meanwhile.
        let v1 = try OrderVersion(
            updatedAtMs: Timestamp.milliseconds(ShopifyOrder.decode(Array(order.json())).updatedAt) ?? 0, triggeredAtMs: 0
        ).updatedAtMs - 60_000
        #expect(
            await eventually(timeout: .seconds(60)) {
                await h.store.writes(ref: h.ref(order.id)).contains {
                    $0.operation == "create" && $0.version.flatMap(OrderVersion.init(erpVersion:))?.updatedAtMs == v1
                }
            }, "the paused forwarder's create was committed")
        #expect(
            await eventually(timeout: .seconds(60)) {
                guard let erp = await h.store.order(ref: h.ref(order.id)) else { return false }
                return OrderVersion(erpVersion: erp.version).map { $0.updatedAtMs == v2.updatedAtMs } ?? false
            }, "and the newer version is what the ERP holds")
        // The paused forwarder resumes with its create's answer in hand and no lease.
        let callsBefore = await h.store.writes(ref: h.ref(order.id)).count
        kill(paused.processIdentifier, SIGCONT)
        // Its delivery goes to a retry level and comes back as a stale version. Settled when the work queue and its
        // retry levels are empty; then a graceful stop returns anything it still held, and that drains too.
        let queues = [BridgeTopology.orders.name] + ["1s", "2s"].map { "\(BridgeTopology.orders.name).retry.\($0)" }
        func drained() async throws -> Bool {
            for q in queues where try await h.publisher.queueCounts(q).messages > 0 { return false }
            return true
        }
        try await Task.sleep(for: .seconds(3))
        #expect(try await eventually(timeout: .seconds(60)) { try await drained() }, "the paused forwarder's delivery settled")
        kill(paused.processIdentifier, SIGTERM)
        #expect(await eventually(timeout: .seconds(20)) { !paused.isRunning })
        #expect(try await eventually(timeout: .seconds(60)) { try await drained() }, "nothing left over")

        let writes = await h.store.writes(ref: h.ref(order.id))
        #expect(writes.count == callsBefore, "no ERP write after the paused forwarder resumed: \(writes.map(\.operation))")
        #expect(writes.map(\.operation) == ["create", "update"], "the create committed late, then the newer version over it")
        let recorded = try await ledger.entry(shop: ForwarderHarness.shopId, orderId: order.id)
        #expect(recorded?.version.updatedAtMs == v2.updatedAtMs, "the ledger holds the newer version, not the paused one's")
        #expect(await h.store.duplicatedRefs().isEmpty, "one sales order for the reference")
        #expect(await h.store.orderCount == 1)
        let problems = await h.callLogProblems([order.id], strict: false)
        #expect(problems.isEmpty, "\(problems)")
        #expect(try await h.publisher.queueCounts(Self.dlq).messages == 0)
        await second.stop()
        await h.close()
    }

    @Test(
        "an ERP that honours Idempotency-Key books a create and a credit note repeated while the first is still being committed once; the same plain ERP without keys books them twice",
        arguments: [true, false])
    func idempotencyKeys(honoured: Bool) async throws {
        let h = try await ForwarderHarness.make("idem-\(honoured)", profile: .plain)
        await h.store.setHonoursIdempotencyKeys(honoured)
        let impatient = RESTERPClient(configuration: .init(baseURL: h.erpURL, apiKey: ForwarderHarness.apiKey, timeout: .milliseconds(500)))
        let client = RESTERPClient(configuration: .init(baseURL: h.erpURL, apiKey: ForwarderHarness.apiKey, timeout: .seconds(10)))
        let order = OrderGenerator(seed: 71, firstOrderId: 9_300_000_000_000).orders(1)[0]
        let so = try OrderMapper(settings: .init(missingSKU: .catchAll, catchAllItem: "SKU-00001"))
            .map(ShopifyOrder.decode(Array(order.json())), shop: ForwarderHarness.shopId, triggeredAtMs: 0).salesOrder
        // The first create is committed 1.5 s after its caller gave up (0.5 s); the repeat goes out meanwhile.
        var slow = ERPStore.Faults()
        slow.slowRate = 1
        slow.slowMs = 1500
        await h.store.setFaults(slow)
        await #expect { _ = try await impatient.createSalesOrder(so) } throws: { ($0 as? ERPError)?.mayHaveApplied == true }
        await h.store.setFaults(.init())
        let repeated = try await client.createSalesOrder(so)
        #expect(await eventually(timeout: .seconds(10)) { await h.store.writes(ref: so.externalRef).count == 2 }, "both creates reached the ERP")
        let documents = await h.store.find(ref: so.externalRef)
        #expect(documents.count == (honoured ? 1 : 2), "sales orders for one create repeated: \(documents.map(\.documentNumber))")
        if honoured { #expect(documents.first?.documentNumber == repeated) }

        let refund = ERPRefund(refundRef: "\(so.externalRef).r1", orderRef: so.externalRef, amount: Amount(Decimal(5)), createdAt: nil, lines: [])
        await h.store.setFaults(slow)
        await #expect { _ = try await impatient.createCreditNote(refund, orderDocument: repeated) } throws: { ($0 as? ERPError)?.mayHaveApplied == true }
        await h.store.setFaults(.init())
        _ = try await client.createCreditNote(refund, orderDocument: repeated)
        #expect(
            await eventually(timeout: .seconds(10)) {
                await h.store.calls(ref: refund.refundRef).filter { $0.operation == "create_credit_note" }.count == 2
            }, "both credit notes reached the ERP")
        let notes = await h.store.findCreditNotes(refundRef: refund.refundRef).count
        #expect(notes == (honoured ? 1 : 2), "credit notes for one refund repeated: \(notes)")
        await impatient.shutdown()
        await client.shutdown()
        await h.close()
    }
}
