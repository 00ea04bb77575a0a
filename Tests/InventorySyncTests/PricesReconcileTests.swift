import BridgeDomain
import BridgeMessaging
import BridgeRuntime
import BridgeTestSupport
import ERP
import ERPSimulator
import Foundation
import InventorySync
import PriceSync
import Reconciliation
import ServiceLifecycle
import ShopifySimulator
import Testing

/// B2B prices from the ERP into Shopify's price lists (the reconciler's prices domain and the inventory-syncer's
/// `price.changed` handler), and DTC prices compared, never written: real broker, erp-sim pushing through ingest,
/// shopify-sim's Admin API over HTTP. shopify-sim writes every price it is sent, so "changed ones only" is the
/// bridge's doing.
@Suite("prices: ERP B2B prices reach Shopify's price lists (reconciled and pushed); DTC differences reported, not written", .serialized)
struct PricesReconcileTests {
    static let wholesale: Int64 = 80_000_000_001
    static let distributor: Int64 = 80_000_000_002

    static func priceEnv(_ reports: String) -> [String: String] {
        [
            "SHOP_ACME_PRICE_LISTS": "PL-WHOLESALE=\(wholesale),PL-DISTRIBUTOR=gid://shopify/PriceList/\(distributor)",
            "SHOP_ACME_DTC_PRICE_LIST": "PL-RETAIL", "RECONCILER_REPORTS_DIR": reports, "RECONCILER_ORDERS_SCHEDULE": "off",
            "RECONCILER_INVENTORY_SCHEDULE": "off", "RECONCILER_PRICES_SCHEDULE": "off", "RECONCILER_CATALOGUE_SCHEDULE": "off",
        ]
    }

    static func startReconciler(_ h: InventoryHarness, reports: String) async throws -> (ServiceGroup, Task<Void, any Error>) {
        try await h.startReconciler(extra: priceEnv(reports))
    }

    static func reconcile(_ h: InventoryHarness, reports: String, dryRun: Bool = false) async throws -> ReconcileReport? {
        try await h.reconcile(.prices, reports: reports, dryRun: dryRun)
    }

    /// Variant n's fixed price on a Shopify list.
    static func shopifyPrice(_ h: InventoryHarness, list: Int64, _ n: Int) async -> Decimal? {
        let variant = await h.shopify.store.variants[n - 1].variantId
        return await h.shopify.store.priceLists.first { $0.id == list }?.fixed[variant]
    }

    /// SKUs whose fixed price on the Shopify list differs from the ERP list.
    static func mismatched(_ h: InventoryHarness, erpList: String, list: Int64, skus: Int) async -> [String] {
        var out: [String] = []
        for n in 1...skus {
            let erp = await h.inventory.price(list: erpList, sku: OrderGenerator.sku(n))
            let shopify = await shopifyPrice(h, list: list, n)
            if erp != shopify { out.append("\(OrderGenerator.sku(n)): erp \(erp.map { "\($0)" } ?? "-") shopify \(shopify.map { "\($0)" } ?? "-")") }
        }
        return out
    }

