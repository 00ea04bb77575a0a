import BridgeDomain
import ERP
import Foundation
import OrderForwarding
import Shopify
import ShopifySimulator
import Testing

/// Real Shopify order payloads (Tests/Fixtures/shopify-real-orders.json, each with its public source) against ERP
/// documents written by hand from Shopify's field meanings (`price` per unit, `discount_allocations` per line,
/// `tax_lines` added on top when `taxes_included` is false, `total_price` the amount charged), not from the mapper.
@Suite("Real Shopify payloads map to hand-written ERP documents; generated orders total by an independent oracle")
struct RealOrderFixturesTests {
    static var fixtures: [String: Any] {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/shopify-real-orders.json")
        let object = (try? JSONSerialization.jsonObject(with: Data(contentsOf: url))) as? [String: Any]
        return object?["orders"] as? [String: Any] ?? [:]
    }

    /// What the ERP must receive, written by hand.
    struct Expected: Sendable, CustomTestStringConvertible {
        struct Line: Sendable {
            var sku: String
            var quantity: Int
            var unitPrice: String
            var discount: String
            var tax: String
            var net: String
            /// Units removed after the order was placed (not to be shipped).
            var removed: Int = 0
            /// A gift card sold: a liability, not revenue; nothing to ship.
            var giftCard = false
        }
        var name: String
        var currency: String
        var status: String
        var financialStatus: String
        var lines: [Line]
        var shipping: [(price: String, discount: String, tax: String)]
        var subtotal: String
        var totalDiscounts: String
        var totalShipping: String
        var totalTax: String
        var totalTip: String
        var total: String
        var discountCodes: [String] = []
        var refunded: String = "0"
        /// The customer's currency when it is not the shop's (every amount above stays in the shop's currency).
        var presentment: String? = nil
        /// Prices include tax (`taxes_included`): the tax is part of the unit price and the total, not added on top.
        var taxesIncluded = false
        var testDescription: String { name }
    }

    /// The Hong Kong store's lines carry no SKU (as on many real stores): mapped by variant id.
    static let mapping = OrderMappingSettings(variantMap: [
        50_398_373_085_484: "HK-SERUM", 50_451_770_802_476: "HK-CREAM", 50_460_159_541_548: "HK-TONER",
        41_383_274_741_953: "CA-MUG", 37_319_198_802_069: "AU-PEN", 43_869_584_064_726: "US-GIFT-CARD",
        43_448_250_368_060: "IN-TROUSERS",
    ])

