import BridgeTestSupport
import Foundation
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
}
