import BridgeDomain
import BridgeMessaging
import BridgeTestSupport
import ERP
import ERPSimulator
import Foundation
import InventorySync
import Messaging
import ShopifySimulator
import Testing

/// The inventory-syncer as it runs: erp-sim -> (push through ingest | change feed) -> broker -> syncer -> shopify-sim,
/// and shopify-sim's webhooks back through ingest.
@Suite("inventory-syncer: Shopify reflects the ERP's stock", .serialized)
struct InventorySyncerTests {
    @Test("at start the full sync sets every level to ERP − safety stock; a pushed ERP change is written once and its echo ignored, though it arrives before the write's answer")
    func startAndEcho() async throws {
        let h = try await InventoryHarness.make("inv-echo", skus: 10)
        let s = try await h.startSyncer(safetyStock: 2)
        let synced = await eventually(timeout: .seconds(30)) { await h.mismatches(skus: 10, safetyStock: 2).isEmpty }
        let left = await h.mismatches(skus: 10, safetyStock: 2)
        #expect(synced, "after the first full sync: \(left.prefix(5))")

        let before = await h.levelWrites(3)
        let echoesBefore = s.levelCounts["echo"] ?? 0
        // The write's answer comes 700 ms after the write took effect: its webhook gets to the syncer first.
        h.shopify.api.setMutationAnswerDelay(.milliseconds(700))
        await h.inventory.move(sku: OrderGenerator.sku(3), warehouse: "WH-1", available: 17)
        #expect(await eventually(timeout: .seconds(60)) { await h.shopifyAvailable(3) == 15 }, "17 − 2 reached Shopify")
        // The write's own inventory_levels/update comes back through ingest and is recognised.
        #expect(await eventually(timeout: .seconds(60)) { (s.levelCounts["echo"] ?? 0) > echoesBefore }, "\(s.levelCounts)")
        try await Task.sleep(for: .milliseconds(600))  // longer than the override grace
        #expect(await h.levelWrites(3) == before + 1, "one write for one change; the echo wrote nothing")
        #expect(s.levelCounts["override_reverted"] == nil, "\(s.levelCounts)")
        #expect(await h.shopifyAvailable(3) == 15)
        await s.stop()
        await h.close()
    }

    @Test("a manual edit in Shopify's admin is set back to the ERP's figure, counted, after the grace period")
    func overrideReverted() async throws {
        let h = try await InventoryHarness.make("inv-override", skus: 5)
        let s = try await h.startSyncer(safetyStock: 1)
        #expect(await eventually(timeout: .seconds(30)) { await h.mismatches(skus: 5, safetyStock: 1).isEmpty })
        let target = await h.shopifyAvailable(2, location: 1)!
        // Staff type 999 into Shopify's admin for SKU 2 at the second location.
        let edit = await h.shopify.store.setAvailable(item: await h.item(2), location: h.locations[1], available: 999)!
        await h.shopify.deliverer.deliver([edit])
        #expect(await eventually(timeout: .seconds(60)) { (s.levelCounts["override_reverted"] ?? 0) >= 1 }, "\(s.levelCounts)")
        #expect(await h.shopifyAvailable(2, location: 1) == target, "back to ERP − safety stock")
        // Once: the full sync's own echo (which can reach the syncer before the write's answer) is not taken for an
        // edit, and the revert's echo neither.
        try await Task.sleep(for: .seconds(1))
        #expect(s.levelCounts["override_reverted"] == 1, "\(s.levelCounts)")
        await s.stop()
        await h.close()
    }

    @Test("push and the change feed on together: every change reaches Shopify, the second copy of each is skipped without a call")
    func pushAndFeed() async throws {
        let h = try await InventoryHarness.make("inv-feed", skus: 8)
        let s = try await h.startSyncer(safetyStock: 0, extra: ["INVENTORY_SYNCER_ERP_FEED_POLL": "1s"])
        #expect(await eventually(timeout: .seconds(30)) { await h.mismatches(skus: 8, safetyStock: 0).isEmpty })
        let writesBefore = await h.shopify.store.totalLevelWrites
        // Each level changes once: the feed's copy of a change is then the same change, not an older one.
        var changes = 0
        for n in 1...8 {
            for w in 1...2 {
                await h.inventory.move(sku: OrderGenerator.sku(n), warehouse: "WH-\(w)", available: 50 + n * 2 + w)
                changes += 1
            }
        }
        // Every change arrives twice (pushed, then polled); wait for both copies to be settled.
        let settled = await eventually(timeout: .seconds(60)) { s.process.erpStock.settledTotal >= 2 * changes }
        #expect(settled, "\(s.process.erpStock.settledTotal) of \(2 * changes): \(s.erpCounts)")
        let left = await h.mismatches(skus: 8, safetyStock: 0)
        #expect(left.isEmpty, "\(left)")
        let counts = s.erpCounts
        #expect((counts["duplicate_skipped"] ?? 0) >= changes / 2, "the feed's copies were recognised by their sequence: \(counts)")
        let writes = await h.shopify.store.totalLevelWrites - writesBefore
        #expect(writes <= changes, "no change written twice (\(writes) writes for \(changes) changes)")
        await s.stop()
        await h.close()
    }

