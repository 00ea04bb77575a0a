import Foundation
import GraphQL

/// The field resolvers of shopify-sim's Admin API. Objects are dictionaries: scalar fields are read by GraphQLSwift's
/// default resolver, fields with arguments or that reach across the shop are resolved here. `_`-prefixed keys carry
/// the numeric ids the resolvers need.
extension ShopifyAdminAPI {
    typealias Node = [String: any Sendable]

    func installResolvers() throws {
        let queries: [String: Resolver] = [
            "locations": { _, args, ctx in
                try Paginator.connection(
                    ctx.snapshot.locations, key: { .init(value: 0, id: $0) }, node: Self.location, args: args, bulk: ctx.bulk,
                    window: ctx.bulkWindow)
            },
            "location": { _, args, ctx in
                let s = ctx.snapshot
                guard let gid = args["id"].string else { return s.locations.first.map(Self.location) }
                let id = try Self.id(gid, "Location")
                return s.locations.first { $0 == id }.map(Self.location)
            },
            "inventoryItems": { _, args, ctx in
                let s = ctx.snapshot
                let q = SearchQuery(args["query"].string)
                let items = s.liveVariants.filter {
                    q.matches("sku", string: $0.sku) && q.matches("id", id: $0.inventoryItemId)
                        && q.matches("updated_at", date: s.itemUpdated($0.inventoryItemId))
                }
                return try Paginator.connection(
                    items, key: { .init(value: 0, id: $0.inventoryItemId) }, node: { Self.item($0, s) }, args: args, bulk: ctx.bulk,
                    window: ctx.bulkWindow)
            },
            "inventoryItem": { _, args, ctx in
                let s = ctx.snapshot
                return try s.variant(item: Self.id(args["id"].string ?? "", "InventoryItem")).map { Self.item($0, s) }
            },
            "productVariants": { _, args, ctx in
                let s = ctx.snapshot
                let q = SearchQuery(args["query"].string)
                let variants = s.liveVariants.filter { q.matches("sku", string: $0.sku) && q.matches("id", id: $0.variantId) }
                let bySKU = args["sortKey"].string == "SKU"
                return try Paginator.connection(
                    variants, key: { .init(value: bySKU ? Double($0.sku.filter(\.isNumber)) ?? 0 : 0, id: $0.variantId) },
                    node: { Self.variant($0, s) }, args: args, bulk: ctx.bulk, window: ctx.bulkWindow)
            },
            "orders": { _, args, ctx in
                let s = ctx.snapshot
                let q = SearchQuery(args["query"].string)
                let orders = s.orders.values.filter {
                    q.matches("updated_at", date: $0.updatedAt) && q.matches("created_at", date: $0.createdAt) && q.matches("id", id: $0.id)
                        && q.matches("status", string: Self.status($0))
                }
                let sortKey = args["sortKey"].string ?? "ID"
                return try Paginator.connection(
                    orders,
                    key: { o in
                        switch sortKey {
                        case "UPDATED_AT": .init(value: o.updatedAt.timeIntervalSince1970, id: o.id)
                        case "CREATED_AT", "PROCESSED_AT": .init(value: o.createdAt.timeIntervalSince1970, id: o.id)
                        default: .init(value: 0, id: o.id)
                        }
                    }, node: Self.order, args: args, bulk: ctx.bulk, window: ctx.bulkWindow)
            },
            "ordersCount": { _, args, ctx in
                let q = SearchQuery(args["query"].string)
                let count = ctx.snapshot.orders.values.filter {
                    q.matches("updated_at", date: $0.updatedAt) && q.matches("created_at", date: $0.createdAt) && q.matches("id", id: $0.id)
                }.count
                // Shopify's default limit is 10,000; an explicit null means none.
                let limit: Int? = args["limit"] == .null ? nil : (args["limit"].int ?? 10_000)
                if let limit, count > limit { return ["count": limit, "precision": "AT_LEAST"] as Node }
                return ["count": count, "precision": "EXACT"] as Node
            },
            "bulkOperation": { _, args, ctx in
                await ctx.api.bulk.operation(try Self.id(args["id"].string ?? "", "BulkOperation")).map(BulkOperations.node)
            },
            "currentBulkOperation": { _, args, ctx in
                if args["type"].string == "MUTATION" { return nil }
                return await ctx.api.bulk.current.map(BulkOperations.node)
            },
        ]
        try resolve("QueryRoot", queries.merging(priceListQueries) { a, _ in a })
        let mutations: [String: InfoResolver] = [
            "inventorySetQuantities": { _, args, ctx, info in try await self.setQuantities(args, ctx, info) },
            "bulkOperationRunQuery": { _, args, ctx, _ in try await self.runBulkQuery(args["query"].string ?? "", ctx) },
        ]
        try resolveWithInfo("Mutation", mutations.merging(priceListMutations) { a, _ in a })
        try installPriceListResolvers()
        try resolve("InventoryItem", [
            "variant": { source, _, ctx in
                let s = ctx.snapshot
                return s.variant(item: Self.internalId(source)).map { Self.variant($0, s) }
            },
            "inventoryLevels": { source, args, ctx in
                let s = ctx.snapshot
                let item = Self.internalId(source)
                let stocked = s.locations.filter { s.stock[item]?[$0] != nil }
                return try Paginator.connection(
                    stocked, key: { .init(value: 0, id: $0) }, node: { Self.level(item: item, location: $0, s) }, args: args, bulk: ctx.bulk)
            },
            "inventoryLevel": { source, args, ctx in
                let s = ctx.snapshot
                let item = Self.internalId(source)
                let location = try Self.id(args["locationId"].string ?? "", "Location")
                return s.stock[item]?[location] == nil ? nil : Self.level(item: item, location: location, s)
            },
        ])
        try resolve("Order", [
            "lineItems": { source, args, ctx in
                let lines = (source as? Node)?["_lines"] as? [Node] ?? []
                return try Paginator.connection(
                    lines, key: { .init(value: 0, id: $0["_id"] as? Int64 ?? 0) }, node: { $0 }, args: args, bulk: ctx.bulk)
            }
        ])
        try resolve("InventoryLevel", [
            "item": { source, _, ctx in
                let s = ctx.snapshot
                return s.variant(item: (source as? Node)?["_item"] as? Int64 ?? 0).map { Self.item($0, s) }
            },
            "location": { source, _, _ in Self.location((source as? Node)?["_location"] as? Int64 ?? 0) },
            "quantities": { source, args, ctx in
                let s = ctx.snapshot
                let node = source as? Node
                let item = node?["_item"] as? Int64 ?? 0
                let location = node?["_location"] as? Int64 ?? 0
                let available = s.stock[item]?[location] ?? 0
                let committed = s.committed[item]?[location] ?? 0
                let updated = ShopifyAdminAPI.iso(s.levelUpdated(item: item, location: location))
                return try (args["names"].array ?? []).map { name -> Node in
                    let n = name.string ?? ""
                    let quantity: Int
                    switch n {
                    case "available": quantity = available
                    case "committed": quantity = committed
                    case "on_hand": quantity = available + committed
                    case "incoming", "reserved", "damaged", "safety_stock", "quality_control": quantity = 0
                    default: throw GraphQLError(message: "Invalid quantity name: '\(n)'", extensions: ["code": "BAD_REQUEST"])
                    }
                    return ["name": n, "quantity": quantity, "updatedAt": updated]
                }
            },
        ])
        try resolve("ProductVariant", [
            "inventoryItem": { source, _, ctx in
                let s = ctx.snapshot
                return s.variant(item: (source as? Node)?["_item"] as? Int64 ?? 0).map { Self.item($0, s) }
            }
        ])
    }

