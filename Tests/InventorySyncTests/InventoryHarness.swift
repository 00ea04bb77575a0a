import BridgeDomain
import BridgeMessaging
import BridgeRuntime
import BridgeTestSupport
import ERPSimulator
import Foundation
import Hummingbird
import Ingest
import InventorySync
import Logging
import Messaging
import OrderForwarding
import Reconciliation
import ServiceLifecycle
import ShopifySimulator

/// One test's world for the inventory path: a private vhost with the bridge topology, erp-sim (sales orders,
/// stock, change feed, signed pushes) and shopify-sim (Admin API, webhooks) in process on free ports, ingest in
/// process between them and the broker, and syncers and forwarders wired exactly as their executables wire them.
final class InventoryHarness: Sendable {
    static let shopDomain = "acme.myshopify.com"
    static let shopId = "acme"
    static let apiKey = "test-erp-key"
    static let webhookSecret = "shpss_inventory_secret_0123456789"
    static let erpSecret = "erp-inventory-push-secret-0123"
    static let settings = BridgeConfig.TopologySettings(retryDelays: [.seconds(1), .seconds(2)])

    let broker: TestBroker
    let vhost: String
    let publisher: AMQPConnection
    let erpStore: ERPStore
    let inventory: ERPInventory
    let pusher: ERPPusher
    let erpURL: String
    let shopify: TestShopifyAdmin
    let ingestURL: String
    let tasks: [Task<Void, any Error>]
    let dir: URL

    private init(
        broker: TestBroker, vhost: String, publisher: AMQPConnection, erpStore: ERPStore, inventory: ERPInventory,
        pusher: ERPPusher, erpURL: String, shopify: TestShopifyAdmin, ingestURL: String, tasks: [Task<Void, any Error>], dir: URL
    ) {
        self.broker = broker
        self.vhost = vhost
        self.publisher = publisher
        self.erpStore = erpStore
        self.inventory = inventory
        self.pusher = pusher
        self.erpURL = erpURL
        self.shopify = shopify
        self.ingestURL = ingestURL
        self.tasks = tasks
        self.dir = dir
    }

    /// - Parameters: `skus` in both systems, 2 warehouses / locations; the ERP's stock seeded in `erpStock`,
    ///   Shopify's at `shopifyStock` everywhere (the full sync corrects it); `push`: erp-sim pushes its changes.
    static func make(
        _ prefix: String, skus: Int = 20, erpStock: ClosedRange<Int> = 0...40, shopifyStock: Int = 100, push: Bool = true,
        catchAll: String? = nil, webhookDelivery: WebhookDeliverer.Policy = .init(timeScale: 0.01),
        bucket: ThrottleBucket = ThrottleBucket(restoreRate: 1000)
    ) async throws -> InventoryHarness {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost(prefix)
        let topology = BridgeTopology.topology(settings)
        let publisher = try await broker.connect(vhost: vhost, name: "\(prefix)-ingest", onConnect: { try topology.declare(using: $0) })
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inv-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)

        // Ingest in process: verifies and publishes, as in production.
        let ingestConfig = try await BridgeConfig.load(
            filePath: nil,
            environment: [
                "BROKER_URL": broker.url(vhost: vhost), "SHOPS": shopId, "SHOP_ACME_DOMAIN": shopDomain,
                "SHOP_ACME_WEBHOOK_SECRETS": webhookSecret, "SHOP_ACME_ADMIN_TOKEN": "unused",
                "ERP_WEBHOOK_SECRET": erpSecret,
            ],
            defaultHTTPPort: 0)
        var logger = Logger(label: "ingest")
        logger.logLevel = .warning
        let ingestRouter = Router()
        IngestService(config: ingestConfig, publisher: publisher, logger: logger).addRoutes(to: ingestRouter)
        let (ingestPort, ingestTask) = await TestHTTPServer.start(ingestRouter, label: "ingest")
        let ingestURL = "http://127.0.0.1:\(ingestPort)"

        // The catch-all item (custom lines without SKU) is an ERP item without stock, as a real one is.
        let erpStore = ERPStore(skus: Set((1...skus).map(OrderGenerator.sku) + (catchAll.map { [$0] } ?? [])), profile: .upsert)
        let inventory = ERPInventory(skus: skus, warehouses: 2, seed: 11, initialStock: erpStock)
        let pusher = ERPPusher(retryDelays: [.milliseconds(100), .milliseconds(500), .seconds(2)])
        if push {
            await pusher.setTarget(.init(url: "\(ingestURL)/webhooks/erp", secret: erpSecret))
            await inventory.onChange { change in
                await pusher.push(
                    event: "inventory.changed", eventId: "erp-inventory-\(change.seq)", body: ERPPusher.inventoryChanged(change),
                    triggeredAt: change.changedAt)
            }
            await inventory.onPriceChange { change in
                await pusher.push(
                    event: "price.changed", eventId: "erp-price-\(change.seq)", body: ERPPusher.priceChanged(change), triggeredAt: change.changedAt)
            }
        }
        let erpRouter = Router()
        ERPSimulatorRoutes(store: erpStore, apiKey: apiKey, inventory: inventory, pusher: pusher).addRoutes(to: erpRouter)
        let (erpPort, erpTask) = await TestHTTPServer.start(erpRouter, label: "erp-sim")