    @Test("a dry run writes nothing; a run fills both price lists (counted exactly) and reports the DTC price a merchant changed without writing it; a pushed change reaches Shopify once, a duplicate push writes nothing, a lost push is healed by the next run; a last run finds only the DTC difference")
    func pricesFlow() async throws {
        let skus = 12
        let h = try await InventoryHarness.make("prices", skus: skus, erpStock: 10...40)
        let reports = h.dir.appendingPathComponent("reports").path
        let s = try await h.startSyncer(extra: Self.priceEnv(reports))
        #expect(s.process.prices != nil, "the syncer consumes q.erp-prices when a shop maps price lists")
        let (group, task) = try await Self.startReconciler(h, reports: reports)
        let store = h.shopify.store

        // A merchant changes SKU 3's own (DTC) price in Shopify's admin: Shopify owns it.
        #expect(await store.setVariantPrice(sku: OrderGenerator.sku(3), price: Decimal(string: "1.23")!))
        let retailBefore = await h.inventory.price(list: "PL-RETAIL", sku: OrderGenerator.sku(3))

        let dry = try #require(try await Self.reconcile(h, reports: reports, dryRun: true))
        #expect(dry.error == nil, "\(dry.error ?? "")")
        #expect(dry.checked == skus * 3 && dry.mismatches == ["b2b_price_missing": skus * 2, "dtc_price_differs": 1], "\(dry.summary)")
        #expect(dry.healed == 0 && dry.reported == skus * 2 + 1)
        #expect(await store.fixedPriceWriteCount == 0, "a dry run writes nothing")

        let run = try #require(try await Self.reconcile(h, reports: reports))
        #expect(run.error == nil, "\(run.error ?? "")")
        #expect(run.checked == skus * 3 && run.matched == skus - 1, "\(run.summary)")
        #expect(run.mismatches == ["b2b_price_missing": skus * 2, "dtc_price_differs": 1], "\(run.summary)")
        #expect(run.healed == skus * 2 && run.reported == 1, "\(run.summary)")
        #expect(await Self.mismatched(h, erpList: "PL-WHOLESALE", list: Self.wholesale, skus: skus).isEmpty)
        #expect(await Self.mismatched(h, erpList: "PL-DISTRIBUTOR", list: Self.distributor, skus: skus).isEmpty)
        #expect(await store.fixedPriceWriteCount == skus * 2, "each price written once")
        // DTC: reported, written nowhere.
        #expect(await store.variants[2].price == Decimal(string: "1.23")!)
        #expect(await h.inventory.price(list: "PL-RETAIL", sku: OrderGenerator.sku(3)) == retailBefore)
        let dtc = run.differences.first { $0.kind == "dtc_price_differs" }
        #expect(dtc?.id == OrderGenerator.sku(3) && dtc?.action == "reported" && dtc?.shopify == "1.23", "\(String(describing: dtc))")
        let mutations = h.shopify.api.mutationCalls.withLock { $0 }
        #expect(Set(mutations.keys).isSubset(of: ["priceListFixedPricesUpdate", "bulkOperationRunQuery", "inventorySetQuantities"]), "\(mutations)")

        // The run's corrections were written by the syncer, the one writer of B2B prices, from the run's hints.
        let prices = try #require(s.process.prices)
        #expect(prices.settledCounts["written"] == skus * 2, "\(prices.settledCounts)")
        // A new contract price, pushed: it reaches Shopify's list, written once.
        let variant5 = await store.variants[4].variantId
        let pushed = try #require(await h.inventory.setPrice(list: "PL-WHOLESALE", sku: OrderGenerator.sku(5), unitPrice: Decimal(string: "7.77")!))
        #expect(await eventually(timeout: .seconds(30)) { await Self.shopifyPrice(h, list: Self.wholesale, 5) == Decimal(string: "7.77")! })
        #expect(await store.fixedPriceWrites(list: Self.wholesale, variant: variant5) == 2, "the run's write and the push's")
        // The same event again (a redelivery, the ERP retrying): the price is already right, nothing is written.
        #expect(await h.pusher.push(event: "price.changed", eventId: "erp-price-\(pushed.seq)-again", body: ERPPusher.priceChanged(pushed)))
        #expect(await eventually(timeout: .seconds(20)) { (prices.settledCounts["unchanged"] ?? 0) >= 1 }, "\(prices.settledCounts)")
        #expect(prices.settledCounts["written"] == skus * 2 + 1, "\(prices.settledCounts)")
        #expect(await store.fixedPriceWrites(list: Self.wholesale, variant: variant5) == 2, "a duplicate push writes nothing")

        // A push that is lost: the next run heals it; the DTC difference is still only reported.
        await h.inventory.setPrice(list: "PL-DISTRIBUTOR", sku: OrderGenerator.sku(6), unitPrice: Decimal(string: "3.33")!, notify: false)
        let healing = try #require(try await Self.reconcile(h, reports: reports))
        #expect(healing.mismatches == ["b2b_price_differs": 1, "dtc_price_differs": 1] && healing.healed == 1, "\(healing.summary)")
        #expect(await Self.shopifyPrice(h, list: Self.distributor, 6) == Decimal(string: "3.33")!)

        let last = try #require(try await Self.reconcile(h, reports: reports))
        #expect(last.mismatches == ["dtc_price_differs": 1] && last.healed == 0, "\(last.summary)")
        let markdown = try String(contentsOfFile: reports + "/\(run.runId).md", encoding: .utf8)
        #expect(markdown.contains("| b2b_price_missing | \(skus * 2) |"))

        await group.triggerGracefulShutdown()
        _ = await task.result
        await s.stop()
        await h.close()
    }

