import Foundation

/// One ERP price list (`GET /api/v1/price-lists`): B2B contract prices per customer group, owned by the ERP.
public struct ERPPriceListSummary: Decodable, Sendable, Equatable {
    public var id: String
    public var name: String?
    public var currency: String
    public var customerGroup: String?
    /// How many prices it holds.
    public var prices: Int?

    enum CodingKeys: String, CodingKey {
        case id, name, currency
        case customerGroup = "customer_group"
        case prices
    }
}

/// A price list's prices as the bridge uses them: SKU -> unit price, in the list's currency.
public struct ERPPriceList: Sendable, Equatable {
    public var id: String
    public var currency: String
    public var prices: [String: Decimal]

    public init(id: String, currency: String, prices: [String: Decimal]) {
        self.id = id
        self.currency = currency
        self.prices = prices
    }
}

/// One page of `GET /api/v1/price-lists/{id}/prices`.
struct ERPPricePage: Decodable, Sendable {
    struct Price: Decodable, Sendable {
        var sku: String
        var unitPrice: String
        enum CodingKeys: String, CodingKey {
            case sku
            case unitPrice = "unit_price"
        }
    }
    var priceList: String?
    var currency: String
    var prices: [Price]
    var nextPageToken: String?

    enum CodingKeys: String, CodingKey {
        case priceList = "price_list"
        case currency, prices
        case nextPageToken = "next_page_token"
    }
}

extension RESTERPClient {
    /// The ERP's price lists.
    public func priceLists() async throws(ERPError) -> [ERPPriceListSummary] {
        struct Answer: Decodable { var price_lists: [ERPPriceListSummary] }
        return try await get("/api/v1/price-lists", Answer.self, what: "price lists").price_lists
    }

    /// A list's prices, page by page; `skus`: only those (a delta's fresh read), nil: all. A price the bridge
    /// cannot read as a decimal is an invalid answer (money is never guessed).
    public func priceList(_ id: String, skus: [String]? = nil) async throws(ERPError) -> ERPPriceList {
        var prices: [String: Decimal] = [:]
        var currency = ""
        var token: String?
        let filter = skus.map { "&sku=" + Self.escapeQuery($0.joined(separator: ",")) } ?? ""
        repeat {
            var path = "/api/v1/price-lists/\(Self.escape(id))/prices?page_size=1000\(filter)"
            if let token { path += "&page_token=\(Self.escapeQuery(token))" }
            let page = try await get(path, ERPPricePage.self, what: "price list \(id)")
            currency = page.currency
            for p in page.prices {
                guard let amount = Decimal(string: p.unitPrice, locale: Locale(identifier: "en_US_POSIX")) else {
                    throw ERPError(.invalidResponse, "price list \(id): unit_price '\(p.unitPrice)' of \(p.sku) is not a decimal")
                }
                prices[p.sku] = amount
            }
            token = page.nextPageToken
        } while token != nil
        return ERPPriceList(id: id, currency: currency, prices: prices)
    }
}
