import Foundation
import SimulatorKit

/// A Shopify order as a webhook delivers it (REST JSON: snake_case, money as strings, 64-bit ids, nullable
/// customer and addresses), built from a few numbers with totals that add up the way Shopify's do.
///
/// Used by the simulators' traffic generator, by tests and by benchmarks.
public struct ShopifyOrderFixture: Sendable, Codable {
    public struct Line: Sendable, Codable {
        public var id: Int64
        public var sku: String?
        public var variantId: Int64?
        public var title: String
        public var quantity: Int
        public var price: Decimal
        /// Line and order-level discounts allocated to this line.
        public var discount: Decimal
        public var tax: Decimal
        /// Import duty collected at checkout (a cross-border order), in the shop's currency; nil when none.
        public var duty: Decimal?
        /// Units fulfilled so far (nil: none).
        public var fulfilled: Int?

        /// Units Shopify still commits for the line (its `fulfillable_quantity`): none once the order is cancelled.
        public func fulfillable(cancelled: Bool) -> Int { cancelled ? 0 : quantity - (fulfilled ?? 0) }

        public init(
            id: Int64, sku: String?, variantId: Int64? = nil, title: String = "Ünïcode T-shirt 👕", quantity: Int,
            price: Decimal, discount: Decimal = 0, tax: Decimal = 0, duty: Decimal? = nil
        ) {
            self.duty = duty
            self.id = id
            self.sku = sku
            self.variantId = variantId
            self.title = title
            self.quantity = quantity
            self.price = price
            self.discount = discount
            self.tax = tax
        }
    }

    public struct Shipping: Sendable, Codable {
        public var price: Decimal
        public var discount: Decimal
        public var tax: Decimal
        public init(price: Decimal, discount: Decimal = 0, tax: Decimal = 0) {
            self.price = price
            self.discount = discount
            self.tax = tax
        }
    }

    public var id: Int64
    public var updatedAt: Date
    public var createdAt: Date
    public var currency = "EUR"
    public var presentmentCurrency = "EUR"
    public var taxesIncluded = false
    public var lines: [Line]
    public var shipping: [Shipping] = []
    public var tip: Decimal = 0
    public var cancelled = false
    public var financialStatus = "paid"
    /// Comma-separated, as Shopify sends them (staff edit tags right after an order comes in).
    public var tags = ""
    public var customerId: Int64?
    public var refunds: [Refund] = []

    public struct Refund: Sendable, Codable {
        public var id: Int64
        public var amount: Decimal
        public init(id: Int64, amount: Decimal) {
            self.id = id
            self.amount = amount
        }
    }
    /// Overrides `total_price` (to simulate a payload the mapping cannot reconcile).
    public var totalOverride: Decimal?

    public init(id: Int64, updatedAt: Date = Date(), lines: [Line]) {
        self.id = id
        self.updatedAt = updatedAt
        self.createdAt = updatedAt
        self.lines = lines
    }

    /// What Shopify's `total_price` is for these numbers.
    public var total: Decimal {
        if let totalOverride { return totalOverride }
        var t = Decimal(0)
        for l in lines { t += l.price * Decimal(l.quantity) - l.discount + (taxesIncluded ? 0 : l.tax) }
        for s in shipping { t += s.price - s.discount + (taxesIncluded ? 0 : s.tax) }
        return t + tip + duties
    }

    /// Import duties on the order (added at checkout, so part of `total_price`).
    public var duties: Decimal { lines.reduce(Decimal(0)) { $0 + ($1.duty ?? 0) } }

    /// The simulators' cross-border orders: one in six (by order id, so a seeded random stream stays as it was) ships
    /// abroad with import duties collected at checkout, 4% of each item line's net.
    public mutating func collectDutiesIfAbroad() {
        guard id % 6 == 0 else { return }
        for j in lines.indices where lines[j].sku != nil {
            let l = lines[j]
            lines[j].duty = ((l.price * Decimal(l.quantity) - l.discount) * Decimal(4) / 100).roundedToCents
        }
    }

    /// Money refunded so far (Shopify's `totalRefundedSet`).
    public var refunded: Decimal { refunds.reduce(Decimal(0)) { $0 + $1.amount } }

