import BridgeDomain
import BridgeTestSupport
import Foundation
import Reconciliation
import ShopifySimulator
import Testing

/// The reconciler's catalogue report: the ERP's SKUs against Shopify's variants, reported, never written.
@Suite("reconciler, catalogue: SKUs in one system only, shared SKUs and vanished variants, counted exactly", .serialized)
struct CatalogueReconcileTests {
    @Test("a first run of two matching catalogues finds nothing; after a deleted variant, a renamed SKU and a SKU given to a second variant, the run reports each kind exactly and writes nothing")
    func catalogueReport() async throws {
        let skus = 10
        let h = try await InventoryHarness.make("catalogue", skus: skus, erpStock: 10...40)
        let reports = h.dir.appendingPathComponent("reports").path
        // No inventory-syncer: the catalogue run needs none.
        let (group, task) = try await PricesReconcileTests.startReconciler(h, reports: reports)
        func run(dryRun: Bool = false) async throws -> ReconcileReport {
            try #require(try await h.reconcile(.catalogue, reports: reports, dryRun: dryRun))
        }

        let first = try await run()
        #expect(first.error == nil && first.checked == skus && first.matched == skus && first.mismatches.isEmpty, "\(first.summary)")

        let store = h.shopify.store
        #expect(await store.deleteVariant(sku: OrderGenerator.sku(3)) != nil)  // SKU 3: missing in Shopify, its variant gone
        #expect(await store.setVariantSKU(OrderGenerator.sku(4), to: "SKU-RENAMED"))  // SKU 4 missing in Shopify; SKU-RENAMED missing in the ERP
        #expect(await store.setVariantSKU(OrderGenerator.sku(5), to: OrderGenerator.sku(6)))  // SKU 5 missing; SKU 6 on two variants
        let dry = try await run(dryRun: true)
        let second = try await run()
        for r in [dry, second] {
            #expect(r.error == nil, "\(r.error ?? "")")
            #expect(
                r.mismatches == ["variant_gone": 1, "missing_in_shopify": 3, "missing_in_erp": 1, "duplicate_sku": 1], "\(r.summary)")
            // SKUs 1-10 and SKU-RENAMED; differing: 3, 4, 5, 6, SKU-RENAMED.
            #expect(r.checked == skus + 1 && r.reported == 5 && r.matched == skus + 1 - 5 && r.healed == 0, "\(r.summary)")
        }
        let gone = second.differences.first { $0.kind == "variant_gone" }
        #expect(gone?.id == OrderGenerator.sku(3) && gone?.ref == "gid://shopify/ProductVariant/40000000003", "\(String(describing: gone))")
        // Reported, never written: no mutation but the bulk query's.
        let mutations = h.shopify.api.mutationCalls.withLock { $0 }
        #expect(Set(mutations.keys) == ["bulkOperationRunQuery"], "\(mutations)")
        // The vanished variant is reported once: the second run remembered what it saw.
        let third = try await run()
        #expect(third.mismatches["variant_gone"] == nil && third.mismatches["missing_in_shopify"] == 3, "\(third.summary)")

        await group.triggerGracefulShutdown()
        _ = await task.result
        await h.close()
    }
}
