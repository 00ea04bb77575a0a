import Foundation

/// The whole bridge configuration: one YAML file plus environment overrides (`broker.url` <- `BROKER_URL`,
/// `shop.acme.domain` <- `SHOP_ACME_DOMAIN`). Typed and validated at start; every error names the key and the fix.
/// Shared sections are nested here; each process's own settings are their own type that parses its own keys
/// (`IngestSettings`, `OrderForwarderSettings`, `InventorySyncerSettings`, `ReconcilerSettings`), and `parse`
/// composes them and checks the source-of-truth policy against the flows they enable.
public struct BridgeConfig: Sendable {
    public struct Broker: Sendable, Equatable {
        public enum TopologyMode: String, Sendable, CaseIterable { case declare, verify }
        public var url: String
        public var user: String?
        public var password: String?
        public var caFile: String?
        public var heartbeat: Duration
        /// `declare` (default) creates/validates the topology; `verify` only checks it exists (least-privilege users).
        public var topologyMode: TopologyMode
    }

    public struct TopologySettings: Sendable, Equatable {
        /// Redeliveries before a work-queue message is dead-lettered (`x-delivery-limit`).
        public var deliveryLimit: Int
        /// Length limit of work, retry and dead-letter queues (`x-max-length`, with `overflow=reject-publish`).
        public var maxLength: Int
        /// Delayed-retry levels, shortest first.
        public var retryDelays: [Duration]
        /// The longest a worker holds a delivery unsettled while its circuit is open, before parking it on a retry
        /// level (no attempt counted). Below the broker's `consumer_timeout` (RabbitMQ's default and
        /// deploy/rabbitmq/rabbitmq.conf: 30 min), which would otherwise close the channel and raise the delivery
        /// counts of everything held.
        public var maxHold: Duration

        public init(
            deliveryLimit: Int = 10, maxLength: Int = 1_000_000, retryDelays: [Duration] = [.seconds(5), .seconds(30), .seconds(300)],
            maxHold: Duration = .seconds(600)
        ) {
            self.deliveryLimit = deliveryLimit
            self.maxLength = maxLength
            self.retryDelays = retryDelays
            self.maxHold = maxHold
        }
    }

    public struct HTTP: Sendable, Equatable {
        public var host: String
        public var port: Int
    }

    public struct Log: Sendable, Equatable {
        public enum Format: String, Sendable, CaseIterable { case json, text }
        public var level: String
        public var format: Format
    }

    /// Shopify plans differ in their GraphQL rate budget (points restored per second; the bucket holds 20x).
    public enum ShopPlan: String, Sendable, CaseIterable {
        case basic, standard, advanced, plus, enterprise
        public var restoreRatePerSecond: Int {
            switch self {
            case .basic, .standard: return 100
            case .advanced: return 200
            case .plus: return 1000
            case .enterprise: return 2000
            }
        }
        public var bucketSize: Int { restoreRatePerSecond * 20 }
    }

    public struct Shop: Sendable, Equatable {
        /// Short id used in config keys, metrics and logs (`acme`).
        public var id: String
        /// `acme.myshopify.com`, as sent in `X-Shopify-Shop-Domain`.
        public var domain: String
        /// Accepted webhook signing secrets; several during a rotation. Never logged.
        public var webhookSecrets: [String]
        public var adminToken: String
        public var apiVersion: String
        /// Admin API base URL; defaults to `https://<domain>`; a simulator URL in the sandbox.
        public var adminURL: String
        public var plan: ShopPlan
        /// ERP warehouse -> the Shopify location it stocks (numeric location id), `shop.<id>.locations:
        /// ["WH-1=70000000001"]`. A warehouse not listed is not synced to this shop.
        public var locations: [String: String] = [:]
        /// ERP B2B price list -> the Shopify price list it fills (numeric id), `shop.<id>.price_lists:
        /// ["PL-WHOLESALE=80000000001"]`. The ERP owns these prices (`source_of_truth.b2b_prices`).
        public var priceLists: [String: String] = [:]
        /// The ERP price list that holds its copy of the shop's DTC prices (`shop.<id>.dtc_price_list`): the
        /// reconciler compares the variants' prices with it and reports differences; Shopify owns them, nothing is
        /// written. Nil: DTC prices are not compared.
        public var dtcPriceList: String?
    }

    public struct ERP: Sendable, Equatable {
        public var baseURL: String
        public var apiKey: String
        public var webhookSecret: String
        public var timeout: Duration
        /// What the ERP's API guarantees (docs/erp-api.yaml), and so what the bridge must guarantee itself.
        public var profile: ERPProfile = .upsert
    }

    /// The two ERP contracts the bridge speaks (docs/erp-api.yaml).
    public enum ERPProfile: String, Sendable, Equatable, CaseIterable {
        /// The ERP upserts atomically by external reference and ignores versions not newer than the one it holds.
        case upsert
        /// The ERP only creates (every create is a new document, even for a reference it already holds), finds by
        /// reference (a filter that can return several documents) and overwrites by document number without a
        /// version check, as most ERPs' REST APIs do. Exactly once and version order come from the bridge's ledger.
        case plain
    }

    public var broker: Broker
    public var topology: TopologySettings
    public var http: HTTP
    public var log: Log
    public var shops: [Shop]
    public var erp: ERP
    public var ingest: IngestSettings
    public var orderForwarder: OrderForwarderSettings
    public var inventorySyncer: InventorySyncerSettings
    public var reconciler: ReconcilerSettings
    public var alerter: AlerterSettings
    public var policy: SourceOfTruthPolicy

    /// The writes the configured processes perform; each must agree with the source-of-truth policy.
    public var flows: [DataFlow] {
        var f: [DataFlow] = []
        if orderForwarder.enabled {
            f.append(DataFlow(domain: .orders, into: .erp, process: "order-forwarder", enabledBy: "order_forwarder.enabled"))
            if orderForwarder.syncCustomers {
                f.append(
                    DataFlow(
                        domain: .customers, into: .erp, process: "order-forwarder",
                        enabledBy: "order_forwarder.sync_customers"))
            }
        }
        if inventorySyncer.enabled {
            f.append(
                DataFlow(domain: .inventory, into: .shopify, process: "inventory-syncer", enabledBy: "inventory_syncer.enabled"))
        }
        if let shop = shops.first(where: { !$0.priceLists.isEmpty }) {
            f.append(
                DataFlow(
                    domain: .b2bPrices, into: .shopify, process: "inventory-syncer and reconciler", enabledBy: "shop.\(shop.id).price_lists"))
        }
        return f
    }

    public func shop(domain: String) -> Shop? { shops.first { $0.domain == domain } }
}
