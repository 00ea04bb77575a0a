import BridgeTestSupport
import Foundation
import InventorySync
import ShopifySimulator
import Testing

/// Two inventory-syncer processes (the real executable): one active, one standing by; kill -9 the active one.
@Suite("one active inventory-syncer: a standby takes over within seconds of kill -9, without double writes", .serialized)
struct StandbyTests {
    static func metric(_ port: Int, _ name: String) async -> Double? {
        // Nothing answered: an empty body, no line, nil.
        let body = await TestProcesses.get("http://127.0.0.1:\(port)/metrics").1
        let line = body.split(separator: "\n").first { $0.hasPrefix(name + " ") || $0.hasPrefix(name + "{") }
        return line?.split(separator: " ").last.flatMap { Double($0) }
    }

    @Test("the standby holds off while the active syncer lives, takes the lease after kill -9 and writes the next change once")
    func takeover() async throws {
        let h = try await InventoryHarness.make("inv-standby", skus: 5)
        var env = h.environment(safetyStock: 0, extra: ["LOG_LEVEL": "warning"])
        let portA = TestProcesses.freePort()
        env["HTTP_PORT"] = "\(portA)"
        let (a, _) = try TestProcesses.launch("inventory-syncer", environment: env)
        defer { if a.isRunning { kill(a.processIdentifier, SIGKILL) } }
        #expect(await eventually(timeout: .seconds(30)) { await Self.metric(portA, "inventory_syncer_active") == 1 })
        let portB = TestProcesses.freePort()
        env["HTTP_PORT"] = "\(portB)"
        let (b, _) = try TestProcesses.launch("inventory-syncer", environment: env)
        defer { if b.isRunning { kill(b.processIdentifier, SIGKILL) } }
        #expect(await eventually(timeout: .seconds(30)) { await Self.metric(portB, "inventory_syncer_active") == 0 })
        #expect(await eventually(timeout: .seconds(30)) { await h.mismatches(skus: 5, safetyStock: 0).isEmpty })

        // While A is active, B stays a standby: A writes the change.
        await h.inventory.move(sku: OrderGenerator.sku(1), warehouse: "WH-1", available: 21)
        #expect(await eventually(timeout: .seconds(20)) { await h.shopifyAvailable(1) == 21 })
        #expect(await Self.metric(portB, "inventory_syncer_active") == 0, "one active syncer at a time")

        kill(a.processIdentifier, SIGKILL)
        let killed = ContinuousClock.now
        let tookOver = await eventually(timeout: .seconds(20)) { await Self.metric(portB, "inventory_syncer_active") == 1 }
        let takeover = ContinuousClock.now - killed
        #expect(tookOver, "B took the lease")
        print("standby took over \(takeover) after kill -9")
        let writesBefore = await h.levelWrites(1)
        await h.inventory.move(sku: OrderGenerator.sku(1), warehouse: "WH-1", available: 9)
        #expect(await eventually(timeout: .seconds(30)) { await h.shopifyAvailable(1) == 9 }, "B wrote the change")
        try await Task.sleep(for: .seconds(1))
        #expect(await h.levelWrites(1) == writesBefore + 1, "written once")
        kill(b.processIdentifier, SIGTERM)
        _ = await eventually(timeout: .seconds(15)) { !b.isRunning }
        await h.close()
    }

    @Test("one writer: an active syncer whose broker connection is cut, not closed, stops writing within half its lease_ttl; the standby that takes over writes only lease_ttl after taking the lease")
    func cutActiveStopsWriting() async throws {
        let h = try await InventoryHarness.make("inv-cut", skus: 2, erpStock: 30...30, shopifyStock: 30)
        let proxy = try TestTCPProxy.start(to: h.broker.amqpPort)
        defer { proxy.stop() }
        let ttl = 8
        // A reaches the broker through the proxy only (heartbeats every second: the broker notices the cut in a few
        // seconds and drops A's lease); B directly.
        let viaProxy = h.broker.url(vhost: h.vhost).replacingOccurrences(of: ":\(h.broker.amqpPort)/", with: ":\(proxy.port)/")
        let a = try await h.startSyncer(
            safetyStock: 0, extra: ["BROKER_URL": viaProxy, "BROKER_HEARTBEAT": "1s", "INVENTORY_SYNCER_LEASE_TTL": "\(ttl)s"])
        #expect(await eventually(timeout: .seconds(30)) { await h.mismatches(skus: 2, safetyStock: 0).isEmpty })
        let b = try await h.startSyncer(safetyStock: 0, extra: ["INVENTORY_SYNCER_LEASE_TTL": "\(ttl)s"], waitActive: false)
        try await Task.sleep(for: .seconds(1))
        #expect(a.process.lease.isActive && !b.process.lease.isActive, "A active, B standing by")
        let item = await h.item(1)
        let location = h.locations[0]
        let writesBefore = await h.shopify.store.totalLevelWrites

        proxy.freeze()
        let cut = Date()
        // Half the TTL on, A can no longer confirm its lease. It still reaches Shopify and the ERP: a change now,
        // and a full sync of A's (its schedule could start one at any time), must not write.
        try await Task.sleep(for: .seconds(ttl / 2) + .milliseconds(500))
        _ = await h.inventory.move(sku: OrderGenerator.sku(1), warehouse: "WH-1", available: 7)
        let fullSync = a.process.fullSync
        let levels = try await fullSync.readERP()
        do {
            _ = try await fullSync.run(a.process.syncer.shops[0], erpLevels: levels, dryRun: false)
            Issue.record("A's full sync wrote its correction")
        } catch {
            #expect("\(error)".contains("cannot confirm its lease"), "A's full sync was refused by the fence: \(error)")
        }
        let writesByA = await h.shopify.store.totalLevelWrites - writesBefore
        #expect(writesByA == 0, "\(writesByA) levels written after A could no longer confirm its lease and before it ran out")

        // B takes the lease once the broker drops A's connection, and writes the pushed change lease_ttl later.
        let written = await eventually(timeout: .seconds(60)) { await h.shopifyAvailable(1) == 7 }
        #expect(written, "B wrote the change")
        let at = await h.shopify.store.levelUpdatedAt[item]?[location] ?? .distantPast
        let after = at.timeIntervalSince(cut)
        #expect(after >= Double(ttl), "the first write came \(after) s after the cut: before A's lease ran out")
        print("cut, not closed: A fenced, B's first write \(String(format: "%.1f", after)) s after the cut (lease_ttl \(ttl) s)")
        proxy.thaw()
        await b.stop()
        await a.stop()
        await h.close()
    }
}
