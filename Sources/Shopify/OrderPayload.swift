import BridgeCore
import Foundation

/// Money in Shopify payloads: decimal strings, decoded exactly (see `Amount`).
public typealias ShopifyMoney = Amount

/// The REST order resource as webhooks deliver it (orders/create, orders/updated, orders/paid, orders/cancelled).
/// Only what the bridge maps is decoded; unknown fields are ignored. Ids are `Int64` (they exceed 2^53).
public struct ShopifyOrder: Decodable, Sendable {
    public var id: Int64
    public var name: String?
    public var orderNumber: Int64?
    public var createdAt: String?
    public var updatedAt: String
    public var processedAt: String?
    public var cancelledAt: String?
    public var cancelReason: String?
    public var financialStatus: String?
    public var fulfillmentStatus: String?
    public var currency: String
    public var presentmentCurrency: String?
    public var totalPrice: ShopifyMoney
    public var subtotalPrice: ShopifyMoney?
    public var totalTax: ShopifyMoney?
    public var totalDiscounts: ShopifyMoney?
    public var totalTipReceived: ShopifyMoney?
    public var taxesIncluded: Bool?
    public var lineItems: [LineItem]
    public var shippingLines: [ShippingLine]?
    public var discountCodes: [DiscountCode]?
    public var customer: Customer?
    public var billingAddress: Address?
    public var shippingAddress: Address?
    public var email: String?
    public var refunds: [Refund]?
    public var test: Bool?

    public struct LineItem: Decodable, Sendable {
        public var id: Int64
        public var variantId: Int64?
        public var productId: Int64?
        public var sku: String?
        public var title: String?
        public var quantity: Int
        public var currentQuantity: Int?
        public var price: ShopifyMoney
        public var totalDiscount: ShopifyMoney?
        public var discountAllocations: [DiscountAllocation]?
        public var taxLines: [TaxLine]?
        public var giftCard: Bool?
    }

    public struct ShippingLine: Decodable, Sendable {
        public var id: Int64?
        public var code: String?
        public var title: String?
        public var price: ShopifyMoney
        public var discountAllocations: [DiscountAllocation]?
        public var taxLines: [TaxLine]?
    }

    public struct DiscountAllocation: Decodable, Sendable {
        public var amount: ShopifyMoney
    }

    public struct TaxLine: Decodable, Sendable {
        public var title: String?
        public var price: ShopifyMoney
    }

    public struct DiscountCode: Decodable, Sendable {
        public var code: String?
        public var amount: ShopifyMoney?
        public var type: String?
    }

    /// Protected customer data arrives as null unless the app is approved for it; every field is optional.
    public struct Customer: Decodable, Sendable {
        public var id: Int64
        public var email: String?
        public var firstName: String?
        public var lastName: String?
        public var phone: String?
    }

    public struct Address: Decodable, Sendable, Equatable {
        public var name: String?
        public var company: String?
        public var address1: String?
        public var address2: String?
        public var city: String?
        public var province: String?
        public var provinceCode: String?
        public var country: String?
        public var countryCode: String?
        public var zip: String?
        public var phone: String?
    }

    public struct Refund: Decodable, Sendable {
        public var id: Int64
        public var orderId: Int64?
        public var createdAt: String?
        public var transactions: [Transaction]?

        public var refundedAmount: Decimal { Transaction.refunded(transactions) }
    }

    public struct Transaction: Decodable, Sendable {
        public var amount: ShopifyMoney
        public var kind: String?
        public var status: String?

        /// Money actually returned: the successful refund transactions' amounts.
        public static func refunded(_ transactions: [Transaction]?) -> Decimal {
            var total = Decimal(0)
            for t in transactions ?? [] where (t.kind ?? "refund") == "refund" && (t.status ?? "success") == "success" {
                total += t.amount.value
            }
            return total
        }
    }

    /// Decodes a webhook body (snake_case keys).
    public static func decode(_ body: some Collection<UInt8>) throws -> ShopifyOrder {
        try ShopifyJSON.decoder.decode(ShopifyOrder.self, from: Data(body))
    }
}

/// The refunds/create payload: a refund of an order, immutable once created.
public struct ShopifyRefund: Decodable, Sendable {
    public var id: Int64
    public var orderId: Int64
    public var createdAt: String?
    public var note: String?
    public var refundLineItems: [RefundLineItem]?
    public var transactions: [ShopifyOrder.Transaction]?

    public struct RefundLineItem: Decodable, Sendable {
        public var lineItemId: Int64
        public var quantity: Int
        public var subtotal: ShopifyMoney?
        public var totalTax: ShopifyMoney?
    }

    public static func decode(_ body: some Collection<UInt8>) throws -> ShopifyRefund {
        try ShopifyJSON.decoder.decode(ShopifyRefund.self, from: Data(body))
    }

    /// Money actually returned: successful refund transactions.
    public var refundedAmount: Decimal { ShopifyOrder.Transaction.refunded(transactions) }
}

enum ShopifyJSON {
    static var decoder: JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        return d
    }
}
