import BridgeDomain
import Foundation

/// A sales order as the generic ERP contract (docs/erp-api.yaml) receives it, keyed by `externalRef`.
/// Money is `Amount` (decimal strings on the wire).
public struct ERPSalesOrder: Codable, Sendable, Equatable {
    public var externalRef: String
    /// Monotonic version of the source state (Shopify `updated_at`, UTC with milliseconds). The ERP ignores a
    /// version that is not newer than the one it holds.
    public var version: String
    public var source: String
    public var sourceOrderId: String
    public var orderName: String?
    public var placedAt: String?
    /// `open` or `cancelled`.
    public var status: String
    public var cancelReason: String?
    public var financialStatus: String?
    public var fulfillmentStatus: String?
    public var currency: String
    public var presentmentCurrency: String?
    public var taxesIncluded: Bool
    public var lines: [Line]
    public var shipping: [ShippingCharge]
    public var discountCodes: [String]
    public var subtotal: Amount
    public var totalDiscounts: Amount
    public var totalShipping: Amount
    public var totalTax: Amount
    public var totalTip: Amount
    /// Import duties the customer paid (Shopify's `original_total_duties_set`, shop money): part of `total` unless
    /// `dutiesIncluded`. Money owed to customs, not revenue.
    public var totalDuties: Amount
    /// The duties are inside the line prices (Shopify's `duties_included`), as tax is when `taxesIncluded`.
    public var dutiesIncluded: Bool
    public var total: Amount
    public var refundedAmount: Amount
    public var customerRef: String?
    public var billingAddress: Address?
    public var shippingAddress: Address?

    public init(
        externalRef: String, version: String, source: String, sourceOrderId: String, orderName: String?, placedAt: String?, status: String, cancelReason: String?, financialStatus: String?, fulfillmentStatus: String?, currency: String, presentmentCurrency: String?, taxesIncluded: Bool, lines: [Line], shipping: [ShippingCharge], discountCodes: [String], subtotal: Amount, totalDiscounts: Amount, totalShipping: Amount, totalTax: Amount, totalTip: Amount, totalDuties: Amount = 0, dutiesIncluded: Bool = false, total: Amount, refundedAmount: Amount, customerRef: String?, billingAddress: Address?, shippingAddress: Address?
    ) {
        self.totalDuties = totalDuties
        self.dutiesIncluded = dutiesIncluded
        self.externalRef = externalRef
        self.version = version
        self.source = source
        self.sourceOrderId = sourceOrderId
        self.orderName = orderName
        self.placedAt = placedAt
        self.status = status
        self.cancelReason = cancelReason
        self.financialStatus = financialStatus
        self.fulfillmentStatus = fulfillmentStatus
        self.currency = currency
        self.presentmentCurrency = presentmentCurrency
        self.taxesIncluded = taxesIncluded
        self.lines = lines
        self.shipping = shipping
        self.discountCodes = discountCodes
        self.subtotal = subtotal
        self.totalDiscounts = totalDiscounts
        self.totalShipping = totalShipping
        self.totalTax = totalTax
        self.totalTip = totalTip
        self.total = total
        self.refundedAmount = refundedAmount
        self.customerRef = customerRef
        self.billingAddress = billingAddress
        self.shippingAddress = shippingAddress
    }

    public struct Line: Codable, Sendable, Equatable {
        public var lineRef: String
        /// The ERP item number (the Shopify SKU after mapping).
        public var sku: String
        public var description: String?
        public var quantity: Int
        public var unitPrice: Amount
        /// Line and order-level discounts allocated to this line.
        public var discount: Amount
        public var tax: Amount
        /// quantity x unit price - discount (tax excluded, or included when the order's taxes are included).
        public var netAmount: Amount
        /// Units of `quantity` removed since the order was placed (an order edit, or a refund that cancelled them):
        /// not to be shipped. Their money comes back as a credit note; `quantity` and the amounts stay as ordered, so
        /// the document still adds up to the order's total.
        public var removedQuantity: Int
        /// A gift card sold (Shopify's `gift_card`): money owed to the holder until it is redeemed, not revenue, and
        /// nothing to take from stock or ship.
        public var giftCard: Bool
        /// Import duties on this line (shop money), not part of `netAmount`.
        public var duty: Amount

