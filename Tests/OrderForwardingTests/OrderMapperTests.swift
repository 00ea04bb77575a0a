import BridgeDomain
import ERP
import Foundation
import Ledger
import OrderForwarding
import Shopify
import ShopifySimulator
import Testing

@Suite("Order mapping: exact Decimal money, SKUs, taxes both ways, discounts, shipping, refunds")
struct OrderMapperTests {
    let mapper = OrderMapper(settings: .init())

    func order(_ f: ShopifyOrderFixture) throws -> ShopifyOrder { try ShopifyOrder.decode(Array(f.json())) }

    func line(_ id: Int64, _ sku: String?, qty: Int, price: String, discount: String = "0", tax: String = "0") -> ShopifyOrderFixture.Line {
        .init(id: id, sku: sku, quantity: qty, price: Decimal(string: price)!, discount: Decimal(string: discount)!, tax: Decimal(string: tax)!)
    }

    @Test("a plain order maps line by line and its total equals Shopify's total_price to the cent")
    func plain() throws {
        var f = ShopifyOrderFixture(id: 820_982_911_946_154_508, lines: [line(1, "SKU-1", qty: 3, price: "19.99", tax: "11.39")])
        f.shipping = [.init(price: Decimal(string: "4.95")!, tax: Decimal(string: "0.94")!)]
        let m = try mapper.map(try order(f), shop: "acme", triggeredAtMs: 0)
        let so = m.salesOrder
        #expect(so.externalRef == "shopify.acme.820982911946154508")
        #expect(so.sourceOrderId == "820982911946154508", "64-bit ids survive (they exceed 2^53)")
        #expect(so.lines.count == 1)
        #expect(so.lines[0].sku == "SKU-1")
        #expect(so.lines[0].unitPrice == Amount("19.99"))
        #expect(so.lines[0].netAmount == Amount("59.97"))
        #expect(so.totalTax == Amount("12.33"))
        #expect(so.totalShipping == Amount("4.95"))
        #expect(so.total == Amount("77.25"))
        #expect(so.status == "open")
        #expect(so.taxesIncluded == false)
        #expect(so.customerRef == nil)
        #expect(so.billingAddress == nil)
    }

    @Test("money that a Double cannot hold stays exact: 0.1 x 3 + 0.2 is 0.5, not 0.5000000000000001")
    func exactMoney() throws {
        let f = ShopifyOrderFixture(id: 1, lines: [line(1, "A", qty: 3, price: "0.10"), line(2, "B", qty: 1, price: "0.20")])
        let so = try mapper.map(try order(f), shop: "s", triggeredAtMs: 0).salesOrder
        #expect(so.total.value == Decimal(string: "0.5")!)
        #expect(so.subtotal == Amount("0.50"))
    }

    @Test("taxes included: tax is informational and not added again; taxes excluded: tax is added")
    func taxesBothWays() throws {
        var inc = ShopifyOrderFixture(id: 2, lines: [line(1, "A", qty: 2, price: "11.90", tax: "3.80")])
        inc.taxesIncluded = true
        let a = try mapper.map(try order(inc), shop: "s", triggeredAtMs: 0).salesOrder
        #expect(a.taxesIncluded)
        #expect(a.total == Amount("23.80"))
        #expect(a.totalTax == Amount("3.80"))

        let exc = ShopifyOrderFixture(id: 3, lines: [line(1, "A", qty: 2, price: "10.00", tax: "3.80")])
        let b = try mapper.map(try order(exc), shop: "s", triggeredAtMs: 0).salesOrder
        #expect(b.total == Amount("23.80"))
        #expect(b.subtotal == Amount("20.00"))
    }

    @Test("line and order-level discount allocations, shipping discounts and tips all reconcile")
    func discountsShippingTip() throws {
        var f = ShopifyOrderFixture(
            id: 4, lines: [line(1, "A", qty: 2, price: "50.00", discount: "10.00", tax: "17.10"), line(2, "B", qty: 1, price: "9.99", discount: "0.99")])
        f.shipping = [.init(price: Decimal(string: "5.00")!, discount: Decimal(string: "5.00")!)]
        f.tip = Decimal(string: "2.50")!
        let so = try mapper.map(try order(f), shop: "s", triggeredAtMs: 0).salesOrder
        #expect(so.lines[0].discount == Amount("10.00"))
        #expect(so.lines[0].netAmount == Amount("90.00"))
        #expect(so.totalDiscounts == Amount("15.99"))
        #expect(so.totalShipping == Amount("0"))
        #expect(so.totalTip == Amount("2.50"))
        #expect(so.total == Amount("118.60"))
    }

