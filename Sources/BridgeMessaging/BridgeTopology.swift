import BridgeDomain
import Messaging

/// The bridge's RabbitMQ topology, defined once. Every process declares (or verifies) exactly this at start, and
/// `bridgectl topology export` writes it to `deploy/rabbitmq/definitions.json`.
///
/// ```
/// shopify.in (topic) --orders.# refunds.#------------------> q.orders             (order-forwarder)
///                    --inventory_levels.# inventory_items.#-> q.shopify-inventory  (inventory-syncer)
///                    --compliance topics, app.uninstalled---> q.compliance
///                    --orders.* (copies)-------------------> q.inventory-orders   (inventory-syncer)
/// erp.in (topic)     --inventory.#-------------------------> q.erp-inventory      (inventory-syncer)
///                    --price.#-----------------------------> q.erp-prices         (inventory-syncer)
///                    --shipment.#--------------------------> q.erp-shipments
/// bridge.events (topic) --#--------------------------------> q.alerter            (alerter)
/// bridge.retry (direct) --<queue>.<delay>--> <queue>.retry.<delay> --TTL--> bridge.work --<queue>--> <queue>
/// bridge.work (direct)  --<queue>--> <queue>   (retry returns, DLQ replays, reconciler commands)
/// bridge.dlx (direct)   --<queue>--> <queue>.dlq  (explicit dead letters and x-delivery-limit)
/// bridge.unrouted (fanout, alternate exchange of shopify.in and erp.in) --> q.unrouted  (topics nobody consumes)
/// ```
public enum BridgeTopology {
    public static let shopifyInbound = "shopify.in"
    public static let erpInbound = "erp.in"
    public static let events = "bridge.events"
    public static let retry = "bridge.retry"
    public static let work = "bridge.work"
    public static let deadLetter = "bridge.dlx"
    /// Alternate exchange of the inbound exchanges: a verified event whose topic no queue is bound for is kept in
    /// `q.unrouted` (visible in the console) instead of being dropped.
    public static let unrouted = "bridge.unrouted"
    public static let unroutedQueue = "q.unrouted"

    /// A work queue and who consumes it.
    public struct WorkQueue: Sendable, Equatable {
        public let name: String
        public let consumer: String
        public let exchange: String
        /// Topics another queue owns that this one gets a copy of (routing keys on `exchange`).
        public let copies: [String]
        /// A queue of information that goes stale (a copy for another process's bookkeeping): messages older than
        /// this expire and, when it is full, the oldest are dropped instead of refusing ingest's publishes, so a
        /// deployment that does not run its consumer never blocks webhooks. Nil: a work queue that keeps everything.
        public let maxAge: Duration?

        public init(name: String, consumer: String, exchange: String, copies: [String] = [], maxAge: Duration? = nil) {
            self.name = name
            self.consumer = consumer
            self.exchange = exchange
            self.copies = copies
            self.maxAge = maxAge
        }

        /// The queue's bindings on its exchange: the routing key of every catalogued topic routed to it (so a topic
        /// is added in one place, `TopicCatalogue`) and its copies, or every event for the bridge's own event exchange.
        public var routingKeys: [String] {
            exchange == BridgeTopology.events
                ? ["#"] : TopicCatalogue.all.filter { $0.queue == self }.map(\.routingKey) + copies
        }
    }

    public static let orders = WorkQueue(name: "q.orders", consumer: "order-forwarder", exchange: shopifyInbound)
    public static let shopifyInventory = WorkQueue(
        name: "q.shopify-inventory", consumer: "inventory-syncer", exchange: shopifyInbound)
    public static let compliance = WorkQueue(name: "q.compliance", consumer: "order-forwarder", exchange: shopifyInbound)
    public static let erpInventory = WorkQueue(name: "q.erp-inventory", consumer: "inventory-syncer", exchange: erpInbound)
    public static let erpShipments = WorkQueue(name: "q.erp-shipments", consumer: "order-forwarder", exchange: erpInbound)
    /// The ERP's B2B price changes (`price.changed`), written into the mapped Shopify price lists.
    public static let erpPrices = WorkQueue(name: "q.erp-prices", consumer: "inventory-syncer", exchange: erpInbound)
    public static let alerter = WorkQueue(name: "q.alerter", consumer: "alerter", exchange: events)
    /// Copies of Shopify's order webhooks for the inventory-syncer: what each order still commits in Shopify
    /// (placed, edited, cancelled, partly or fully fulfilled), matched order by order against what the ERP holds for
    /// it. Kept an hour at most: a syncer started after longer reads the orders the ERP holds units for from Shopify.
    public static let inventoryOrders = WorkQueue(
        name: "q.inventory-orders", consumer: "inventory-syncer", exchange: shopifyInbound,
        copies: inventoryOrderTopics.map(routingKey(forShopifyTopic:)), maxAge: .seconds(3600))
    /// The Shopify topics copied to `q.inventory-orders` (its consumer takes these and no other).
    public static let inventoryOrderTopics = [
        "orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/fulfilled", "orders/partially_fulfilled",
    ]

