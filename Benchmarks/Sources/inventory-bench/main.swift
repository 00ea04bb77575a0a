import ArgumentParser
import BridgeDomain
import ERP
import Foundation
import InventorySync
import Logging
import Shopify

/// The inventory-syncer's two paths against shopify-sim and erp-sim (started by `./dev bench`):
///
/// 1. **Full sync**: the ERP's snapshot against Shopify's levels read with one bulk query, every difference written
///    through the syncer's compare-and-set writer (`FullSync`, the code the process runs). Prints the achieved level
///    writes per second divided by the most the shop's cost budget allows for the calls made (from the cost figures
///    shopify-sim reported, same run: `(points - bucket) / restore rate` is the shortest possible write phase), and
///    THROTTLED as a share of calls.
/// 2. **Deltas** at a fixed rate: one ERP figure changed -> its Shopify level written (`ShopInventorySync.sync`:
///    coalescing, the compare-and-set read and write), p50/p99, alternately lowering and raising levels. This is the
///    syncer's own path; the hop through ingest and the broker in front of it is what the
///    ingest and messaging benchmarks measure.
///
/// It never fails on time; it fails (exit 1) when a level is wrong afterwards.
@main
struct InventoryBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inventory-bench", abstract: "Full sync efficiency against the cost budget, and delta latency.")

    @Option(help: "shopify-sim base URL (its Admin API).") var shopifyURL: String
    @Option(help: "erp-sim base URL.") var erpURL: String
    @Option(help: "Admin API token shopify-sim expects.") var token = "shpat_demo_token_change_me"
    @Option(help: "erp-sim API key.") var apiKey = "bench-erp-key"
    @Option(help: "Plan shopify-sim runs with (standard: 100 points/s, bucket 2,000).") var plan = "standard"
    @Option(help: "Warehouses / locations (WH-n -> 7000000000n).") var locations = 3
    @Option(help: "Delta changes to make.") var deltas = 1000
    @Option(help: "Delta changes per second.") var deltaRate = 100.0

    func run() async throws {
        var logger = Logger(label: "inventory-bench")
        logger.logLevel = .warning
        guard let plan = BridgeConfig.ShopPlan(rawValue: plan) else { throw ValidationError("unknown plan") }
        let shop = BridgeConfig.Shop(
            id: "bench", domain: "bench.myshopify.com", webhookSecrets: ["unused"], adminToken: token, apiVersion: "2026-07",
            adminURL: shopifyURL, plan: plan,
            locations: Dictionary(uniqueKeysWithValues: (1...locations).map { ("WH-\($0)", "\(70_000_000_000 + $0)") }))
        let settings = InventorySyncerSettings(coalesceWindow: .milliseconds(100))
        let client = ShopifyAdminClient(configuration: .init(shop: shop), logger: logger)
        let erp = RESTERPClient(configuration: .init(baseURL: erpURL, apiKey: apiKey, timeout: .seconds(60)))
        let picture = StockPicture()
        let sync = ShopInventorySync(shop: shop, client: client, picture: picture, settings: settings, logger: logger)
        let fullSync = FullSync(erp: erp, picture: picture, publisher: nil, logger: logger)

        // 1. Full sync.
        let erpStarted = ContinuousClock.now
        let levels = try await fullSync.readERP()
        let erpSeconds = (ContinuousClock.now - erpStarted).seconds
        let report = try await fullSync.run(sync, erpLevels: levels, dryRun: false)
        let restore = Double(plan.restoreRatePerSecond)
        let shortest = max(0, Double(report.writePoints) - Double(plan.bucketSize)) / restore
        let efficiency = report.writeSeconds > 0 ? shortest / report.writeSeconds : 0
        let perSecond = report.writeSeconds > 0 ? Double(report.corrected) / report.writeSeconds : 0
        let bestPerSecond = shortest > 0 ? Double(report.corrected) / shortest : 0
        print(
            "full sync: \(report.compared) levels (\(levels.count / max(1, locations)) SKUs x \(locations) locations), "
                + "ERP snapshot \(f(erpSeconds)) s, Shopify bulk read \(f(report.shopifyReadSeconds)) s, "
                + "\(report.corrected) corrected in \(f(report.writeSeconds)) s = \(f(perSecond, 0)) levels/s; "
                + "the \(plan.rawValue) plan's budget allows \(f(bestPerSecond, 0)) levels/s for these \(report.writeCalls) calls "
                + "(\(report.writePoints) points, bucket \(plan.bucketSize), \(Int(restore))/s) -> efficiency \(f(efficiency, 3)); "
                + "THROTTLED \(report.writeThrottled) of \(report.writeCalls) calls (\(f(100 * Double(report.writeThrottled) / Double(max(1, report.writeCalls)), 2))%)")

        // 2. Deltas: each change lowers or raises one level (alternately), at a fixed rate.
        let keys = levels.keys.sorted { ($0.sku, $0.warehouse) < ($1.sku, $1.warehouse) }
        var down: [Double] = []
        var up: [Double] = []
        let started = ContinuousClock.now
        var seq: Int64 = 10_000_000
        try await withThrowingTaskGroup(of: (Bool, Double).self) { group in
            for i in 0..<deltas {
                try? await Task.sleep(until: started + .seconds(Double(i) / deltaRate))
                let key = keys[(i * 7919) % keys.count]
                let now = await picture.available(key) ?? 0
                let raise = i % 2 == 1
                let figure = raise ? now + 5 : max(0, now - 3)
                seq += 1
                _ = await picture.apply(ERPStockChange(seq: seq, sku: key.sku, warehouse: key.warehouse, available: figure))
                group.addTask {
                    let t0 = ContinuousClock.now
                    guard case .level(let level) = try await sync.resolve(key) else { return (raise, -1) }
                    _ = try await sync.sync([level], decision: "bench-\(seq)")
                    return (raise, (ContinuousClock.now - t0).seconds * 1000)
                }
            }
            for try await (raise, ms) in group where ms >= 0 {
                if raise { up.append(ms) } else { down.append(ms) }
            }
        }
        let elapsed = (ContinuousClock.now - started).seconds
        print(
            "deltas: \(deltas) changes at \(f(deltaRate, 0))/s (achieved \(f(Double(deltas) / elapsed, 0))/s), ERP figure -> Shopify level: "
                + "p50 \(pct(down + up, 0.5)) ms p99 \(pct(down + up, 0.99)) ms (n=\(down.count + up.count); down p50 \(pct(down, 0.5)), "
                + "up p50 \(pct(up, 0.5))); "
                + "\(await sync.coalescedWrites) coalesced writes")

        // Every level is right afterwards.
        let check = try await fullSync.run(sync, erpLevels: try await fullSync.readERP(), dryRun: true)
        await client.shutdown()
        await erp.shutdown()
        guard check.drifted == 0 else {
            print("FAILED: \(check.drifted) levels differ from the rule after the run")
            throw ExitCode.failure
        }
    }

    func f(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }

    func pct(_ xs: [Double], _ p: Double) -> String {
        guard !xs.isEmpty else { return "-" }
        let s = xs.sorted()
        return String(format: "%.0f", s[min(s.count - 1, Int(Double(s.count - 1) * p))])
    }
}