    @Test("a throttling storm on the Standard plan's bucket: every change written, THROTTLED under 1% of calls")
    func throttlingStorm() async throws {
        let skus = 150
        let h = try await InventoryHarness.make(
            "inv-storm", skus: skus, shopifyStock: 20, bucket: ThrottleBucket(restoreRate: 100))
        let s = try await h.startSyncer(safetyStock: 0, plan: "standard")
        #expect(await eventually(timeout: .seconds(90)) { await h.mismatches(skus: skus, safetyStock: 0).isEmpty })
        let before = s.process.syncer.shops[0].client.stats
        let settledBefore = s.process.erpStock.settledTotal
        // 900 changes at once over 300 levels (three per level): far more reads than one bucket holds.
        var changes = 0
        for round in 0..<3 {
            for n in 1...skus {
                for w in 1...2 {
                    await h.inventory.move(sku: OrderGenerator.sku(n), warehouse: "WH-\(w)", available: 30 + round * 7 + (n + w) % 11)
                    changes += 1
                }
            }
        }
        let settled = await eventually(timeout: .seconds(240)) { s.process.erpStock.settledTotal - settledBefore >= changes }
        #expect(settled, "\(s.process.erpStock.settledTotal - settledBefore) of \(changes) settled: \(s.erpCounts)")
        let left = await h.mismatches(skus: skus, safetyStock: 0)
        #expect(left.isEmpty, "\(left.count) levels wrong: \(left.prefix(5))")
        #expect(s.erpCounts["dead_lettered"] == nil && s.erpCounts["retried"] == nil, "nothing lost or retried: \(s.erpCounts)")
        let after = s.process.syncer.shops[0].client.stats
        let requests = after.requests - before.requests
        let throttled = after.throttled - before.throttled
        #expect(requests > 0)
        #expect(Double(throttled) <= 0.01 * Double(requests), "\(throttled) THROTTLED of \(requests) calls")
        print("throttling storm: \(changes) changes, \(requests) calls, \(throttled) THROTTLED, \(after.pointsUsed - before.pointsUsed) points, waited \(after.waited - before.waited), \(s.erpCounts)")
        await s.stop()
        await h.close()
    }

