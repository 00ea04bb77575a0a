import Alerting
import BridgeDomain
import BridgeMessaging
import BridgeTestSupport
import ERPSimulator
import Foundation
import Logging
import Messaging
import ServiceLifecycle
import ShopifySimulator
import Testing
import Worker

/// `bridgectl trace`: the journey of one order as the workers recorded it, through the alerter's journal.
@Suite("trace: one order's journey across the processes (real broker, erp-sim, the alerter's journal)", .serialized)
struct TraceTests {
    @Test("an order parked (ERP 503), dead-lettered (ERP refuses its SKU) and replayed after the fix: its trace shows every step in order")
    func retriedDeadLetteredReplayed() async throws {
        let h = try await ForwarderHarness.make("trace", profile: .plain)
        let f = try await h.startForwarder()
        var logger = Logger(label: "alerter")
        logger.logLevel = .critical
        let alerterConnection = try await h.broker.connect(vhost: h.vhost, name: "trace-alerter")
        let journal = try TraceJournal(path: h.dir.appendingPathComponent("trace.sqlite").path)
        let events = QueueWorker(
            settings: .init(queue: BridgeTopology.alerter.name, prefetch: 8, retryDelays: [.seconds(1)]),
            handler: EventsHandler(state: AlerterState(), journal: journal), consumer: alerterConnection, publisher: h.publisher, logger: logger)
        let alerter = ServiceGroup(configuration: .init(services: [.init(service: events)], logger: logger))
        let alerterTask = Task { try await alerter.run() }

        // The ERP is down for the first attempt; the order's SKU is one it does not know.
        var down = ERPStore.Faults()
        down.errorRate = 1
        down.errorStatus = 503
        await h.store.setFaults(down)
        var fixture = ShopifyOrderFixture(
            id: 4242, updatedAt: Date(), lines: [.init(id: 42_420, sku: "LEGACY-BLUE-L", quantity: 1, price: Decimal(string: "19.90")!)])
        fixture.shipping = [.init(price: Decimal(string: "4.95")!)]
        try await h.publish(fixture.json(), topic: "orders/create", webhookId: "wh-trace-1")
        // A failure of the ERP, not of the order: parked, no attempt counted.
        #expect(await eventually { f.forwarder.settledCounts["parked"] == 1 })
        await h.store.setFaults(ERPStore.Faults())
        #expect(await eventually { f.forwarder.settledCounts["dead_lettered"] == 1 })
        // The fix (the ERP learns the item), then the replay.
        await h.store.addSKUs(["LEGACY-BLUE-L"])
        #expect(try await DeadLetters.replay(h.publisher, workQueue: BridgeTopology.orders.name) == 1)
        #expect(await eventually { await h.store.order(ref: h.ref(4242)) != nil })
        let document = try #require(await h.store.order(ref: h.ref(4242))?.documentNumber)

        // The workers publish their steps every second; the alerter journals them.
        #expect(await eventually(timeout: .seconds(20)) { ((try? journal.steps(order: "4242")) ?? []).count == 3 })
        let lines = TraceLine.journey(try journal.steps(order: "4242", shop: ForwarderHarness.shopDomain))
        let summary = lines.map { "\($0.actor) \($0.event) \($0.outcome ?? "-") \($0.delivery.map(String.init) ?? "-")" }
        #expect(
            summary == [
                "shopify triggered - -", "ingest received - -",
                "q.orders parked erp_server_error 1", "q.orders dead_lettered erp_unknown_sku 1",
                "bridgectl replayed - -", "q.orders handled created 1",
            ], "\(summary)")
        #expect(lines.last?.detail == "ERP document \(document)", "\(lines.last?.detail ?? "-")")
        #expect(lines.first { $0.event == "dead_lettered" }?.detail?.contains("LEGACY-BLUE-L") == true)
        let times = lines.map(\.at)
        #expect(times == times.sorted(), "in time order: \(times)")
        // By webhook the same journey; another shop has none of it; the rendering names the delivery and the steps.
        #expect(try journal.steps(webhook: "wh-trace-1").count == 3)
        #expect(try journal.steps(order: "4242", shop: "other.myshopify.com").isEmpty)
        let text = TraceLine.render(lines, subject: "order 4242")
        print(text)
        #expect(text.hasPrefix("order 4242: 1 delivery (wh-trace-1), 6 steps") && !text.contains("not replayed since"), "\(text)")

        await alerter.triggerGracefulShutdown()
        _ = await alerterTask.result
        await alerterConnection.close()
        await f.stop()
        await h.close()
    }

    @Test("a delivery that ends dead-lettered says so, with the commands to look and to replay; an unknown order says why it may be missing")
    func renderDeadEnd() {
        let step = BridgeEvents.TraceStep(
            queue: "q.orders", instance: "h:1:x", shop: "acme.myshopify.com", topic: "orders/create", webhookId: "wh-9", eventId: nil, subject: "9",
            result: "dead_lettered", outcome: "erp_unknown_sku", detail: "unknown SKU X", attempt: 0, replays: 0, redelivered: false,
            receivedAt: "2026-12-04T10:00:00.000Z", triggeredAt: "2026-12-04T09:59:59.000Z", replayedAt: nil, durationMs: 12)
        let text = TraceLine.render(TraceLine.journey([step]), subject: "order 9")
        #expect(text.contains("bridgectl dlq show --queue q.orders --id wh-9") && text.contains("bridgectl dlq replay --queue q.orders --id wh-9"), "\(text)")
        #expect(TraceLine.render([], subject: "order 1").contains("no steps recorded"))
    }
}
