import Foundation

/// B2B price lists, as Shopify keeps them: a list has a currency and fixed prices per variant that override the
/// variant's own price for the B2B customers of the list's catalog. Served by `priceList(s)` and changed by
/// `priceListFixedPricesAdd` / `priceListFixedPricesUpdate`. Like Shopify, the simulator writes what it is sent:
/// it neither skips a price that did not change nor refuses an older one (the bridge must do both itself).
extension ShopifyStore {
    public struct PriceList: Sendable, Equatable, Codable {
        public var id: Int64
        public var name: String
        public var currency: String
        /// variant id -> fixed price
        public var fixed: [Int64: Decimal]
    }

    public static let seededPriceLists: [PriceList] = [
        PriceList(id: 80_000_000_001, name: "Wholesale", currency: "EUR", fixed: [:]),
        PriceList(id: 80_000_000_002, name: "Distributors", currency: "EUR", fixed: [:]),
    ]

    /// One fixed price of a mutation's input.
    public struct FixedPrice: Sendable, Equatable {
        public var variant: Int64
        public var amount: Decimal
        public var currency: String
        public init(variant: Int64, amount: Decimal, currency: String) {
            self.variant = variant
            self.amount = amount
            self.currency = currency
        }
    }

    /// Adds (or replaces) fixed prices and deletes others, all or nothing: any user error and nothing changes.
    /// `inputField`: the argument the prices came in (`prices` or `pricesToAdd`), for the errors' `field`.
    public func setFixedPrices(list id: Int64, add: [FixedPrice], delete: [Int64], inputField: String) -> Result<[Int64], PriceListErrors> {
        guard let index = priceLists.firstIndex(where: { $0.id == id }) else {
            return .failure(.init(errors: [.init(code: "PRICE_LIST_NOT_FOUND", field: ["priceListId"], message: "Price list not found.")]))
        }
        var errors: [UserError] = []
        for (i, p) in add.enumerated() {
            if variantIndex[p.variant] == nil || deletedVariants.contains(p.variant) {
                errors.append(.init(code: "VARIANT_NOT_FOUND", field: [inputField, "\(i)", "variantId"], message: "Variant not found."))
            } else if p.currency != priceLists[index].currency {
                errors.append(
                    .init(
                        code: "PRICE_LIST_CURRENCY_MISMATCH", field: [inputField, "\(i)", "price", "currencyCode"],
                        message: "Currency must match the price list's currency (\(priceLists[index].currency))."))
            }
        }
        for (i, v) in delete.enumerated() where priceLists[index].fixed[v] == nil {
            errors.append(.init(code: "VARIANT_NOT_FOUND", field: ["variantIdsToDelete", "\(i)"], message: "A fixed price for the specified product variant doesn't exist."))
        }
        if !errors.isEmpty { return .failure(.init(errors: errors)) }
        for p in add {
            priceLists[index].fixed[p.variant] = p.amount
            priceWrites[id, default: [:]][p.variant, default: 0] += 1
            if (priceHistory[id]?[p.variant]?.count ?? 0) < 10_000 { priceHistory[id, default: [:]][p.variant, default: []].append(p.amount) }
        }
        for v in delete { priceLists[index].fixed[v] = nil }
        return .success(delete)
    }

    /// A merchant changes a price list's currency in the admin (its fixed prices stay). False: no such list.
    public func setPriceListCurrency(list id: Int64, currency: String) -> Bool {
        guard let index = priceLists.firstIndex(where: { $0.id == id }) else { return false }
        priceLists[index].currency = currency
        return true
    }

    /// A merchant changes a variant's own (DTC) price in the admin.
    public func setVariantPrice(sku: String, price: Decimal) -> Bool {
        guard let i = variants.firstIndex(where: { $0.sku == sku }) else { return false }
        setPrice(at: i, price)
        return true
    }

    /// Every fixed price written for a variant on a list, in order (the simulator's record of what writers did).
    public func fixedPriceHistory(list: Int64, variant: Int64) -> [Decimal] { priceHistory[list]?[variant] ?? [] }

    /// How many fixed-price writes a variant has had on a list.
    public func fixedPriceWrites(list: Int64, variant: Int64) -> Int { priceWrites[list]?[variant] ?? 0 }
    public var fixedPriceWriteCount: Int { priceWrites.values.reduce(0) { $0 + $1.values.reduce(0, +) } }
}

public struct PriceListErrors: Error, Sendable {
    public var errors: [ShopifyStore.UserError]
}