    @Test("a level another app adjusts every 50 ms, on a drained budget (8 points/s): 20 other ERP changes reach Shopify, no circuit opens, and the hot level is set back soon after the adjustments stop")
    func hotLevelOnDrainedBudget() async throws {
        let skus = 21
        let h = try await InventoryHarness.make(
            "inv-hot", skus: skus, erpStock: 20...20, shopifyStock: 20, bucket: ThrottleBucket(restoreRate: 8))
        // On a drained budget a write waits for points after its read: the seam makes that gap at least 150 ms on
        // every read, so the hot level always moves in between (as it does at `--restore-rate 8`).
        let s = try await h.startSyncer(safetyStock: 0, plan: "standard") { try? await Task.sleep(for: .milliseconds(150)) }
        #expect(await eventually(timeout: .seconds(120)) { await h.mismatches(skus: skus, safetyStock: 0).isEmpty })
        let store = h.shopify.store
        let deliverer = h.shopify.deliverer
        let hot = await h.item(1)
        let location = h.locations[0]
        // The circuits of both inventory queues, sampled every 100 ms: every state seen other than closed.
        let process = s.process
        let circuits = Task {
            var seen: Set<String> = []
            while !Task.isCancelled {
                for state in [await process.erpStock.heartbeat().circuit, await process.shopifyLevels.heartbeat().circuit] {
                    if let state, state != "closed" { seen.insert(state) }
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
            return seen
        }
        // A POS adjusts the hot level in Shopify every 50 ms (with the webhook Shopify sends), the ERP moves it every
        // second.
        let adjusting = Task {
            var n = 0
            while !Task.isCancelled {
                n += 1
                let now = await store.available(item: hot, location: location) ?? 0
                if let e = await store.setAvailable(item: hot, location: location, available: now + 1) {
                    Task { await deliverer.deliver([e]) }
                }
                if n % 20 == 0 { _ = await h.inventory.adjust(sku: OrderGenerator.sku(1), warehouse: "WH-1", by: n % 40 == 0 ? 2 : -1) }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        try await Task.sleep(for: .seconds(3))
        let pointsBefore = s.process.syncer.shops[0].client.stats.pointsUsed
        // 20 other SKUs get new figures in the ERP, once.
        let started = ContinuousClock.now
        for n in 2...skus { _ = await h.inventory.move(sku: OrderGenerator.sku(n), warehouse: "WH-1", available: 5 + n) }
        let others = await eventually(timeout: .seconds(60)) {
            for n in 2...skus where await h.shopifyAvailable(n) != 5 + n { return false }
            return true
        }
        let took = started.duration(to: .now)
        var wrong: [String] = []
        for n in 2...skus where await h.shopifyAvailable(n) != 5 + n { wrong.append("SKU \(n): \(await h.shopifyAvailable(n) ?? -1)") }
        #expect(others, "the 20 changes in Shopify within 60 s while the hot level moves: still wrong \(wrong)")
        let points = s.process.syncer.shops[0].client.stats.pointsUsed - pointsBefore
        // Let the hot level keep moving a while longer, then stop it and see it set back.
        try await Task.sleep(for: .seconds(10))
        adjusting.cancel()
        _ = await adjusting.value
        let stopped = ContinuousClock.now
        let settled = await eventually(timeout: .seconds(20)) {
            let erp = await h.erpAvailable(1)
            return await h.shopifyAvailable(1) == erp
        }
        let settleTook = stopped.duration(to: .now)
        circuits.cancel()
        let seen = await circuits.value
        let shown = await h.shopifyAvailable(1) ?? -1
        let erp = await h.erpAvailable(1) ?? -1
        #expect(settled, "the hot level at the ERP's figure once the adjustments stopped: Shopify \(shown), ERP \(erp)")
        #expect(seen.isEmpty, "no circuit opened or probed: \(seen)")
        print(
            "hot level on 8 points/s: 20 other changes in Shopify after \(took) (\(points) points used meanwhile); hot level set back \(settleTook) after the adjustments stopped; ERP \(s.erpCounts), Shopify levels \(s.levelCounts)")
        await s.stop()
        await h.close()
    }

    @Test("full sync: a sale plus an equal receipt between the bulk read and the write never leaves Shopify above the rule")
    func fullSyncSaleAndReceipt() async throws {
        let h = try await InventoryHarness.make("inv-fs-race", skus: 1, erpStock: 30...30, shopifyStock: 30, push: false)
        // Webhook checks far off: what Shopify shows after the run is the full sync's doing alone.
        let s = try await h.startSyncer(safetyStock: 0, extra: ["INVENTORY_SYNCER_OVERRIDE_GRACE": "60s"])
        #expect(await eventually(timeout: .seconds(30)) { await h.mismatches(skus: 1, safetyStock: 0).isEmpty })
        // The ERP lowers the level to 20, unpushed: the next full sync corrects it.
        _ = await h.inventory.move(sku: OrderGenerator.sku(1), warehouse: "WH-1", available: 20)
        let store = h.shopify.store
        let item = await h.item(1)
        let location = h.locations[0]
        let fullSync = s.process.fullSync
        let levels = try await fullSync.readERP()
        _ = try await fullSync.run(s.process.syncer.shops[0], erpLevels: levels, dryRun: false) {
            // Between the bulk read and the write: a sale, and a receipt of as many units, so `available` is back
            // where the bulk read saw it while `committed` grew.
            _ = await store.placeOrder(maxLines: 1, customLines: false)
            let sold = await store.committed[item]?[location] ?? 0
            let now = await store.available(item: item, location: location) ?? 0
            _ = await store.setAvailable(item: item, location: location, available: now + sold)
        }
        let committed = await store.committed[item]?[location] ?? 0
        let shown = await h.shopifyAvailable(1) ?? -1
        #expect(committed > 0, "a sale happened")
        // The rule: ERP 20 − safety 0 − the units sold that the ERP does not hold yet.
        #expect(shown == 20 - committed, "Shopify shows \(shown), the rule \(20 - committed)")
        await s.stop()
        await h.close()
    }

    @Test("the echo rule never swallows the webhook of a level that differs from the rule: a sale and an equal receipt after the syncer's write are checked and set back")
    func echoRecognisedOnce() async throws {
        let h = try await InventoryHarness.make("inv-echo-once", skus: 1, erpStock: 30...30, shopifyStock: 30)
        let s = try await h.startSyncer(safetyStock: 0)
        #expect(await eventually(timeout: .seconds(30)) { await h.mismatches(skus: 1, safetyStock: 0).isEmpty })
        let store = h.shopify.store
        let item = await h.item(1)
        let location = h.locations[0]
        // The ERP moves the level to 20: the syncer writes 20, and its echo comes back.
        _ = await h.inventory.move(sku: OrderGenerator.sku(1), warehouse: "WH-1", available: 20)
        #expect(await eventually(timeout: .seconds(30)) { await h.shopifyAvailable(1) == 20 && (s.levelCounts["echo"] ?? 0) >= 1 })
        // A sale: the rule counts its units as pending, the level is where it should be.
        await h.shopify.deliverer.deliver(await store.placeOrder(maxLines: 1, customLines: false))
        let sold = await store.committed[item]?[location] ?? 0
        #expect(sold > 0)
        #expect(await eventually(timeout: .seconds(30)) { (s.levelCounts["settled"] ?? 0) >= 1 }, "\(s.levelCounts)")
        // A receipt of as many units in Shopify: the level shows 20 again, the figure the syncer wrote, while the
        // rule says 20 − the units sold.
        let receipt = await store.setAvailable(item: item, location: location, available: 20)!
        await h.shopify.deliverer.deliver([receipt])
        let back = await eventually(timeout: .seconds(30)) { await h.shopifyAvailable(1) == 20 - sold }
        let shown = await h.shopifyAvailable(1) ?? -1
        #expect(back, "Shopify \(shown), the rule \(20 - sold): \(s.levelCounts)")
        await s.stop()
        await h.close()
    }

    @Test("a change older than the ERP snapshot (redelivered after a takeover) is never applied after it; a syncer without a saved cursor polls the feed from the snapshot's cursor, not from the start")
    func snapshotCarriesItsPlace() async throws {
        let h = try await InventoryHarness.make("inv-snap-seq", skus: 2, erpStock: 30...30, shopifyStock: 30, push: false)
        // History before this syncer ever ran: 40 movements the snapshot already reflects.
        for i in 0..<40 { _ = await h.inventory.move(sku: OrderGenerator.sku(2), warehouse: "WH-2", available: 10 + i % 7) }
        let before = Int64(await h.inventory.changes.count)
        let s = try await h.startSyncer(safetyStock: 0, extra: ["INVENTORY_SYNCER_ERP_FEED_POLL": "200ms"])
        #expect(await eventually(timeout: .seconds(30)) { await h.mismatches(skus: 2, safetyStock: 0).isEmpty })
        #expect(await eventually(timeout: .seconds(10)) { !(await h.inventory.feedCursorsRead.isEmpty) })
        let first = await h.inventory.feedCursorsRead.first ?? -1
        #expect(first >= before, "the feed was first read from \(first): the history up to \(before) is in the snapshot")
        await s.stop()

        // A syncer whose feed is off: the ERP moves SKU 1 to 5, then to 9, and its full sync loads the snapshot (9).
        let t = try await h.startSyncer(safetyStock: 0, extra: ["INVENTORY_SYNCER_STATE_PATH": h.dir.appendingPathComponent("t.json").path])
        let older = await h.inventory.move(sku: OrderGenerator.sku(1), warehouse: "WH-1", available: 5)!
        _ = await h.inventory.move(sku: OrderGenerator.sku(1), warehouse: "WH-1", available: 9)
        let fullSync = t.process.fullSync
        _ = try await fullSync.run(t.process.syncer.shops[0], erpLevels: try await fullSync.readERP(bySequence: true), dryRun: false)
        #expect(await h.shopifyAvailable(1) == 9)
        // The first change (to 5) arrives now, as a copy queued before the snapshot or redelivered after a takeover.
        let change = ERPStockChange(seq: older.seq, sku: older.sku, warehouse: older.warehouse, available: older.available)
        let id = "erp-feed-\(older.seq)"
        let envelope = InboundEnvelope(
            source: .erp, shopDomain: nil, topic: "inventory.changed", deliveryId: id, eventId: id,
            receivedAt: Timestamp.string(milliseconds: Timestamp.milliseconds(Date())))
        try await h.publisher.publish(
            exchange: BridgeTopology.work, routingKey: BridgeTopology.erpInventory.name,
            body: Array(try JSONEncoder().encode(change)), properties: envelope.properties())
        let handled = await eventually(timeout: .seconds(30)) { t.process.erpStock.settledTotal >= 1 }
        #expect(handled, "\(t.erpCounts)")
        try await Task.sleep(for: .milliseconds(500))
        #expect(await h.shopifyAvailable(1) == 9, "Shopify keeps the snapshot's newer figure: \(t.erpCounts)")
        await t.stop()
        await h.close()
    }

    @Test("a restarted syncer counts what the ERP already holds for open orders: Shopify is not lowered by them twice")
    func restartCountsAllocations() async throws {
        let skus = 5
        let h = try await InventoryHarness.make("inv-restart", skus: skus, erpStock: 30...30, shopifyStock: 30, catchAll: "MISC")
        let first = try await h.startSyncer(safetyStock: 0)
        #expect(await eventually(timeout: .seconds(30)) { await h.mismatches(skus: skus, safetyStock: 0).isEmpty })
        let (forwarder, forwarderTask) = try await h.startForwarder()
        var events: [WebhookEvent] = []
        for _ in 0..<12 { events += await h.shopify.store.placeOrder(maxLines: 2) }
        await h.shopify.deliverer.deliver(events)
        let placed = await h.shopify.store.orderCount
        #expect(await eventually(timeout: .seconds(60)) { await h.erpStore.orderCount == placed }, "every order allocated in the ERP")
        // Shopify's committed units are the ERP's allocations now: Shopify shows exactly the ERP's figure.
        let settled = await eventually(timeout: .seconds(60)) { await h.mismatches(skus: skus, safetyStock: 0).isEmpty }
        let before = await h.mismatches(skus: skus, safetyStock: 0)
        #expect(settled, "\(before)")
        await forwarder.triggerGracefulShutdown()
        _ = await forwarderTask.result
        await first.stop()

        // A new process knows nothing of those orders but what the ERP tells it.
        let second = try await h.startSyncer(safetyStock: 0)
        let report = try await second.process.fullSync.run(
            second.process.syncer.shops[0], erpLevels: try await second.process.fullSync.readERP(), dryRun: false)
        let left = await h.mismatches(skus: skus, safetyStock: 0)
        #expect(left.isEmpty, "after the restart (\(report.drifted) levels corrected): \(left)")
        await second.stop()
        await h.close()
    }

    @Test("a change Shopify refuses (the item is no longer stocked at the location) is dead-lettered with Shopify's code; the change beside it is written")
    func refusedRowDeadLettered() async throws {
        let h = try await InventoryHarness.make("inv-refused", skus: 6)
        let s = try await h.startSyncer(safetyStock: 0)
        #expect(await eventually(timeout: .seconds(30)) { await h.mismatches(skus: 6, safetyStock: 0).isEmpty })
        // Staff deactivate SKU 4 at the second location; the ERP then moves it there, and SKU 5 beside it.
        await h.shopify.store.unstock(item: await h.item(4), location: h.locations[1])
        await h.inventory.move(sku: OrderGenerator.sku(4), warehouse: "WH-2", available: 33)
        await h.inventory.move(sku: OrderGenerator.sku(5), warehouse: "WH-2", available: 34)
        let dlq = BridgeTopology.deadLetterQueue(of: BridgeTopology.erpInventory.name)
        let dead = try await eventually(timeout: .seconds(60)) { try await h.publisher.queueCounts(dlq).messages == 1 }
        #expect(dead, "\(s.erpCounts)")
        let (_, letters) = try await DeadLetters.list(h.publisher, workQueue: BridgeTopology.erpInventory.name, limit: 10)
        let letter = try #require(letters.first)
        #expect(letter.errorClass == "shopify_rejected")
        #expect(letter.errorMessage?.contains("ITEM_NOT_STOCKED_AT_LOCATION") == true, "\(letter.errorMessage ?? "")")
        #expect(await eventually(timeout: .seconds(30)) { await h.shopifyAvailable(5, location: 1) == 34 }, "the good change was written")
        #expect(s.erpCounts["dead_lettered"] == 1, "\(s.erpCounts)")
        await s.stop()
        await h.close()
    }
}
