import BridgeTestSupport
import Foundation
import InventorySync
import Logging
import Shopify
import ShopifySimulator
import Synchronization
import Testing

@Suite("The stock rule: ERP available minus safety stock minus pending units, never negative")
struct StockRuleTests {
    @Test("the stock rule's worked example (docs/inventory.md), and a negative figure clamped to zero and flagged")
    func rule() {
        let rule = StockRule(safetyStock: 2)
        #expect(rule.target(erpAvailable: 10, pendingUnits: 3) == .init(quantity: 5, clamped: false))
        #expect(rule.target(erpAvailable: 7, pendingUnits: 0) == .init(quantity: 5, clamped: false))
        #expect(rule.target(erpAvailable: 3, pendingUnits: 4) == .init(quantity: 0, clamped: true))
        #expect(rule.target(erpAvailable: 2) == .init(quantity: 0, clamped: false))
    }
}

/// The compare-and-set writer against shopify-sim's Admin API over HTTP (the simulator checks `changeFromQuantity`
/// and idempotency keys as Shopify does, and rejects a whole call for any user error).
@Suite("inventory levels are written compare-and-set: conflicts re-read, bad rows taken out, 250 rows a call")
struct InventoryLevelWriterTests {
    static func key(_ item: Int64, _ location: Int64) -> LevelKey {
        LevelKey(inventoryItemId: "gid://shopify/InventoryItem/\(item)", locationId: "gid://shopify/Location/\(location)")
    }

    static var logger: Logger {
        var l = Logger(label: "inventory-writer")
        l.logLevel = .warning
        return l
    }

    @Test("an adjustment between read and write: Shopify refuses the stale write, the writer reads again and writes once")
    func conflictReRead() async throws {
        let sim = try await TestShopifyAdmin.start(skus: 5, locations: 1, initialStock: 50)
        let client = sim.client()
        let item = await sim.store.variants[0].inventoryItemId
        let location = sim.store.locations[0]
        let store = sim.store
        let once = Atomic<Bool>(false)
        // Another app takes 3 off after the writer read 50 and before its write.
        let writer = InventoryLevelWriter(client: client, logger: Self.logger) {
            guard !once.exchange(true, ordering: .relaxed) else { return }
            _ = await store.setQuantities(
                name: "available", reason: "correction", reference: nil,
                rows: [.init(item: item, location: location, quantity: 47, changeFrom: nil)], idempotencyKey: "sale")
        }
        let report = try? await writer.write([Self.key(item, location): 40], decision: "erp-event-1")
        #expect(report?.staleConflicts == 1, "the first write was refused as stale")
        #expect(report?.written[Self.key(item, location)]?.from == 47, "the second write compared against the re-read figure")
        #expect(await store.available(item: item, location: location) == 40)
        await client.shutdown()
        await sim.stop()
    }