    /// Reconciliation runs to do, one at a time: the active reconciler's schedule and `bridgectl reconcile run` put
    /// a request here (through `bridge.work`); a run killed mid-way is redelivered and resumes.
    public static let reconcile = WorkQueue(name: "q.reconcile", consumer: "reconciler", exchange: work)

    public static let workQueues: [WorkQueue] = [
        orders, shopifyInventory, compliance, erpInventory, erpShipments, erpPrices, alerter, inventoryOrders, reconcile,
    ]

    /// The exclusive queue whose holder is the active inventory-syncer (`ActiveLease`).
    public static let inventorySyncerLease = "lease.inventory-syncer"
    /// The exclusive queue whose holder is the active reconciler (`ActiveLease`).
    public static let reconcilerLease = "lease.reconciler"


    public static func deadLetterQueue(of queue: String) -> String { "\(queue).dlq" }

    public static func retryQueue(of queue: String, delay: Duration) -> String { "\(queue).retry.\(label(delay))" }

    /// Routing key on `bridge.retry` for a retry level.
    public static func retryRoutingKey(of queue: String, delay: Duration) -> String { "\(queue).\(label(delay))" }

    /// `500ms`, `5s`, `5m`, `1h`: the delay as it appears in queue names.
    public static func label(_ d: Duration) -> String {
        let ms = d.wholeMilliseconds
        if ms % 3_600_000 == 0 { return "\(ms / 3_600_000)h" }
        if ms % 60_000 == 0 { return "\(ms / 60_000)m" }
        if ms % 1000 == 0 { return "\(ms / 1000)s" }
        return "\(ms)ms"
    }

    public static func topology(_ settings: BridgeConfig.TopologySettings) -> Topology {
        var t = Topology()
        t.exchanges = [
            .init(name: shopifyInbound, type: "topic", arguments: ["alternate-exchange": .string(unrouted)]),
            .init(name: erpInbound, type: "topic", arguments: ["alternate-exchange": .string(unrouted)]),
            .init(name: unrouted, type: "fanout"),
            .init(name: events, type: "topic"),
            .init(name: retry, type: "direct"),
            .init(name: work, type: "direct"),
            .init(name: deadLetter, type: "direct"),
        ]
        let common: AMQPTable = [
            "x-queue-type": "quorum",
            "x-overflow": "reject-publish",
            "x-max-length": .int(Int64(settings.maxLength)),
        ]
        t.queues.append(.init(name: unroutedQueue, arguments: common))
        t.bindings.append(.init(exchange: unrouted, queue: unroutedQueue, routingKey: ""))
        for q in workQueues {
            var args = common
            args["x-delivery-limit"] = .int(Int64(settings.deliveryLimit))
            if let maxAge = q.maxAge {
                // Stale information expires and is dropped, never dead-lettered (at-least-once dead lettering
                // needs reject-publish); the worker still dead-letters what it cannot handle, explicitly.
                args["x-overflow"] = "drop-head"
                args["x-message-ttl"] = .int(maxAge.wholeMilliseconds)
            } else {
                args["x-dead-letter-exchange"] = .string(deadLetter)
                args["x-dead-letter-routing-key"] = .string(q.name)
                args["x-dead-letter-strategy"] = "at-least-once"
            }
            t.queues.append(.init(name: q.name, arguments: args))
            for key in q.routingKeys {
                t.bindings.append(.init(exchange: q.exchange, queue: q.name, routingKey: key))
            }
            t.bindings.append(.init(exchange: work, queue: q.name, routingKey: q.name))

            for delay in settings.retryDelays {
                var retryArgs = common
                retryArgs["x-message-ttl"] = .int(delay.wholeMilliseconds)
                retryArgs["x-dead-letter-exchange"] = .string(work)
                retryArgs["x-dead-letter-routing-key"] = .string(q.name)
                retryArgs["x-dead-letter-strategy"] = "at-least-once"
                let name = retryQueue(of: q.name, delay: delay)
                t.queues.append(.init(name: name, arguments: retryArgs))
                t.bindings.append(.init(exchange: retry, queue: name, routingKey: retryRoutingKey(of: q.name, delay: delay)))
            }

            let dlq = deadLetterQueue(of: q.name)
            t.queues.append(.init(name: dlq, arguments: common))
            t.bindings.append(.init(exchange: deadLetter, queue: dlq, routingKey: q.name))
        }
        return t
    }

    /// Shopify topic `orders/create` -> routing key `orders.create`.
    public static func routingKey(forShopifyTopic topic: String) -> String {
        topic.replacingOccurrences(of: "/", with: ".")
    }
}
