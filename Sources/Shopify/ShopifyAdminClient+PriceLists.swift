import Foundation

/// A Shopify B2B price list's fixed prices: variant id (`gid://shopify/ProductVariant/...`) -> price.
public struct ShopifyFixedPrices: Sendable, Equatable {
    public var priceListId: String
    public var currency: String
    public var prices: [String: Decimal]
}

/// A variant as the price and catalogue reconciliation read it.
public struct ShopifyVariantPrice: Sendable, Equatable {
    public var variantId: String
    public var sku: String
    /// The variant's own price: the DTC price, which Shopify owns.
    public var price: Decimal
}

/// A fixed price Shopify refused (a `PriceListPriceUserError`).
public struct ShopifyPriceRefusal: Sendable, Equatable {
    public var variantId: String?
    public var code: String
    public var message: String
}

extension ShopifyAdminClient {
    static let posix = Locale(identifier: "en_US_POSIX")

    /// The fixed prices of price list `id`, all of them, or of the variants `query` names (`variant_id:123`).
    /// Nil: Shopify has no such price list.
    public func fixedPrices(priceList id: String, query: String? = nil) async throws(ShopifyAdminError) -> ShopifyFixedPrices? {
        struct Answer: Decodable, Sendable {
            struct List: Decodable, Sendable {
                struct Prices: Decodable, Sendable {
                    struct Node: Decodable, Sendable {
                        struct Money: Decodable, Sendable {
                            var amount: String
                            var currencyCode: String
                        }
                        struct Variant: Decodable, Sendable { var id: String }
                        var price: Money
                        var variant: Variant
                    }
                    struct PageInfo: Decodable, Sendable {
                        var hasNextPage: Bool
                        var endCursor: String?
                    }
                    var nodes: [Node]
                    var pageInfo: PageInfo
                }
                var id: String
                var currency: String
                var prices: Prices
            }
            var priceList: List?
        }
        struct Variables: Encodable, Sendable {
            var id: String
            var after: String?
            var query: String?
        }
        var result = ShopifyFixedPrices(priceListId: id, currency: "", prices: [:])
        var after: String?
        repeat {
            let answer = try await execute(
                ShopifyAdminDocuments.priceListFixedPrices, variables: Variables(id: id, after: after, query: query), expectedCost: 760,
                as: Answer.self)
            guard let list = answer.priceList else { return nil }
            result.currency = list.currency
            for node in list.prices.nodes {
                guard let amount = Decimal(string: node.price.amount, locale: Self.posix) else {
                    throw .invalidResponse("price list \(id): amount '\(node.price.amount)' of \(node.variant.id) is not a decimal")
                }
                result.prices[node.variant.id] = amount
            }
            after = list.prices.pageInfo.hasNextPage ? list.prices.pageInfo.endCursor : nil
        } while after != nil
        return result
    }

    /// Sets fixed prices on price list `id` (`priceListFixedPricesUpdate`, nothing deleted), at most 250 a call;
    /// returns what Shopify refused (an empty list: all were set). Shopify applies a call's prices together, so
    /// a refusal means none of that call's prices were set.
    /// `mayProceed`: asked right before each call leaves (see `execute`).
    public func setFixedPrices(
        priceList id: String, _ prices: [(variantId: String, amount: Decimal)], currency: String,
        mayProceed: (@Sendable () -> Bool)? = nil
    ) async throws(ShopifyAdminError) -> [ShopifyPriceRefusal] {
        struct Money: Encodable, Sendable {
            var amount: String
            var currencyCode: String
        }
        struct Input: Encodable, Sendable {
            var variantId: String
            var price: Money
        }
        struct Variables: Encodable, Sendable {
            var priceListId: String
            var prices: [Input]
        }
        struct Answer: Decodable, Sendable {
            struct Payload: Decodable, Sendable {
                struct UserError: Decodable, Sendable {
                    var code: String?
                    var field: [String]?
                    var message: String
                }
                var userErrors: [UserError]
            }
            var priceListFixedPricesUpdate: Payload?
        }
        var refused: [ShopifyPriceRefusal] = []
        for start in stride(from: 0, to: prices.count, by: 250) {
            let chunk = Array(prices[start..<min(prices.count, start + 250)])
            let inputs = chunk.map { Input(variantId: $0.variantId, price: Money(amount: "\($0.amount)", currencyCode: currency)) }
            let answer = try await execute(
                ShopifyAdminDocuments.setFixedPrices, variables: Variables(priceListId: id, prices: inputs), expectedCost: 10, as: Answer.self,
                mayProceed: mayProceed)
            guard let payload = answer.priceListFixedPricesUpdate else {
                throw .invalidResponse("priceListFixedPricesUpdate returned no payload")
            }
            for e in payload.userErrors {
                // field: ["pricesToAdd", "<index>", ...] names the row.
                let index = (e.field ?? []).dropFirst().first.flatMap { Int($0) }
                refused.append(
                    .init(variantId: index.flatMap { $0 < chunk.count ? chunk[$0].variantId : nil }, code: e.code ?? "UNKNOWN", message: e.message))
            }
        }
        return refused
    }

    /// The variant carrying exactly `sku` (a search by SKU matches more loosely): its id and inventory item's id.
    /// Nil: Shopify has no such variant.
    public func variant(sku: String) async throws(ShopifyAdminError) -> (variantId: String, inventoryItemId: String?)? {
        struct Answer: Decodable, Sendable {
            struct Connection: Decodable, Sendable {
                struct Variant: Decodable, Sendable {
                    struct Item: Decodable, Sendable { var id: String }
                    var id: String
                    var sku: String?
                    var inventoryItem: Item?
                }
                var nodes: [Variant]
            }
            var productVariants: Connection
        }
        let escaped = sku.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        let answer = try await execute(
            ShopifyAdminDocuments.variantsBySKU, variables: ["query": "sku:\"\(escaped)\""], expectedCost: 202, as: Answer.self)
        return answer.productVariants.nodes.first { $0.sku == sku }.map { ($0.id, $0.inventoryItem?.id) }
    }

    /// Every variant with a SKU: id, SKU and own price (a bulk query).
    public func variantPrices() async throws(ShopifyAdminError) -> [ShopifyVariantPrice] {
        struct Line: Decodable {
            var id: String
            var sku: String?
            var price: String?
        }
        let decoder = JSONDecoder()
        var out: [ShopifyVariantPrice] = []
        for data in try await runBulkQuery(ShopifyAdminDocuments.bulkVariantsQuery) {
            guard let line = try? decoder.decode(Line.self, from: data) else {
                throw .invalidResponse("bulk variants: a line is not a variant")
            }
            guard let sku = line.sku, !sku.isEmpty else { continue }
            guard let price = line.price.flatMap({ Decimal(string: $0, locale: Self.posix) }) else {
                throw .invalidResponse("bulk variants: price '\(line.price ?? "null")' of \(line.id) is not a decimal")
            }
            out.append(.init(variantId: line.id, sku: sku, price: price))
        }
        return out
    }
}