        public init(
            lineRef: String, sku: String, description: String?, quantity: Int, unitPrice: Amount, discount: Amount,
            tax: Amount, netAmount: Amount, removedQuantity: Int = 0, giftCard: Bool = false, duty: Amount = 0
        ) {
            self.duty = duty
            self.removedQuantity = removedQuantity
            self.giftCard = giftCard
            self.lineRef = lineRef
            self.sku = sku
            self.description = description
            self.quantity = quantity
            self.unitPrice = unitPrice
            self.discount = discount
            self.tax = tax
            self.netAmount = netAmount
        }

        enum CodingKeys: String, CodingKey {
            case lineRef = "line_ref"
            case sku
            case description
            case quantity
            case unitPrice = "unit_price"
            case discount
            case tax
            case netAmount = "net_amount"
            case removedQuantity = "removed_quantity"
            case giftCard = "gift_card"
            case duty
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            lineRef = try c.decode(String.self, forKey: .lineRef)
            sku = try c.decode(String.self, forKey: .sku)
            description = try c.decodeIfPresent(String.self, forKey: .description)
            quantity = try c.decode(Int.self, forKey: .quantity)
            unitPrice = try c.decode(Amount.self, forKey: .unitPrice)
            discount = try c.decode(Amount.self, forKey: .discount)
            tax = try c.decode(Amount.self, forKey: .tax)
            netAmount = try c.decode(Amount.self, forKey: .netAmount)
            removedQuantity = try c.decodeIfPresent(Int.self, forKey: .removedQuantity) ?? 0
            giftCard = try c.decodeIfPresent(Bool.self, forKey: .giftCard) ?? false
            duty = try c.decodeIfPresent(Amount.self, forKey: .duty) ?? 0
        }
    }

    public struct ShippingCharge: Codable, Sendable, Equatable {
        public var code: String?
        public var title: String?
        public var price: Amount
        public var discount: Amount
        public var tax: Amount

        public init(
            code: String?, title: String?, price: Amount, discount: Amount, tax: Amount
        ) {
            self.code = code
            self.title = title
            self.price = price
            self.discount = discount
            self.tax = tax
        }

        enum CodingKeys: String, CodingKey {
            case code
            case title
            case price
            case discount
            case tax
        }
    }

    public struct Address: Codable, Sendable, Equatable {
        public var name: String?
        public var company: String?
        public var line1: String?
        public var line2: String?
        public var city: String?
        public var region: String?
        public var postalCode: String?
        public var countryCode: String?
        public var phone: String?

        public init(
            name: String?, company: String?, line1: String?, line2: String?, city: String?, region: String?,
            postalCode: String?, countryCode: String?, phone: String?
        ) {
            self.name = name
            self.company = company
            self.line1 = line1
            self.line2 = line2
            self.city = city
            self.region = region
            self.postalCode = postalCode
            self.countryCode = countryCode
            self.phone = phone
        }

        enum CodingKeys: String, CodingKey {
            case name
            case company
            case line1
            case line2
            case city
            case region
            case postalCode = "postal_code"
            case countryCode = "country_code"
            case phone
        }
    }

    enum CodingKeys: String, CodingKey {
        case externalRef = "external_ref"
        case version
        case source
        case sourceOrderId = "source_order_id"
        case orderName = "order_name"
        case placedAt = "placed_at"
        case status
        case cancelReason = "cancel_reason"
        case financialStatus = "financial_status"
        case fulfillmentStatus = "fulfillment_status"
        case currency
        case presentmentCurrency = "presentment_currency"
        case taxesIncluded = "taxes_included"
        case lines
        case shipping
        case discountCodes = "discount_codes"
        case subtotal
        case totalDiscounts = "total_discounts"
        case totalShipping = "total_shipping"
        case totalTax = "total_tax"
        case totalTip = "total_tip"
        case totalDuties = "total_duties"
        case dutiesIncluded = "duties_included"
        case total
        case refundedAmount = "refunded_amount"
        case customerRef = "customer_ref"
        case billingAddress = "billing_address"
        case shippingAddress = "shipping_address"
    }

