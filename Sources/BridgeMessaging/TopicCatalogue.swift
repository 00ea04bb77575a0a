/// Every message topic the bridge knows, once: where it comes from, how it is routed, which work queue it lands in,
/// and what its body is. Ingest (metric labels, the compliance shop check), the topology's bindings, the consumers
/// (which topics they act on) and the tests read it from here.
public struct MessageTopic: Sendable {
    public enum Source: String, Sendable { case shopify, erp }

    /// What the body is, for the consumer that decodes it.
    public enum Payload: String, Sendable {
        /// Shopify's REST order resource.
        case order
        /// orders/edited: an `order_edit` object (what changed), not the order.
        case orderEdit = "order_edit"
        /// orders/delete: only the order's id.
        case orderDeletion = "order_deletion"
        /// Shopify's refund resource (refunds/create).
        case refund
        case inventoryLevel = "inventory_level"
        case inventoryItem = "inventory_item"
        case product
        case customer
        case fulfillment
        /// A mandatory compliance webhook (customers/data_request, customers/redact, shop/redact): the payload carries
        /// `shop_domain`, which must be the signing shop.
        case compliance
        /// app/uninstalled: the shop resource.
        case shopLifecycle = "shop_lifecycle"
        /// An ERP event (`docs/erp-api.yaml`).
        case erpEvent = "erp_event"
    }

    /// Shopify's topic (`orders/create`) or the ERP's event name (`inventory.changed`).
    public let name: String
    public let source: Source
    public let payload: Payload
    /// The work queue the topology routes it to; nil: no consumer yet, kept in `q.unrouted`.
    public let queue: BridgeTopology.WorkQueue?

    /// The AMQP routing key on the source's inbound exchange (`orders/create` -> `orders.create`).
    public var routingKey: String { source == .shopify ? BridgeTopology.routingKey(forShopifyTopic: name) : name }
}

public enum TopicCatalogue {
    private static func shopify(_ name: String, _ payload: MessageTopic.Payload, _ queue: BridgeTopology.WorkQueue?) -> MessageTopic {
        MessageTopic(name: name, source: .shopify, payload: payload, queue: queue)
    }

    public static let shopify: [MessageTopic] = [
        shopify("orders/create", .order, BridgeTopology.orders),
        shopify("orders/updated", .order, BridgeTopology.orders),
        shopify("orders/paid", .order, BridgeTopology.orders),
        shopify("orders/cancelled", .order, BridgeTopology.orders),
        shopify("orders/fulfilled", .order, BridgeTopology.orders),
        shopify("orders/partially_fulfilled", .order, BridgeTopology.orders),
        shopify("orders/edited", .orderEdit, BridgeTopology.orders),
        shopify("orders/delete", .orderDeletion, BridgeTopology.orders),
        shopify("refunds/create", .refund, BridgeTopology.orders),
        shopify("inventory_levels/update", .inventoryLevel, BridgeTopology.shopifyInventory),
        shopify("inventory_levels/connect", .inventoryLevel, BridgeTopology.shopifyInventory),
        shopify("inventory_levels/disconnect", .inventoryLevel, BridgeTopology.shopifyInventory),
        shopify("inventory_items/create", .inventoryItem, BridgeTopology.shopifyInventory),
        shopify("inventory_items/update", .inventoryItem, BridgeTopology.shopifyInventory),
        shopify("inventory_items/delete", .inventoryItem, BridgeTopology.shopifyInventory),
        shopify("products/create", .product, nil),
        shopify("products/update", .product, nil),
        shopify("products/delete", .product, nil),
        shopify("customers/create", .customer, nil),
        shopify("customers/update", .customer, nil),
        shopify("customers/delete", .customer, nil),
        shopify("customers/data_request", .compliance, BridgeTopology.compliance),
        shopify("customers/redact", .compliance, BridgeTopology.compliance),
        shopify("shop/redact", .compliance, BridgeTopology.compliance),
        shopify("app/uninstalled", .shopLifecycle, BridgeTopology.compliance),
        shopify("fulfillments/create", .fulfillment, nil),
        shopify("fulfillments/update", .fulfillment, nil),
    ]

    public static let erp: [MessageTopic] = [
        MessageTopic(name: "inventory.changed", source: .erp, payload: .erpEvent, queue: BridgeTopology.erpInventory),
        MessageTopic(name: "price.changed", source: .erp, payload: .erpEvent, queue: BridgeTopology.erpPrices),
        MessageTopic(name: "shipment.created", source: .erp, payload: .erpEvent, queue: BridgeTopology.erpShipments),
    ]

    public static let all: [MessageTopic] = shopify + erp

    private static let byShopifyName: [String: MessageTopic] = Dictionary(uniqueKeysWithValues: shopify.map { ($0.name, $0) })

    /// The Shopify topic of this name, if the bridge knows it.
    public static func shopify(named name: String) -> MessageTopic? { byShopifyName[name] }

    /// Names of the Shopify topics with this payload (e.g. every topic the order-forwarder maps as an order).
    public static func shopifyNames(_ payload: MessageTopic.Payload) -> Set<String> {
        Set(shopify.filter { $0.payload == payload }.map(\.name))
    }
}
