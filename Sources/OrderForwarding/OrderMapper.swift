import BridgeDomain
import ERP
import Foundation
import Ledger
import Shopify

/// Why an order cannot be mapped. Permanent: the same payload will fail the same way until the mapping or the data
/// changes, so the message goes to the dead-letter queue with this reason.
public struct MappingError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: String, Sendable {
        case missingSKU = "missing_sku"
        case totalsMismatch = "totals_mismatch"
        case invalidQuantity = "invalid_quantity"
        case invalidTimestamp = "invalid_timestamp"
    }
    public var code: Code
    public var message: String
    public var description: String { "\(code.rawValue): \(message)" }
}

/// A Shopify order mapped for the ERP: the sales order and, where a customer is attached, the customer.
public struct MappedOrder: Sendable, Equatable {
    public var salesOrder: ERPSalesOrder
    public var customer: ERPCustomer?
}

/// Maps a Shopify order (REST webhook payload) to an ERP sales order, exactly, in `Decimal`.
///
/// Totals: Σ(line price x quantity - line discount allocations) + Σ(shipping price - shipping discounts)
/// + taxes (only when prices exclude tax) + tip + import duties (only when prices exclude them) must equal Shopify's
/// `total_price` to the cent; otherwise the order is refused with the difference in the reason rather than booked
/// wrong. Duties are the order's `original_total_duties_set` (shop money), else the sum of its lines' `duties`;
/// taxes charged on a duty are not added apart (Shopify does not document them outside the order's tax): an order
/// whose total counts them separately fails the check and is dead-lettered, not booked short.
///
/// Lines keep the quantity ordered (so the document adds up to `total_price`) and carry `removed_quantity`: units an
/// order edit or a cancelling refund took off (`quantity - current_quantity` since API 2024-01, else the refunds'
/// line quantities), which the ERP must not ship. A tip arrives as a line with a `tip` object and no product: it is
/// the order's tip (`total_tip_received`), not an item.
public struct OrderMapper: Sendable {
    public let settings: OrderMappingSettings

    public init(settings: OrderMappingSettings) {
        self.settings = settings
    }

    public static func externalRef(shop: String, orderId: Int64) -> String { ERPReference.salesOrder(shop: shop, orderId: orderId) }
    public static func customerRef(shop: String, customerId: Int64) -> String { ERPReference.customer(shop: shop, customerId: customerId) }
    public static func refundRef(shop: String, refundId: Int64) -> String { ERPReference.refund(shop: shop, refundId: refundId) }

