import ArgumentParser
import BenchSupport
import BridgeDomain
import ERP
import Foundation
import InventorySync
import Logging
import Messaging
import Reconciliation
import Shopify

/// The reconciler's two large reads against shopify-sim and erp-sim (started by `./dev bench`, with ingest and two
/// order-forwarders on the bench broker):
///
/// 1. **Orders**: a sale of `--orders` orders through ingest and the forwarders with `--drop-rate` of its webhooks
///    lost, then one reconciliation run over the window (`OrdersReconciler`, the code the process runs: a bulk
///    operation above `bulk_threshold`), which heals what the ERP lacks through `q.orders`; once the forwarders have
///    written the replays, a second run reads the same window page by page (threshold raised) and must find nothing.
/// 2. **Inventory**: `InventoryReconciler` over every SKU x location of a second pair of simulators, one bulk read.
///
/// For each run: wall time, and the Admin API points used (the client's count, and what shopify-sim charged, by
/// operation) against the minimum the same reads cost: one `ordersCount`, then either the bulk operation and one
/// poll, or one call per page at the dearest page's charge (all from shopify-sim's cost figures, same run).
/// It never fails on time; it fails (exit 1) when the second orders run still finds a difference.
@main
struct ReconcileBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile-bench", abstract: "Reconciliation wall time and Admin API points against the minimum.")

    @Option(help: "shopify-sim port of the orders run (webhooks to ingest).") var shopifyPort: Int
    @Option(help: "erp-sim port of the orders run (written by the forwarders).") var erpPort: Int
    @Option(help: "Broker AMQP port (healing replays go to q.orders).") var amqpPort: Int
    @Option(help: "shopify-sim port of the inventory run.") var inventoryShopifyPort: Int
    @Option(help: "erp-sim port of the inventory run.") var inventoryErpPort: Int
    @Option(help: "Locations of the inventory run (WH-n -> 7000000000n).") var locations = 2
    @Option(help: "Orders in the sale.") var orders = 10_000
    @Option(help: "Share of webhooks shopify-sim drops.") var dropRate = 0.02
    @Option(help: "Admin API token shopify-sim expects.") var token = "shpat_demo_token_change_me"
    @Option(help: "erp-sim API key.") var apiKey = "bench-erp-key"

    func run() async throws {
        var logger = Logger(label: "reconcile-bench")
        logger.logLevel = .warning
        let connection = AMQPConnection(
            configuration: try AMQPConnectionConfiguration(
                url: "amqp://guest:guest@127.0.0.1:\(amqpPort)/%2F", connectionName: "reconcile-bench"),
            logger: logger)
        connection.start()
        try await connection.waitUntilReady()
        let reportsDir = NSTemporaryDirectory() + "reconcile-bench-\(getpid())"
        let reports = ReportStore(directory: reportsDir)
        defer { try? FileManager.default.removeItem(atPath: reportsDir) }

        // 1. Orders: the sale, with webhooks lost.
        _ = try HTTPConnection.json(port: shopifyPort, "PUT", "/_sim/faults", body: #"{"drop_rate":\#(dropRate)}"#)
        let profile = #"{"orders":\#(orders),"orders_per_second":0,"concurrency":64,"seed":\#(Int.random(in: 1...1_000_000))}"#
        let (status, _) = try HTTPConnection.json(port: shopifyPort, "POST", "/_sim/traffic", body: profile)
        guard status == 202 else { throw ValidationError("shopify-sim refused the sale (\(status))") }
        let saleStarted = Date()
        try waitForSale()
        _ = try HTTPConnection.json(port: shopifyPort, "DELETE", "/_sim/faults")
        let inERP = try waitForERPToSettle()
        print(
            "orders: sale of \(orders) orders with \(Int(dropRate * 100))% of webhooks dropped, forwarded in "
                + "\(f(Date().timeIntervalSince(saleStarted))) s; the ERP holds \(inERP)")

        let shop = try Self.shop(shopifyURL: "http://127.0.0.1:\(shopifyPort)", erpURL: "http://127.0.0.1:\(erpPort)", token: token, apiKey: apiKey, locations: locations)
        let erp = RESTERPClient(configuration: .init(baseURL: "http://127.0.0.1:\(erpPort)", apiKey: apiKey, timeout: .seconds(60)))
        var clientConfig = ShopifyAdminClient.Configuration(shop: shop)
        clientConfig.timeout = .seconds(600)
        let client = ShopifyAdminClient(configuration: clientConfig, logger: logger)
        let policy = SourceOfTruthPolicy.defaults
        for (label, threshold, dryRun) in [("bulk", 2500, false), ("paged", 10_000_000, true)] {
            let settings = ReconcilerSettings(reportsDir: reportsDir, settle: .zero, bulkThreshold: threshold)
            let reconciler = OrdersReconciler(
                shop: shop, client: client, erp: erp, publisher: connection, policy: policy, settings: settings, reports: reports, logger: logger)
            let request = ReconcileRequest(
                runId: ReportStore.newRunId(), domain: .orders, shop: shop.id, window: .seconds(3600), dryRun: dryRun, trigger: "bench")
            let before = try charges(port: shopifyPort)
            let report = try await reconciler.run(request, resumed: false, progress: nil)
            let spent = try charges(port: shopifyPort).minus(before)
            let pages = (report.checked + report.inFlight + 99) / 100
            let reads: Int =
                label == "bulk"
                ? spent.maxPoints("bulkOperationRunQuery") + spent.maxPoints("bulkOperation")
                : pages * spent.maxPoints("orders")
            let minimum = spent.maxPoints("ordersCount") + reads
            let mode = dryRun ? "\(label), dry run" : label
            var line = "orders reconciliation (\(mode)): \(report.checked) orders in \(f(report.seconds)) s, "
            line += "matched \(report.matched), healed \(report.healed), reported \(report.reported) \(kinds(report)); "
            line += "points used \(report.pointsUsed) (shopify-sim charged \(spent.total): \(spent.describe)), "
            line += "minimum for these reads \(minimum) -> \(ratio(report.pointsUsed, minimum)); throttled \(spent.throttled)"
            print(line)
            if label == "bulk" {
                let healedInERP = try waitForERPToSettle()
                print("orders: after healing the ERP holds \(healedInERP) (\(healedInERP - inERP) written from the replays)")
            } else if report.differed > 0 {
                print("FAILED: the second run still finds \(report.differed) differences \(kinds(report))")
                throw ExitCode.failure
            }
        }
        await client.shutdown()
        await erp.shutdown()

        // 2. Inventory over every SKU x location.
        let invShop = try Self.shop(
            shopifyURL: "http://127.0.0.1:\(inventoryShopifyPort)", erpURL: "http://127.0.0.1:\(inventoryErpPort)", token: token, apiKey: apiKey,
            locations: locations)
        let invERP = RESTERPClient(configuration: .init(baseURL: "http://127.0.0.1:\(inventoryErpPort)", apiKey: apiKey, timeout: .seconds(60)))
        var invConfig = ShopifyAdminClient.Configuration(shop: invShop)
        invConfig.timeout = .seconds(600)
        let invClient = ShopifyAdminClient(configuration: invConfig, logger: logger)
        let inventory = InventoryReconciler(
            shop: invShop, client: invClient, erp: invERP, publisher: connection, policy: policy,
            settings: ReconcilerSettings(reportsDir: reportsDir, settle: .zero), syncerSettings: InventorySyncerSettings(), logger: logger)
        let before = try charges(port: inventoryShopifyPort)
        let report = try await inventory.run(
            ReconcileRequest(runId: ReportStore.newRunId(), domain: .inventory, shop: invShop.id, dryRun: true, trigger: "bench"),
            resumed: false, progress: nil)
        let spent = try charges(port: inventoryShopifyPort).minus(before)
        let minimum = spent.maxPoints("bulkOperationRunQuery") + spent.maxPoints("bulkOperation")
        var line = "inventory reconciliation (bulk, dry run): \(report.checked) SKU x location pairs in \(f(report.seconds)) s, "
        line += "matched \(report.matched), drifted \(report.differed) \(kinds(report)); "
        line += "points used \(report.pointsUsed) (shopify-sim charged \(spent.total): \(spent.describe)), "
        line += "minimum for these reads \(minimum) -> \(ratio(report.pointsUsed, minimum)); throttled \(spent.throttled)"
        print(line)
        await invClient.shutdown()
        await invERP.shutdown()
        await connection.close()
    }

    static func shop(shopifyURL: String, erpURL: String, token: String, apiKey: String, locations: Int) throws -> BridgeConfig.Shop {
        try BridgeConfig.parse(
            KeyValues([
                "shops": "bench", "shop.bench.domain": "bench.myshopify.com", "shop.bench.webhook_secrets": "unused",
                "shop.bench.admin_token": token, "shop.bench.admin_url": shopifyURL, "shop.bench.plan": "standard",
                "shop.bench.locations": (1...locations).map { "WH-\($0)=\(70_000_000_000 + $0)" }.joined(separator: ","),
                "erp.base_url": erpURL, "erp.api_key": apiKey, "erp.webhook_secret": "unused",
            ]), defaultHTTPPort: 0
        ).shops[0]
    }

    func waitForSale() throws {
        let deadline = Date().addingTimeInterval(1800)
        while Date() < deadline {
            let (_, state) = try HTTPConnection.json(port: shopifyPort, "GET", "/_sim/traffic")
            if (state as? [String: Any])?["running"] as? Bool == false { return }
            usleep(200_000)
        }
        throw ValidationError("the sale did not finish within 30 minutes")
    }

    /// Waits until the ERP's write count has not moved for 5 s (the queues drained); returns its order count.
    func waitForERPToSettle() throws -> Int {
        var last: (Int, Int) = (-1, -1)
        var still = Date()
        let deadline = Date().addingTimeInterval(1800)
        while Date() < deadline {
            let (_, body) = try HTTPConnection.json(port: erpPort, "GET", "/_inspect/stats")
            let stats = body as? [String: Any] ?? [:]
            let now = (stats["orders"] as? Int ?? 0, stats["writes"] as? Int ?? stats["calls"] as? Int ?? 0)
            if now != last {
                last = now
                still = Date()
            } else if Date().timeIntervalSince(still) >= 5 {
                return now.0
            }
            usleep(250_000)
        }
        throw ValidationError("the ERP kept changing for 30 minutes")
    }

    func charges(port: Int) throws -> Charges {
        let (_, body) = try HTTPConnection.json(port: port, "GET", "/_sim/cost")
        let d = body as? [String: Any] ?? [:]
        var out = Charges(throttled: d["throttled"] as? Int ?? 0)
        for (name, value) in d["fields"] as? [String: Any] ?? [:] {
            let v = value as? [String: Any] ?? [:]
            out.fields[name] = (v["calls"] as? Int ?? 0, v["points"] as? Int ?? 0, v["max_points"] as? Int ?? 0)
        }
        return out
    }

    func kinds(_ report: ReconcileReport) -> String {
        report.mismatches.isEmpty ? "" : "(" + report.mismatches.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + ")"
    }

    func ratio(_ used: Int, _ minimum: Int) -> String {
        minimum > 0 ? "\(f(Double(used) / Double(minimum), 2))x the minimum" : "no minimum measured"
    }

    func f(_ x: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", x) }
}

/// What shopify-sim charged, by the operations' root fields (calls, points, the dearest call).
struct Charges {
    var fields: [String: (calls: Int, points: Int, max: Int)] = [:]
    var throttled: Int

    init(throttled: Int) { self.throttled = throttled }

    /// Calls and points since `earlier` (the dearest call is this run's only where the field is new to it).
    func minus(_ earlier: Charges) -> Charges {
        var out = Charges(throttled: throttled - earlier.throttled)
        for (name, v) in fields {
            let e = earlier.fields[name] ?? (0, 0, 0)
            if v.calls > e.calls { out.fields[name] = (v.calls - e.calls, v.points - e.points, v.max) }
        }
        return out
    }

    var total: Int { fields.values.reduce(0) { $0 + $1.points } }
    func maxPoints(_ field: String) -> Int { fields[field]?.max ?? 0 }
    var describe: String {
        fields.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.calls) calls \($0.value.points) points" }.joined(separator: ", ")
    }
}
