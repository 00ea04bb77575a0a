import BridgeMessaging
import BridgeTestSupport
import ERPSimulator
import Foundation
import InventorySync
import ShopifySimulator
import SimulatorKit
import Testing

/// The race the syncer exists for: a sale on little stock while the ERP lags (a slow ERP, orders queueing) and
/// moves stock of its own (receipts, other channels' sales), through ingest, the forwarder and the syncer.
@Suite("the sale race: Shopify never sells what the ERP does not have", .serialized)
struct SaleRaceTests {
    /// The faults a sale brings on top of the base race, one per run.
    enum Variant: String, CaseIterable, Sendable, CustomTestStringConvertible {
        /// 2,000 orders on 200 SKUs, with updates, cancellations (some within the second), refunds.
        case base
        /// Shopify fulfils orders as they come (one in five after each order, half of them partly), before the ERP
        /// ships anything: Shopify's `committed` drops while the ERP still holds the units.
        case partialFulfilments
        /// The scheduled full sync runs again and again through the sale.
        case fullSyncThroughSale
        /// One SKU takes about a third of the sale's lines.
        case hotSKU
        /// Two syncer processes; the active one is killed (-9) a third into the sale and the standby takes over.
        case activeKilled

        var testDescription: String {
            switch self {
            case .base: "base"
            case .partialFulfilments: "partial fulfilments in Shopify before the ERP ships"
            case .fullSyncThroughSale: "a full sync running through the sale"
            case .hotSKU: "one SKU taking a third of the sale"
            case .activeKilled: "kill -9 of the active syncer mid-sale, the standby taking over"
            }
        }

        var orders: Int { self == .base ? 2000 : 800 }
    }

    /// What both simulators recorded about the SKUs of oversold orders: the ERP's movements of the level and the
    /// Shopify orders of the SKU, in time order (printed when the race oversold, to find the interleaving).
    static func explain(_ documents: [String], _ h: InventoryHarness) async {
        let start = Date().addingTimeInterval(-600)
        func t(_ d: Date) -> String { String(format: "%.3f", d.timeIntervalSince(start)) }
        for doc in documents.prefix(2) {
            guard let order = await h.erpStore.order(number: doc) else { continue }
            print("oversold \(doc) (\(order.externalRef)) created \(t(order.createdAt)): \(order.lines.map { "\($0.sku)x\($0.quantity)" })")
            for line in order.lines where line.sku != "MISC" {
                var rows: [(Date, String)] = []
                for c in await h.inventory.changes where c.sku == line.sku && c.warehouse == "WH-1" {
                    rows.append((c.changedAt, "erp seq \(c.seq) available \(c.available) \(c.orderRef.map { "order \($0) \(c.quantity ?? 0)" } ?? "receipt")"))
                }
                for o in await h.shopify.store.orders.values {
                    for l in o.lines where l.sku == line.sku {
                        rows.append((o.createdAt, "shopify order \(o.id) x\(l.quantity) fulfilled \(l.fulfilled ?? 0) cancelled \(o.cancelled) (last change \(t(o.updatedAt)))"))
                    }
                }
                print("  \(line.sku)@WH-1:")
                for r in rows.sorted(by: { $0.0 < $1.0 }) { print("    \(t(r.0)) \(r.1)") }
            }
        }
    }

