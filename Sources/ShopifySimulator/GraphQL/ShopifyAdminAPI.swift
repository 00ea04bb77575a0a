import Foundation
import GraphQL
import HTTPTypes
import Hummingbird
import NIOCore
import Synchronization

/// shopify-sim's Admin GraphQL API: `POST /admin/api/{version}/graphql.json` with `X-Shopify-Access-Token`.
/// Requests are parsed and validated against the schema subset the simulator carries (GraphQLSwift does parsing,
/// validation and execution); on top of that this file adds what is Shopify's own: cost and the leaky bucket,
/// `@idempotent` and `changeFromQuantity` on inventory mutations, search queries, cursors, bulk operations.
public final class ShopifyAdminAPI: Sendable {
    public let store: ShopifyStore
    public let deliverer: WebhookDeliverer
    public let bucket: ThrottleBucket
    let accessToken: String
    let bulkDelay: Duration
    let schema: GraphQLSchema
    let fieldTable: [String: [String: QueryCost.FieldType]]
    let bulk = BulkOperations()
    /// How long a mutation's answer waits after the mutation took effect (its webhooks are already on their way):
    /// on a slow network Shopify's webhook can reach a client before the answer to the call that caused it.
    let mutationAnswerDelay = Mutex<Duration>(.zero)
    public static let maxQueryCost = 1000
    /// Mutations executed, by root field (`inventorySetQuantities`: 3): tests prove a process never wrote here.
    public let mutationCalls = Mutex<[String: Int]>([:])
    /// REST order reads served (`GET /admin/api/{v}/orders/{id}.json`).
    public let restReads = Atomic<Int>(0)
    /// Points charged, by the operation's root fields (`orders`, `bulkOperationRunQuery`, `node`): what a benchmark
    /// compares a client's spending with (`GET /_sim/cost`). Throttled calls are charged nothing and counted apart.
    public struct Charge: Sendable, Equatable {
        public var calls = 0
        public var points = 0
        /// The dearest single call (a full page, where the last one is shorter).
        public var maxPoints = 0
    }
    public let charges = Mutex<(byField: [String: Charge], throttled: Int)>(([:], 0))

    /// Answers to mutations wait `delay` after taking effect (zero: none).
    public func setMutationAnswerDelay(_ delay: Duration) { mutationAnswerDelay.withLock { $0 = delay } }

    public init(
        store: ShopifyStore, deliverer: WebhookDeliverer, accessToken: String, plan: ShopifyPlan = .standard,
        restoreRate: Double? = nil, bucket: ThrottleBucket? = nil, bulkDelay: Duration = .milliseconds(200)
    ) throws {
        self.store = store
        self.deliverer = deliverer
        self.accessToken = accessToken
        // A restore rate of its own (points/s) overrides the plan's: slow buckets for demos and tests.
        self.bucket = bucket ?? ThrottleBucket(restoreRate: restoreRate ?? plan.restoreRate)
        self.bulkDelay = bulkDelay
        schema = try buildSchema(source: AdminSchemaSubset.sdl)
        fieldTable = QueryCost.fieldTable(schema)
        try installResolvers()
    }

    /// Whole seconds, rounded down, as Shopify formats `DateTime` (the same second as the REST resource's).
    static func iso(_ d: Date) -> String {
        Date(timeIntervalSince1970: d.timeIntervalSince1970.rounded(.down)).formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
    }

    // MARK: HTTP

