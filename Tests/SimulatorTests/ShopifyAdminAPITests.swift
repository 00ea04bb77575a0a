import AsyncHTTPClient
import BridgeTestSupport
import Foundation
import Hummingbird
import NIOCore
import Shopify
import ShopifySimulator
import Testing

/// shopify-sim's Admin GraphQL API: validation the way Shopify rejects, reads with search and cursors, cost and the
/// leaky bucket, inventorySetQuantities with compare-and-set and idempotency keys, bulk operations with JSONL.
@Suite("shopify-sim Admin GraphQL API")
struct ShopifyAdminAPITests {
    static let shop = "acme.myshopify.com"
    static let token = "shpat_test_token"

    /// A shop with `skus` variants x 2 locations and its API (nothing subscribed to webhooks unless a test does).
    final class Fixture: Sendable {
        let store: ShopifyStore
        let deliverer: WebhookDeliverer
        let api: ShopifyAdminAPI

        init(skus: Int = 30, plan: ShopifyPlan = .standard, bucket: ThrottleBucket? = nil) throws {
            store = ShopifyStore(domain: ShopifyAdminAPITests.shop, seed: 11, skus: skus, locations: 2, initialStock: 100)
            deliverer = WebhookDeliverer(domain: ShopifyAdminAPITests.shop, secret: "s")
            api = try ShopifyAdminAPI(
                store: store, deliverer: deliverer, accessToken: ShopifyAdminAPITests.token, plan: plan, bucket: bucket,
                bulkDelay: .milliseconds(100))
        }

        /// Runs one GraphQL request through the API and returns the decoded JSON response.
        func gql(_ query: String, _ variables: [String: Any] = [:]) async throws -> [String: Any] {
            let body = try JSONSerialization.data(withJSONObject: ["query": query, "variables": variables])
            let (status, data) = await api.handle(body: body, contentType: "application/json", baseURL: "http://127.0.0.1")
            #expect(status == .ok)
            return try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
        }

        func shutdown() async { await deliverer.shutdown() }
    }

    static func errors(_ r: [String: Any]) -> [[String: Any]] { r["errors"] as? [[String: Any]] ?? [] }
    static func code(_ r: [String: Any]) -> String? { (errors(r).first?["extensions"] as? [String: Any])?["code"] as? String }
    static func cost(_ r: [String: Any]) -> [String: Any] { (r["extensions"] as? [String: Any])?["cost"] as? [String: Any] ?? [:] }
    static func int(_ v: Any?) -> Int? { (v as? NSNumber)?.intValue }
    static func item(_ n: Int) -> String { "gid://shopify/InventoryItem/\(45_000_000_000 + Int64(n))" }
    static let location1 = "gid://shopify/Location/70000000001"

    static let setMutation = """
        mutation Set($input: InventorySetQuantitiesInput!, $key: String!) {
          inventorySetQuantities(input: $input) @idempotent(key: $key) {
            inventoryAdjustmentGroup { id reason changes { name delta quantityAfterChange item { sku } location { id } } }
            userErrors { code field message }
          }
        }
        """

    static func setInput(_ rows: [[String: Any]], name: String = "available", reason: String = "correction") -> [String: Any] {
        ["name": name, "reason": reason, "referenceDocumentUri": "erp://stock/run-1", "quantities": rows]
    }

    @Test("unknown fields and bad arguments are rejected the way Shopify rejects them, with no data")
    func validation() async throws {
        let f = try Fixture()
        defer { Task { await f.shutdown() } }
        let r = try await f.gql("{ locations(first: 5) { nodes { id warehouseCode } } }")
        #expect(r["data"] == nil)
        #expect(Self.errors(r).first?["message"] as? String == "Field 'warehouseCode' doesn't exist on type 'Location'")
        #expect(Self.code(r) == "undefinedField")
        #expect(Self.cost(r)["throttleStatus"] != nil, "every response carries the bucket state")
        let noPage = try await f.gql("{ inventoryItems { nodes { id } } }")
        #expect(Self.code(noPage) == "BAD_REQUEST")
        let tooBig = try await f.gql("{ inventoryItems(first: 251) { nodes { id } } }")
        #expect(Self.code(tooBig) == "BAD_REQUEST")
        let syntax = try await f.gql("{ locations(first: 5) { nodes { id } }")
        #expect(!Self.errors(syntax).isEmpty && syntax["data"] == nil)
    }

