import BridgeDomain
import BridgeMessaging
import ERP
import Logging
import Messaging
import PriceSync
import ServiceLifecycle
import Shopify
import Worker

/// The inventory-syncer's wiring, from configuration to services, in one place: the executable runs it, and the
/// integration tests build the same thing from the same configuration keys.
public struct InventorySyncerProcess: Sendable {
    public let syncer: InventorySyncer
    public let erp: RESTERPClient
    public let lease: ActiveLease
    public let fullSync: FullSync
    public let erpStock: QueueWorker<ERPStockHandler>
    public let shopifyLevels: QueueWorker<ShopifyLevelHandler>
    public let orders: QueueWorker<OrderActivityHandler>
    public let feedPoller: ERPFeedPoller?
    /// `q.erp-prices`, when a shop maps ERP price lists (`shop.<id>.price_lists`) and B2B prices may flow into Shopify.
    public let prices: QueueWorker<PriceChangedHandler>?
    let fullSyncService: FullSyncService

    /// In start order; the `ServiceGroup` stops them in reverse: the workers drain first, then the schedules, the
    /// lease (its exclusive queue goes with the connection) and the HTTP clients.
    public var services: [any Service] {
        var s: [any Service] = [ERPClientService(client: erp)]
        s += syncer.shops.map { ShopifyAdminClientService(client: $0.client) }
        s += [lease, fullSyncService]
        if let feedPoller { s.append(feedPoller) }
        s += [orders, erpStock, shopifyLevels]
        if let prices { s.append(prices) }
        return s
    }

    /// Refuses to build when the policy does not let the ERP's inventory be written into Shopify
    /// (`source_of_truth.inventory: shopify`, or `inventory_syncer.enabled: false`).
    public static func build(
        config: BridgeConfig, consumer: AMQPConnection, publisher: AMQPConnection, logger: Logger,
        leaseRetry: Duration = .seconds(1), afterRead: (@Sendable () async -> Void)? = nil
    ) throws -> InventorySyncerProcess {
        try config.policy.authorize(.inventory, into: .shopify)
        let settings = config.inventorySyncer
        guard settings.enabled else {
            throw ConfigError(
                key: "inventory_syncer.enabled", problem: "is false: this process has nothing to do",
                fix: "set inventory_syncer.enabled: true (with source_of_truth.inventory: erp), or do not run the inventory-syncer")
        }
        let picture = StockPicture()
        let lease = ActiveLease(
            name: BridgeTopology.inventorySyncerLease, role: "inventory-syncer", connection: consumer, retryInterval: leaseRetry,
            ttl: settings.leaseTTL, logger: logger)
        let shops = config.shops.map { shop in
            ShopInventorySync(
                shop: shop, client: ShopifyAdminClient(configuration: .init(shop: shop), logger: logger), picture: picture,
                settings: settings, policy: config.policy, logger: logger, mayWrite: { lease.mayWrite }, afterRead: afterRead)
        }
        for shop in config.shops where shop.locations.isEmpty {
            logger.warning(
                "shop has no warehouse -> location map: nothing is synced to it",
                metadata: ["shop": "\(shop.id)", "fix": "set shop.\(shop.id).locations: [\"WH-1=<location id>\"]"])
        }
        let erp = RESTERPClient(
            configuration: .init(baseURL: config.erp.baseURL, apiKey: config.erp.apiKey, timeout: config.erp.timeout))
        let fullSync = FullSync(erp: erp, picture: picture, publisher: publisher, logger: logger)
        let syncer = InventorySyncer(settings: settings, picture: picture, shops: shops, lease: lease, fullSync: fullSync)
        let retry = config.topology.retryDelays
        func worker<H: QueueHandler>(_ queue: BridgeTopology.WorkQueue, _ handler: H, circuit: Bool) -> QueueWorker<H> {
            QueueWorker(
                settings: .init(
                    queue: queue.name, prefetch: settings.prefetch, retryDelays: retry,
                    circuit: circuit ? (threshold: 5, probeInterval: .seconds(5)) : nil,
                    // Stock movements are the bulk of the traffic and are traced by nobody (bridgectl trace follows
                    // orders and webhooks); q.inventory-orders carries order webhooks and keeps its trace.
                    trace: queue.name == BridgeTopology.inventoryOrders.name ? .seconds(1) : nil, maxHold: config.topology.maxHold),
                handler: handler, consumer: consumer, publisher: publisher, logger: logger)
        }
        var prices: QueueWorker<PriceChangedHandler>?
        let priceShops = shops.filter { !$0.shop.priceLists.isEmpty }
        if !priceShops.isEmpty {
            if config.policy.mayWrite(.b2bPrices, into: .shopify) {
                let handler = PriceChangedHandler(
                    shops: priceShops.map {
                        B2BPriceSync(
                            shop: $0.shop, client: $0.client, erp: erp, policy: config.policy, mayWrite: { lease.mayWrite }, logger: logger)
                    }, lease: lease)
                prices = worker(BridgeTopology.erpPrices, handler, circuit: true)
            } else {
                logger.warning(
                    "price_lists are mapped but source_of_truth.b2b_prices is shopify: ERP price changes are not written",
                    metadata: ["queue": "\(BridgeTopology.erpPrices.name)"])
            }
        }
        logger.info(
            "inventory-syncer configured",
            metadata: [
                "shops": "\(config.shops.map(\.id))", "safety_stock": "\(settings.safetyStock)",
                "coalesce_window": "\(settings.coalesceWindow)", "feed_poll": "\(settings.feedPollInterval.map { "\($0)" } ?? "off")",
                "full_sync_interval": "\(settings.fullSyncInterval)",
                "price_lists": "\(priceShops.map { "\($0.shop.id): \($0.shop.priceLists.keys.sorted())" })",
            ])
        return InventorySyncerProcess(
            syncer: syncer, erp: erp, lease: lease, fullSync: fullSync,
            erpStock: worker(BridgeTopology.erpInventory, ERPStockHandler(syncer: syncer), circuit: true),
            shopifyLevels: worker(BridgeTopology.shopifyInventory, ShopifyLevelHandler(syncer: syncer), circuit: true),
            orders: worker(BridgeTopology.inventoryOrders, OrderActivityHandler(syncer: syncer), circuit: false),
            feedPoller: settings.feedPollInterval.map {
                ERPFeedPoller(
                    erp: erp, picture: picture, publisher: publisher, interval: $0, statePath: settings.statePath, lease: lease,
                    logger: logger)
            },
            prices: prices,
            fullSyncService: FullSyncService(sync: fullSync, syncer: syncer, interval: settings.fullSyncInterval, logger: logger))
    }
}