    static let cases: [Expected] = [
        // Two iPods at 199.00, the second with a 5.00 manual discount; 10.00 shipping; no tax; cancelled (voided).
        Expected(
            name: "shopify-docs-orders-create", currency: "USD", status: "cancelled", financialStatus: "voided",
            lines: [
                .init(sku: "IPOD2008PINK", quantity: 1, unitPrice: "199.00", discount: "0", tax: "0", net: "199.00"),
                .init(sku: "IPOD2008PINK", quantity: 1, unitPrice: "199.00", discount: "5.00", tax: "0", net: "194.00"),
            ],
            shipping: [("10.00", "0", "0")], subtotal: "393.00", totalDiscounts: "5.00", totalShipping: "10.00",
            totalTax: "0", totalTip: "0", total: "403.00"),
        // A fixed 5.00 off the first line; 10.00 shipping; HKD without tax.
        Expected(
            name: "hkd-line-fixed-discount", currency: "HKD", status: "open", financialStatus: "paid",
            lines: [
                .init(sku: "HK-SERUM", quantity: 1, unitPrice: "99.00", discount: "5.00", tax: "0", net: "94.00"),
                .init(sku: "HK-CREAM", quantity: 1, unitPrice: "100.00", discount: "0", tax: "0", net: "100.00"),
                .init(sku: "HK-TONER", quantity: 1, unitPrice: "100.00", discount: "0", tax: "0", net: "100.00"),
            ],
            shipping: [("10.00", "0", "0")], subtotal: "294.00", totalDiscounts: "5.00", totalShipping: "10.00",
            totalTax: "0", totalTip: "0", total: "304.00"),
        // A percentage code (14.10 and 15.00) plus a fixed 5.00 on the first line: two allocations on one line.
        Expected(
            name: "hkd-percentage-and-fixed", currency: "HKD", status: "open", financialStatus: "paid",
            lines: [
                .init(sku: "HK-SERUM", quantity: 1, unitPrice: "99.00", discount: "19.10", tax: "0", net: "79.90"),
                .init(sku: "HK-CREAM", quantity: 1, unitPrice: "100.00", discount: "15.00", tax: "0", net: "85.00"),
            ],
            shipping: [("22.00", "0", "0")], subtotal: "164.90", totalDiscounts: "34.10", totalShipping: "22.00",
            totalTax: "0", totalTip: "0", total: "186.90", discountCodes: ["0124D"]),
        // 2 x 123.00 and 3 x 500.00 with 23% VAT added on top (56.58 and 345.00); no shipping line.
        Expected(
            name: "pln-taxes-excluded-a", currency: "PLN", status: "open", financialStatus: "paid",
            lines: [
                .init(sku: "gtp3-ref-2", quantity: 2, unitPrice: "123.00", discount: "0", tax: "56.58", net: "246.00"),
                .init(sku: "guit1-sku-bl", quantity: 3, unitPrice: "500.00", discount: "0", tax: "345.00", net: "1500.00"),
            ],
            shipping: [], subtotal: "1746.00", totalDiscounts: "0", totalShipping: "0", totalTax: "401.58", totalTip: "0",
            total: "2147.58"),
        Expected(
            name: "pln-taxes-excluded-b", currency: "PLN", status: "open", financialStatus: "paid",
            lines: [
                .init(sku: "guitar-cl-shopify-test-1", quantity: 1, unitPrice: "1723.00", discount: "0", tax: "396.29", net: "1723.00")
            ],
            shipping: [], subtotal: "1723.00", totalDiscounts: "0", totalShipping: "0", totalTax: "396.29", totalTip: "0",
            total: "2119.29"),
        // Yen has no minor unit: amounts are whole numbers as strings; only the second line is taxed (229).
        Expected(
            name: "jpy-line-tax", currency: "JPY", status: "open", financialStatus: "paid",
            lines: [
                .init(sku: "7801P1XS000000", quantity: 2, unitPrice: "5900", discount: "0", tax: "0", net: "11800"),
                .init(sku: "6401MI1S000000", quantity: 1, unitPrice: "2290", discount: "0", tax: "229", net: "2290"),
            ],
            shipping: [], subtotal: "14090", totalDiscounts: "0", totalShipping: "0", totalTax: "229", totalTip: "0",
            total: "14319"),
        Expected(
            name: "jpy-single-line", currency: "JPY", status: "open", financialStatus: "paid",
            lines: [.init(sku: "7801P1XS000000", quantity: 1, unitPrice: "5900", discount: "0", tax: "0", net: "5900")],
            shipping: [], subtotal: "5900", totalDiscounts: "0", totalShipping: "0", totalTax: "0", totalTip: "0",
            total: "5900"),
        // Two mugs at 15.00 (no SKU: by variant), 14.90 shipping, and a 4.50 tip. Shopify puts the tip in
        // total_tip_received AND as a line ("Tip", a tip object, no product): it is the order's tip, once, not an item
        // (total_line_items_price is 30.00). 30.00 + 14.90 + 4.50 = 49.40.
        Expected(
            name: "cad-tip-line", currency: "CAD", status: "open", financialStatus: "paid",
            lines: [.init(sku: "CA-MUG", quantity: 2, unitPrice: "15.00", discount: "0", tax: "0", net: "30.00")],
            shipping: [("14.90", "0", "0")], subtotal: "30.00", totalDiscounts: "0", totalShipping: "14.90", totalTax: "0",
            totalTip: "4.50", total: "49.40"),
        // Two boards at 199.00 with HST 13% on top (51.74), 8.00 untaxed shipping: 398.00 + 8.00 + 51.74 = 457.74.
        Expected(
            name: "usd-before-refund", currency: "USD", status: "open", financialStatus: "paid",
            lines: [.init(sku: "GD802-025", quantity: 2, unitPrice: "199.00", discount: "0", tax: "51.74", net: "398.00")],
            shipping: [("8.00", "0", "0")], subtotal: "398.00", totalDiscounts: "0", totalShipping: "8.00", totalTax: "51.74",
            totalTip: "0", total: "457.74"),
        // The same order after one board was cancelled and refunded (199.00 + 25.87 HST = 224.87): the document still
        // adds up to what was charged, one unit is marked removed (not to be shipped), the refund is 224.87.
        Expected(
            name: "usd-partial-refund-cancel", currency: "USD", status: "open", financialStatus: "partially_refunded",
            lines: [.init(sku: "GD802-025", quantity: 2, unitPrice: "199.00", discount: "0", tax: "51.74", net: "398.00", removed: 1)],
            shipping: [("8.00", "0", "0")], subtotal: "398.00", totalDiscounts: "0", totalShipping: "8.00", totalTax: "51.74",
            totalTip: "0", total: "457.74", refunded: "224.87"),
        // An Australian shop paid in US dollars: the ERP books the shop's money (AUD; the presentment amounts, 34.67 +
        // 7.71 + 3.47 = 45.85 USD, are what the customer saw) and names the customer's currency. One pen at 45.62 with
        // GST 10% on top (4.56), 10.15 untaxed shipping: 45.62 + 10.15 + 4.56 = 60.33 AUD.
        Expected(
            name: "aud-shop-usd-presentment", currency: "AUD", status: "open", financialStatus: "paid",
            lines: [.init(sku: "AU-PEN", quantity: 1, unitPrice: "45.62", discount: "0", tax: "4.56", net: "45.62")],
            shipping: [("10.15", "0", "0")], subtotal: "45.62", totalDiscounts: "0", totalShipping: "10.15", totalTax: "4.56",
            totalTip: "0", total: "60.33", presentment: "USD"),
        // Prices include 20% VAT: the 100.95 line holds 16.83 of tax (100.95 x 20/120), which stays inside the price,
        // the net and the total; nothing is added on top. Free shipping.
        Expected(
            name: "uah-taxes-included", currency: "UAH", status: "open", financialStatus: "paid",
            lines: [.init(sku: "10107", quantity: 1, unitPrice: "100.95", discount: "0", tax: "16.83", net: "100.95")],
            shipping: [("0.00", "0", "0")], subtotal: "100.95", totalDiscounts: "0", totalShipping: "0", totalTax: "16.83",
            totalTip: "0", total: "100.95", taxesIncluded: true),
        // A gift card bought (its $25.00 variant sold at 10.00): the line says gift card (money owed to the holder,
        // not revenue, nothing to ship), it is not taxable (its 0.00 tax line stays 0), no shipping; paid 10.00.
        Expected(
            name: "usd-gift-card-purchase", currency: "USD", status: "open", financialStatus: "paid",
            lines: [.init(sku: "US-GIFT-CARD", quantity: 1, unitPrice: "10.00", discount: "0", tax: "0", net: "10.00", giftCard: true)],
            shipping: [], subtotal: "10.00", totalDiscounts: "0", totalShipping: "0", totalTax: "0", totalTip: "0",
            total: "10.00"),
        // Prices include 5% IGST: 2590.00 less the 400.00 code is 2190.00 charged, of which 104.29 is tax (2190 x
        // 5/105), inside the net and the total. The free-shipping discount takes 100% of a 0.00 rate: one shipping
        // charge at 0.00 with a 0.00 discount.
        Expected(
            name: "inr-taxes-included-code-free-shipping", currency: "INR", status: "open", financialStatus: "paid",
            lines: [.init(sku: "IN-TROUSERS", quantity: 1, unitPrice: "2590.00", discount: "400.00", tax: "104.29", net: "2190.00")],
            shipping: [("0.00", "0.00", "0")], subtotal: "2190.00", totalDiscounts: "400.00", totalShipping: "0", totalTax: "104.29",
            totalTip: "0", total: "2190.00", discountCodes: ["WELCOME400"], taxesIncluded: true),
    ]

