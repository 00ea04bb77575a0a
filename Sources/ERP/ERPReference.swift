/// The external references the bridge gives its documents in the ERP, defined once: the forwarder writes them,
/// the inventory-syncer recognises an order in the ERP's stock movements by them, the reconciler looks them up.
public enum ERPReference {
    public static func salesOrder(shop: String, orderId: Int64) -> String { "shopify.\(shop).\(orderId)" }
    public static func customer(shop: String, customerId: Int64) -> String { "shopify.\(shop).customer.\(customerId)" }
    public static func refund(shop: String, refundId: Int64) -> String { "shopify.\(shop).refund.\(refundId)" }

    /// The shop id of a sales order's reference (`shopify.<shop>.<order id>`); nil for any other reference.
    public static func shop(ofSalesOrder ref: String) -> String? { salesOrder(ref)?.shop }

    /// The Shopify order id of a sales order's reference; nil for any other reference.
    public static func orderId(ofSalesOrder ref: String) -> Int64? { salesOrder(ref)?.orderId }

    private static func salesOrder(_ ref: String) -> (shop: String, orderId: Int64)? {
        let parts = ref.split(separator: ".")
        guard parts.count == 3, parts[0] == "shopify", let id = Int64(parts[2]) else { return nil }
        return (String(parts[1]), id)
    }
}
