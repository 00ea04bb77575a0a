import BridgeTestSupport
import ERPSimulator
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import SimulatorKit
import Testing

@Suite("erp-sim: inventory snapshot and change feed, B2B price lists, signed push events")
struct ERPInventoryTests {
    static let auth: HTTPFields = [.authorization: "Bearer k"]

    func app(inventory: ERPInventory, pusher: ERPPusher? = nil, store: ERPStore = ERPStore(skus: ["SKU-00001"])) -> Application<RouterResponder<BasicRequestContext>> {
        let router = Router()
        ERPSimulatorRoutes(store: store, apiKey: "k", inventory: inventory, pusher: pusher).addRoutes(to: router)
        return Application(router: router)
    }

    static func object(_ r: TestResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any]) ?? [:]
    }

    @Test("the paged snapshot lists every SKU x warehouse exactly once; the API key is required")
    func snapshotPaging() async throws {
        let inventory = ERPInventory(skus: 333, warehouses: 2, seed: 1)
        try await app(inventory: inventory).test(.router) { (client) async throws in
            #expect(try await client.execute(uri: "/api/v1/inventory", method: .get).status == .unauthorized)
            var seen: [String] = []
            var token: String? = "0"
            var pages = 0
            while let t = token {
                let r = try await client.execute(uri: "/api/v1/inventory?page_size=100&page_token=\(t)", method: .get, headers: Self.auth)
                #expect(r.status == .ok)
                let o = Self.object(r)
                let items = o["items"] as? [[String: Any]] ?? []
                seen += items.map { "\($0["sku"] ?? "")|\($0["warehouse"] ?? "")" }
                token = o["next_page_token"] as? String
                pages += 1
            }
            #expect(pages == 7)
            #expect(seen.count == 666)
            #expect(Set(seen).count == 666)
        }
    }

    @Test("the change feed returns movements after a cursor, in order, and nothing after the last")
    func changeFeed() async throws {
        let inventory = ERPInventory(skus: 50, warehouses: 2, seed: 2)
        let moves = await inventory.randomMovements(25, skuRange: 10)
        #expect(moves.count == 25)
        try await app(inventory: inventory).test(.router) { (client) async throws in
            let first = Self.object(try await client.execute(uri: "/api/v1/inventory/changes?cursor=0&limit=10", method: .get, headers: Self.auth))
            let changes = first["changes"] as? [[String: Any]] ?? []
            #expect(changes.compactMap { ($0["seq"] as? NSNumber)?.int64Value } == Array(1...10))
            #expect(first["cursor"] as? String == "10")
            let rest = Self.object(try await client.execute(uri: "/api/v1/inventory/changes?cursor=10", method: .get, headers: Self.auth))
            #expect((rest["changes"] as? [[String: Any]])?.count == 15)
            #expect(rest["cursor"] as? String == "25")
            let none = Self.object(try await client.execute(uri: "/api/v1/inventory/changes?cursor=25", method: .get, headers: Self.auth))
            #expect((none["changes"] as? [[String: Any]])?.isEmpty == true)
            #expect(none["cursor"] as? String == "25", "an empty page keeps the cursor")
            // The last change of a level is its snapshot value.
            let last = try #require(moves.last)
            #expect(await inventory.level(sku: last.sku, warehouse: last.warehouse)?.available == last.available)
        }
    }

    @Test("B2B price lists and their prices, paged, as decimal strings")
    func priceLists() async throws {
        let inventory = ERPInventory(skus: 120, seed: 3)
        try await app(inventory: inventory).test(.router) { (client) async throws in
            let lists = Self.object(try await client.execute(uri: "/api/v1/price-lists", method: .get, headers: Self.auth))["price_lists"] as? [[String: Any]] ?? []
            #expect(lists.compactMap { $0["id"] as? String } == ["PL-WHOLESALE", "PL-DISTRIBUTOR", "PL-RETAIL"])
            // A delta's fresh read: only the SKUs asked for.
            let filtered = Self.object(try await client.execute(uri: "/api/v1/price-lists/PL-RETAIL/prices?sku=SKU-00002,SKU-00005", method: .get, headers: Self.auth))
            let rows = filtered["prices"] as? [[String: Any]] ?? []
            let retail = rows.map { $0["sku"] as? String ?? "?" }
            #expect(retail == ["SKU-00002", "SKU-00005"])
            #expect(await inventory.price(list: "PL-RETAIL", sku: "SKU-00005") == SimulatedCatalogue.listPrice(5), "the retail list agrees with shopify-sim's prices")
            let page = Self.object(try await client.execute(uri: "/api/v1/price-lists/PL-WHOLESALE/prices?page_size=100", method: .get, headers: Self.auth))
            let prices = page["prices"] as? [[String: Any]] ?? []
            #expect(prices.count == 100)
            #expect(page["next_page_token"] as? String == "100")
            #expect(prices.allSatisfy { ($0["unit_price"] as? String).flatMap { Decimal(string: $0) } != nil })
            #expect(try await client.execute(uri: "/api/v1/price-lists/NOPE/prices", method: .get, headers: Self.auth).status == .notFound)
        }
    }

    @Test("push mode: each stock movement is POSTed as inventory.changed with an X-ERP-Signature Python's hmac verifies; retried until accepted")
    func pushEvents() async throws {
        let receiver = await Receiver(script: [503])
        let inventory = ERPInventory(skus: 10, seed: 4)
        let pusher = ERPPusher(retryDelays: [.milliseconds(50), .milliseconds(100)])
        await pusher.setTarget(.init(url: receiver.url, secret: "erp-secret"))
        await inventory.onChange { change in
            await pusher.push(event: "inventory.changed", eventId: "erp-inventory-\(change.seq)", body: ERPPusher.inventoryChanged(change))
        }
        try await app(inventory: inventory, pusher: pusher).test(.router) { (client) async throws in
            let r = try await client.execute(
                uri: "/_admin/stock", method: .put, body: ByteBuffer(string: #"{"sku":"SKU-00003","warehouse":"WH-2","available":42}"#))
            #expect(r.status == .ok)
        }
        let got = receiver.requests.value
        #expect(got.count == 2, "the first attempt got 503 and was retried")
        let last = try #require(got.last)
        #expect(last.headers[":path"] == "/hook/inventory.changed")
        #expect(last.headers["x-erp-event-id"] == "erp-inventory-1")
        #expect(last.headers["x-erp-triggered-at"] != nil)
        #expect(try pythonHMAC(secret: "erp-secret", body: last.body) == last.headers["x-erp-signature"])
        let body = try #require(try JSONSerialization.jsonObject(with: last.body) as? [String: Any])
        #expect(body["sku"] as? String == "SKU-00003")
        #expect(body["available"] as? Int == 42)
        #expect(await pusher.delivered == 1)
        receiver.stop()
        await pusher.shutdown()
    }
}