    static func d(_ s: String) -> Decimal { Decimal(string: s, locale: Locale(identifier: "en_US_POSIX"))! }

    @Test("each real payload maps to its hand-written ERP document", arguments: cases)
    func realPayload(expected e: Expected) throws {
        let payload = try #require(Self.fixtures[e.name], "fixture \(e.name) missing from Tests/Fixtures/shopify-real-orders.json")
        let body = try JSONSerialization.data(withJSONObject: payload)
        let so = try OrderMapper(settings: Self.mapping).map(ShopifyOrder.decode(Array(body)), shop: "real", triggeredAtMs: 0).salesOrder
        #expect(so.currency == e.currency)
        #expect(so.status == e.status)
        #expect(so.financialStatus == e.financialStatus)
        #expect(so.lines.count == e.lines.count)
        for (line, want) in zip(so.lines, e.lines) {
            #expect(line.sku == want.sku)
            #expect(line.quantity == want.quantity)
            #expect(line.unitPrice.value == Self.d(want.unitPrice), "\(want.sku) unit price")
            #expect(line.discount.value == Self.d(want.discount), "\(want.sku) discount")
            #expect(line.tax.value == Self.d(want.tax), "\(want.sku) tax")
            #expect(line.netAmount.value == Self.d(want.net), "\(want.sku) net")
            #expect(line.removedQuantity == want.removed, "\(want.sku) removed quantity")
            #expect(line.giftCard == want.giftCard, "\(want.sku) gift card")
        }
        #expect(so.shipping.count == e.shipping.count)
        for (s, want) in zip(so.shipping, e.shipping) {
            #expect(s.price.value == Self.d(want.price))
            #expect(s.discount.value == Self.d(want.discount))
            #expect(s.tax.value == Self.d(want.tax))
        }
        #expect(so.subtotal.value == Self.d(e.subtotal))
        #expect(so.totalDiscounts.value == Self.d(e.totalDiscounts))
        #expect(so.totalShipping.value == Self.d(e.totalShipping))
        #expect(so.totalTax.value == Self.d(e.totalTax))
        #expect(so.totalTip.value == Self.d(e.totalTip))
        #expect(so.total.value == Self.d(e.total))
        #expect(so.discountCodes == e.discountCodes)
        #expect(so.refundedAmount.value == Self.d(e.refunded))
        if let presentment = e.presentment { #expect(so.presentmentCurrency == presentment) }
        #expect(so.taxesIncluded == e.taxesIncluded)
        #expect(so.totalDuties.value == 0, "none of these orders carries duties")
        #expect(so.lines.allSatisfy { $0.duty.value == 0 })
    }

    @Test("import duties collected at checkout: on their line, in the order's duties and in the total; none added when prices include them")
    func dutiesCollectedAtCheckout() throws {
        // A real payload with duties set the way Shopify's REST reference shows them (a duty's amount as shop_money /
        // presentment_money, the order's original_total_duties_set), and total_price raised by them as Shopify
        // defines it (the amount charged includes the duties added at checkout).
        var payload = try #require(Self.fixtures["pln-taxes-excluded-a"] as? [String: Any])
        var items = try #require(payload["line_items"] as? [[String: Any]])
        items[0]["duties"] = [[
            "id": "2", "harmonized_system_code": "520300", "country_code_of_origin": "CA",
            "shop_money": ["amount": "41.20", "currency_code": "PLN"], "presentment_money": ["amount": "41.20", "currency_code": "PLN"],
            "tax_lines": [Any](), "admin_graphql_api_id": "gid://shopify/Duty/2",
        ] as [String: Any]]
        // The other line's duty in a price_set, as some payloads carry it.
        items[1]["duties"] = [["id": 3, "price_set": ["shop_money": ["amount": "12.05", "currency_code": "PLN"]]] as [String: Any]]
        payload["line_items"] = items
        payload["original_total_duties_set"] = ["shop_money": ["amount": "53.25", "currency_code": "PLN"]]
        payload["total_price"] = "2200.83"  // 2147.58 + 41.20 + 12.05
        payload["duties_included"] = false
        let mapper = OrderMapper(settings: Self.mapping)
        let so = try mapper.map(ShopifyOrder.decode(Array(try JSONSerialization.data(withJSONObject: payload))), shop: "real", triggeredAtMs: 0).salesOrder
        #expect(so.lines.map(\.duty.value) == [Self.d("41.20"), Self.d("12.05")])
        #expect(so.totalDuties.value == Self.d("53.25"))
        #expect(so.dutiesIncluded == false)
        #expect(so.total.value == Self.d("2200.83"))
        #expect(so.subtotal.value == Self.d("1746.00"), "duties are not item revenue")
        #expect(so.totalTax.value == Self.d("401.58"))
        #expect(Self.shopifyTotal(payload) == Self.d("2200.83"), "the oracle counts them too")

        // Prices that include duties (a market set to include them): the total does not grow.
        payload["duties_included"] = true
        payload["total_price"] = "2147.58"
        let included = try mapper.map(ShopifyOrder.decode(Array(try JSONSerialization.data(withJSONObject: payload))), shop: "real", triggeredAtMs: 0).salesOrder
        #expect(included.dutiesIncluded)
        #expect(included.totalDuties.value == Self.d("53.25"))
        #expect(included.total.value == Self.d("2147.58"))
        #expect(Self.shopifyTotal(payload) == Self.d("2147.58"))

        // A total that counts the duties twice is refused with the difference, not booked.
        payload["duties_included"] = false
        payload["total_price"] = "2254.08"
        #expect(throws: MappingError.self) {
            try mapper.map(ShopifyOrder.decode(Array(try JSONSerialization.data(withJSONObject: payload))), shop: "real", triggeredAtMs: 0)
        }
    }