        let shopify = try await TestShopifyAdmin.start(
            bucket: bucket, skus: skus, locations: 2, initialStock: shopifyStock, webhookSecret: webhookSecret, deliveryPolicy: webhookDelivery)
        await shopify.deliverer.subscribe(topic: "*", url: "\(ingestURL)/webhooks/shopify")
        return InventoryHarness(
            broker: broker, vhost: vhost, publisher: publisher, erpStore: erpStore, inventory: inventory, pusher: pusher,
            erpURL: "http://127.0.0.1:\(erpPort)", shopify: shopify, ingestURL: ingestURL, tasks: [ingestTask, erpTask], dir: dir)
    }

    var locations: [Int64] { shopify.store.locations }

    /// The configuration keys of a syncer (or forwarder) of this harness, as environment variables.
    func environment(safetyStock: Int = 2, plan: String = "plus", extra: [String: String] = [:]) -> [String: String] {
        var env = [
            "BROKER_URL": broker.url(vhost: vhost), "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "0",
            "TOPOLOGY_RETRY_DELAYS": Self.settings.retryDelays.map(BridgeTopology.label).joined(separator: ","),
            "SHOPS": Self.shopId, "SHOP_ACME_DOMAIN": Self.shopDomain, "SHOP_ACME_WEBHOOK_SECRETS": Self.webhookSecret,
            "SHOP_ACME_ADMIN_TOKEN": TestShopifyAdmin.token, "SHOP_ACME_ADMIN_URL": "http://127.0.0.1:\(shopify.port)",
            "SHOP_ACME_PLAN": plan,
            "SHOP_ACME_LOCATIONS": "WH-1=\(locations[0]),WH-2=\(locations[1])",
            "ERP_BASE_URL": erpURL, "ERP_API_KEY": Self.apiKey, "ERP_WEBHOOK_SECRET": Self.erpSecret, "ERP_TIMEOUT": "30s",
            "INVENTORY_SYNCER_SAFETY_STOCK": "\(safetyStock)", "INVENTORY_SYNCER_COALESCE_WINDOW": "50ms",
            "INVENTORY_SYNCER_OVERRIDE_GRACE": "300ms", "INVENTORY_SYNCER_FULL_SYNC_INTERVAL": "1h",
            // The shortest the lease check allows (4 × its interval): a syncer starts writing this long after it took
            // the lease.
            "INVENTORY_SYNCER_LEASE_TTL": "1s",
            "INVENTORY_SYNCER_STATE_PATH": dir.appendingPathComponent("syncer-state.json").path,
            "ORDER_FORWARDER_LEDGER": "sqlite:\(dir.appendingPathComponent("ledger.sqlite").path)",
            "ORDER_FORWARDER_LOCK_TTL": "10s", "ORDER_FORWARDER_LOCK_WAIT": "5s",
        ]
        for (k, v) in extra { env[k] = v }
        return env
    }

    static var quietLogger: Logger {
        var logger = Logger(label: "inventory-syncer")
        logger.logLevel = .warning
        return logger
    }

    /// An in-process inventory-syncer: configuration from environment keys, `BridgeRuntime`, and
    /// `InventorySyncerProcess.build`, in one `ServiceGroup`. `waitActive`: returns once it holds the lease and
    /// its first full sync loaded the catalogue.
    func startSyncer(
        safetyStock: Int = 2, plan: String = "plus", extra: [String: String] = [:], waitActive: Bool = true,
        afterRead: (@Sendable () async -> Void)? = nil
    ) async throws -> RunningSyncer {
        let env = environment(safetyStock: safetyStock, plan: plan, extra: extra)
        let config = try await BridgeConfig.load(filePath: nil, environment: env, defaultHTTPPort: 0)
        let runtime = try BridgeRuntime.make(.inventorySyncer, config: config, logger: Self.quietLogger)
        let process = try InventorySyncerProcess.build(
            config: config, consumer: runtime.consumer!, publisher: runtime.publisher!, logger: Self.quietLogger,
            leaseRetry: .milliseconds(250), afterRead: afterRead)
        let group = runtime.serviceGroup(services: process.services, handlesSignals: false)
        let task = Task { try await group.run() }
        let running = RunningSyncer(process: process, group: group, task: task)
        if waitActive {
            _ = await eventually(timeout: .seconds(60)) {
                guard process.lease.isActive else { return false }
                return await process.syncer.shops[0].catalogue.loaded
            }
        }
        return running
    }

    /// An in-process reconciler wired as the executable wires it (every schedule off unless `extra` sets one).
    func startReconciler(extra: [String: String]) async throws -> (ServiceGroup, Task<Void, any Error>) {
        var env = [
            "RECONCILER_ORDERS_SCHEDULE": "off", "RECONCILER_INVENTORY_SCHEDULE": "off", "RECONCILER_PRICES_SCHEDULE": "off",
            "RECONCILER_CATALOGUE_SCHEDULE": "off",
        ]
        for (k, v) in extra { env[k] = v }
        let config = try await BridgeConfig.load(filePath: nil, environment: environment(safetyStock: 2, extra: env), defaultHTTPPort: 0)
        let runtime = try BridgeRuntime.make(.reconciler, config: config, logger: Self.quietLogger)
        let process = try ReconcilerProcess.build(
            config: config, consumer: runtime.consumer!, publisher: runtime.publisher!, logger: Self.quietLogger,
            leaseRetry: .milliseconds(200))
        let group = runtime.serviceGroup(services: process.services, handlesSignals: false)
        let task = Task { try await group.run() }
        return (group, task)
    }

    /// Asks for a run (as `bridgectl reconcile run` does) and waits for its report.
    func reconcile(_ domain: ReconcilerSettings.Domain, reports: String, dryRun: Bool = false) async throws -> ReconcileReport? {
        let runId = ReportStore.newRunId()
        let request = ReconcileRequest(runId: runId, domain: domain, shop: Self.shopId, dryRun: dryRun, trigger: "bridgectl")
        try await request.publish(on: publisher, appId: "test")
        let store = ReportStore(directory: reports)
        var found: ReconcileReport?
        _ = await eventually(timeout: .seconds(60)) {
            found = try? store.report(runId: runId)
            return found != nil
        }
        return found
    }

    /// An in-process order-forwarder of this harness (for the sale race).
    func startForwarder(catchAll: String = "MISC") async throws -> (ServiceGroup, Task<Void, any Error>) {
        let config = try await BridgeConfig.load(
            filePath: nil,
            environment: environment(extra: [
                "INVENTORY_SYNCER_ENABLED": "false", "ORDER_FORWARDER_PREFETCH": "32",
                "ORDER_FORWARDER_MISSING_SKU": "catch_all", "ORDER_FORWARDER_CATCH_ALL_ITEM": catchAll,
            ]),
            defaultHTTPPort: 0)
        var logger = Logger(label: "order-forwarder")
        logger.logLevel = .warning
        let runtime = try BridgeRuntime.make(.orderForwarder, config: config, logger: logger)
        let process = try OrderForwarderProcess.build(
            config: config, consumer: runtime.consumer!, publisher: runtime.publisher!, logger: logger)
        let group = runtime.serviceGroup(services: process.services, handlesSignals: false)
        let task = Task { try await group.run() }
        _ = await eventually(timeout: .seconds(30)) { runtime.consumer!.isReady && runtime.publisher!.isReady }
        return (group, task)
    }

    // MARK: Reading both systems

    func item(_ n: Int) async -> Int64 { await shopify.store.variants[n - 1].inventoryItemId }

    /// Shopify's `available` of SKU n at location index `l` (0: WH-1's location).
    func shopifyAvailable(_ n: Int, location l: Int = 0) async -> Int? {
        await shopify.store.available(item: await item(n), location: locations[l])
    }

    func erpAvailable(_ n: Int, warehouse w: Int = 0) async -> Int? {
        await inventory.level(sku: OrderGenerator.sku(n), warehouse: "WH-\(w + 1)")?.available
    }

    /// Levels (SKU n, location l) where Shopify differs from ERP − safety (clamped at 0), as text.
    func mismatches(skus: Int, safetyStock: Int) async -> [String] {
        var bad: [String] = []
        for n in 1...skus {
            for l in 0..<2 {
                let erp = await erpAvailable(n, warehouse: l) ?? -1
                let shown = await shopifyAvailable(n, location: l) ?? -1
                if shown != max(0, erp - safetyStock) { bad.append("SKU \(n)@\(l): shopify \(shown), erp \(erp)") }
            }
        }
        return bad
    }

    func levelWrites(_ n: Int, location l: Int = 0) async -> Int {
        await shopify.store.levelWrites[await item(n)]?[locations[l]] ?? 0
    }

    func close() async {
        for t in tasks { t.cancel() }
        await pusher.shutdown()
        await shopify.stop()
        await publisher.close()
        await broker.deleteVhost(vhost)
        try? FileManager.default.removeItem(at: dir)
    }
}

final class RunningSyncer: Sendable {
    let process: InventorySyncerProcess
    let group: ServiceGroup
    let task: Task<Void, any Error>

    init(process: InventorySyncerProcess, group: ServiceGroup, task: Task<Void, any Error>) {
        self.process = process
        self.group = group
        self.task = task
    }

    var erpCounts: [String: Int] { process.erpStock.settledCounts }
    var levelCounts: [String: Int] { process.shopifyLevels.settledCounts }

    func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }
}