    typealias Resolver = @Sendable (_ source: any Sendable, _ args: Map, _ context: RequestContext) async throws -> (any Sendable)?
    typealias InfoResolver =
        @Sendable (_ source: any Sendable, _ args: Map, _ context: RequestContext, _ info: GraphQLResolveInfo) async throws -> (any Sendable)?

    func resolve(_ typeName: String, _ resolvers: [String: Resolver]) throws {
        try resolveWithInfo(typeName, resolvers.mapValues { r in { @Sendable source, args, ctx, _ in try await r(source, args, ctx) } })
    }

    /// Sets resolvers on a type of the schema built from the SDL (GraphQLSwift lets fields be changed during setup).
    func resolveWithInfo(_ typeName: String, _ resolvers: [String: InfoResolver]) throws {
        guard let type = schema.getType(name: typeName) as? GraphQLObjectType else { throw GraphQLError(message: "no type \(typeName)") }
        let fields = try type.fields()
        for (name, resolver) in resolvers {
            guard let field = fields[name] else { throw GraphQLError(message: "no field \(typeName).\(name)") }
            field.resolve = { @Sendable source, args, context, info in
                do {
                    return try await resolver(source, args, context as! RequestContext, info)
                } catch let e as AdminAPIError {
                    throw e.graphQLError
                }
            }
        }
        type.fields = { fields }
    }

