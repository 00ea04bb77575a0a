import BridgeDomain
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
    /// Duties are inside the prices (`INCLUDE_DUTIES_IN_PRICE` markets), as taxes are when `taxesIncluded`.
    public var dutiesIncluded: Bool?
    /// Import duties charged when the order was created, before any edit or refund (null when none applied).
    public var originalTotalDutiesSet: MoneySet?
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
        /// Import duties on this line (Shopify Markets collecting duties at checkout); empty or absent otherwise.
        public var duties: [Duty]?
        /// Present on the line Shopify adds for a tip (no product, no SKU): the tip is money of the order, not an item.
        public var tip: Tip?

        public struct Tip: Decodable, Sendable {
            public var paymentGateway: String?
            enum CodingKeys: String, CodingKey {
                case paymentGateway = "payment_gateway"
            }
        }

        enum CodingKeys: String, CodingKey {
            case id
            case variantId = "variant_id"
            case productId = "product_id"
            case sku
            case title
            case quantity
            case currentQuantity = "current_quantity"
            case price
            case totalDiscount = "total_discount"
            case discountAllocations = "discount_allocations"
            case taxLines = "tax_lines"
            case giftCard = "gift_card"
            case duties
            case tip
        }
    }

    /// One duty on a line. Shopify's REST reference shows its amount as `shop_money` / `presentment_money` at the
    /// duty's top level; other payloads carry them in a `price_set`: both are read, the shop's money is used.
    public struct Duty: Decodable, Sendable {
        public var shopMoney: ShopifyMoney

        enum CodingKeys: String, CodingKey {
            case shopMoney = "shop_money"
            case priceSet = "price_set"
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            let money = try c.decodeIfPresent(MoneySet.self, forKey: .priceSet)?.shopMoney
            shopMoney = try (money ?? c.decode(MoneySet.Money.self, forKey: .shopMoney)).amount
        }
    }

    /// A money bag (`*_set`): only the shop's money is mapped.
    public struct MoneySet: Decodable, Sendable {
        public struct Money: Decodable, Sendable {
            public var amount: ShopifyMoney
        }
        public var shopMoney: Money
        enum CodingKeys: String, CodingKey {
            case shopMoney = "shop_money"
        }
    }

    public struct ShippingLine: Decodable, Sendable {
        public var id: Int64?
        public var code: String?
        public var title: String?
        public var price: ShopifyMoney
        public var discountAllocations: [DiscountAllocation]?
        public var taxLines: [TaxLine]?

        enum CodingKeys: String, CodingKey {
            case id
            case code
            case title
            case price
            case discountAllocations = "discount_allocations"
            case taxLines = "tax_lines"
        }
    }

    public struct DiscountAllocation: Decodable, Sendable {
        public var amount: ShopifyMoney

        enum CodingKeys: String, CodingKey {
            case amount
        }
    }

    public struct TaxLine: Decodable, Sendable {
        public var title: String?
        public var price: ShopifyMoney

        enum CodingKeys: String, CodingKey {
            case title
            case price
        }
    }

    public struct DiscountCode: Decodable, Sendable {
        public var code: String?
        public var amount: ShopifyMoney?
        public var type: String?

        enum CodingKeys: String, CodingKey {
            case code
            case amount
            case type
        }
    }

    /// Protected customer data arrives as null unless the app is approved for it; every field is optional.
    public struct Customer: Decodable, Sendable {
        public var id: Int64
        public var email: String?
        public var firstName: String?
        public var lastName: String?
        public var phone: String?

        enum CodingKeys: String, CodingKey {
            case id
            case email
            case firstName = "first_name"
            case lastName = "last_name"
            case phone
        }
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

        enum CodingKeys: String, CodingKey {
            case name
            case company
            case address1
            case address2
            case city
            case province
            case provinceCode = "province_code"
            case country
            case countryCode = "country_code"
            case zip
            case phone
        }
    }

    public struct Refund: Decodable, Sendable {
        public var id: Int64
        public var orderId: Int64?
        public var createdAt: String?
        public var refundLineItems: [ShopifyRefund.RefundLineItem]?
        public var transactions: [Transaction]?

        public var refundedAmount: Decimal { Transaction.refunded(transactions) }

        enum CodingKeys: String, CodingKey {
            case id
            case orderId = "order_id"
            case createdAt = "created_at"
            case refundLineItems = "refund_line_items"
            case transactions
        }
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

        enum CodingKeys: String, CodingKey {
            case amount
            case kind
            case status
        }
    }

    /// Decodes a webhook body (snake_case keys).
    public static func decode(_ body: some Collection<UInt8>) throws -> ShopifyOrder {
        try ShopifyJSON.decoder.decode(ShopifyOrder.self, from: Data(body))
    }

    enum CodingKeys: String, CodingKey {
        case id
        case name
        case orderNumber = "order_number"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case processedAt = "processed_at"
        case cancelledAt = "cancelled_at"
        case cancelReason = "cancel_reason"
        case financialStatus = "financial_status"
        case fulfillmentStatus = "fulfillment_status"
        case currency
        case presentmentCurrency = "presentment_currency"
        case totalPrice = "total_price"
        case subtotalPrice = "subtotal_price"
        case totalTax = "total_tax"
        case totalDiscounts = "total_discounts"
        case totalTipReceived = "total_tip_received"
        case taxesIncluded = "taxes_included"
        case dutiesIncluded = "duties_included"
        case originalTotalDutiesSet = "original_total_duties_set"
        case lineItems = "line_items"
        case shippingLines = "shipping_lines"
        case discountCodes = "discount_codes"
        case customer
        case billingAddress = "billing_address"
        case shippingAddress = "shipping_address"
        case email
        case refunds
        case test
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

    /// Only which line and how many units: the money is in the refund's transactions. (Shopify sends this item's
    /// `subtotal` and `total_tax` as JSON numbers, unlike every other amount; decoding them as money would refuse
    /// real payloads, so they are not read.)
    public struct RefundLineItem: Decodable, Sendable {
        public var lineItemId: Int64
        public var quantity: Int

        enum CodingKeys: String, CodingKey {
            case lineItemId = "line_item_id"
            case quantity
        }
    }

    public static func decode(_ body: some Collection<UInt8>) throws -> ShopifyRefund {
        try ShopifyJSON.decoder.decode(ShopifyRefund.self, from: Data(body))
    }

    /// Money actually returned: successful refund transactions.
    public var refundedAmount: Decimal { ShopifyOrder.Transaction.refunded(transactions) }

    enum CodingKeys: String, CodingKey {
        case id
        case orderId = "order_id"
        case createdAt = "created_at"
        case note
        case refundLineItems = "refund_line_items"
        case transactions
    }
}

enum ShopifyJSON {
    /// Explicit snake_case `CodingKeys` instead of `.convertFromSnakeCase`: the strategy converts every key of every
    /// object in the payload (most of which the bridge ignores) and was ~9% of the forwarder's CPU.
    static let decoder = JSONDecoder()
}