    @Test("a total that does not reconcile is refused with the difference in the reason")
    func totalsMismatch() throws {
        var f = ShopifyOrderFixture(id: 5, lines: [line(1, "A", qty: 1, price: "10.00")])
        f.totalOverride = Decimal(string: "10.01")!
        #expect {
            try mapper.map(try order(f), shop: "s", triggeredAtMs: 0)
        } throws: { error in
            guard let e = error as? MappingError else { return false }
            return e.code == .totalsMismatch && e.message.contains("difference -0.01 EUR")
        }
    }

    @Test("lines without SKU: dead-lettered with a clear reason by default, booked on the catch-all item when configured")
    func missingSKU() throws {
        let f = ShopifyOrderFixture(id: 6, lines: [line(1, nil, qty: 1, price: "5.00"), line(2, "", qty: 1, price: "1.00")])
        #expect {
            try mapper.map(try order(f), shop: "s", triggeredAtMs: 0)
        } throws: { error in
            (error as? MappingError)?.code == .missingSKU && "\(error)".contains("missing_sku: catch_all")
        }
        let lenient = OrderMapper(settings: .init(missingSKU: .catchAll, catchAllItem: "MISC-1"))
        let so = try lenient.map(try order(f), shop: "s", triggeredAtMs: 0).salesOrder
        #expect(so.lines.map(\.sku) == ["MISC-1", "MISC-1"])
    }

    @Test("SKU and variant maps translate Shopify items to ERP items; the variant map wins")
    func skuAndVariantMaps() throws {
        var l2 = line(2, "RED-M", qty: 1, price: "1.00")
        l2.variantId = 4242
        let f = ShopifyOrderFixture(id: 7, lines: [line(1, "TSHIRT", qty: 1, price: "1.00"), l2, line(3, "PLAIN", qty: 1, price: "1.00")])
        let m = OrderMapper(settings: .init(skuMap: ["TSHIRT": "100234", "RED-M": "ignored"], variantMap: [4242: "200999"]))
        let so = try m.map(try order(f), shop: "s", triggeredAtMs: 0).salesOrder
        #expect(so.lines.map(\.sku) == ["100234", "200999", "PLAIN"])
    }

    @Test("customer, addresses (unicode), cancellation and refunded amounts are carried")
    func customerCancellationRefunds() throws {
        var f = ShopifyOrderFixture(id: 8, lines: [line(1, "A", qty: 1, price: "30.00")])
        f.customerId = 9_007_199_254_740_995
        f.cancelled = true
        f.financialStatus = "partially_refunded"
        f.refunds = [.init(id: 1, amount: Decimal(string: "10.00")!), .init(id: 2, amount: Decimal(string: "0.01")!)]
        let m = try mapper.map(try order(f), shop: "s", triggeredAtMs: 0)
        #expect(m.salesOrder.status == "cancelled")
        #expect(m.salesOrder.cancelReason == "customer")
        #expect(m.salesOrder.financialStatus == "partially_refunded")
        #expect(m.salesOrder.refundedAmount == Amount("10.01"))
        #expect(m.salesOrder.customerRef == "shopify.s.customer.9007199254740995")
        #expect(m.salesOrder.billingAddress?.city == "München")
        #expect(m.salesOrder.shippingAddress?.region == "BY")
        #expect(m.customer?.lastName == "Ångström")
    }

    @Test("the ERP version is updated_at then triggered-at, UTC with milliseconds, whatever offset Shopify used")
    func version() throws {
        let json = #"{"id":1,"updated_at":"2026-11-27T10:00:00-05:00","currency":"USD","total_price":"1.00","line_items":[{"id":1,"sku":"A","quantity":1,"price":"1.00"}]}"#
        let triggered = Timestamp.milliseconds("2026-11-27T15:00:00.412Z")!
        let so = try mapper.map(try ShopifyOrder.decode(Array(json.utf8)), shop: "s", triggeredAtMs: triggered).salesOrder
        #expect(so.version == "2026-11-27T15:00:00.000Z|2026-11-27T15:00:00.412Z")
        // Two changes within Shopify's one-second updated_at: the ERP's byte order is the ledger's order.
        let later = try mapper.map(try ShopifyOrder.decode(Array(json.utf8)), shop: "s", triggeredAtMs: triggered + 1).salesOrder
        #expect(later.version > so.version)
        #expect(OrderVersion(erpVersion: later.version)! > OrderVersion(erpVersion: so.version)!)
        #expect(OrderVersion(erpVersion: so.version) == OrderVersion(updatedAtMs: Timestamp.milliseconds("2026-11-27T15:00:00Z")!, triggeredAtMs: triggered))
    }

    @Test("money as a JSON number, or a malformed amount, is refused instead of rounded through a Double")
    func strictMoney() throws {
        let number = #"{"id":1,"updated_at":"2026-11-27T10:00:00Z","currency":"USD","total_price":1.1,"line_items":[]}"#
        #expect(throws: DecodingError.self) { try ShopifyOrder.decode(Array(number.utf8)) }
        #expect(Money.parse("12.50") == Decimal(string: "12.5"))
        #expect(Money.parse("-0.01") == Decimal(string: "-0.01"))
        for bad in ["12abc", "1e5", "1,000.00", "", ".", "--1", "1.2.3", "NaN"] {
            #expect(Money.parse(bad) == nil, "\(bad)")
        }
    }

    @Test("a refund maps to a credit note keyed by the refund, against the order's external reference")
    func refund() throws {
        let f = ShopifyOrderFixture(id: 9, lines: [line(1, "A", qty: 1, price: "30.00")])
        let r = try ShopifyRefund.decode(Array(f.refundJSON(id: 77, amount: Decimal(string: "12.34")!)))
        let req = mapper.map(r, shop: "s")
        #expect(req.refundRef == "shopify.s.refund.77")
        #expect(req.orderRef == "shopify.s.9")
        #expect(req.amount == Amount("12.34"))
        #expect(req.lines == [.init(lineRef: "1", quantity: 1)])
    }

    @Test("generated sale traffic always reconciles (every order maps)")
    func generatedTraffic() throws {
        for f in OrderGenerator(seed: 7).orders(500) {
            let so = try mapper.map(try order(f), shop: "s", triggeredAtMs: 0).salesOrder
            #expect(so.total.value == f.total)
        }
    }
}