    // MARK: Nodes

    static func gid(_ type: String, _ id: Int64) -> String { "gid://shopify/\(type)/\(id)" }

    /// The numeric id of a global id of the given type.
    static func id(_ gid: String, _ type: String) throws -> Int64 {
        let prefix = "gid://shopify/\(type)/"
        guard gid.hasPrefix(prefix), let id = Int64(gid.dropFirst(prefix.count).prefix { $0 != "?" }) else {
            throw AdminAPIError.invalidId(gid)
        }
        return id
    }

    static func internalId(_ source: any Sendable) -> Int64 { (source as? Node)?["_id"] as? Int64 ?? 0 }

    static func location(_ id: Int64) -> Node {
        ["_id": id, "id": gid("Location", id), "legacyResourceId": "\(id)", "name": "Warehouse \(id % 1000)", "isActive": true]
    }

    static func item(_ v: ShopifyStore.Variant, _ s: ShopSnapshot) -> Node {
        [
            "_id": v.inventoryItemId, "id": gid("InventoryItem", v.inventoryItemId), "legacyResourceId": "\(v.inventoryItemId)",
            "sku": v.sku, "tracked": true, "updatedAt": iso(s.itemUpdated(v.inventoryItemId)),
        ]
    }

    static func variant(_ v: ShopifyStore.Variant, _ s: ShopSnapshot) -> Node {
        [
            "_id": v.variantId, "_item": v.inventoryItemId, "id": gid("ProductVariant", v.variantId), "legacyResourceId": "\(v.variantId)",
            "sku": v.sku, "title": "Default Title", "price": "\(v.price)", "updatedAt": iso(s.createdAt),
        ]
    }

    static func level(item: Int64, location: Int64, _ s: ShopSnapshot) -> Node {
        [
            "_item": item, "_location": location, "id": "gid://shopify/InventoryLevel/\(location)?inventory_item_id=\(item)",
            "updatedAt": iso(s.levelUpdated(item: item, location: location)),
        ]
    }

    /// Shopify's order search `status`: `cancelled`, `closed` (everything fulfilled) or `open`.
    static func status(_ o: ShopifyOrderFixture) -> String {
        o.cancelled ? "cancelled" : o.fulfillmentStatus == "fulfilled" ? "closed" : "open"
    }