    @Test("a level another app adjusts every 50 ms: the 20 other levels of the call are written at once, the hot one gets calls of its own, nothing is called an outage")
    func hotLevelDoesNotHoldBackOthers() async throws {
        let sim = try await TestShopifyAdmin.start(skus: 21, locations: 1, initialStock: 50)
        let client = sim.client()
        let store = sim.store
        let location = store.locations[0]
        let items = await store.variants.prefix(21).map(\.inventoryItemId)
        let hot = items[0]
        // A POS adjusting the hot level every 50 ms until told to stop, always to a figure it never had (a level that
        // came back to the figure read would pass the compare by chance).
        let adjusting = Atomic<Bool>(true)
        let moves = Atomic<Int>(0)
        let adjuster = Task {
            var n = 0
            while adjusting.load(ordering: .relaxed) {
                n += 1
                _ = await store.setQuantities(
                    name: "available", reason: "correction", reference: nil,
                    rows: [.init(item: hot, location: location, quantity: 100 + n, changeFrom: nil)], idempotencyKey: "pos-\(n)")
                moves.add(1, ordering: .relaxed)
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        // Each read lasts until the POS has moved the hot level at least once (as on a drained budget, where seconds
        // pass between a read and its write): waited for, not slept, so a busy machine cannot make it pass.
        let writer = InventoryLevelWriter(client: client, logger: Self.logger, maxRounds: 3) {
            let seen = moves.load(ordering: .relaxed)
            for _ in 0..<500 where moves.load(ordering: .relaxed) == seen { try? await Task.sleep(for: .milliseconds(10)) }
        }
        var desired: [LevelKey: Int] = [:]
        for (i, item) in items.enumerated() { desired[Self.key(item, location)] = 10 + i }
        let result: Result<LevelWriteReport, ShopifyAdminError>
        do {
            result = .success(try await writer.write(desired, decision: "erp-event-hot"))
        } catch {
            result = .failure(error)
        }
        adjusting.store(false, ordering: .relaxed)
        _ = await adjuster.value
        defer { Task { await client.shutdown(); await sim.stop() } }
        guard case .success(let report) = result else {
            Issue.record("the write failed as a whole: \(result)")
            return
        }
        for (i, item) in items.enumerated().dropFirst() {
            #expect(await store.available(item: item, location: location) == 10 + i, "level \(i) written")
        }
        #expect(report.keptMoving == [Self.key(hot, location)], "the hot level is left for a later try: \(report.keptMoving)")
        #expect(report.written.count == 20)
    }

    @Test("one row Shopify refuses among 250: it is reported with its code, the 249 others are written in the next call")
    func badRowDoesNotBlock() async throws {
        let sim = try await TestShopifyAdmin.start(skus: 125, locations: 2, initialStock: 50)
        let client = sim.client()
        let variants = await sim.store.variants
        let locations = sim.store.locations
        var desired: [LevelKey: Int] = [:]
        for v in variants { for l in locations { desired[Self.key(v.inventoryItemId, l)] = 30 } }
        let bad = Self.key(variants[7].inventoryItemId, locations[1])
        desired[bad] = -2_000_000_000
        #expect(desired.count == 250)
        let report = try? await InventoryLevelWriter(client: client, logger: Self.logger).write(desired, decision: "sync-run-1")
        #expect(report?.rejected == [bad: "INVALID_QUANTITY_TOO_LOW"])
        #expect(report?.written.count == 249)
        for v in variants {
            for l in locations where Self.key(v.inventoryItemId, l) != bad {
                #expect(await sim.store.available(item: v.inventoryItemId, location: l) == 30)
            }
        }
        #expect(await sim.store.available(item: variants[7].inventoryItemId, location: locations[1]) == 50, "the bad row changed nothing")
        // Written again: nothing left to do, nothing sent twice.
        let again = try? await InventoryLevelWriter(client: client, logger: Self.logger).write(
            desired.filter { $0.key != bad }, decision: "sync-run-2")
        #expect(again?.unchanged.count == 249)
        #expect(again?.written.isEmpty == true)
        await client.shutdown()
        await sim.stop()
    }

    @Test("the same change asked for again by a later decision is applied, not answered from Shopify's memory of the first")
    func sameChangeLater() async throws {
        let sim = try await TestShopifyAdmin.start(skus: 2, locations: 1, initialStock: 50)
        let client = sim.client()
        let item = await sim.store.variants[0].inventoryItemId
        let location = sim.store.locations[0]
        let writer = InventoryLevelWriter(client: client, logger: Self.logger)
        let first = try? await writer.write([Self.key(item, location): 40], decision: "erp-event-1")
        #expect(first?.written[Self.key(item, location)]?.from == 50)
        #expect(await sim.store.available(item: item, location: location) == 40)
        // A restock brings it back to 50; a later ERP event asks for 40 again: the same rows (50 -> 40).
        _ = await sim.store.setQuantities(
            name: "available", reason: "received", reference: nil,
            rows: [.init(item: item, location: location, quantity: 50, changeFrom: nil)], idempotencyKey: "restock")
        let second = try? await writer.write([Self.key(item, location): 40], decision: "erp-event-2")
        #expect(second?.written[Self.key(item, location)]?.from == 50)
        #expect(await sim.store.available(item: item, location: location) == 40, "applied, not replayed from the first call")
        await client.shutdown()
        await sim.stop()
    }

    @Test(
        "IDEMPOTENCY_CONCURRENT_REQUEST: the same call is asked again after a pause; IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED: again with a new key",
        arguments: ["IDEMPOTENCY_CONCURRENT_REQUEST", "IDEMPOTENCY_PREVIOUS_ATTEMPT_FAILED"])
    func idempotencyAnswers(code: String) async throws {
        let sim = try await TestShopifyAdmin.start(skus: 2, locations: 1, initialStock: 50)
        let client = sim.client()
        let item = await sim.store.variants[0].inventoryItemId
        let location = sim.store.locations[0]
        await sim.store.injectIdempotencyFaults([code, code])
        let report = try? await InventoryLevelWriter(client: client, logger: Self.logger).write(
            [Self.key(item, location): 30], decision: "erp-event-7")
        #expect(report?.written[Self.key(item, location)]?.to == 30, "written once Shopify stopped answering \(code)")
        #expect(await sim.store.available(item: item, location: location) == 30)
        #expect(await sim.store.idempotencyFaults.isEmpty, "both answers were met")
        #expect(await sim.store.totalLevelWrites == 1)
        await client.shutdown()
        await sim.stop()
    }
}
