import Foundation
import GraphQL
import Testing

@testable import ShopifySimulator

@Suite("shopify-sim bulk operations: one at a time, results kept for the newest only")
struct BulkOperationsTests {
    @Test("a second operation while one runs is refused; past 20 finished results the oldest expire")
    func lifecycleAndExpiry() async throws {
        let bulk = BulkOperations()
        guard case .created(let first) = await bulk.create(query: "{ orders { edges { node { id } } } }") else {
            Issue.record("the first operation must be created")
            return
        }
        guard case .inProgress(let running) = await bulk.create(query: "{ orders { edges { node { id } } } }") else {
            Issue.record("a second operation while one is in progress must be refused")
            return
        }
        #expect(running.id == first.id)
        await bulk.complete(first.id, jsonl: Data("{}\n".utf8), objects: 1, roots: 1, url: "http://sim/_sim/bulk/\(first.id).jsonl")
        var ids = [first.id]
        for _ in 0..<24 {
            guard case .created(let op) = await bulk.create(query: "{ orders { edges { node { id } } } }") else {
                Issue.record("a finished operation must not block the next")
                return
            }
            await bulk.complete(op.id, jsonl: Data("{}\n".utf8), objects: 1, roots: 1, url: "http://sim/_sim/bulk/\(op.id).jsonl")
            ids.append(op.id)
        }
        for id in ids.prefix(5) {
            #expect(await bulk.result(id) == nil)
            #expect(await bulk.operation(id)?.status == "EXPIRED")
            #expect(await bulk.operation(id)?.url == nil)
        }
        for id in ids.suffix(20) {
            #expect(await bulk.result(id) != nil)
            #expect(await bulk.operation(id)?.status == "COMPLETED")
        }
    }

    @Test("JSONL: each connection node on its own line, nested connection nodes with __parentId, other objects inline")
    func jsonl() throws {
        let json = """
            {"inventoryItems": {"edges": [
              {"node": {"id": "gid://shopify/InventoryItem/1", "sku": "A", "inventoryLevels": {"edges": [
                {"node": {"id": "L1", "location": {"id": "gid://shopify/Location/9"}}}]}}},
              {"node": {"id": "gid://shopify/InventoryItem/2", "sku": "B", "inventoryLevels": {"nodes": []}}}
            ]}}
            """
        let data = try JSONDecoder().decode(Map.self, from: Data(json.utf8))
        let (out, objects, roots) = BulkOperations.jsonl(data)
        let lines = String(decoding: out, as: UTF8.self).split(separator: "\n").map(String.init)
        #expect(objects == 3 && roots == 2)
        #expect(lines.count == 3)
        #expect(lines[0].contains("\"sku\":\"A\"") && !lines[0].contains("inventoryLevels"))
        #expect(lines[1].contains("\"__parentId\":\"gid:\\/\\/shopify\\/InventoryItem\\/1\"") || lines[1].contains("\"__parentId\":\"gid://shopify/InventoryItem/1\""))
        #expect(lines[1].contains("\"location\":{"), "a non-connection object stays inline")
        #expect(lines[2].contains("\"sku\":\"B\""))
    }
}