    @Test("a Shopify price list a merchant switched to another currency stops the prices run with price_list_currency_mismatch (nothing written) and dead-letters a pushed change for it with that class; a price Shopify refuses is dead-lettered with Shopify's code; the other list's push is written")
    func refusalsDeadLettered() async throws {
        let skus = 4
        let h = try await InventoryHarness.make("prices-refused", skus: skus, erpStock: 10...40)
        let reports = h.dir.appendingPathComponent("reports").path
        let s = try await h.startSyncer(extra: Self.priceEnv(reports))
        let (group, task) = try await Self.startReconciler(h, reports: reports)
        let store = h.shopify.store
        #expect(await store.setPriceListCurrency(list: Self.distributor, currency: "USD"))

        let run = try #require(try await Self.reconcile(h, reports: reports))
        #expect(run.error?.hasPrefix("price_list_currency_mismatch:") == true, "\(run.error ?? "no error")")
        #expect(await store.fixedPriceWrites(list: Self.distributor, variant: await store.variants[0].variantId) == 0)

        let dlq = BridgeTopology.deadLetterQueue(of: BridgeTopology.erpPrices.name)
        // A pushed change for the mismatched list: dead-lettered, not written.
        await h.inventory.setPrice(list: "PL-DISTRIBUTOR", sku: OrderGenerator.sku(2), unitPrice: Decimal(string: "4.44")!)
        // A price Shopify refuses (the ERP's list carries a negative price): dead-lettered with Shopify's code.
        await h.inventory.setPrice(list: "PL-WHOLESALE", sku: OrderGenerator.sku(3), unitPrice: Decimal(string: "-1.00")!)
        // A good change beside them: written.
        await h.inventory.setPrice(list: "PL-WHOLESALE", sku: OrderGenerator.sku(1), unitPrice: Decimal(string: "5.55")!)
        let dead = try await eventually(timeout: .seconds(60)) { try await h.publisher.queueCounts(dlq).messages == 2 }
        #expect(dead)
        let (_, letters) = try await DeadLetters.list(h.publisher, workQueue: BridgeTopology.erpPrices.name, limit: 10)
        #expect(
            Set(letters.compactMap(\.errorClass)) == ["price_list_currency_mismatch", "shopify_refused_blank"],
            "\(letters.map { "\($0.errorClass ?? "-"): \($0.errorMessage ?? "")" })")
        #expect(await eventually(timeout: .seconds(30)) { await Self.shopifyPrice(h, list: Self.wholesale, 1) == Decimal(string: "5.55")! })
        #expect(await Self.shopifyPrice(h, list: Self.wholesale, 3) == nil, "the refused price is not on the list")
        #expect(await Self.shopifyPrice(h, list: Self.distributor, 2) == nil)