    static func money(_ d: Decimal) -> String { "\(d)" }

    /// As Shopify's REST payloads stamp times: whole seconds, in the shop's UTC offset (here -05:00), e.g.
    /// `2026-11-27T10:00:00-05:00`. Several changes of one order within a second carry the same `updated_at`; only
    /// `X-Shopify-Triggered-At` (milliseconds and finer) tells them apart.
    public static func iso(_ d: Date) -> String {
        Date(timeIntervalSince1970: d.timeIntervalSince1970.rounded(.down))
            .formatted(Date.ISO8601FormatStyle(timeZone: TimeZone(secondsFromGMT: -5 * 3600)!))
    }

    /// `X-Shopify-Triggered-At`: UTC with exactly the date's milliseconds (formatted from the integer, so binary
    /// floating point cannot make it one millisecond off).
    public static func isoMilliseconds(_ d: Date) -> String {
        let ms = Int64((d.timeIntervalSince1970 * 1000).rounded())
        let (secs, frac) = ms.quotientAndRemainder(dividingBy: 1000)
        let (s, f) = frac < 0 ? (secs - 1, frac + 1000) : (secs, frac)
        let base = Date(timeIntervalSince1970: Double(s)).formatted(Date.ISO8601FormatStyle())
        let digits = String(f)
        return base.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }

    /// The webhook body.
    public func json() -> Data {
        let lineItems: [[String: Any]] = lines.map { l in
            [
                "id": l.id, "admin_graphql_api_id": "gid://shopify/LineItem/\(l.id)",
                "variant_id": l.variantId.map { $0 as Any } ?? NSNull(), "product_id": l.variantId.map { ($0 / 2) as Any } ?? NSNull(),
                "sku": l.sku.map { $0 as Any } ?? NSNull(), "title": l.title, "quantity": l.quantity,
                "current_quantity": l.quantity, "fulfillable_quantity": l.fulfillable(cancelled: cancelled),
                "fulfillment_status": (l.fulfilled ?? 0) == 0 ? NSNull() as Any : (l.fulfilled == l.quantity ? "fulfilled" : "partial"),
                "price": Self.money(l.price), "total_discount": "0.00", "requires_shipping": true, "taxable": l.tax > 0,
                "gift_card": false, "properties": [Any](),
                "discount_allocations": l.discount > 0 ? [["amount": Self.money(l.discount), "discount_application_index": 0]] : [],
                "tax_lines": l.tax > 0 ? [["title": "VAT", "price": Self.money(l.tax), "rate": 0.2]] : [],
                // The shape of Shopify's REST reference: the amount as shop_money / presentment_money on the duty.
                "duties": l.duty.map { d -> [Any] in
                    [[
                        "id": String(l.id), "harmonized_system_code": "610910", "country_code_of_origin": "PT",
                        "shop_money": ["amount": Self.money(d), "currency_code": currency],
                        "presentment_money": ["amount": Self.money(d), "currency_code": presentmentCurrency],
                        "tax_lines": [Any](), "admin_graphql_api_id": "gid://shopify/Duty/\(l.id)",
                    ] as [String: Any]]
                } ?? [Any](),
            ]
        }
        let shippingLines: [[String: Any]] = shipping.enumerated().map { i, s in
            [
                "id": (id % 1_000_000_000) * 10 + Int64(i), "code": "standard", "title": "Standard", "price": Self.money(s.price),
                "discounted_price": Self.money(s.price - s.discount),
                "discount_allocations": s.discount > 0 ? [["amount": Self.money(s.discount)]] : [],
                "tax_lines": s.tax > 0 ? [["title": "VAT", "price": Self.money(s.tax), "rate": 0.2]] : [],
            ]
        }
        var tax = Decimal(0)
        var discounts = Decimal(0)
        var subtotal = Decimal(0)
        for l in lines {
            tax += l.tax
            discounts += l.discount
            subtotal += l.price * Decimal(l.quantity) - l.discount
        }
        for s in shipping {
            tax += s.tax
            discounts += s.discount
        }
        let customer: Any =
            customerId.map { cid -> Any in
                [
                    "id": cid, "email": "kunde\(cid)@example.com", "first_name": "Zoë", "last_name": "Ångström",
                    "phone": NSNull(),
                ] as [String: Any]
            } ?? NSNull()
        let address: Any =
            customerId == nil
            ? NSNull()
            : [
                "name": "Zoë Ångström", "address1": "Hauptstraße 1", "address2": NSNull(), "city": "München",
                "province": "Bayern", "province_code": "BY", "country": "Germany", "country_code": "DE", "zip": "80331",
                "company": NSNull(), "phone": NSNull(),
            ] as [String: Any]
        let refundsJSON: [[String: Any]] = refunds.map { r in
            [
                "id": r.id, "order_id": id, "created_at": Self.iso(updatedAt),
                "transactions": [["amount": Self.money(r.amount), "kind": "refund", "status": "success"]],
            ]
        }
        let hasDuties = lines.contains { $0.duty != nil }
        let dutiesSet: Any =
            hasDuties
            ? [
                "shop_money": ["amount": Self.money(duties), "currency_code": currency],
                "presentment_money": ["amount": Self.money(duties), "currency_code": presentmentCurrency],
            ] as [String: Any] : NSNull()
        let order: [String: Any] = [
            "id": id, "admin_graphql_api_id": "gid://shopify/Order/\(id)", "name": "#\(id % 100_000)",
            "order_number": id % 100_000, "email": customerId == nil ? "" : "kunde@example.com",
            "created_at": Self.iso(createdAt), "updated_at": Self.iso(updatedAt), "processed_at": Self.iso(createdAt),
            "cancelled_at": cancelled ? Self.iso(updatedAt) as Any : NSNull(),
            "cancel_reason": cancelled ? "customer" as Any : NSNull(), "closed_at": NSNull(),
            "financial_status": financialStatus, "fulfillment_status": fulfillmentStatus.map { $0 as Any } ?? NSNull(), "currency": currency,
            "presentment_currency": presentmentCurrency, "taxes_included": taxesIncluded,
            "total_price": Self.money(total), "subtotal_price": Self.money(subtotal), "total_tax": Self.money(tax),
            "total_discounts": Self.money(discounts), "total_tip_received": Self.money(tip), "duties_included": false,
            "original_total_duties_set": dutiesSet, "current_total_duties_set": dutiesSet,
            "total_price_set": [
                "shop_money": ["amount": Self.money(total), "currency_code": currency],
                "presentment_money": ["amount": Self.money(total), "currency_code": presentmentCurrency],
            ],
            "line_items": lineItems, "shipping_lines": shippingLines, "discount_codes": [Any](),
            "discount_applications": [Any](), "tax_lines": [Any](), "customer": customer, "billing_address": address,
            "shipping_address": address, "tags": tags, "source_name": "web", "test": false, "refunds": refundsJSON,
            "fulfillments": [Any](),
        ]
        return (try? JSONSerialization.data(withJSONObject: order, options: [])) ?? Data()
    }

    /// The order's `fulfillment_status`: nil (nothing shipped), `partial` or `fulfilled`.
    public var fulfillmentStatus: String? {
        let shipped = lines.reduce(0) { $0 + ($1.fulfilled ?? 0) }
        if shipped == 0 { return nil }
        return lines.allSatisfy { ($0.fulfilled ?? 0) >= $0.quantity } ? "fulfilled" : "partial"
    }

    /// A refunds/create body for one of this order's refunds.
    public func refundJSON(id refundId: Int64, amount: Decimal) -> Data {
        let r: [String: Any] = [
            "id": refundId, "order_id": id, "created_at": Self.iso(updatedAt), "note": NSNull(),
            // Shopify sends a refund line's subtotal as a JSON number (not a string like other amounts): so does this.
            "refund_line_items": [["line_item_id": lines.first?.id ?? 0, "quantity": 1, "subtotal": NSDecimalNumber(decimal: amount)]],
            "transactions": [["amount": Self.money(amount), "kind": "refund", "status": "success", "gateway": "bogus"]],
        ]
        return (try? JSONSerialization.data(withJSONObject: r, options: [])) ?? Data()
    }
}