    @Test("responses list fields in the order the query selected them: data, then extensions")
    func fieldOrder() async throws {
        let f = try Fixture()
        defer { Task { await f.shutdown() } }
        for query in [
            #"{ inventoryItems(first: 1) { nodes { sku id inventoryLevels(first: 1) { nodes { quantities(names: ["available"]) { quantity name } } } } } }"#,
            #"{ inventoryItems(first: 1) { nodes { id sku inventoryLevels(first: 1) { nodes { quantities(names: ["available"]) { name quantity } } } } } }"#,
        ] {
            let body = try JSONSerialization.data(withJSONObject: ["query": query])
            let (_, data) = await f.api.handle(body: body, contentType: "application/json", baseURL: "http://127.0.0.1")
            let text = String(decoding: data, as: UTF8.self)
            #expect(text.hasPrefix(#"{"data":{"inventoryItems":{"nodes":[{""#), "\(text)")
            #expect(text.contains(#","extensions":{"cost":{"requestedQueryCost":"#), "\(text)")
            if query.contains("sku id") {
                #expect(text.contains(#"[{"sku":"SKU-00001","id":"#) && text.contains(#"{"quantity":100,"name":"available"}"#), "\(text)")
            } else {
                #expect(text.contains(#"[{"id":"gid://shopify/InventoryItem/45000000001","sku":"#) && text.contains(#"{"name":"available","quantity":100}"#), "\(text)")
            }
        }
    }