        await group.triggerGracefulShutdown()
        _ = await task.result
        await s.stop()
        await h.close()
    }

    @Test("one writer of B2B prices: two syncers (one standing by) and reconciler runs while a slow ERP raises one price 60 times, pushed: Shopify's fixed price only ever moves forward, and ends at the ERP's last")
    func pricesNeverGoBack() async throws {
        let skus = 3
        let h = try await InventoryHarness.make("prices-order", skus: skus, erpStock: 10...40)
        let reports = h.dir.appendingPathComponent("reports").path
        let a = try await h.startSyncer(extra: Self.priceEnv(reports))
        let b = try await h.startSyncer(extra: Self.priceEnv(reports), waitActive: false)
        let (group, task) = try await Self.startReconciler(h, reports: reports)
        let store = h.shopify.store
        let first = try #require(try await Self.reconcile(h, reports: reports))
        #expect(first.healed == skus * 2, "\(first.summary)")
        let variant = await store.variants[0].variantId
        let before = await store.fixedPriceHistory(list: Self.wholesale, variant: variant).count

        // Every ERP read takes 20-120 ms, and its answer travels back 0-300 ms after the ERP read the price: events
        // handled side by side would write in another order than the ERP answered them.
        var faults = ERPStore.Faults()
        faults.latencyMs = 20
        faults.latencyJitterMs = 100
        faults.answerJitterMs = 300
        await h.erpStore.setFaults(faults)
        let runs = Task {
            for _ in 0..<3 { _ = try? await Self.reconcile(h, reports: reports) }
        }
        for k in 1...60 {
            _ = await h.inventory.setPrice(list: "PL-WHOLESALE", sku: OrderGenerator.sku(1), unitPrice: Decimal(100 + k))
            try await Task.sleep(for: .milliseconds(15))
        }
        await runs.value
        #expect(await eventually(timeout: .seconds(60)) { await Self.shopifyPrice(h, list: Self.wholesale, 1) == Decimal(160) })
        let history = Array(await store.fixedPriceHistory(list: Self.wholesale, variant: variant).dropFirst(before))
        let backwards = zip(history, history.dropFirst()).filter { $0 > $1 }
        #expect(!history.isEmpty)
        #expect(backwards.isEmpty, "an older price written after a newer one: \(backwards) in \(history)")
        print("B2B price raised 60 times with a standby and reconciler runs: \(history.count) writes, in order: \(backwards.isEmpty)")
        await group.triggerGracefulShutdown()
        _ = await task.result
        await b.stop()
        await a.stop()
        await h.close()
    }

    @Test("a price Shopify refuses (its variant deleted meanwhile) is reported with Shopify's code and the other prices of its call are written")
    func refusedPriceDoesNotBlockItsCall() async throws {
        let h = try await InventoryHarness.make("prices-refused", skus: 3, erpStock: 10...40)
        let reports = h.dir.appendingPathComponent("reports").path
        let s = try await h.startSyncer(extra: Self.priceEnv(reports))
        let sync = try #require(s.process.prices?.handler.shops.first)
        let store = h.shopify.store
        var differences: [B2BPriceSync.Difference] = []
        for n in 1...3 {
            let variant = await store.variants[n - 1].variantId
            differences.append(.init(sku: OrderGenerator.sku(n), variantId: "gid://shopify/ProductVariant/\(variant)", erp: Decimal(n), shopify: nil))
        }
        // The merchant deletes SKU 2's variant after the comparison read it.
        _ = await store.deleteVariant(sku: OrderGenerator.sku(2))
        let fresh = ERPPriceList(
            id: "PL-WHOLESALE", currency: "EUR", prices: [OrderGenerator.sku(1): 9.01, OrderGenerator.sku(2): 9.02, OrderGenerator.sku(3): 9.03])
        let result = try await sync.write(differences, erpList: "PL-WHOLESALE", justRead: fresh, logger: InventoryHarness.quietLogger)
        #expect(result.refused.map(\.code) == ["VARIANT_NOT_FOUND"], "\(result.refused)")
        #expect(result.written == 2)
        #expect(await Self.shopifyPrice(h, list: Self.wholesale, 1) == Decimal(string: "9.01"))
        #expect(await Self.shopifyPrice(h, list: Self.wholesale, 3) == Decimal(string: "9.03"))
        await s.stop()
        await h.close()
    }

    @Test("with no inventory-syncer running (inventory_syncer.enabled: false) the reconciler is the one writer of B2B prices and heals them itself")
    func reconcilerWritesWithoutSyncer() async throws {
        let skus = 4
        let h = try await InventoryHarness.make("prices-nosyncer", skus: skus, erpStock: 10...40)
        let reports = h.dir.appendingPathComponent("reports").path
        var env = Self.priceEnv(reports)
        env["INVENTORY_SYNCER_ENABLED"] = "false"
        let (group, task) = try await h.startReconciler(extra: env)
        let run = try #require(try await Self.reconcile(h, reports: reports))
        #expect(run.error == nil, "\(run.error ?? "")")
        #expect(run.healed == skus * 2, "\(run.summary)")
        #expect(await Self.mismatched(h, erpList: "PL-WHOLESALE", list: Self.wholesale, skus: skus).isEmpty)
        #expect(await Self.mismatched(h, erpList: "PL-DISTRIBUTOR", list: Self.distributor, skus: skus).isEmpty)
        await group.triggerGracefulShutdown()
        _ = await task.result
        await h.close()
    }
}