    static func order(_ o: ShopifyOrderFixture) -> Node {
        let status: String =
            switch o.financialStatus {
            case "voided": "VOIDED"
            case "partially_refunded": "PARTIALLY_REFUNDED"
            case "refunded": "REFUNDED"
            case "pending": "PENDING"
            case "authorized": "AUTHORIZED"
            default: "PAID"
            }
        var node: Node = [
            "_id": o.id, "id": gid("Order", o.id), "legacyResourceId": "\(o.id)", "name": "#\(1000 + o.id % 1_000_000)",
            "createdAt": iso(o.createdAt), "updatedAt": iso(o.updatedAt), "currencyCode": o.currency, "displayFinancialStatus": status,
            "totalPriceSet": [
                "shopMoney": ["amount": "\(o.total)", "currencyCode": o.currency] as Node,
                "presentmentMoney": ["amount": "\(o.total)", "currencyCode": o.presentmentCurrency] as Node,
            ] as Node,
            "totalRefundedSet": [
                "shopMoney": ["amount": "\(o.refunded)", "currencyCode": o.currency] as Node,
                "presentmentMoney": ["amount": "\(o.refunded)", "currencyCode": o.presentmentCurrency] as Node,
            ] as Node,
        ]
        if o.cancelled { node["cancelledAt"] = iso(o.updatedAt) }
        // Shopify's `unfulfilledQuantity`: the units not yet fulfilled (a cancelled order's lines keep theirs).
        node["_lines"] = o.lines.map { l -> Node in
            var line: Node = [
                "_id": l.id, "id": gid("LineItem", l.id), "quantity": l.quantity, "currentQuantity": o.cancelled ? 0 : l.quantity,
                "unfulfilledQuantity": l.quantity - (l.fulfilled ?? 0),
            ]
            if let sku = l.sku { line["sku"] = sku }
            return line
        }
        return node
    }

    // MARK: Mutations

    private func setQuantities(_ args: Map, _ ctx: RequestContext, _ info: GraphQLResolveInfo) async throws -> Node {
        guard let directive = info.fieldASTs.first?.directives.first(where: { $0.name.value == "idempotent" }),
            let keyArgument = directive.arguments.first(where: { $0.name.value == "key" }),
            let key = Self.string(keyArgument.value, info.variableValues), !key.isEmpty
        else { throw AdminAPIError.idempotencyRequired }
        let input = args["input"]
        let quantities = input["quantities"].array ?? []
        if quantities.count > 250 { throw AdminAPIError.inputTooLarge(quantities.count) }
        var rows: [ShopifyStore.QuantityRow] = []
        var invalid: [ShopifyStore.UserError] = []
        for (i, q) in quantities.enumerated() {
            if q["changeFromQuantity"].isUndefined { throw AdminAPIError.changeFromQuantityRequired(index: i) }
            guard let item = try? Self.id(q["inventoryItemId"].string ?? "", "InventoryItem") else {
                invalid.append(.init(code: "INVALID_INVENTORY_ITEM", field: ["input", "quantities", "\(i)", "inventoryItemId"], message: "The specified inventory item could not be found."))
                continue
            }
            guard let location = try? Self.id(q["locationId"].string ?? "", "Location") else {
                invalid.append(.init(code: "INVALID_LOCATION", field: ["input", "quantities", "\(i)", "locationId"], message: "The specified location could not be found."))
                continue
            }
            rows.append(.init(item: item, location: location, quantity: q["quantity"].int ?? 0, changeFrom: q["changeFromQuantity"].int))
        }
        if !invalid.isEmpty { return ["userErrors": invalid.map(Self.userError)] }
        let (outcome, echo) = await store.setQuantities(
            name: input["name"].string ?? "", reason: input["reason"].string ?? "", reference: input["referenceDocumentUri"].string,
            rows: rows, idempotencyKey: key)
        if !echo.isEmpty {
            let deliverer = self.deliverer
            Task { await deliverer.deliver(echo) }
        }
        ctx.refresh(await store.snapshot())
        switch outcome {
        case .rejected(let errors):
            return ["userErrors": errors.map(Self.userError)]
        case .applied(let groupId, let createdAt, let reason, let reference, let changes):
            let s = ctx.snapshot
            var group: Node = [
                "id": Self.gid("InventoryAdjustmentGroup", groupId), "createdAt": Self.iso(createdAt), "reason": reason,
                "changes": changes.map { c -> Node in
                    [
                        "name": c.name, "delta": c.delta, "quantityAfterChange": c.quantityAfterChange,
                        "item": s.variant(item: c.item).map { Self.item($0, s) } as (any Sendable)?, "location": Self.location(c.location),
                    ]
                },
            ]
            if let reference { group["referenceDocumentUri"] = reference }
            return ["inventoryAdjustmentGroup": group, "userErrors": [Node]()]
        }
    }