    @Test("an order edit's current_quantity (REST 2024-01+) marks the removed units, and wins over refund lines")
    func editedOrderCurrentQuantity() throws {
        // A real payload with the field set the way Shopify documents it after an edit took 2 of 3 units off a line.
        var payload = try #require(Self.fixtures["pln-taxes-excluded-a"] as? [String: Any])
        var items = try #require(payload["line_items"] as? [[String: Any]])
        items[1]["current_quantity"] = 1
        items[0]["current_quantity"] = 2
        payload["line_items"] = items
        let body = try JSONSerialization.data(withJSONObject: payload)
        let so = try OrderMapper(settings: Self.mapping).map(ShopifyOrder.decode(Array(body)), shop: "real", triggeredAtMs: 0).salesOrder
        #expect(so.lines.map(\.removedQuantity) == [0, 2])
        #expect(so.lines.map(\.quantity) == [2, 3], "quantity stays as ordered, so the document adds up to total_price")
        #expect(so.total.value == Self.d("2147.58"))
    }

    /// Shopify's definition of `total_price`, read from the payload's own fields with no code from the mapper or the
    /// generator: Σ line price x quantity − every discount allocation (lines and shipping) + Σ shipping price
    /// + Σ tax lines when prices exclude tax + tip + Σ line duties when prices exclude them. A tip also appears as a line with a `tip` object; that line is not
    /// an item (Shopify's `total_line_items_price` leaves it out), so it is not counted twice.
    static func shopifyTotal(_ order: [String: Any]) -> Decimal {
        func money(_ v: Any?) -> Decimal { (v as? String).map(d) ?? 0 }
        func allocations(_ o: [String: Any]) -> Decimal {
            ((o["discount_allocations"] as? [[String: Any]]) ?? []).reduce(0) { $0 + money($1["amount"]) }
        }
        func taxes(_ o: [String: Any]) -> Decimal { ((o["tax_lines"] as? [[String: Any]]) ?? []).reduce(0) { $0 + money($1["price"]) } }
        let excluded = (order["taxes_included"] as? Bool) == false
        // Import duties added at checkout (unless the prices include them): each duty's shop money, which Shopify's
        // REST reference puts on the duty itself and other payloads in a price_set.
        func duties(_ l: [String: Any]) -> Decimal {
            ((l["duties"] as? [[String: Any]]) ?? []).reduce(0) { sum, duty in
                let bag = (duty["price_set"] as? [String: Any]) ?? duty
                return sum + money((bag["shop_money"] as? [String: Any])?["amount"])
            }
        }
        let dutiesAdded = (order["duties_included"] as? Bool) != true
        var total: Decimal = 0
        for l in (order["line_items"] as? [[String: Any]]) ?? [] where l["tip"] == nil {
            total += money(l["price"]) * Decimal((l["quantity"] as? Int) ?? 0) - allocations(l) + (excluded ? taxes(l) : 0)
                + (dutiesAdded ? duties(l) : 0)
        }
        for s in (order["shipping_lines"] as? [[String: Any]]) ?? [] {
            total += money(s["price"]) - allocations(s) + (excluded ? taxes(s) : 0)
        }
        return total + money(order["total_tip_received"])
    }

    @Test("the oracle agrees with Shopify's own total_price on every real payload")
    func oracleOnRealPayloads() {
        for (name, payload) in Self.fixtures {
            let order = payload as? [String: Any] ?? [:]
            #expect(Self.shopifyTotal(order) == Self.d(order["total_price"] as? String ?? "-1"), "\(name)")
        }
    }

    @Test("500 generated orders (one in six with duties): payload total_price and the mapped total both equal the independent oracle")
    func generatedAgainstOracle() throws {
        let mapper = OrderMapper(settings: .init())
        let generated = OrderGenerator(seed: 11).orders(500)
        #expect(generated.filter { $0.duties > 0 }.count >= 80, "the generator must exercise duties")
        for f in generated {
            let body = f.json()
            let order = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
            let oracle = Self.shopifyTotal(order)
            #expect(Self.d(order["total_price"] as? String ?? "-1") == oracle, "generator's total_price for \(f.id)")
            #expect(try mapper.map(ShopifyOrder.decode(Array(body)), shop: "g", triggeredAtMs: 0).salesOrder.total.value == oracle)
        }
    }
}
