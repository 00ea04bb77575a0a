import BridgeDomain
import BridgeMessaging
import BridgeRuntime
import BridgeTestSupport
import ERPSimulator
import Foundation
import InventorySync
import Reconciliation
import ServiceLifecycle
import ShopifySimulator
import Testing

/// The reconciler's inventory domain with the inventory-syncer it sends its corrections to: real broker, erp-sim,
/// shopify-sim's Admin API over HTTP.
@Suite("reconciler, inventory: silent drift in both directions found, corrected by the syncer, counted exactly", .serialized)
struct InventoryReconcileTests {
    static func startReconciler(_ h: InventoryHarness, reports: String, allowance: Int) async throws -> (ServiceGroup, Task<Void, any Error>) {
        try await h.startReconciler(extra: ["RECONCILER_REPORTS_DIR": reports, "RECONCILER_INVENTORY_ALLOWANCE": "\(allowance)"])
    }

    static func reconcile(_ h: InventoryHarness, reports: String, dryRun: Bool = false) async throws -> ReconcileReport? {
        try await h.reconcile(.inventory, reports: reports, dryRun: dryRun)
    }

    @Test("drift injected without any webhook or push (Shopify up, Shopify down, ERP moved, one within the allowance): a dry run writes nothing; a run counts each kind exactly, the syncer corrects them, a second run finds only the allowance")
    func driftCorrected() async throws {
        let skus = 20
        let h = try await InventoryHarness.make("inv-reconcile", skus: skus, erpStock: 10...40)
        let s = try await h.startSyncer(safetyStock: 2)
        #expect(await eventually(timeout: .seconds(30)) { await h.mismatches(skus: skus, safetyStock: 2).isEmpty })
        let reports = h.dir.appendingPathComponent("reports").path
        let (group, task) = try await Self.startReconciler(h, reports: reports, allowance: 1)

        // Shopify shows more than the ERP allows (lost webhooks of a staff edit): SKUs 1-4 at the first location,
        // 6, 7, 8, 9 units too many.
        for n in 1...4 {
            let shown = await h.shopifyAvailable(n)!
            _ = await h.shopify.store.setAvailable(item: await h.item(n), location: h.locations[0], available: shown + 5 + n)
        }
        // Shopify shows less: SKUs 5-7 at the second location, 3 units.
        for n in 5...7 {
            let shown = await h.shopifyAvailable(n, location: 1)!
            _ = await h.shopify.store.setAvailable(item: await h.item(n), location: h.locations[1], available: shown - 3)
        }
        // The ERP received goods and the push was lost: SKUs 8-9 at WH-1, 7 more.
        for n in 8...9 {
            let erp = await h.erpAvailable(n)!
            await h.inventory.move(sku: OrderGenerator.sku(n), warehouse: "WH-1", available: erp + 7, notify: false)
        }
        // Within the allowance of 1: SKU 10 at the first location, one unit too many.
        let shown10 = await h.shopifyAvailable(10)!
        _ = await h.shopify.store.setAvailable(item: await h.item(10), location: h.locations[0], available: shown10 + 1)
        let injected = await h.mismatches(skus: skus, safetyStock: 2)
        #expect(injected.count == 10, "\(injected)")
        let erpBefore = await (1...skus).asyncMap { n in [await h.erpAvailable(n, warehouse: 0), await h.erpAvailable(n, warehouse: 1)] }

        let writesBefore = await h.shopify.store.totalLevelWrites
        let dry = try #require(try await Self.reconcile(h, reports: reports, dryRun: true))
        #expect(dry.healed == 0 && dry.reported == 10 && dry.differences.filter { $0.action == "would_heal" }.count == 9, "\(dry.summary)")
        try await Task.sleep(for: .milliseconds(500))
        #expect(await h.shopify.store.totalLevelWrites == writesBefore, "a dry run writes nothing")

        let run = try #require(try await Self.reconcile(h, reports: reports))
        #expect(run.error == nil)
        #expect(run.checked == skus * 2 && run.matched == skus * 2 - 10, "\(run.summary)")
        #expect(run.mismatches == ["drift_up": 4, "drift_down": 5, "within_allowance": 1], "\(run.summary)")
        #expect(run.healed == 9 && run.reported == 1)
        #expect(run.driftHistogram == ["1": 1, "2-5": 3, "6-20": 6], "\(run.driftHistogram ?? [:])")
        let left = await eventually(timeout: .seconds(30)) { await h.mismatches(skus: skus, safetyStock: 2).count == 1 }
        let remaining = await h.mismatches(skus: skus, safetyStock: 2)
        #expect(left, "the syncer corrected all but the level within the allowance: \(remaining)")
        #expect(remaining.first?.hasPrefix("SKU 10@0") == true, "\(remaining)")
        #expect(await eventually { (s.erpCounts["corrected"] ?? 0) >= 1 }, "the syncer wrote the corrections: \(s.erpCounts)")

        let second = try #require(try await Self.reconcile(h, reports: reports))
        #expect(second.mismatches == ["within_allowance": 1] && second.healed == 0, "\(second.summary)")
        // The ERP owns stock: nothing was written into it.
        let erpAfter = await (1...skus).asyncMap { n in [await h.erpAvailable(n, warehouse: 0), await h.erpAvailable(n, warehouse: 1)] }
        #expect(erpAfter == erpBefore)
        let markdown = try String(contentsOfFile: reports + "/\(run.runId).md", encoding: .utf8)
        #expect(markdown.contains("| 6-20 | 6 |"))

        await group.triggerGracefulShutdown()
        _ = await task.result
        await s.stop()
        await h.close()
    }
}

extension ClosedRange where Bound == Int {
    func asyncMap<T>(_ f: (Int) async -> T) async -> [T] {
        var out: [T] = []
        for n in self { out.append(await f(n)) }
        return out
    }
}