    static func userError(_ e: ShopifyStore.UserError) -> Node { ["code": e.code, "field": e.field, "message": e.message] }

    static func string(_ value: Value, _ variables: [String: any Sendable]) -> String? {
        if let s = value as? StringValue { return s.value }
        if let v = value as? Variable {
            let raw = variables[v.name.value]
            return (raw as? Map)?.string ?? raw as? String
        }
        return nil
    }

    private func runBulkQuery(_ query: String, _ ctx: RequestContext) async throws -> Node {
        func invalid(_ message: String) -> Node {
            ["bulkOperation": nil as (any Sendable)?, "userErrors": [["code": "INVALID", "field": ["query"], "message": message] as Node]]
        }
        let document: Document
        do { document = try parse(source: Source(body: query, name: "bulk query")) } catch { return invalid("Invalid bulk query: \(error)") }
        let errors = validate(schema: schema, ast: document)
        if let first = errors.first { return invalid("Invalid bulk query: \(Self.shopifyStyle(first).message)") }
        let cost = QueryCost(fields: fieldTable, document: document, variables: [:])
        if let problem = BulkOperations.check(document, cost: cost) { return invalid(problem) }
        switch await bulk.create(query: query) {
        case .inProgress(let running):
            return [
                "bulkOperation": nil as (any Sendable)?,
                "userErrors": [
                    [
                        "code": "OPERATION_IN_PROGRESS", "field": nil as (any Sendable)?,
                        "message": "A bulk query operation for this app and shop is already in progress: \(Self.gid("BulkOperation", running.id)).",
                    ] as Node
                ],
            ]
        case .created(let op):
            let baseURL = ctx.baseURL
            Task { await self.runBulk(op.id, document: document, baseURL: baseURL) }
            return ["bulkOperation": BulkOperations.node(op), "userErrors": [Node]()]
        }
    }

    /// Runs a bulk query as Shopify does, in the background: the top-level connection is read in slices of
    /// `bulkSlice` nodes, each executed and flattened to JSONL on its own, until a slice comes back empty.
    private func runBulk(_ id: Int64, document: Document, baseURL: String) async {
        try? await Task.sleep(for: bulkDelay / 2)
        await bulk.markRunning(id)
        try? await Task.sleep(for: bulkDelay / 2)
        let snapshot = await store.snapshot()
        var jsonl = Data()
        var objects = 0
        var roots = 0
        var start = 0
        while true {
            let context = RequestContext(
                snapshot: snapshot, api: self, bulk: true, baseURL: baseURL, bulkWindow: start..<(start + Self.bulkSlice))
            guard let result = try? await execute(schema: schema, documentAST: document, rootValue: (), context: context),
                result.errors.isEmpty, let data = result.data
            else {
                await bulk.fail(id)
                return
            }
            let slice = BulkOperations.jsonl(data)
            guard slice.roots > 0 else { break }
            jsonl.append(slice.0)
            objects += slice.objects
            roots += slice.roots
            start += Self.bulkSlice
        }
        await bulk.complete(id, jsonl: jsonl, objects: objects, roots: roots, url: "\(baseURL)/_sim/bulk/\(id).jsonl")
    }

    static let bulkSlice = 1000
}
