import BridgeDomain
import BridgeMessaging
import BridgeTestSupport
import ERPSimulator
import Foundation
import Logging
import Messaging
import OrderForwarding
import ShopifySimulator
import Testing

/// Scale and failure: several forwarders, an ERP outage, a forwarder killed with SIGKILL. Counted afterwards in
/// the ERP simulator: every order exactly once, nothing dead-lettered.
@Suite("order-forwarder under scale, ERP outage and kill -9", .serialized)
struct ForwarderResilienceTests {
    static let dlq = BridgeTopology.deadLetterQueue(of: BridgeTopology.orders.name)

    /// Publishes every order once, plus redeliveries (same webhook id) and duplicate webhooks (new id) for a share.
    static func publish(_ orders: [ShopifyOrderFixture], via h: ForwarderHarness, duplicateEvery: Int = 5, concurrency: Int = 64) async throws {
        var jobs: [(Data, String)] = []
        for (i, o) in orders.enumerated() {
            let body = o.json()
            jobs.append((body, "wh-\(o.id)"))
            if i % duplicateEvery == 0 { jobs.append((body, "wh-\(o.id)")) }
            if i % duplicateEvery == 1 { jobs.append((body, "wh-\(o.id)-again")) }
        }
        let triggered = Date()
        try await withThrowingTaskGroup(of: Void.self) { group in
            var next = 0
            func add() {
                let (body, id) = jobs[next]
                next += 1
                group.addTask { try await h.publish(body, topic: "orders/create", webhookId: id, triggeredAt: triggered) }
            }
            for _ in 0..<min(concurrency, jobs.count) { add() }
            while try await group.next() != nil {
                if next < jobs.count { add() }
            }
        }
    }

    /// Exactly once, from what the ERP recorded: one document per order, no version written after a newer one, and
    /// with `strict` no version written twice (crash and cut-connection tests may repeat a write: not strict).
    static func expectExactlyOnce(_ h: ForwarderHarness, _ orders: [ShopifyOrderFixture], strict: Bool) async throws {
        #expect(await h.store.orderCount == orders.count)
        #expect(await h.store.duplicatedRefs().isEmpty, "an order was created twice in the ERP")
        let problems = await h.callLogProblems(orders.map(\.id), strict: strict)
        #expect(problems.isEmpty, "\(problems.count) orders written wrongly, first: \(problems.prefix(5))")
        #expect(try await h.publisher.queueCounts(dlq).messages == 0)
    }

    /// Waits until the forwarders settled every published delivery (the end state), so nothing is still in flight.
    static func settled(_ forwarders: [RunningForwarder], _ count: Int) async -> Bool {
        await eventually(timeout: .seconds(120)) { forwarders.reduce(0) { $0 + $1.forwarder.settledTotal } >= count }
    }

    /// How many deliveries `publish` makes for `orders`.
    static func deliveries(_ orders: Int, duplicateEvery: Int) -> Int {
        orders + (0..<orders).filter { $0 % duplicateEvery == 0 || $0 % duplicateEvery == 1 }.count
    }

    @Test("three forwarders on 5,000 orders with injected duplicates: every order exactly once", arguments: ERPStore.Profile.allCases)
    func threeForwarders(profile: ERPStore.Profile) async throws {
        let h = try await ForwarderHarness.make("scale", profile: profile)
        let forwarders = [
            try await h.startForwarder(), try await h.startForwarder(), try await h.startForwarder(),
        ]
        let orders = OrderGenerator(seed: 3, firstOrderId: 5_000_000_000_000).orders(5000)
        let start = ContinuousClock.now
        try await Self.publish(orders, via: h)
        #expect(await eventually(timeout: .seconds(240)) { await h.store.orderCount == 5000 })
        let elapsed = ContinuousClock.now - start
        print("three forwarders: 5000 orders (+2000 duplicates) in \(elapsed) -> \(Int(5000 / (Double(elapsed.wholeMilliseconds) / 1000))) orders/s")
        #expect(await Self.settled(forwarders, Self.deliveries(5000, duplicateEvery: 5)))
        try await Self.expectExactlyOnce(h, orders, strict: true)
        #expect(await h.store.totalUpdates == 0, "duplicates of the same version never reach the ERP as updates")
        for f in forwarders { await f.stop() }
        await h.close()
    }

