import Foundation
import GraphQL

/// B2B price lists: `priceList`, `priceLists`, `PriceList.prices` (fixed prices, and with no `originType` every
/// other variant at its relative price: the variant's own, as a list without adjustments has it), and the two
/// fixed-price mutations.
extension ShopifyAdminAPI {
    var priceListQueries: [String: Resolver] {
        [
            "priceList": { _, args, ctx in
                let id = try Self.id(args["id"].string ?? "", "PriceList")
                return ctx.snapshot.priceLists.first { $0.id == id }.map(Self.priceList)
            },
            "priceLists": { _, args, ctx in
                let byName = args["sortKey"].string == "NAME"
                let lists = ctx.snapshot.priceLists
                let ranks = Dictionary(uniqueKeysWithValues: lists.sorted { $0.name < $1.name }.enumerated().map { ($1.id, Double($0)) })
                return try Paginator.connection(
                    lists, key: { .init(value: byName ? ranks[$0.id] ?? 0 : 0, id: $0.id) }, node: Self.priceList, args: args,
                    bulk: ctx.bulk, window: ctx.bulkWindow)
            },
        ]
    }

    var priceListMutations: [String: InfoResolver] {
        [
            "priceListFixedPricesAdd": { _, args, ctx, _ in
                try await self.setFixedPrices(args, ctx, pricesField: "prices", deleteField: nil)
            },
            "priceListFixedPricesUpdate": { _, args, ctx, _ in
                try await self.setFixedPrices(args, ctx, pricesField: "pricesToAdd", deleteField: "variantIdsToDelete")
            },
        ]
    }

    func installPriceListResolvers() throws {
        try resolve("PriceList", [
            "prices": { source, args, ctx in
                let s = ctx.snapshot
                let id = Self.internalId(source)
                guard let list = s.priceLists.first(where: { $0.id == id }) else { return nil }
                let q = SearchQuery(args["query"].string)
                let origin = args["originType"].string
                let rows: [(variant: ShopifyStore.Variant, price: Decimal, fixed: Bool)] = s.variants.compactMap { v in
                    guard q.matches("variant_id", id: v.variantId), q.matches("id", id: v.variantId) else { return nil }
                    if let fixed = list.fixed[v.variantId] { return origin == "RELATIVE" ? nil : (v, fixed, true) }
                    return origin == "FIXED" ? nil : (v, v.price, false)
                }
                return try Paginator.connection(
                    rows, key: { .init(value: 0, id: $0.variant.variantId) },
                    node: { r in Self.price(variant: r.variant.variantId, r.price, list.currency, fixed: r.fixed) }, args: args, bulk: ctx.bulk)
            }
        ])
        try resolve("PriceListPrice", [
            "variant": { source, _, ctx in
                let s = ctx.snapshot
                return s.variant(id: (source as? Node)?["_variant"] as? Int64 ?? 0).map { Self.variant($0, s) }
            }
        ])
    }

    /// A `PriceListPrice` node (its `variant` resolved from `_variant`).
    static func price(variant: Int64, _ amount: Decimal, _ currency: String, fixed: Bool) -> Node {
        [
            "_variant": variant, "price": ["amount": "\(amount)", "currencyCode": currency] as Node,
            "compareAtPrice": nil as (any Sendable)?, "originType": fixed ? "FIXED" : "RELATIVE",
        ]
    }

    static func priceList(_ l: ShopifyStore.PriceList) -> Node {
        ["_id": l.id, "id": gid("PriceList", l.id), "name": l.name, "currency": l.currency, "fixedPricesCount": l.fixed.count]
    }

    private func setFixedPrices(_ args: Map, _ ctx: RequestContext, pricesField: String, deleteField: String?) async throws -> Node {
        let listId = try Self.id(args["priceListId"].string ?? "", "PriceList")
        let input = args[pricesField].array ?? []
        let toDelete = deleteField.map { args[$0].array ?? [] } ?? []
        // Shopify's limit for both mutations.
        if input.count > 250 || toDelete.count > 250 { throw AdminAPIError.inputTooLarge(max(input.count, toDelete.count)) }
        var prices: [ShopifyStore.FixedPrice] = []
        var errors: [ShopifyStore.UserError] = []
        for (i, p) in input.enumerated() {
            guard let variant = try? Self.id(p["variantId"].string ?? "", "ProductVariant") else {
                errors.append(.init(code: "VARIANT_NOT_FOUND", field: [pricesField, "\(i)", "variantId"], message: "Variant not found."))
                continue
            }
            guard let amount = Decimal(string: p["price"]["amount"].string ?? "", locale: Locale(identifier: "en_US_POSIX")), amount >= 0 else {
                errors.append(.init(code: "BLANK", field: [pricesField, "\(i)", "price", "amount"], message: "Price can't be blank."))
                continue
            }
            prices.append(.init(variant: variant, amount: amount, currency: p["price"]["currencyCode"].string ?? ""))
        }
        var deletes: [Int64] = []
        for (i, v) in toDelete.enumerated() {
            guard let id = try? Self.id(v.string ?? "", "ProductVariant") else {
                errors.append(.init(code: "VARIANT_NOT_FOUND", field: [deleteField ?? "", "\(i)"], message: "Variant not found."))
                continue
            }
            deletes.append(id)
        }
        let payloadKey = deleteField == nil ? "prices" : "pricesAdded"
        if !errors.isEmpty { return [payloadKey: nil as (any Sendable)?, "userErrors": errors.map(Self.userError)] }
        switch await store.setFixedPrices(list: listId, add: prices, delete: deletes, inputField: pricesField) {
        case .failure(let e):
            return [payloadKey: nil as (any Sendable)?, "userErrors": e.errors.map(Self.userError)]
        case .success(let deleted):
            ctx.refresh(await store.snapshot())
            let s = ctx.snapshot
            let list = s.priceLists.first { $0.id == listId }
            let added: [Node] = prices.map { Self.price(variant: $0.variant, $0.amount, $0.currency, fixed: true) }
            var payload: Node = [payloadKey: added, "userErrors": [Node]()]
            if deleteField != nil {
                payload["deletedFixedPriceVariantIds"] = deleted.map { Self.gid("ProductVariant", $0) }
                payload["priceList"] = list.map(Self.priceList)
            }
            return payload
        }
    }
}