    /// - Parameter triggeredAtMs: the webhook's `X-Shopify-Triggered-At` (ms): the version's tie-break, sent to the ERP
    ///   inside the version (`OrderVersion.erpVersion`) so the ERP orders two changes within one second as the ledger does.
    public func map(_ order: ShopifyOrder, shop: String, triggeredAtMs: Int64) throws(MappingError) -> MappedOrder {
        guard let updatedMs = Timestamp.milliseconds(order.updatedAt) else {
            throw MappingError(code: .invalidTimestamp, message: "updated_at '\(order.updatedAt)' is not ISO-8601")
        }
        let taxesIncluded = order.taxesIncluded ?? false
        var lines: [ERPSalesOrder.Line] = []
        var tipLines = Decimal(0)
        var refundedUnits: [Int64: Int] = [:]
        for refund in order.refunds ?? [] {
            for r in refund.refundLineItems ?? [] { refundedUnits[r.lineItemId, default: 0] += r.quantity }
        }
        for item in order.lineItems {
            if item.tip != nil {
                tipLines += item.price.value * Decimal(item.quantity)
                continue
            }
            guard item.quantity > 0 else {
                throw MappingError(code: .invalidQuantity, message: "line \(item.id) has quantity \(item.quantity)")
            }
            let sku = try erpItem(for: item)
            let gross = item.price.value * Decimal(item.quantity)
            let discount = Money.sum((item.discountAllocations ?? []).map(\.amount.value))
            let tax = Money.sum((item.taxLines ?? []).map(\.price.value))
            let removed = item.currentQuantity.map { item.quantity - $0 } ?? refundedUnits[item.id] ?? 0
            let duty = Money.sum((item.duties ?? []).map(\.shopMoney.value))
            lines.append(
                ERPSalesOrder.Line(
                    lineRef: String(item.id), sku: sku, description: item.title, quantity: item.quantity,
                    unitPrice: item.price, discount: Amount(discount), tax: Amount(tax), netAmount: Amount(gross - discount),
                    removedQuantity: min(max(removed, 0), item.quantity), giftCard: item.giftCard ?? false,
                    duty: Amount(duty)))
        }
        let shipping = (order.shippingLines ?? []).map { s in
            ERPSalesOrder.ShippingCharge(
                code: s.code, title: s.title, price: s.price,
                discount: Amount(Money.sum((s.discountAllocations ?? []).map(\.amount.value))),
                tax: Amount(Money.sum((s.taxLines ?? []).map(\.price.value))))
        }

        let subtotal = Money.sum(lines.map(\.netAmount.value))
        let lineDiscounts = Money.sum(lines.map(\.discount.value))
        let shippingNet = Money.sum(shipping.map { $0.price.value - $0.discount.value })
        let tax = Money.sum(lines.map(\.tax.value)) + Money.sum(shipping.map(\.tax.value))
        // The tip line and total_tip_received are the same money: counted once.
        let tip = order.totalTipReceived.map(\.value).flatMap { $0 == 0 ? nil : $0 } ?? tipLines
        let dutiesIncluded = order.dutiesIncluded ?? false
        let duties = order.originalTotalDutiesSet?.shopMoney.amount.value ?? Money.sum(lines.map(\.duty.value))
        let computed = subtotal + shippingNet + (taxesIncluded ? 0 : tax) + tip + (dutiesIncluded ? 0 : duties)
        let expected = order.totalPrice.value
        guard computed == expected else {
            throw MappingError(
                code: .totalsMismatch,
                message: "mapped total \(Money.string(computed)) != Shopify total_price \(Money.string(expected)) (difference \(Money.string(computed - expected)) \(order.currency))")
        }

        let refunded = Money.sum((order.refunds ?? []).map(\.refundedAmount))
        let customerRef = order.customer.map { Self.customerRef(shop: shop, customerId: $0.id) }
        let sales = ERPSalesOrder(
            externalRef: Self.externalRef(shop: shop, orderId: order.id),
            version: OrderVersion(updatedAtMs: updatedMs, triggeredAtMs: triggeredAtMs).erpVersion,
            source: "shopify:\(shop)", sourceOrderId: String(order.id), orderName: order.name,
            placedAt: order.processedAt ?? order.createdAt,
            status: order.cancelledAt == nil ? "open" : "cancelled", cancelReason: order.cancelReason,
            financialStatus: order.financialStatus, fulfillmentStatus: order.fulfillmentStatus,
            currency: order.currency, presentmentCurrency: order.presentmentCurrency, taxesIncluded: taxesIncluded,
            lines: lines, shipping: shipping, discountCodes: (order.discountCodes ?? []).compactMap(\.code),
            subtotal: Amount(subtotal), totalDiscounts: Amount(lineDiscounts + Money.sum(shipping.map(\.discount.value))),
            totalShipping: Amount(shippingNet), totalTax: Amount(tax), totalTip: Amount(tip),
            totalDuties: Amount(duties), dutiesIncluded: dutiesIncluded, total: order.totalPrice,
            refundedAmount: Amount(refunded), customerRef: customerRef,
            billingAddress: order.billingAddress.map(Self.address), shippingAddress: order.shippingAddress.map(Self.address))
        let customer = order.customer.map { c in
            ERPCustomer(
                externalRef: Self.customerRef(shop: shop, customerId: c.id), email: c.email, firstName: c.firstName,
                lastName: c.lastName, phone: c.phone, billingAddress: order.billingAddress.map(Self.address))
        }
        return MappedOrder(salesOrder: sales, customer: customer)
    }

    /// Maps a refund to the ERP's credit note request.
    public func map(_ refund: ShopifyRefund, shop: String) -> ERPRefund {
        ERPRefund(
            refundRef: Self.refundRef(shop: shop, refundId: refund.id),
            orderRef: Self.externalRef(shop: shop, orderId: refund.orderId),
            amount: Amount(refund.refundedAmount), createdAt: refund.createdAt,
            lines: (refund.refundLineItems ?? []).map { .init(lineRef: String($0.lineItemId), quantity: $0.quantity) })
    }

    func erpItem(for item: ShopifyOrder.LineItem) throws(MappingError) -> String {
        if let v = item.variantId, let mapped = settings.variantMap[v] { return mapped }
        if let sku = item.sku?.trimmingCharacters(in: .whitespaces), !sku.isEmpty {
            return settings.skuMap[sku] ?? sku
        }
        switch settings.missingSKU {
        case .catchAll: return settings.catchAllItem
        case .deadLetter:
            throw MappingError(
                code: .missingSKU,
                message: "line \(item.id) has no SKU and no variant mapping; set order_forwarder.variant_map or order_forwarder.missing_sku: catch_all")
        }
    }

    static func address(_ a: ShopifyOrder.Address) -> ERPSalesOrder.Address {
        ERPSalesOrder.Address(
            name: a.name, company: a.company, line1: a.address1, line2: a.address2, city: a.city,
            region: a.provinceCode ?? a.province, postalCode: a.zip, countryCode: a.countryCode, phone: a.phone)
    }
}
