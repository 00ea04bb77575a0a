import BridgeMessaging
import BridgeTestSupport
import Foundation
import InventorySync
import ShopifySimulator
import Testing

/// Units Shopify sold that the ERP does not count yet are counted per order, never netted across orders: an order
/// the ERP holds more units for than Shopify still commits (cancelled or partly fulfilled in Shopify, not yet in the
/// ERP) must not let another order's units through. The oracle is the simulators' own records: erp-sim's figure,
/// and shopify-sim's `committed` when every order it counts is one the ERP has not seen.
@Suite("pending units per order: cancellations and partial fulfilments the ERP has not seen", .serialized)
struct PendingUnitsTests {
    /// Waits until the syncer has taken every webhook and change queued for it.
    static func quiet(_ h: InventoryHarness, _ s: RunningSyncer) async -> Bool {
        let queues = [BridgeTopology.erpInventory, BridgeTopology.shopifyInventory, BridgeTopology.inventoryOrders].map(\.name)
        let p = s.process
        return await eventually(timeout: .seconds(30)) {
            for q in queues where (try? await h.publisher.queueCounts(q).messages) != 0 { return false }
            return p.erpStock.inFlightCount + p.shopifyLevels.inFlightCount + p.orders.inFlightCount == 0
        }
    }

    /// SKU 1 at 10 in both systems and a syncer at no safety stock; X (3 units of SKU 1) placed and allocated by the
    /// ERP (7 left); then the forwarder stopped, so the ERP learns nothing more. Returns X's id.
    static func allocatedThenForwarderStopped(_ prefix: String) async throws -> (InventoryHarness, RunningSyncer, Int64) {
        let h = try await InventoryHarness.make(prefix, skus: 2, erpStock: 10...10, shopifyStock: 10, catchAll: "MISC")
        let s = try await h.startSyncer(safetyStock: 0)
        #expect(await eventually(timeout: .seconds(30)) { await h.mismatches(skus: 2, safetyStock: 0).isEmpty })
        let (forwarder, forwarderTask) = try await h.startForwarder()
        let x = await h.shopify.store.placeOrder(variant: 0, quantity: 3)
        let xId = try #require(x.first?.orderId)
        await h.shopify.deliverer.deliver(x)
        #expect(await eventually(timeout: .seconds(30)) { await h.erpAvailable(1) == 7 })
        await forwarder.triggerGracefulShutdown()
        _ = await forwarderTask.result
        return (h, s, xId)
    }

    /// Stops `s`, starts a new syncer (which knows the orders only from the ERP's allocations and Shopify's read),
    /// runs its full sync and expects SKU 1 at `shows`; then closes the harness.
    static func expectAfterRestart(_ h: InventoryHarness, stopping s: RunningSyncer, shows expected: Int) async throws {
        await s.stop()
        let next = try await h.startSyncer(safetyStock: 0)
        _ = try await next.process.fullSync.run(
            next.process.syncer.shops[0], erpLevels: try await next.process.fullSync.readERP(), dryRun: false)
        let afterRestart = await h.shopifyAvailable(1) ?? -1
        #expect(afterRestart == expected, "after a restart Shopify shows \(afterRestart), the rule \(expected)")
        await next.stop()
        await h.close()
    }

    @Test("an order cancelled in Shopify and not yet in the ERP: its allocation never covers a newer order's units, before or after a restart")
    func cancellationNotInERP() async throws {
        let (h, s, xId) = try await Self.allocatedThenForwarderStopped("inv-pend-cancel")
        let store = h.shopify.store
        let item = await h.item(1)
        let location = h.locations[0]
        #expect(await eventually(timeout: .seconds(30)) { await h.shopifyAvailable(1) == 7 })

        // With the forwarder stopped the ERP learns nothing more: X is cancelled in Shopify (its 3 units back in
        // Shopify's `available`, still allocated in the ERP), and Y (2 units) is placed.
        await h.shopify.deliverer.deliver(await store.cancelOrder(xId))
        await h.shopify.deliverer.deliver(await store.placeOrder(variant: 0, quantity: 2))
        #expect(await Self.quiet(h, s))
        // The ERP's 7 hold nothing of Y: Shopify may show 7 − 2. Netted, X's 3 allocated units would cover Y's 2
        // and Shopify would show 7.
        func oracle() async -> Int { (await h.erpAvailable(1) ?? 0) - (await store.committed[item]?[location] ?? 0) }
        #expect(await oracle() == 5)
        let held = await eventually(timeout: .seconds(20)) { await h.shopifyAvailable(1) == 5 }
        let shown = await h.shopifyAvailable(1) ?? -1
        let rule = await oracle()
        #expect(held, "Shopify shows \(shown), the rule \(rule)")

        // A new process reads what the ERP holds (X's 3) and what Shopify still commits for X (nothing, cancelled).
        try await Self.expectAfterRestart(h, stopping: s, shows: 5)
    }

    @Test("an order partly fulfilled in Shopify: the ERP's allocation covers what Shopify still commits for it, not another order's units, before or after a restart")
    func partialFulfilment() async throws {
        let (h, s, xId) = try await Self.allocatedThenForwarderStopped("inv-pend-partial")
        let store = h.shopify.store
        // Shopify ships one unit of X (it still commits 2) before the ERP ships anything.
        await h.shopify.deliverer.deliver(await store.fulfilOrder(xId, partial: true))
        // Y (2 units), not in the ERP.
        await h.shopify.deliverer.deliver(await store.placeOrder(variant: 0, quantity: 2))
        #expect(await Self.quiet(h, s))
        // The ERP's 7 exclude all of X and nothing of Y: Shopify may show 7 − 2 = 5. Netted (Shopify's committed 2 + 2
        // against the ERP's 3 for X), it would show 6.
        let held = await eventually(timeout: .seconds(20)) { await h.shopifyAvailable(1) == 5 }
        let shown = await h.shopifyAvailable(1) ?? -1
        #expect(held, "Shopify shows \(shown), the rule 5")

        // A new process reads what the ERP holds (X's 3) and what Shopify still commits for X (2).
        try await Self.expectAfterRestart(h, stopping: s, shows: 5)
    }
}