    /// Fields added after the first contract (`total_duties`, `duties_included`) may be absent: documents stored
    /// before them, and ERPs that do not echo them, read as no duties.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        externalRef = try c.decode(String.self, forKey: .externalRef)
        version = try c.decode(String.self, forKey: .version)
        source = try c.decode(String.self, forKey: .source)
        sourceOrderId = try c.decode(String.self, forKey: .sourceOrderId)
        orderName = try c.decodeIfPresent(String.self, forKey: .orderName)
        placedAt = try c.decodeIfPresent(String.self, forKey: .placedAt)
        status = try c.decode(String.self, forKey: .status)
        cancelReason = try c.decodeIfPresent(String.self, forKey: .cancelReason)
        financialStatus = try c.decodeIfPresent(String.self, forKey: .financialStatus)
        fulfillmentStatus = try c.decodeIfPresent(String.self, forKey: .fulfillmentStatus)
        currency = try c.decode(String.self, forKey: .currency)
        presentmentCurrency = try c.decodeIfPresent(String.self, forKey: .presentmentCurrency)
        taxesIncluded = try c.decode(Bool.self, forKey: .taxesIncluded)
        lines = try c.decode([Line].self, forKey: .lines)
        shipping = try c.decode([ShippingCharge].self, forKey: .shipping)
        discountCodes = try c.decode([String].self, forKey: .discountCodes)
        subtotal = try c.decode(Amount.self, forKey: .subtotal)
        totalDiscounts = try c.decode(Amount.self, forKey: .totalDiscounts)
        totalShipping = try c.decode(Amount.self, forKey: .totalShipping)
        totalTax = try c.decode(Amount.self, forKey: .totalTax)
        totalTip = try c.decode(Amount.self, forKey: .totalTip)
        totalDuties = try c.decodeIfPresent(Amount.self, forKey: .totalDuties) ?? 0
        dutiesIncluded = try c.decodeIfPresent(Bool.self, forKey: .dutiesIncluded) ?? false
        total = try c.decode(Amount.self, forKey: .total)
        refundedAmount = try c.decode(Amount.self, forKey: .refundedAmount)
        customerRef = try c.decodeIfPresent(String.self, forKey: .customerRef)
        billingAddress = try c.decodeIfPresent(Address.self, forKey: .billingAddress)
        shippingAddress = try c.decodeIfPresent(Address.self, forKey: .shippingAddress)
    }
}

/// What the ERP answered to an upsert.
public struct ERPUpsertResult: Sendable, Equatable {
    public enum Outcome: String, Sendable { case created, updated, staleIgnored = "stale_ignored" }
    public var outcome: Outcome
    public var documentNumber: String
    public var version: String

    public init(outcome: Outcome, documentNumber: String, version: String) {
        self.outcome = outcome
        self.documentNumber = documentNumber
        self.version = version
    }
}

/// A customer as the ERP receives it (only written where the source-of-truth policy lets Shopify own customers).
public struct ERPCustomer: Codable, Sendable, Equatable {
    public var externalRef: String
    public var email: String?
    public var firstName: String?
    public var lastName: String?
    public var phone: String?
    public var billingAddress: ERPSalesOrder.Address?

    public init(
        externalRef: String, email: String?, firstName: String?, lastName: String?, phone: String?,
        billingAddress: ERPSalesOrder.Address?
    ) {
        self.externalRef = externalRef
        self.email = email
        self.firstName = firstName
        self.lastName = lastName
        self.phone = phone
        self.billingAddress = billingAddress
    }

    enum CodingKeys: String, CodingKey {
        case externalRef = "external_ref"
        case email
        case firstName = "first_name"
        case lastName = "last_name"
        case phone
        case billingAddress = "billing_address"
    }
}

/// A refund against a forwarded sales order, keyed by the refund's own external reference (immutable).
public struct ERPRefund: Codable, Sendable, Equatable {
    public var refundRef: String
    public var orderRef: String
    public var amount: Amount
    public var createdAt: String?
    public var lines: [Line]

    public struct Line: Codable, Sendable, Equatable {
        public var lineRef: String
        public var quantity: Int
        public init(lineRef: String, quantity: Int) {
            self.lineRef = lineRef
            self.quantity = quantity
        }

        enum CodingKeys: String, CodingKey {
            case lineRef = "line_ref"
            case quantity
        }
    }

    public init(refundRef: String, orderRef: String, amount: Amount, createdAt: String?, lines: [Line]) {
        self.refundRef = refundRef
        self.orderRef = orderRef
        self.amount = amount
        self.createdAt = createdAt
        self.lines = lines
    }

    enum CodingKeys: String, CodingKey {
        case refundRef = "refund_ref"
        case orderRef = "order_ref"
        case amount
        case createdAt = "created_at"
        case lines
    }
}
