import Foundation
import Shopify
import ShopifySimulator
import Testing

/// shopify-sim's B2B price lists: `priceLists`, `priceList.prices` by origin and variant, and the two fixed-price
/// mutations with Shopify's user errors (all or nothing). The bridge's documents run here as they are sent.
@Suite("shopify-sim B2B price lists")
struct PriceListAPITests {
    typealias Fixture = ShopifyAdminAPITests.Fixture
    static let wholesale = "gid://shopify/PriceList/80000000001"
    static func variant(_ n: Int) -> String { "gid://shopify/ProductVariant/\(40_000_000_000 + Int64(n))" }

    static let add = """
        mutation Add($id: ID!, $prices: [PriceListPriceInput!]!) {
          priceListFixedPricesAdd(priceListId: $id, prices: $prices) {
            prices { price { amount currencyCode } variant { sku } }
            userErrors { code field message }
          }
        }
        """

    static func price(_ n: Int, _ amount: String, _ currency: String = "EUR") -> [String: Any] {
        ["variantId": variant(n), "price": ["amount": amount, "currencyCode": currency]]
    }

    static func fixed(_ f: Fixture, query: String? = nil) async throws -> [String: String] {
        var vars: [String: Any] = ["id": wholesale]
        if let query { vars["query"] = query }
        let r = try await f.gql(ShopifyAdminDocuments.priceListFixedPrices, vars)
        #expect(ShopifyAdminAPITests.errors(r).isEmpty, "\(r)")
        let list = (r["data"] as? [String: Any])?["priceList"] as? [String: Any]
        let nodes = (list?["prices"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
        var out: [String: String] = [:]
        for n in nodes {
            let id = (n["variant"] as? [String: Any])?["id"] as? String ?? "?"
            out[id] = (n["price"] as? [String: Any])?["amount"] as? String ?? "?"
        }
        return out
    }

    @Test("priceLists lists the seeded lists; fixed prices are set by either mutation, read back by origin and variant; a wrong currency or an unknown variant is a user error and nothing of that call is set")
    func fixedPrices() async throws {
        let f = try Fixture(skus: 10)
        let lists = try await f.gql("{ priceLists(first: 10) { nodes { id name currency fixedPricesCount } } }")
        let nodes = ((lists["data"] as? [String: Any])?["priceLists"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
        #expect(nodes.map { $0["name"] as? String } == ["Wholesale", "Distributors"])
        #expect(nodes.first?["currency"] as? String == "EUR")

        let added = try await f.gql(Self.add, ["id": Self.wholesale, "prices": [Self.price(1, "4.20"), Self.price(2, "5.00")]])
        let payload = (added["data"] as? [String: Any])?["priceListFixedPricesAdd"] as? [String: Any]
        #expect((payload?["userErrors"] as? [Any])?.isEmpty == true, "\(added)")
        #expect((payload?["prices"] as? [Any])?.count == 2)

        let updated = try await f.gql(
            ShopifyAdminDocuments.setFixedPrices, ["priceListId": Self.wholesale, "prices": [Self.price(2, "5.50"), Self.price(3, "6")]])
        #expect(ShopifyAdminAPITests.errors(updated).isEmpty, "\(updated)")
        #expect(try await Self.fixed(f) == [Self.variant(1): "4.2", Self.variant(2): "5.5", Self.variant(3): "6"])
        #expect(try await Self.fixed(f, query: "variant_id:40000000002") == [Self.variant(2): "5.5"])
        #expect(await f.store.fixedPriceWriteCount == 4, "every price sent is written, changed or not: the bridge must skip unchanged ones itself")

        // Wrong currency, unknown variant: user errors naming the row; nothing of the call is set.
        let refused = try await f.gql(
            ShopifyAdminDocuments.setFixedPrices,
            ["priceListId": Self.wholesale, "prices": [Self.price(4, "1.00"), Self.price(5, "1.00", "USD"), ["variantId": Self.variant(99), "price": ["amount": "1", "currencyCode": "EUR"]]]])
        let errors = (((refused["data"] as? [String: Any])?["priceListFixedPricesUpdate"] as? [String: Any])?["userErrors"] as? [[String: Any]]) ?? []
        #expect(errors.compactMap { $0["code"] as? String } == ["PRICE_LIST_CURRENCY_MISMATCH", "VARIANT_NOT_FOUND"], "\(refused)")
        #expect(errors.first?["field"] as? [String] == ["pricesToAdd", "1", "price", "currencyCode"])
        #expect(try await Self.fixed(f)[Self.variant(4)] == nil, "all or nothing")

        let missing = try await f.gql(ShopifyAdminDocuments.setFixedPrices, ["priceListId": "gid://shopify/PriceList/1", "prices": [Self.price(1, "1")]])
        let missingErrors = (((missing["data"] as? [String: Any])?["priceListFixedPricesUpdate"] as? [String: Any])?["userErrors"] as? [[String: Any]]) ?? []
        #expect(missingErrors.first?["code"] as? String == "PRICE_LIST_NOT_FOUND")
        // The read's cost stays under the single-query limit at a full page.
        let cost = ShopifyAdminAPITests.cost(try await f.gql(ShopifyAdminDocuments.priceListFixedPrices, ["id": Self.wholesale]))
        #expect((ShopifyAdminAPITests.int(cost["requestedQueryCost"]) ?? 9999) <= 1000, "\(cost)")
        await f.shutdown()
    }
}