    @Test("locations, inventory items by SKU with levels and quantities, variants by SKU")
    func reads() async throws {
        let f = try Fixture()
        defer { Task { await f.shutdown() } }
        let locations = try await f.gql("{ locations(first: 10) { nodes { id name isActive legacyResourceId } } }")
        let nodes = ((locations["data"] as? [String: Any])?["locations"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
        #expect(nodes.map { $0["id"] as? String } == [Self.location1, "gid://shopify/Location/70000000002"])
        #expect(nodes.first?["legacyResourceId"] as? String == "70000000001")

        _ = await f.store.placeOrder(at: Date())
        let sold = await f.store.orders.values.first!.lines.first!
        let sku = try #require(sold.sku)
        let r = try await f.gql(
            """
            query($q: String!) { inventoryItems(first: 5, query: $q) { edges { cursor node { id sku tracked variant { id }
              inventoryLevels(first: 5) { nodes { location { id } quantities(names: ["available", "committed", "on_hand"]) { name quantity } } } } } } }
            """, ["q": "sku:\(sku)"])
        let edges = ((r["data"] as? [String: Any])?["inventoryItems"] as? [String: Any])?["edges"] as? [[String: Any]] ?? []
        #expect(edges.count == 1)
        let node = edges.first?["node"] as? [String: Any] ?? [:]
        #expect(node["sku"] as? String == sku)
        let levels = (node["inventoryLevels"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
        #expect(levels.count == 2)
        let first = (levels.first?["quantities"] as? [[String: Any]] ?? []).reduce(into: [String: Int]()) { $0[$1["name"] as! String] = Self.int($1["quantity"]) }
        #expect(first["available"] == 100 - sold.quantity, "the order took stock")
        #expect(first["committed"] == sold.quantity)
        #expect(first["on_hand"] == 100)

        let variants = try await f.gql(#"{ productVariants(first: 3, query: "sku:SKU-00002") { nodes { sku price inventoryItem { id } } } }"#)
        let v = ((variants["data"] as? [String: Any])?["productVariants"] as? [String: Any])?["nodes"] as? [[String: Any]] ?? []
        #expect(v.count == 1 && v.first?["sku"] as? String == "SKU-00002")
        #expect((v.first?["inventoryItem"] as? [String: Any])?["id"] as? String == Self.item(2))
    }

    @Test("cursor pagination walks every item exactly once; orders filter on updated_at and sort by it")
    func pagination() async throws {
        let f = try Fixture(skus: 120)
        defer { Task { await f.shutdown() } }
        var seen: [String] = []
        var after: Any = NSNull()
        var pages = 0
        while pages < 10 {
            let r = try await f.gql(
                "query($after: String) { inventoryItems(first: 50, after: $after) { nodes { sku } pageInfo { hasNextPage endCursor } } }",
                ["after": after])
            let conn = (r["data"] as? [String: Any])?["inventoryItems"] as? [String: Any] ?? [:]
            seen += (conn["nodes"] as? [[String: Any]] ?? []).compactMap { $0["sku"] as? String }
            pages += 1
            let info = conn["pageInfo"] as? [String: Any] ?? [:]
            guard info["hasNextPage"] as? Bool == true else { break }
            after = info["endCursor"] as Any
        }
        #expect(pages == 3)
        #expect(seen.count == 120 && Set(seen).count == 120)

        let t0 = Date(timeIntervalSince1970: 1_790_000_000)
        for i in 0..<6 { _ = await f.store.placeOrder(at: t0.addingTimeInterval(Double(i) * 60)) }
        let r = try await f.gql(
            #"{ orders(first: 2, query: "updated_at:>'2026-09-21T14:14:00Z'", sortKey: UPDATED_AT, reverse: true) { nodes { updatedAt displayFinancialStatus totalPriceSet { shopMoney { amount currencyCode } } } pageInfo { hasNextPage } } }"#
        )
        let conn = (r["data"] as? [String: Any])?["orders"] as? [String: Any] ?? [:]
        let got = (conn["nodes"] as? [[String: Any]] ?? []).compactMap { $0["updatedAt"] as? String }
        // 2026-09-21T14:13:20Z is t0; orders at +60 s ... +300 s; after 14:14:00 -> 4 orders, newest first.
        #expect(got == ["2026-09-21T14:18:20Z", "2026-09-21T14:17:20Z"], "\(r)")
        #expect((conn["pageInfo"] as? [String: Any])?["hasNextPage"] as? Bool == true)
        let money = ((conn["nodes"] as? [[String: Any]])?.first?["totalPriceSet"] as? [String: Any])?["shopMoney"] as? [String: Any]
        #expect(money?["amount"] is String, "money is a decimal string")
    }

    @Test("costs follow Shopify's rules: requested from page sizes, actual from what came back, mutations 10")
    func costs() async throws {
        let f = try Fixture()
        defer { Task { await f.shutdown() } }
        let nested = try await f.gql(
            #"{ inventoryItems(first: 10) { nodes { id inventoryLevels(first: 5) { nodes { quantities(names: ["available"]) { quantity } } } } } }"#)
        // 2 + 10 x (1 + (2 + 5 x (1 + 1))) requested; 2 + 10 x (1 + (2 + 2 x (1 + 1))) actual (2 locations).
        #expect(Self.int(Self.cost(nested)["requestedQueryCost"]) == 132)
        #expect(Self.int(Self.cost(nested)["actualQueryCost"]) == 72)
        let simple = try await f.gql("{ locations(first: 10) { nodes { id } } }")
        #expect(Self.int(Self.cost(simple)["requestedQueryCost"]) == 12)
        #expect(Self.int(Self.cost(simple)["actualQueryCost"]) == 4)
        let mutation = try await f.gql(Self.setMutation, ["key": "k-cost", "input": Self.setInput([["inventoryItemId": Self.item(1), "locationId": Self.location1, "quantity": 5, "changeFromQuantity": NSNull()]])])
        #expect(Self.int(Self.cost(mutation)["requestedQueryCost"]) == 10)
        let status = Self.cost(mutation)["throttleStatus"] as? [String: Any] ?? [:]
        #expect(Self.int(status["maximumAvailable"]) == 2000 && Self.int(status["restoreRate"]) == 100)

        let huge = try await f.gql(#"{ inventoryItems(first: 250) { nodes { inventoryLevels(first: 10) { nodes { id } } } } }"#)
        #expect(Self.code(huge) == "MAX_COST_EXCEEDED")
        #expect(huge["data"] == nil)
    }

    @Test("the leaky bucket throttles (HTTP 200, THROTTLED, no actual cost) and refills at the restore rate")
    func throttling() async throws {
        // A bucket of 10 points that refills at 0.001 points/s: what comes back while the test runs is negligible,
        // however slow the machine (the refill itself is checked on the bucket below).
        let f = try Fixture(bucket: ThrottleBucket(restoreRate: 0.001, maximumAvailable: 10))
        defer { Task { await f.shutdown() } }
        let query = "{ locations(first: 1) { nodes { id } } }"  // 3 points, all used
        for expected in [7, 4, 1] {
            let r = try await f.gql(query)
            #expect(Self.code(r) == nil)
            let status = Self.cost(r)["throttleStatus"] as? [String: Any] ?? [:]
            #expect(Self.int(status["maximumAvailable"]) == 10)
            #expect((Self.int(status["currentlyAvailable"]) ?? -1) >= expected, "after taking 3: \(status)")
            #expect((Self.int(status["currentlyAvailable"]) ?? 99) < expected + 3, "\(status)")
        }
        let r = try await f.gql(query)
        #expect(Self.code(r) == "THROTTLED", "\(r)")
        #expect(r["data"] == nil)
        #expect(Self.cost(r)["actualQueryCost"] is NSNull)
        #expect(Self.int(Self.cost(r)["requestedQueryCost"]) == 3)
        #expect((Self.int((Self.cost(r)["throttleStatus"] as? [String: Any])?["currentlyAvailable"]) ?? 99) < 3)

        // Refill at the restore rate, capped at 20 s of it.
        let bucket = ThrottleBucket(restoreRate: 100)
        #expect(bucket.maximumAvailable == 2000)
        #expect(bucket.take(2000).granted)
        #expect(!bucket.take(1500).granted, "nothing like 15 s has passed")
        try await Task.sleep(for: .milliseconds(300))
        #expect(bucket.current.currentlyAvailable >= 30, "~100 points/s came back")
        #expect(bucket.refund(10_000).currentlyAvailable == 2000, "never above the maximum")
    }

    @Test("inventorySetQuantities: @idempotent and changeFromQuantity required, compare-and-set, user errors")
    func setQuantities() async throws {
        let f = try Fixture()
        defer { Task { await f.shutdown() } }
        let row: [String: Any] = ["inventoryItemId": Self.item(1), "locationId": Self.location1, "quantity": 7, "changeFromQuantity": 100]
        let noKey = try await f.gql(
            "mutation($input: InventorySetQuantitiesInput!) { inventorySetQuantities(input: $input) { userErrors { code } } }",
            ["input": Self.setInput([row])])
        #expect(Self.code(noKey) == "BAD_REQUEST")
        #expect((Self.errors(noKey).first?["message"] as? String)?.contains("@idempotent directive is required") == true)
        let noCompare = try await f.gql(
            Self.setMutation, ["key": "k0", "input": Self.setInput([["inventoryItemId": Self.item(1), "locationId": Self.location1, "quantity": 7]])])
        #expect(Self.code(noCompare) == "INVALID_FIELD_ARGUMENTS")
        #expect(await f.store.available(item: 45_000_000_001, location: 70_000_000_001) == 100, "nothing changed")

        let ok = try await f.gql(Self.setMutation, ["key": "k1", "input": Self.setInput([row])])
        let payload = ((ok["data"] as? [String: Any])?["inventorySetQuantities"] as? [String: Any]) ?? [:]
        #expect((payload["userErrors"] as? [Any])?.isEmpty == true, "\(ok)")
        let changes = ((payload["inventoryAdjustmentGroup"] as? [String: Any])?["changes"] as? [[String: Any]]) ?? []
        #expect(changes.map { $0["name"] as? String } == ["available", "on_hand"])
        #expect(changes.map { Self.int($0["delta"]) } == [-93, -93])
        #expect(await f.store.available(item: 45_000_000_001, location: 70_000_000_001) == 7)

        // Compare-and-set with a stale expectation: a user error, nothing applied.
        let stale = try await f.gql(Self.setMutation, ["key": "k2", "input": Self.setInput([row.merging(["quantity": 9]) { $1 }])])
        let staleErrors = (((stale["data"] as? [String: Any])?["inventorySetQuantities"] as? [String: Any])?["userErrors"] as? [[String: Any]]) ?? []
        #expect(staleErrors.first?["code"] as? String == "CHANGE_FROM_QUANTITY_STALE")
        #expect(staleErrors.first?["field"] as? [String] == ["input", "quantities", "0", "changeFromQuantity"])
        #expect(await f.store.available(item: 45_000_000_001, location: 70_000_000_001) == 7)

        // Validation: unknown item, unknown reason, a duplicate pair; all or nothing.
        let bad = try await f.gql(
            Self.setMutation,
            [
                "key": "k3",
                "input": Self.setInput(
                    [
                        ["inventoryItemId": Self.item(999), "locationId": Self.location1, "quantity": 1, "changeFromQuantity": NSNull()],
                        ["inventoryItemId": Self.item(2), "locationId": Self.location1, "quantity": 1, "changeFromQuantity": NSNull()],
                        ["inventoryItemId": Self.item(2), "locationId": Self.location1, "quantity": 2, "changeFromQuantity": NSNull()],
                    ], reason: "because"),
            ])
        let codes = Set(
            ((((bad["data"] as? [String: Any])?["inventorySetQuantities"] as? [String: Any])?["userErrors"] as? [[String: Any]]) ?? []).compactMap {
                $0["code"] as? String
            })
        #expect(codes == ["INVALID_INVENTORY_ITEM", "INVALID_REASON", "NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR"])
        #expect(await f.store.available(item: 45_000_000_002, location: 70_000_000_001) == 100)
    }

    @Test("idempotency keys: a replay returns the original result and applies nothing; other variables -> mismatch")
    func idempotency() async throws {
        let f = try Fixture()
        defer { Task { await f.shutdown() } }
        let receiver = await Receiver()
        await f.deliverer.subscribe(topic: "inventory_levels/update", url: receiver.url)
        let set7: [String: Any] = ["key": "run-1/item-3", "input": Self.setInput([["inventoryItemId": Self.item(3), "locationId": Self.location1, "quantity": 7, "changeFromQuantity": NSNull()]])]
        let first = try await f.gql(Self.setMutation, set7)
        let set9: [String: Any] = ["key": "run-2/item-3", "input": Self.setInput([["inventoryItemId": Self.item(3), "locationId": Self.location1, "quantity": 9, "changeFromQuantity": NSNull()]])]
        _ = try await f.gql(Self.setMutation, set9)
        #expect(await f.store.available(item: 45_000_000_003, location: 70_000_000_001) == 9)
        let replay = try await f.gql(Self.setMutation, set7)
        #expect(
            NSDictionary(dictionary: replay["data"] as? [String: Any] ?? [:]).isEqual(to: first["data"] as? [String: Any] ?? ["-": 0]),
            "the replay answers what the first call answered")
        #expect(await f.store.available(item: 45_000_000_003, location: 70_000_000_001) == 9, "and changes nothing")
        var other = set7
        other["input"] = Self.setInput([["inventoryItemId": Self.item(3), "locationId": Self.location1, "quantity": 8, "changeFromQuantity": NSNull()]])
        let mismatch = try await f.gql(Self.setMutation, other)
        let errors = (((mismatch["data"] as? [String: Any])?["inventorySetQuantities"] as? [String: Any])?["userErrors"] as? [[String: Any]]) ?? []
        #expect(errors.first?["code"] as? String == "IDEMPOTENCY_KEY_PARAMETER_MISMATCH")
        // Each applied write echoes an inventory_levels/update webhook, as Shopify does; the replay does not.
        let deadline = Date().addingTimeInterval(10)
        while receiver.requests.withLock({ $0.count }) < 2, Date() < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(200))
        let echoes = receiver.requests.withLock { $0 }.compactMap { try? JSONSerialization.jsonObject(with: $0.body) as? [String: Any] }
        #expect(echoes.compactMap { Self.int($0["available"]) } == [7, 9])
        receiver.stop()
    }

    @Test("bulk operations: run, poll to COMPLETED, JSONL with __parentId over HTTP; one at a time; invalid queries refused")
    func bulkOperations() async throws {
        let f = try Fixture(skus: 40)
        defer { Task { await f.shutdown() } }
        let router = Router()
        f.api.addRoutes(to: router)
        ShopifySimulatorRoutes(store: f.store, deliverer: f.deliverer).addRoutes(to: router)
        let (port, server) = await TestHTTPServer.start(router, label: "shopify-admin")
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        func post(_ query: String, _ variables: [String: Any] = [:], token: String = ShopifyAdminAPITests.token) async throws -> (Int, [String: Any]) {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/admin/api/2026-07/graphql.json")
            request.method = .POST
            request.headers.add(name: "X-Shopify-Access-Token", value: token)
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: ["query": query, "variables": variables])))
            let response = try await client.execute(request, timeout: .seconds(10))
            let body = try await response.body.collect(upTo: 1 << 24)
            return (Int(response.status.code), (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]) ?? [:])
        }
        do {
            let (unauthorized, _) = try await post("{ locations(first: 1) { nodes { id } } }", token: "wrong")
            #expect(unauthorized == 401)

            // The inspection API: stock per item and location (available, committed, on hand) and the bucket.
            func get(_ path: String) async throws -> [String: Any] {
                let response = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)"), timeout: .seconds(10))
                let body = try await response.body.collect(upTo: 1 << 24)
                return (try? JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]) ?? [:]
            }
            let stockLevels = try await get("/_sim/stock")["levels"] as? [[String: Any]] ?? []
            #expect(stockLevels.count == 80, "40 items x 2 locations")
            #expect(stockLevels.allSatisfy { Self.int($0["on_hand"]) == (Self.int($0["available"]) ?? 0) + (Self.int($0["committed"]) ?? 0) })
            #expect(Self.int(try await get("/_sim/throttle")["maximumAvailable"]) == 2000)

            let run = """
                mutation { bulkOperationRunQuery(query: "{ inventoryItems { edges { node { id sku inventoryLevels { edges { node { id location { id } quantities(names: [\\"available\\"]) { quantity } } } } } } } }", groupObjects: false) {
                  bulkOperation { id status } userErrors { code message } } }
                """
            let (status, started) = try await post(run)
            #expect(status == 200)
            let op = ((started["data"] as? [String: Any])?["bulkOperationRunQuery"] as? [String: Any])?["bulkOperation"] as? [String: Any]
            let id = try #require(op?["id"] as? String, "\(started)")
            #expect(op?["status"] as? String == "CREATED")
            let (_, second) = try await post(run)
            let busy = ((second["data"] as? [String: Any])?["bulkOperationRunQuery"] as? [String: Any])?["userErrors"] as? [[String: Any]]
            #expect(busy?.first?["code"] as? String == "OPERATION_IN_PROGRESS")

            var done: [String: Any] = [:]
            let deadline = Date().addingTimeInterval(15)
            while Date() < deadline {
                let (_, polled) = try await post(
                    "query($id: ID!) { bulkOperation(id: $id) { status objectCount rootObjectCount url } }", ["id": id])
                done = (polled["data"] as? [String: Any])?["bulkOperation"] as? [String: Any] ?? [:]
                if done["status"] as? String == "COMPLETED" { break }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(done["status"] as? String == "COMPLETED")
            #expect(done["rootObjectCount"] as? String == "40")
            #expect(done["objectCount"] as? String == "120", "40 items + 80 levels")
            let url = try #require(done["url"] as? String)
            let response = try await client.execute(HTTPClientRequest(url: url), timeout: .seconds(10))
            let jsonl = String(buffer: try await response.body.collect(upTo: 1 << 24))
            let lines = jsonl.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(lines.count == 120)
            let items = lines.filter { $0["__parentId"] == nil }
            let levels = lines.filter { $0["__parentId"] != nil }
            #expect(items.count == 40 && levels.count == 80)
            #expect(Set(levels.compactMap { $0["__parentId"] as? String }) == Set(items.compactMap { $0["id"] as? String }))
            #expect(items.allSatisfy { $0["inventoryLevels"] == nil }, "children are their own lines")
            #expect(levels.allSatisfy { ($0["location"] as? [String: Any])?["id"] != nil }, "non-connection objects stay inline")

            let (_, invalid) = try await post(#"mutation { bulkOperationRunQuery(query: "{ location { id } }", groupObjects: false) { userErrors { code message } } }"#)
            let invalidErrors = ((invalid["data"] as? [String: Any])?["bulkOperationRunQuery"] as? [String: Any])?["userErrors"] as? [[String: Any]]
            #expect(invalidErrors?.first?["code"] as? String == "INVALID")

            // Orders in bulk, too.
            for _ in 0..<5 { _ = await f.store.placeOrder() }
            let (_, orders) = try await post(#"mutation { bulkOperationRunQuery(query: "{ orders(query: \"updated_at:>2020-01-01\") { edges { node { id updatedAt } } } }", groupObjects: false) { bulkOperation { id } userErrors { code } } }"#)
            let ordersId = try #require((((orders["data"] as? [String: Any])?["bulkOperationRunQuery"] as? [String: Any])?["bulkOperation"] as? [String: Any])?["id"] as? String, "\(orders)")
            var count: String?
            while Date() < deadline.addingTimeInterval(10) {
                let (_, polled) = try await post("query($id: ID!) { bulkOperation(id: $id) { status rootObjectCount } }", ["id": ordersId])
                let b = (polled["data"] as? [String: Any])?["bulkOperation"] as? [String: Any] ?? [:]
                if b["status"] as? String == "COMPLETED" {
                    count = b["rootObjectCount"] as? String
                    break
                }
                try await Task.sleep(for: .milliseconds(50))
            }
            #expect(count == "5")
        } catch {
            Issue.record(error)
        }
        try? await client.shutdown()
        server.cancel()
    }

    @Test("every document the bridge sends runs against shopify-sim without errors, within the query cost limit")
    func bridgeDocuments() async throws {
        let f = try Fixture(skus: 60)
        defer { Task { await f.shutdown() } }
        _ = await f.store.placeOrder()
        func run(_ document: String, _ variables: [String: Any]) async throws -> [String: Any] {
            let r = try await f.gql(document, variables)
            #expect(Self.errors(r).isEmpty, "\(Self.errors(r))")
            #expect((Self.int(Self.cost(r)["requestedQueryCost"]) ?? 9999) <= ShopifyAdminAPI.maxQueryCost)
            return r["data"] as? [String: Any] ?? [:]
        }
        typealias D = ShopifyAdminDocuments
        _ = try await run(D.locations, [:])
        let items = try await run(D.inventoryItems, ["query": "sku:SKU-00001"])
        #expect(((items["inventoryItems"] as? [String: Any])?["nodes"] as? [Any])?.count == 1)
        _ = try await run(D.variantsBySKU, ["query": "sku:SKU-00002"])
        let set = try await run(
            D.setQuantities,
            [
                "idempotencyKey": "doc-test-1",
                "input": Self.setInput([["inventoryItemId": Self.item(5), "locationId": Self.location1, "quantity": 42, "changeFromQuantity": 100]]),
            ])
        #expect(((set["inventorySetQuantities"] as? [String: Any])?["userErrors"] as? [Any])?.isEmpty == true)
        let orders = try await run(D.ordersUpdatedSince, ["query": "updated_at:>'2020-01-01T00:00:00Z'"])
        #expect(((orders["orders"] as? [String: Any])?["nodes"] as? [Any])?.count == 1)
        for query in [D.bulkInventoryQuery, D.bulkOrdersQuery] {
            let started = try await run(D.runBulkQuery, ["query": query])
            let id = try #require(((started["bulkOperationRunQuery"] as? [String: Any])?["bulkOperation"] as? [String: Any])?["id"] as? String, "\(started)")
            var status: String?
            let deadline = Date().addingTimeInterval(15)
            while status != "COMPLETED", Date() < deadline {
                try await Task.sleep(for: .milliseconds(50))
                status = (try await run(D.bulkOperation, ["id": id])["bulkOperation"] as? [String: Any])?["status"] as? String
            }
            #expect(status == "COMPLETED")
        }
    }
}