    @Test(
        "orders on 200 SKUs with little stock, the ERP slow and moving stock: nothing oversold (erp-sim's count), and after the full sync Shopify = ERP − safety stock",
        arguments: Variant.allCases)
    func saleRace(_ variant: Variant) async throws {
        // SALE_RACE_ONLY=partialFulfilments,hotSKU: run only those variants (a filter cannot pick arguments).
        if let only = ProcessInfo.processInfo.environment["SALE_RACE_ONLY"], !only.split(separator: ",").contains(Substring(variant.rawValue)) { return }
        let skus = 200
        // Two units of safety stock per level. In the base race the other channels may sell those; the variants
        // keep them for the window no syncer can see into: an order Shopify fulfils before this syncer has seen it
        // placed and before the ERP has it (measured with none: 0-3 units oversold in a third of the partial-fulfilment
        // races; with one unit, a CI run oversold 1 that way). The variants' ERP only receives stock.
        let safety = 2
        let h = try await InventoryHarness.make("inv-race", skus: skus, erpStock: 0...12, shopifyStock: 50, catchAll: "MISC")
        // Cancellations do not restock in Shopify (`orderCancel(restock: false)`), as a shop whose stock the ERP owns
        // cancels: a restock puts the units on sale in Shopify at once, before the ERP has them back (the forwarder's
        // cancellation and a new order for those units race to the ERP), a window no bridge can close: measured
        // here, a cancelled order of 3 restocked, a new order of 3 placed 72 ms later, reached the ERP first and
        // oversold 1 beyond the safety stock. The ERP's release comes back through the bridge instead.
        await h.shopify.store.setRestockOnCancel(false)
        // Push for latency and the change feed as the backstop, as a production setup runs them: a push erp-sim
        // gives up on (ingest slow under load) is still polled.
        let extra = ["INVENTORY_SYNCER_ERP_FEED_POLL": "1s"]
        var syncer: RunningSyncer?
        var processes: [Process] = []
        defer { for p in processes where p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        var ports: [Int] = []
        if variant == .activeKilled {
            // The real executable, twice: A active, B standing by.
            var env = h.environment(safetyStock: safety, extra: extra.merging(["LOG_LEVEL": "warning"]) { a, _ in a })
            for name in ["A", "B"] {
                let port = TestProcesses.freePort()
                env["HTTP_PORT"] = "\(port)"
                let (p, _) = try TestProcesses.launch("inventory-syncer", environment: env)
                processes.append(p)
                ports.append(port)
                let role = name == "A" ? 1.0 : 0.0
                #expect(await eventually(timeout: .seconds(30)) { await StandbyTests.metric(port, "inventory_syncer_active") == role }, "\(name)")
            }
        } else {
            syncer = try await h.startSyncer(safetyStock: safety, extra: extra)
        }
        #expect(await eventually(timeout: .seconds(60)) { await h.mismatches(skus: skus, safetyStock: safety).isEmpty })
        let (forwarder, forwarderTask) = try await h.startForwarder()
        // The ERP lags: every call takes 20-120 ms, so orders queue in front of it during the sale.
        var faults = ERPStore.Faults()
        faults.latencyMs = 20
        faults.latencyJitterMs = 100
        await h.erpStore.setFaults(faults)

        let inventory = h.inventory
        let movements = Task {
            var rng = SplitMix64(seed: 77)
            var moved = 0
            var otherChannelSales: [String: Int] = [:]
            while !Task.isCancelled {
                let n = 1 + Int(rng.next() % UInt64(skus))
                let warehouse = rng.next() % 3 == 0 ? "WH-2" : "WH-1"
                let now = await inventory.level(sku: SimulatedCatalogue.sku(n), warehouse: warehouse)?.available ?? 0
                let receipt = rng.next() % 3 != 0
                let level = "\(n)@\(warehouse)"
                if receipt || (variant == .base && now > 0 && otherChannelSales[level, default: 0] < safety) {
                    if !receipt { otherChannelSales[level, default: 0] += 1 }
                    // By a delta, read and set in one step: setting `now - 1` could overwrite an allocation or a
                    // cancellation's give-back made since `now` was read (a lost give-back is a drop the safety stock
                    // was not kept for: it could oversell a unit with no bridge fault).
                    await inventory.adjust(sku: SimulatedCatalogue.sku(n), warehouse: warehouse, by: receipt ? 1 + Int(rng.next() % 5) : -1)
                    moved += 1
                }
                try? await Task.sleep(for: .milliseconds(50))
            }
            return moved
        }
        // Variant faults running beside the sale.
        let fullSyncs = Task { [syncer] in
            var runs = 0
            guard variant == .fullSyncThroughSale, let p = syncer?.process else { return runs }
            while !Task.isCancelled {
                // What the scheduled full sync does, back to back.
                if let levels = try? await p.fullSync.readERP(bySequence: true),
                    (try? await p.fullSync.run(p.syncer.shops[0], erpLevels: levels, dryRun: false)) != nil
                {
                    runs += 1
                }
                try? await Task.sleep(for: .milliseconds(200))
            }
            return runs
        }
        let killer = Task { [processes] in
            guard variant == .activeKilled else { return }
            try? await Task.sleep(for: .seconds(Double(variant.orders) / 100 / 3))
            kill(processes[0].processIdentifier, SIGKILL)
        }
        let result = await TrafficGenerator(store: h.shopify.store, deliverer: h.shopify.deliverer).run(
            SaleProfile(
                orders: variant.orders, ordersPerSecond: 100, maxLines: 3, skuSkew: variant == .hotSKU ? 5 : 2, updateShare: 0.1,
                cancelShare: 0.03, refundShare: 0.02, sameSecondShare: 0.05, seed: 31, concurrency: 32,
                fulfilShare: variant == .partialFulfilments ? 0.2 : 0))
        movements.cancel()
        fullSyncs.cancel()
        _ = await killer.value
        let moved = await movements.value
        let syncRuns = await fullSyncs.value
        let placed = await h.shopify.store.orderCount
        #expect(placed > 200, "a real sale happened: \(placed) orders placed, \(result.refused) checkouts refused")
        if variant == .partialFulfilments { #expect(result.fulfilled > 50, "\(result.fulfilled) orders fulfilled in Shopify") }
        if variant == .fullSyncThroughSale { #expect(syncRuns > 0, "full syncs ran during the sale") }
        if variant == .activeKilled {
            #expect(await eventually(timeout: .seconds(30)) { await StandbyTests.metric(ports[1], "inventory_syncer_active") == 1 }, "B took over")
        }

        // Quiet: every order in the ERP and every queue drained.
        let queues = [BridgeTopology.orders, BridgeTopology.erpInventory, BridgeTopology.shopifyInventory, BridgeTopology.inventoryOrders].map(\.name)
        let drained = await eventually(timeout: .seconds(240)) {
            guard await h.erpStore.orderCount == placed else { return false }
            for q in queues where (try? await h.publisher.queueCounts(q).messages) != 0 { return false }
            // Ready counts leave out what a consumer holds: the syncer's workers must be idle too (a process: its
            // queues stay empty a few seconds).
            guard let p = syncer?.process else {
                try? await Task.sleep(for: .seconds(3))
                for q in queues where (try? await h.publisher.queueCounts(q).messages) != 0 { return false }
                return true
            }
            return p.erpStock.inFlightCount + p.shopifyLevels.inFlightCount + p.orders.inFlightCount == 0
        }
        let inERP = await h.erpStore.orderCount
        #expect(drained, "ERP has \(inERP) of \(placed) orders")
        try await Task.sleep(for: .seconds(1))  // the last override checks
        let oversold = await h.inventory.oversoldUnits
        let oversoldOrders = await h.inventory.oversoldOrders.sorted()
        #expect(oversold == 0, "ERP oversold \(oversold) units in \(oversoldOrders.count) orders: \(oversoldOrders.prefix(5))")
        if oversold > 0 { await Self.explain(oversoldOrders, h) }

        // The full sync settles whatever drift is left; afterwards Shopify equals ERP − safety stock everywhere.
        var drift = "not checked (the syncers are processes)"
        if let syncer {
            let levels = try await syncer.process.fullSync.readERP()
            let report = try await syncer.process.fullSync.run(syncer.process.syncer.shops[0], erpLevels: levels, dryRun: false)
            let left = await h.mismatches(skus: skus, safetyStock: safety)
            #expect(left.isEmpty, "\(left.count) levels differ after the full sync: \(left.prefix(5))")
            drift = "\(report.drifted) levels / \(report.driftUnits) units, ERP stock events \(syncer.erpCounts), Shopify level events \(syncer.levelCounts)"
        }
        let pushFailed = await h.pusher.failed
        print(
            "sale race (\(variant.testDescription)): \(placed) orders, \(result.fulfilled) fulfilled in Shopify, \(syncRuns) full syncs during it, "
                + "\(pushFailed) ERP pushes given up (the feed caught them), \(result.refused) checkouts refused, \(moved) ERP movements, "
                + "oversold \(oversold), drift before the full sync \(drift)")
        await h.erpStore.setFaults(.init())
        await forwarder.triggerGracefulShutdown()
        _ = await forwarderTask.result
        await syncer?.stop()
        for p in processes where p.isRunning {
            kill(p.processIdentifier, SIGTERM)
            _ = await eventually(timeout: .seconds(15)) { !p.isRunning }
        }
        await h.close()
    }
}