    public func addRoutes(to router: Router<BasicRequestContext>) {
        router.post("/admin/api/{version}/graphql.json") { request, context in
            let version = context.parameters.get("version") ?? ""
            guard version.wholeMatch(of: /\d{4}-\d{2}|unstable/) != nil else {
                return Self.response(.notFound, Data(#"{"errors":"Not Found"}"#.utf8), version: version)
            }
            guard request.headers[HTTPField.Name("X-Shopify-Access-Token")!] == self.accessToken else {
                return Self.response(
                    .unauthorized, Data(#"{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}"#.utf8),
                    version: version)
            }
            let buffer = try await request.body.collect(upTo: 1 << 20)
            let body = Data(buffer.readableBytesView)
            let host = request.head.authority ?? "127.0.0.1"
            let (status, data) = await self.handle(
                body: body, contentType: request.headers[.contentType] ?? "application/json", baseURL: "http://\(host)")
            return Self.response(status, data, version: version)
        }
        // The REST order resource, the shape of the orders/* webhooks' bodies: the reconciler re-sends it to heal.
        router.get("/admin/api/{version}/orders/{file}") { request, context in
            let version = context.parameters.get("version") ?? ""
            guard request.headers[HTTPField.Name("X-Shopify-Access-Token")!] == self.accessToken else {
                return Self.response(
                    .unauthorized, Data(#"{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}"#.utf8),
                    version: version)
            }
            guard let file = context.parameters.get("file"), file.hasSuffix(".json"), let id = Int64(file.dropLast(5)),
                let order = await self.store.orders[id]
            else { return Self.response(.notFound, Data(#"{"errors":"Not Found"}"#.utf8), version: version) }
            self.restReads.add(1, ordering: .relaxed)
            var response = Self.response(.ok, Data(#"{"order":"#.utf8) + order.json() + Data("}".utf8), version: version)
            // Shopify's clock at the read, as every Shopify answer carries it (whole seconds).
            response.headers[.date] = Self.httpDate(Date())
            return response
        }
        router.get("/_sim/bulk/{file}") { _, context in
            guard let file = context.parameters.get("file"), file.hasSuffix(".jsonl"), let id = Int64(file.dropLast(6)),
                let data = await self.bulk.result(id)
            else { return Response(status: .notFound) }
            return Response(status: .ok, headers: [.contentType: "application/jsonl"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.get("/_sim/cost") { _, _ in
            let (byField, throttled) = self.charges.withLock { ($0.byField, $0.throttled) }
            var fields: [String: Any] = [:]
            for (name, c) in byField { fields[name] = ["calls": c.calls, "points": c.points, "max_points": c.maxPoints] }
            return ShopifySimulatorRoutes.json(.ok, ["fields": fields, "throttled": throttled])
        }
        router.get("/_sim/throttle") { _, _ in
            let s = self.bucket.current
            return ShopifySimulatorRoutes.json(
                .ok, ["maximumAvailable": s.maximumAvailable, "currentlyAvailable": s.currentlyAvailable, "restoreRate": s.restoreRate])
        }
    }

    static func response(_ status: HTTPResponse.Status, _ data: Data, version: String) -> Response {
        var headers: HTTPFields = [.contentType: "application/json; charset=utf-8"]
        headers[HTTPField.Name("X-Shopify-API-Version")!] = version
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    struct Request: Decodable {
        var query: String
        var variables: [String: Map]?
        var operationName: String?
    }

    struct Envelope {
        var data: Map?
        var errors: [GraphQLError]?
        var extensions: Map?
    }

    /// One request, start to finish: parse, validate, price, throttle, execute, account.
    public func handle(body: Data, contentType: String, baseURL: String) async -> (HTTPResponse.Status, Data) {
        let request: Request
        if contentType.hasPrefix("application/graphql") {
            request = Request(query: String(decoding: body, as: UTF8.self))
        } else {
            guard let r = try? JSONDecoder().decode(Request.self, from: body) else {
                return (.badRequest, Data(#"{"errors":{"query":"Required parameter missing or invalid"}}"#.utf8))
            }
            request = r
        }
        let variables = request.variables ?? [:]
        let document: Document
        do {
            document = try parse(source: Source(body: request.query, name: "GraphQL request"))
        } catch {
            return (.ok, encode(Envelope(errors: [Self.graphQLError(error)], extensions: costExtension(0, nil, bucket.current))))
        }
        let validation = validate(schema: schema, ast: document)
        if !validation.isEmpty {
            return (.ok, encode(Envelope(errors: validation.map(Self.shopifyStyle), extensions: costExtension(0, nil, bucket.current))))
        }
        let operations = document.definitions.compactMap { $0 as? OperationDefinition }
        guard let operation = request.operationName.flatMap({ n in operations.first { $0.name?.value == n } }) ?? operations.first else {
            return (.ok, encode(Envelope(errors: [GraphQLError(message: "No operation named \(request.operationName ?? "")")])))
        }
        let rootType = operation.operation == .mutation ? QueryCost.mutationType : "QueryRoot"
        let cost = QueryCost(fields: fieldTable, document: document, variables: variables)
        let requested = cost.requested(operation, rootType: rootType)
        if requested > Self.maxQueryCost {
            let error = GraphQLError(
                message: "Query cost is \(requested), which exceeds the single query max cost limit (\(Self.maxQueryCost)).",
                extensions: ["code": "MAX_COST_EXCEEDED", "cost": .number(Number(requested)), "maxCost": .number(Number(Self.maxQueryCost))])
            return (.ok, encode(Envelope(errors: [error], extensions: costExtension(requested, nil, bucket.current))))
        }
        let (granted, status) = bucket.take(requested)
        guard granted else {
            charges.withLock { $0.throttled += 1 }
            let error = GraphQLError(
                message: "Throttled",
                extensions: ["code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"])
            return (.ok, encode(Envelope(errors: [error], extensions: costExtension(requested, nil, status))))
        }
        // A mutation starts from no snapshot and takes one after it changed the shop: a snapshot held while the store
        // mutates makes the store copy its whole stock tables (copy-on-write) on every mutation, 100,000 SKUs' worth
        // in a big shop.
        let snapshot = operation.operation == .mutation ? ShopSnapshot.empty : await store.snapshot()
        let context = RequestContext(snapshot: snapshot, api: self, bulk: false, baseURL: baseURL)
        let result: GraphQLResult
        do {
            result = try await execute(
                schema: schema, documentAST: document, rootValue: (), context: context, variableValues: variables,
                operationName: request.operationName)
        } catch {
            result = GraphQLResult(errors: [Self.graphQLError(error)])
        }
        if operation.operation == .mutation {
            let fields = operation.selectionSet.selections.compactMap { ($0 as? Field)?.name.value }
            mutationCalls.withLock { calls in for f in fields { calls[f, default: 0] += 1 } }
            let delay = mutationAnswerDelay.withLock { $0 }
            if delay > .zero { try? await Task.sleep(for: delay) }
        }
        let actual = result.data.map { cost.actual(operation, rootType: rootType, data: $0) } ?? requested
        let after = bucket.refund(requested - min(actual, requested))
        let charged = min(actual, requested)
        let rootFields = operation.selectionSet.selections.compactMap { ($0 as? Field)?.name.value }.joined(separator: "+")
        charges.withLock { c in
            c.byField[rootFields, default: Charge()].calls += 1
            c.byField[rootFields, default: Charge()].points += charged
            c.byField[rootFields, default: Charge()].maxPoints = max(c.byField[rootFields]?.maxPoints ?? 0, charged)
        }
        return (
            .ok,
            encode(
                Envelope(
                    data: result.data, errors: result.errors.isEmpty ? nil : result.errors.map(Self.shopifyStyle),
                    extensions: costExtension(requested, actual, after)))
        )
    }

    /// `data`, `errors`, `extensions` in that order, fields in selection order (`OrderedJSON`).
    private func encode(_ envelope: Envelope) -> Data {
        var out = "{"
        var parts: [String] = []
        if let data = envelope.data { parts.append("\"data\":" + OrderedJSON.string(data)) }
        if let errors = envelope.errors {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.withoutEscapingSlashes]
            let list = errors.map { (try? encoder.encode($0)).map { String(decoding: $0, as: UTF8.self) } ?? #"{"message":"Internal error"}"# }
            parts.append("\"errors\":[" + list.joined(separator: ",") + "]")
        }
        if let extensions = envelope.extensions { parts.append("\"extensions\":" + OrderedJSON.string(extensions)) }
        out += parts.joined(separator: ",") + "}"
        return Data(out.utf8)
    }

    private func costExtension(_ requested: Int, _ actual: Int?, _ status: ThrottleBucket.Status) -> Map {
        [
            "cost": [
                "requestedQueryCost": .number(Number(requested)),
                "actualQueryCost": actual.map { .number(Number($0)) } ?? .null,
                "throttleStatus": [
                    "maximumAvailable": .number(Number(status.maximumAvailable)),
                    "currentlyAvailable": .number(Number(Int(status.currentlyAvailable))),
                    "restoreRate": .number(Number(status.restoreRate)),
                ],
            ]
        ]
    }

    static func graphQLError(_ error: any Error) -> GraphQLError {
        if let e = error as? AdminAPIError { return e.graphQLError }
        if let e = error as? GraphQLError { return e }
        return GraphQLError(message: "\(error)")
    }

    /// Shopify's wording and code for the commonest validation failure, an unknown field.
    static func shopifyStyle(_ error: GraphQLError) -> GraphQLError {
        if let match = error.message.firstMatch(of: /Cannot query field "(\w+)" on type "(\w+)"/) {
            return GraphQLError(
                message: "Field '\(match.1)' doesn't exist on type '\(match.2)'", locations: error.locations, path: error.path,
                extensions: ["code": "undefinedField", "typeName": .string(String(match.2)), "fieldName": .string(String(match.1))])
        }
        return error
    }
}

/// What one request's resolvers share: the shop as the request sees it (refreshed after a mutation), the API.
final class RequestContext: Sendable {
    let state: Mutex<ShopSnapshot>
    let api: ShopifyAdminAPI
    let bulk: Bool
    /// In a bulk operation: the slice of each top-level connection this execution reads (the operation runs in
    /// slices and streams their JSONL, so 100,000 items are never one GraphQL result in memory).
    let bulkWindow: Range<Int>?
    let baseURL: String

    init(snapshot: ShopSnapshot, api: ShopifyAdminAPI, bulk: Bool, baseURL: String, bulkWindow: Range<Int>? = nil) {
        state = Mutex(snapshot)
        self.api = api
        self.bulk = bulk
        self.bulkWindow = bulkWindow
        self.baseURL = baseURL
    }

    var snapshot: ShopSnapshot { state.withLock { $0 } }
    func refresh(_ s: ShopSnapshot) { state.withLock { $0 = s } }
}

extension ShopifyAdminAPI {
    /// IMF-fixdate (RFC 9110 5.6.7), as HTTP's `Date` header carries it.
    static func httpDate(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return f.string(from: date)
    }
}