    @Test(
        "ERP down for 30 s under traffic: nothing lost, no duplicates, caught up; the circuit keeps retries from cycling",
        arguments: ERPStore.Profile.allCases)
    func erpOutage(profile: ERPStore.Profile) async throws {
        let h = try await ForwarderHarness.make("outage", profile: profile)
        let f = try await h.startForwarder(breakerThreshold: 3, probeInterval: .seconds(1))
        var down = ERPStore.Faults()
        down.errorRate = 1
        down.errorStatus = 503
        await h.store.setFaults(down)
        let outageStart = ContinuousClock.now
        let orders = OrderGenerator(seed: 5, firstOrderId: 6_000_000_000_000).orders(300)
        // 300 orders over ~10 s while the ERP is down.
        for chunk in stride(from: 0, to: orders.count, by: 30) {
            try await Self.publish(Array(orders[chunk..<min(chunk + 30, orders.count)]), via: h, duplicateEvery: 10)
            try await Task.sleep(for: .seconds(1))
        }
        try await Task.sleep(until: outageStart.advanced(by: .seconds(30)))
        let hitsDuringOutage = await h.store.faultHits
        #expect(await h.store.orderCount == 0)
        await h.store.setFaults(.init())
        let recovery = ContinuousClock.now
        #expect(await eventually(timeout: .seconds(60)) { await h.store.orderCount == 300 })
        print("ERP outage: \(hitsDuringOutage) failed ERP calls in 30 s for 300 orders; caught up in \(ContinuousClock.now - recovery)")
        // Without the breaker each of 300 orders would have failed 3 times (first try + 2 retry levels) and been
        // dead-lettered; with it, only the threshold and roughly one probe per second hit the ERP.
        #expect(hitsDuringOutage < 120)
        #expect(await Self.settled([f], Self.deliveries(300, duplicateEvery: 10)))
        try await Self.expectExactlyOnce(h, orders, strict: true)
        await f.stop()
        await h.close()
    }

    @Test(
        "ERP maintenance window (connection refused) under traffic: held, then caught up, every order exactly once",
        arguments: ERPStore.Profile.allCases)
    func erpMaintenance(profile: ERPStore.Profile) async throws {
        let h = try await ForwarderHarness.make("maint", profile: profile)
        var logger = Logger(label: "erp-sim")
        logger.logLevel = .warning
        let (port, serverTask) = try await ERPSimulatorServer.start(
            routes: ERPSimulatorRoutes(store: h.store, apiKey: ForwarderHarness.apiKey), logger: logger)
        let f = try await h.startForwarder(breakerThreshold: 3, probeInterval: .milliseconds(500), erpURL: "http://127.0.0.1:\(port)")
        let orders = OrderGenerator(seed: 13, firstOrderId: 8_000_000_000_000).orders(60)
        try await Self.publish(Array(orders.prefix(30)), via: h, duplicateEvery: 10)
        #expect(await eventually { await h.store.orderCount == 30 })
        await h.store.requestMaintenance(.seconds(4))
        try await Task.sleep(for: .milliseconds(500))
        try await Self.publish(Array(orders.suffix(30)), via: h, duplicateEvery: 10)
        try await Task.sleep(for: .seconds(2))
        #expect(await h.store.orderCount == 30, "nothing reaches the ERP while it refuses connections")
        #expect(await eventually(timeout: .seconds(60)) { await h.store.orderCount == 60 })
        #expect(await Self.settled([f], Self.deliveries(30, duplicateEvery: 10) * 2))
        // A connection cut mid-request may have committed a write the forwarder then repeats: not strict.
        try await Self.expectExactlyOnce(h, orders, strict: false)
        await f.stop()
        serverTask.cancel()
        await h.close()
    }

