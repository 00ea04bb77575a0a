import BridgeDomain
import BridgeMessaging
import ERP
import Logging
import Messaging
import PriceSync
import ServiceLifecycle
import Shopify
import Worker

/// The reconciler's wiring, from configuration to services: the executable runs it, and the integration tests
/// build the same thing from the same configuration keys.
public struct ReconcilerProcess: Sendable {
    public let reconciler: Reconciler
    public let lease: ActiveLease
    public let worker: QueueWorker<ReconcileHandler>
    public let scheduler: ReconcileScheduler
    public let erp: RESTERPClient
    public let clients: [ShopifyAdminClient]

    /// In start order; the `ServiceGroup` stops them in reverse: the worker drains first (a run in progress is left
    /// unacknowledged and resumes in the next active reconciler), then the schedule, the lease and the clients.
    public var services: [any Service] {
        var s: [any Service] = [ERPClientService(client: erp)]
        s += clients.map { ShopifyAdminClientService(client: $0) }
        s += [lease, scheduler, worker]
        return s
    }

    public static func build(
        config: BridgeConfig, consumer: AMQPConnection, publisher: AMQPConnection, logger: Logger,
        leaseRetry: Duration = .seconds(1), afterHeal: (@Sendable (Int) async throws -> Void)? = nil
    ) throws -> ReconcilerProcess {
        let settings = config.reconciler
        let erp = RESTERPClient(
            configuration: .init(baseURL: config.erp.baseURL, apiKey: config.erp.apiKey, timeout: config.erp.timeout))
        let reports = ReportStore(directory: settings.reportsDir)
        var clients: [ShopifyAdminClient] = []
        var orders: [OrdersReconciler] = []
        var inventory: [InventoryReconciler] = []
        var prices: [PricesReconciler] = []
        var catalogue: [CatalogueReconciler] = []
        for shop in config.shops {
            let client = ShopifyAdminClient(configuration: .init(shop: shop), logger: logger)
            clients.append(client)
            orders.append(
                OrdersReconciler(
                    shop: shop, client: client, erp: erp, publisher: publisher, policy: config.policy, settings: settings,
                    reports: reports, logger: logger, afterHeal: afterHeal))
            if config.inventorySyncer.enabled {
                inventory.append(
                    InventoryReconciler(
                        shop: shop, client: client, erp: erp, publisher: publisher, policy: config.policy, settings: settings,
                        syncerSettings: config.inventorySyncer, logger: logger))
            }
            catalogue.append(CatalogueReconciler(shop: shop, client: client, erp: erp, settings: settings, reports: reports, logger: logger))
            if !shop.priceLists.isEmpty || shop.dtcPriceList != nil {
                prices.append(
                    PricesReconciler(
                        sync: B2BPriceSync(shop: shop, client: client, erp: erp, policy: config.policy, logger: logger), settings: settings,
                        // The active inventory-syncer is the one writer of B2B prices; without one, the reconciler is.
                        publisher: config.inventorySyncer.enabled ? publisher : nil, logger: logger))
            }
        }
        let reconciler = Reconciler(
            settings: settings, orders: orders, inventory: inventory, prices: prices, catalogue: catalogue, publisher: publisher, logger: logger)
        let lease = ActiveLease(
            name: BridgeTopology.reconcilerLease, role: "reconciler", connection: consumer, retryInterval: leaseRetry, logger: logger)
        let worker = QueueWorker(
            settings: .init(queue: BridgeTopology.reconcile.name, prefetch: 1, retryDelays: config.topology.retryDelays),
            handler: ReconcileHandler(reconciler: reconciler, lease: lease), consumer: consumer, publisher: publisher, logger: logger)
        let scheduler = ReconcileScheduler(
            settings: settings, shops: config.shops.map(\.id), lease: lease, publisher: publisher, logger: logger)
        logger.info(
            "reconciler configured",
            metadata: [
                "shops": "\(config.shops.map(\.id))", "reports_dir": "\(settings.reportsDir)",
                "schedules": "\(Reconciler.supportedDomains.map { "\($0.rawValue): \(settings.domains[$0]?.schedule.map(\.description) ?? "off")" })",
            ])
        return ReconcilerProcess(reconciler: reconciler, lease: lease, worker: worker, scheduler: scheduler, erp: erp, clients: clients)
    }
}
