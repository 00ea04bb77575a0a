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
    @Option(help: "A restore rate of its own, points/s, matching shopify-sim's --restore-rate (time-scaling; 0: the plan's).")
    var restoreRate = 0
    @Option(help: "Delta changes to make.") var deltas = 1000
    @Option(help: "Delta changes per second.") var deltaRate = 100.0

    func run() async throws {
        var logger = Logger(label: "inventory-bench")
        logger.logLevel = .warning
        guard let plan = BridgeConfig.ShopPlan(rawValue: plan) else { throw ValidationError("unknown plan") }
        // The shop as the bridge's configuration parser builds it from keys.
        let config = try BridgeConfig.parse(
            KeyValues([
                "shops": "bench", "shop.bench.domain": "bench.myshopify.com", "shop.bench.webhook_secrets": "unused",
                "shop.bench.admin_token": token, "shop.bench.admin_url": shopifyURL, "shop.bench.plan": plan.rawValue,
                "shop.bench.locations": (1...locations).map { "WH-\($0)=\(70_000_000_000 + $0)" }.joined(separator: ","),
                "erp.base_url": erpURL, "erp.api_key": apiKey, "erp.webhook_secret": "unused",
            ]), defaultHTTPPort: 0)
        let shop = config.shops[0]
        let settings = InventorySyncerSettings(coalesceWindow: .milliseconds(100))
        // A patient client: shopify-sim builds a 100,000-item bulk result on this machine's two cores, and its answers to
        // the polls wait meanwhile (Shopify's own do not; the timeout is the simulator's, not the bridge's).
        var clientConfig = ShopifyAdminClient.Configuration(shop: shop)
        clientConfig.timeout = .seconds(600)
        if restoreRate > 0 {
            clientConfig.restoreRate = Double(restoreRate)
            clientConfig.bucketSize = Double(restoreRate * 20)
        }
        let client = ShopifyAdminClient(configuration: clientConfig, logger: logger)
        let erp = RESTERPClient(configuration: .init(baseURL: erpURL, apiKey: apiKey, timeout: .seconds(60)))
        let picture = StockPicture()
        let sync = ShopInventorySync(shop: shop, client: client, picture: picture, settings: settings, logger: logger)
        let fullSync = FullSync(erp: erp, picture: picture, publisher: nil, logger: logger)

        // 1. Full sync.
        let erpStarted = ContinuousClock.now
        let levels = try await fullSync.readERP()
        let erpSeconds = (ContinuousClock.now - erpStarted).seconds
        let report = try await fullSync.run(sync, erpLevels: levels, dryRun: false)
        let restore = clientConfig.restoreRate
        let bucket = Int(clientConfig.bucketSize)
        let shortest = max(0, Double(report.writePoints) - Double(bucket)) / restore
        let efficiency = report.writeSeconds > 0 ? shortest / report.writeSeconds : 0
        let perSecond = report.writeSeconds > 0 ? Double(report.corrected) / report.writeSeconds : 0
        let bestPerSecond = shortest > 0 ? Double(report.corrected) / shortest : 0
        let skus = levels.count / max(1, locations)
        let throttledShare = 100 * Double(report.writeThrottled) / Double(max(1, report.writeCalls))
        var line = "full sync: \(report.compared) levels (\(skus) SKUs x \(locations) locations), "
        line += "ERP snapshot \(f(erpSeconds)) s, Shopify bulk read \(f(report.shopifyReadSeconds)) s, "
        line += "\(report.corrected) corrected in \(f(report.writeSeconds)) s = \(f(perSecond, 0)) levels/s; "
        if shortest > 0 {
            line += "the \(plan.rawValue) plan's budget allows \(f(bestPerSecond, 0)) levels/s for these \(report.writeCalls) calls "
            line += "(\(report.writePoints) points, bucket \(bucket), \(Int(restore))/s) -> efficiency \(f(efficiency, 3)); "
        } else {
            // Everything fitted in the full bucket: the budget never bound, there is no efficiency to measure.
            line += "\(report.writePoints) points for \(report.writeCalls) calls fit in the bucket (\(bucket)): the budget did not bind "
            line += "(more SKUs, or BENCH_RESTORE_RATE lower, to measure efficiency); "
        }
        line += "THROTTLED \(report.writeThrottled) of \(report.writeCalls) calls (\(f(throttledShare, 2))%)"
        print(line)

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
                let decision = "bench-\(seq)"
                group.addTask {
                    let t0 = ContinuousClock.now
                    guard case .level(let level) = try await sync.resolve(key) else { return (raise, -1) }
                    _ = try await sync.sync([level], decision: decision)
                    return (raise, (ContinuousClock.now - t0).seconds * 1000)
                }
            }
            for try await (raise, ms) in group where ms >= 0 {
                if raise { up.append(ms) } else { down.append(ms) }
            }
        }
        let elapsed = (ContinuousClock.now - started).seconds
        let all = down + up
        let writes = await sync.coalescedWrites
        var deltaLine = "deltas: \(deltas) changes at \(f(deltaRate, 0))/s (achieved \(f(Double(deltas) / elapsed, 0))/s), "
        deltaLine += "ERP figure -> Shopify level: p50 \(pct(all, 0.5)) ms p99 \(pct(all, 0.99)) ms (n=\(all.count); "
        deltaLine += "down p50 \(pct(down, 0.5)), up p50 \(pct(up, 0.5))); \(writes) coalesced writes"
        print(deltaLine)

        // Every level is right afterwards: against the figures the deltas set (they were applied to the syncer's
        // picture only, not to erp-sim, so a fresh ERP read would disagree with every level they touched).
        var expected = levels
        for key in levels.keys {
            if let figure = await picture.available(key) { expected[key] = figure }
        }
        let check = try await fullSync.run(sync, erpLevels: expected, dryRun: true)
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
