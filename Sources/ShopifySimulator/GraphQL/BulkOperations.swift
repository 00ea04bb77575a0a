import Foundation
import GraphQL

/// Bulk query operations as Shopify runs them: one query operation at a time per shop, CREATED -> RUNNING ->
/// COMPLETED (or FAILED), and a JSONL result in which every node of a connection is its own line and nodes of nested
/// connections carry `__parentId`.
actor BulkOperations {
    struct Operation: Sendable {
        var id: Int64
        var query: String
        var status = "CREATED"
        var errorCode: String?
        var createdAt: Date
        var completedAt: Date?
        var objectCount = 0
        var rootObjectCount = 0
        var fileSize: Int?
        var url: String?
    }

    private var operations: [Int64: Operation] = [:]
    private var results: [Int64: Data] = [:]
    private var nextId: Int64 = 1
    private var latest: Int64?

    func operation(_ id: Int64) -> Operation? { operations[id] }
    var current: Operation? { latest.flatMap { operations[$0] } }
    func result(_ id: Int64) -> Data? { results[id] }

    enum Creation: Sendable {
        case created(Operation)
        case inProgress(Operation)
    }

    /// Creates an operation unless one is in progress.
    func create(query: String) -> Creation {
        if let running = current, running.status == "CREATED" || running.status == "RUNNING" { return .inProgress(running) }
        let op = Operation(id: nextId, query: query, createdAt: Date())
        nextId += 1
        operations[op.id] = op
        latest = op.id
        return .created(op)
    }

    func markRunning(_ id: Int64) { operations[id]?.status = "RUNNING" }

    func complete(_ id: Int64, jsonl: Data, objects: Int, roots: Int, url: String) {
        guard var op = operations[id] else { return }
        op.status = "COMPLETED"
        op.completedAt = Date()
        op.objectCount = objects
        op.rootObjectCount = roots
        op.fileSize = jsonl.count
        // Shopify gives no URL when the query matched nothing.
        op.url = objects > 0 ? url : nil
        operations[id] = op
        if objects > 0 { results[id] = jsonl }
        // Keep the newest results only (Shopify's URLs expire after a week; a long demo should not grow forever).
        for old in results.keys.sorted().dropLast(Self.keptResults) {
            results[old] = nil
            operations[old]?.status = "EXPIRED"
            operations[old]?.url = nil
        }
    }

    static let keptResults = 20

    func fail(_ id: Int64) {
        operations[id]?.status = "FAILED"
        operations[id]?.errorCode = "INTERNAL_SERVER_ERROR"
        operations[id]?.completedAt = Date()
    }

    /// The GraphQL node for an operation.
    static func node(_ op: Operation) -> [String: any Sendable] {
        var d: [String: any Sendable] = [
            "id": "gid://shopify/BulkOperation/\(op.id)", "status": op.status, "type": "QUERY", "query": op.query,
            "createdAt": ShopifyAdminAPI.iso(op.createdAt), "objectCount": "\(op.objectCount)",
            "rootObjectCount": "\(op.rootObjectCount)",
        ]
        if let e = op.errorCode { d["errorCode"] = e }
        if let c = op.completedAt { d["completedAt"] = ShopifyAdminAPI.iso(c) }
        if let s = op.fileSize { d["fileSize"] = "\(s)" }
        if let u = op.url { d["url"] = u }
        return d
    }

    /// What a bulk query may be: a query with 1 to 5 connections, nested at most 2 deep.
    static func check(_ document: Document, cost: QueryCost) -> String? {
        let operations = document.definitions.compactMap { $0 as? OperationDefinition }
        guard operations.count == 1, let op = operations.first, op.operation == .query else {
            return "Bulk queries must contain exactly one query operation."
        }
        var connections = 0
        var deepest = 0
        func walk(_ set: SelectionSet?, type: String, depth: Int) {
            for field in cost.flatten(set) {
                guard let ft = cost.fields[type]?[field.name.value], !ft.leaf else { continue }
                if ft.named.hasSuffix("Connection") {
                    connections += 1
                    deepest = max(deepest, depth + 1)
                    walk(field.selectionSet, type: ft.named, depth: depth + 1)
                } else {
                    walk(field.selectionSet, type: ft.named, depth: depth)
                }
            }
        }
        walk(op.selectionSet, type: "QueryRoot", depth: 0)
        if connections == 0 { return "Bulk queries must contain at least one connection." }
        if connections > 5 { return "Bulk queries cannot contain more than 5 connections." }
        if deepest > 2 { return "Bulk queries cannot contain connections with a nesting depth greater than 2." }
        return nil
    }

    /// Flattens an executed bulk query into JSONL: each connection node on its own line, without its nested
    /// connections, whose nodes follow with `__parentId` set to the node's id.
    static func jsonl(_ data: Map) -> (Data, objects: Int, roots: Int) {
        var out = Data()
        var objects = 0
        var roots = 0

        func connectionNodes(_ value: Map) -> [Map]? {
            guard let d = value.dictionary, d.keys.allSatisfy({ ["edges", "nodes", "pageInfo"].contains($0) }),
                d["edges"] != nil || d["nodes"] != nil
            else { return nil }
            if let edges = d["edges"]?.array { return edges.map { $0["node"] } }
            return d["nodes"]?.array ?? []
        }

        func emit(_ node: Map, parent: String?) {
            guard var d = node.dictionary else { return }
            var children: [[Map]] = []
            for (key, value) in d {
                if let nodes = connectionNodes(value) {
                    children.append(nodes)
                    d[key] = nil
                }
            }
            if let parent { d["__parentId"] = .string(parent) }
            out.append(contentsOf: Array(OrderedJSON.string(.dictionary(d)).utf8))
            out.append(0x0A)
            objects += 1
            let id = d["id"]?.string
            for list in children { for child in list { emit(child, parent: id) } }
        }

        for (_, value) in data.dictionary ?? [:] {
            guard let nodes = connectionNodes(value) else { continue }
            for node in nodes {
                roots += 1
                emit(node, parent: nil)
            }
        }
        return (out, objects, roots)
    }
}