    @Test(
        "kill -9 of a forwarder process mid-stream: a new one finishes the work, every order exactly once",
        arguments: ERPStore.Profile.allCases)
    func killNine(profile: ERPStore.Profile) async throws {
        let h = try await ForwarderHarness.make("kill", profile: profile)
        var slow = ERPStore.Faults()
        slow.latencyMs = 20
        await h.store.setFaults(slow)
        let env = [
            "BROKER_URL": h.broker.url(vhost: h.vhost), "HTTP_PORT": "0", "HTTP_HOST": "127.0.0.1", "LOG_LEVEL": "warning",
            "TOPOLOGY_RETRY_DELAYS": "1s,2s", "SHOPS": ForwarderHarness.shopId,
            "SHOP_ACME_DOMAIN": ForwarderHarness.shopDomain, "SHOP_ACME_WEBHOOK_SECRETS": "unused-here",
            "SHOP_ACME_ADMIN_TOKEN": "unused-here", "ERP_BASE_URL": h.erpURL, "ERP_API_KEY": ForwarderHarness.apiKey,
            "ORDER_FORWARDER_LEDGER": "sqlite:\(h.ledgerPath)", "ORDER_FORWARDER_LOCK_TTL": "3s",
            "ORDER_FORWARDER_LOCK_WAIT": "4s", "ORDER_FORWARDER_PREFETCH": "32", "ORDER_FORWARDER_UNKNOWN_OUTCOME_WAIT": "2s",
        ].merging(h.erpProfileEnvironment) { $1 }
        let orders = OrderGenerator(seed: 9, firstOrderId: 7_000_000_000_000).orders(2000)
        try await Self.publish(orders, via: h, duplicateEvery: 10)
        let (first, _) = try TestProcesses.launch("order-forwarder", environment: env)
        defer { if first.isRunning { kill(first.processIdentifier, SIGKILL) } }
        #expect(await eventually(timeout: .seconds(120)) { await h.store.orderCount >= 300 })
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        let atKill = await h.store.orderCount
        #expect(atKill < 2000, "killed mid-stream")
        let (second, err) = try TestProcesses.launch("order-forwarder", environment: env)
        defer { if second.isRunning { kill(second.processIdentifier, SIGKILL) } }
        #expect(await eventually(timeout: .seconds(180)) { await h.store.orderCount == 2000 })
        print("kill -9 after \(atKill) of 2000 orders; the second forwarder finished the rest")
        // Every delivery settled: the ready count drains, then a graceful stop returns anything still unacked, so an
        // empty queue afterwards means nothing was left over.
        #expect(try await eventually(timeout: .seconds(60)) { try await h.publisher.queueCounts(BridgeTopology.orders.name).messages == 0 })
        kill(second.processIdentifier, SIGTERM)
        #expect(await eventually(timeout: .seconds(20)) { !second.isRunning })
        if !second.isRunning { #expect(second.terminationStatus == 0) }
        #expect(try await h.publisher.queueCounts(BridgeTopology.orders.name).messages == 0)
        // A write the killed process made but did not record is repeated (same version): not strict.
        try await Self.expectExactlyOnce(h, orders, strict: false)
        _ = err
        await h.close()
    }

    @Test("an ERP outage longer than the broker's consumer_timeout: held deliveries are parked before it, so the channel is never closed, no delivery count grows, nothing is dead-lettered, every order once after the ERP returns")
    func outageLongerThanConsumerTimeout() async throws {
        // consumer_timeout 6 s, checked every second (scripts/broker); the ERP is down for 36 s (six times as long).
        // A delivery limit of 1: a second return to the queue would dead-letter an order as `delivery_limit`.
        let broker = try await TestBroker.startPrivate(consumerTimeout: .seconds(6))
        let topology = BridgeConfig.TopologySettings(deliveryLimit: 1, retryDelays: ForwarderHarness.settings.retryDelays)
        let h = try await ForwarderHarness.make("hold", broker: broker, topology: topology)
        let f = try await h.startForwarder(
            breakerThreshold: 3, probeInterval: .seconds(1), environment: ["TOPOLOGY_DELIVERY_LIMIT": "1", "TOPOLOGY_MAX_HOLD": "2s"])
        var down = ERPStore.Faults()
        down.errorRate = 1
        down.errorStatus = 503
        await h.store.setFaults(down)
        let reconnectsBefore = f.consumer.currentStatus.reconnects
        let orders = OrderGenerator(seed: 51, firstOrderId: 9_200_000_000_000).orders(40)
        try await Self.publish(orders, via: h, duplicateEvery: 10)
        try await Task.sleep(for: .seconds(36))
        #expect(await h.store.orderCount == 0)
        let parked = f.forwarder.settledCounts["parked", default: 0]
        await h.store.setFaults(.init())
        #expect(await eventually(timeout: .seconds(90)) { await h.store.orderCount == 40 })
        #expect(f.consumer.currentStatus.reconnects == reconnectsBefore, "the broker never closed the consuming channel")
        #expect(parked > 0, "held deliveries were parked")
        try await Self.expectExactlyOnce(h, orders, strict: true)
        print("outage past consumer_timeout: \(parked) deliveries parked while the ERP was down 36 s; settled \(f.forwarder.settledCounts)")
        await f.stop()
        await h.close()
        await broker.destroy()
    }
}
