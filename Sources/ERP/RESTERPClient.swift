import AsyncHTTPClient
import BridgeDomain
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// The generic REST adapter: speaks the ERP contract in docs/erp-api.yaml over a pooled, keep-alive HTTP client
/// (async-http-client). Every failure is classified here, once, into an `ERPError`.
public final class RESTERPClient: ERPPort, PlainERPPort {
    public struct Configuration: Sendable {
        public var baseURL: String
        public var apiKey: String
        /// Whole-request deadline (connect + send + answer).
        public var timeout: Duration
        public var connectTimeout: Duration
        /// Keep-alive connections per host.
        public var maxConnections: Int

        public init(baseURL: String, apiKey: String, timeout: Duration = .seconds(10), connectTimeout: Duration = .seconds(2), maxConnections: Int = 64) {
            self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
            self.apiKey = apiKey
            self.timeout = timeout
            self.connectTimeout = connectTimeout
            self.maxConnections = maxConnections
        }
    }

    public let configuration: Configuration
    private let client: HTTPClient

    public init(configuration: Configuration) {
        self.configuration = configuration
        var c = HTTPClient.Configuration()
        c.timeout = .init(
            connect: .milliseconds(configuration.connectTimeout.wholeMilliseconds),
            read: .milliseconds(configuration.timeout.wholeMilliseconds))
        c.connectionPool = .init(
            idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: configuration.maxConnections)
        // A refused connection fails the call at once: the pool's own reconnect backoff kept calls failing long after
        // an ERP that had refused connections was back. Waiting and probing is the circuit breaker's job.
        c.connectionPool.retryConnectionEstablishment = false
        // Retrying is the bridge's decision (retry levels, circuit breaker), not the HTTP client's.
        c.maximumUsesPerConnection = nil
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: c)
    }

    /// Closes pooled connections. Call once when the process stops.
    public func shutdown() async {
        try? await client.shutdown()
    }

    // MARK: ERPPort

    public func upsertSalesOrder(_ order: ERPSalesOrder) async throws(ERPError) -> ERPUpsertResult {
        struct Answer: Decodable {
            var result: String
            var documentNumber: String
            var version: String
            enum CodingKeys: String, CodingKey {
                case result, version
                case documentNumber = "document_number"
            }
        }
        let a = try await put("/api/v1/sales-orders/\(Self.escape(order.externalRef))", order, Answer.self, what: "sales-order upsert")
        guard let outcome = ERPUpsertResult.Outcome(rawValue: a.result) else {
            throw ERPError(.invalidResponse, "sales-order upsert answered an unknown result '\(a.result)'")
        }
        return ERPUpsertResult(outcome: outcome, documentNumber: a.documentNumber, version: a.version)
    }

    public func salesOrder(externalRef: String) async throws(ERPError) -> ERPSalesOrder? {
        let (status, body) = try await send(.GET, "/api/v1/sales-orders/\(Self.escape(externalRef))", json: Optional<String>.none)
        if status == 404 { return nil }
        guard (200..<300).contains(status) else { throw Self.classify(status: status, body: body) }
        do {
            return try Self.decoder.decode(ERPSalesOrder.self, from: body)
        } catch {
            throw ERPError(.invalidResponse, "sales order \(externalRef) could not be read: \(error)", status: status)
        }
    }

    public func upsertCustomer(_ customer: ERPCustomer) async throws(ERPError) -> String {
        struct Answer: Decodable {
            var customerNumber: String
            enum CodingKeys: String, CodingKey { case customerNumber = "customer_number" }
        }
        return try await put("/api/v1/customers/\(Self.escape(customer.externalRef))", customer, Answer.self, what: "customer upsert")
            .customerNumber
    }

    public func recordRefund(_ refund: ERPRefund) async throws(ERPError) -> String {
        struct Answer: Decodable {
            var creditNoteNumber: String
            enum CodingKeys: String, CodingKey { case creditNoteNumber = "credit_note_number" }
        }
        let path = "/api/v1/sales-orders/\(Self.escape(refund.orderRef))/refunds/\(Self.escape(refund.refundRef))"
        return try await put(path, refund, Answer.self, what: "refund").creditNoteNumber
    }

    // MARK: PlainERPPort

    private struct DocumentAnswer: Decodable {
        var documentNumber: String
        enum CodingKeys: String, CodingKey { case documentNumber = "document_number" }
    }

    public func createSalesOrder(_ order: ERPSalesOrder) async throws(ERPError) -> String {
        try await call(
            .POST, "/api/v1/sales-orders", order, DocumentAnswer.self, what: "sales-order create",
            idempotencyKey: Self.idempotencyKey(create: order)
        ).documentNumber
    }

    /// The optional `Idempotency-Key` of a create (`docs/erp-api.yaml`): the same for every repeat of one write (the
    /// order's reference and version; a refund's document and reference), so an ERP that honours it books a repeat once. An ERP
    /// that does not ignores it: the forwarder's write intents and lookups are what keep the plain profile exact.
    static func idempotencyKey(create order: ERPSalesOrder) -> String { "sales-order:\(order.externalRef):\(order.version)" }
    /// A credit note's key names the sales order document it is booked against: after an ERP restore the order comes
    /// back as a new document, so a key an ERP kept outside its restored data cannot answer a credit note that is gone.
    static func idempotencyKey(creditNote refund: ERPRefund, orderDocument: String) -> String {
        "credit-note:\(orderDocument):\(refund.refundRef)"
    }

    public func findSalesOrders(externalRef: String) async throws(ERPError) -> [ERPFoundSalesOrder] {
        struct Found: Decodable {
            var documentNumber: String
            var version: String?
            enum CodingKeys: String, CodingKey {
                case documentNumber = "document_number"
                case version
            }
        }
        struct Answer: Decodable { var orders: [Found] }
        let query = "external_ref=\(Self.escapeQuery(externalRef))"
        return try await call(.GET, "/api/v1/sales-orders?\(query)", Optional<String>.none, Answer.self, what: "sales-order lookup")
            .orders.map { ERPFoundSalesOrder(documentNumber: $0.documentNumber, version: $0.version) }
    }

    public func updateSalesOrder(document: String, _ order: ERPSalesOrder) async throws(ERPError) {
        _ = try await call(
            .PUT, "/api/v1/sales-orders/by-number/\(Self.escape(document))", order, DocumentAnswer.self, what: "sales-order update")
    }

    private struct CreditNoteAnswer: Decodable {
        var creditNoteNumber: String
        enum CodingKeys: String, CodingKey { case creditNoteNumber = "credit_note_number" }
    }

    public func createCreditNote(_ refund: ERPRefund, orderDocument: String) async throws(ERPError) -> String {
        struct Body: Encodable {
            var orderNumber: String
            var refundRef: String
            var amount: Amount
            var createdAt: String?
            var lines: [ERPRefund.Line]
            enum CodingKeys: String, CodingKey {
                case orderNumber = "order_number"
                case refundRef = "refund_ref"
                case amount
                case createdAt = "created_at"
                case lines
            }
        }
        let body = Body(orderNumber: orderDocument, refundRef: refund.refundRef, amount: refund.amount, createdAt: refund.createdAt, lines: refund.lines)
        return try await call(
            .POST, "/api/v1/credit-notes", body, CreditNoteAnswer.self, what: "credit-note create",
            idempotencyKey: Self.idempotencyKey(creditNote: refund, orderDocument: orderDocument)
        ).creditNoteNumber
    }

    public func findCreditNotes(refundRef: String) async throws(ERPError) -> [String] {
        struct Answer: Decodable {
            var creditNotes: [CreditNoteAnswer]
            enum CodingKeys: String, CodingKey { case creditNotes = "credit_notes" }
        }
        return try await call(
            .GET, "/api/v1/credit-notes?refund_ref=\(Self.escapeQuery(refundRef))", Optional<String>.none, Answer.self,
            what: "credit-note lookup"
        ).creditNotes.map(\.creditNoteNumber)
    }

    /// PUT `body` as JSON; a 2xx answer decoded as `Answer`, anything else classified.
    private func put<Body: Encodable, Answer: Decodable>(
        _ path: String, _ body: Body, _: Answer.Type, what: String
    ) async throws(ERPError) -> Answer {
        try await call(.PUT, path, body, Answer.self, what: what)
    }

    /// GET `path`; a 2xx answer decoded as `Answer`, anything else classified.
    func get<Answer: Decodable>(_ path: String, _: Answer.Type, what: String) async throws(ERPError) -> Answer {
        try await call(.GET, path, Optional<String>.none, Answer.self, what: what)
    }

    /// Sends `body` (if any) as JSON; a 2xx answer decoded as `Answer`, anything else classified.
    private func call<Body: Encodable, Answer: Decodable>(
        _ method: HTTPMethod, _ path: String, _ body: Body?, _: Answer.Type, what: String, idempotencyKey: String? = nil
    ) async throws(ERPError) -> Answer {
        let (status, data) = try await send(method, path, json: body, idempotencyKey: idempotencyKey)
        guard (200..<300).contains(status) else { throw Self.classify(status: status, body: data) }
        do {
            return try Self.decoder.decode(Answer.self, from: data)
        } catch {
            throw ERPError(.invalidResponse, "\(what) answered \(status) with a body the contract does not describe", status: status)
        }
    }

    // MARK: HTTP

    private func send<Body: Encodable>(
        _ method: HTTPMethod, _ path: String, json: Body?, idempotencyKey: String? = nil
    ) async throws(ERPError) -> (Int, Data) {
        var request = HTTPClientRequest(url: configuration.baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(configuration.apiKey)")
        request.headers.add(name: "Accept", value: "application/json")
        if let idempotencyKey { request.headers.add(name: "Idempotency-Key", value: idempotencyKey) }
        if let json {
            guard let data = try? Self.encoder.encode(json) else {
                throw ERPError(.rejected, "request body could not be encoded")
            }
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: data))
        }
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            let deadline = TimeAmount.milliseconds(configuration.timeout.wholeMilliseconds)
            response = try await client.execute(request, timeout: deadline)
            body = try await response.body.collect(upTo: 16 * 1024 * 1024)
        } catch {
            throw Self.classify(transport: error)
        }
        let status = Int(response.status.code)
        if status == 429 || status == 503 {
            var e = Self.classify(status: status, body: Data(body.readableBytesView))
            if let ra = response.headers.first(name: "Retry-After").flatMap(Self.parseRetryAfter) { e.retryAfter = ra }
            throw e
        }
        return (status, Data(body.readableBytesView))
    }

    static func parseRetryAfter(_ v: String) -> Duration? {
        if let s = Double(v.trimmingCharacters(in: .whitespaces)), s >= 0 { return .milliseconds(Int64(s * 1000)) }
        return nil
    }

    /// Transport failures are all retryable; a deadline is told apart for metrics. A failure to connect at all
    /// (refused, connect timeout) is marked `notSent`: the ERP cannot have applied the request. Anything else (a
    /// deadline, a reset) may have reached the ERP, whose outcome is then unknown.
    static func classify(transport error: any Error) -> ERPError {
        if let e = error as? HTTPClientError {
            switch e {
            case .deadlineExceeded, .readTimeout, .writeTimeout:
                return ERPError(.timeout, "no answer within the timeout")
            case .connectTimeout:
                return ERPError(.unreachable, "connect timed out", notSent: true)
            default:
                return ERPError(.unreachable, "\(e)")
            }
        }
        return ERPError(.unreachable, "\(error)", notSent: isConnectFailure(error))
    }

    /// A connection that was never established: refused (`ECONNREFUSED` from the socket, or NIO's connection error
    /// that gathers one per address tried).
    static func isConnectFailure(_ error: any Error) -> Bool {
        if let io = error as? IOError, io.errnoCode == ECONNREFUSED { return true }
        return String(describing: type(of: error)) == "NIOConnectionError"
    }

    /// Status codes to error classes, per the contract.
    static func classify(status: Int, body: Data) -> ERPError {
        struct Problem: Decodable {
            var error: String?
            var message: String?
            var sku: String?
        }
        let p = try? decoder.decode(Problem.self, from: body)
        let detail = [p?.error, p?.message, p?.sku.map { "sku \($0)" }].compactMap { $0 }.joined(separator: ", ")
        switch status {
        case 429: return ERPError(.rateLimited, "rate limited", status: status)
        case 401, 403: return ERPError(.unauthorized, "ERP refused the API key (\(status))", status: status)
        case 404: return ERPError(.notFound, "not found: \(detail)", status: status)
        case 408: return ERPError(.timeout, "ERP reported a timeout reading the request", status: status, notSent: true)
        case 422 where p?.error == "unknown_sku": return ERPError(.unknownSKU, "unknown SKU \(p?.sku ?? "?")", status: status)
        case 400..<500: return ERPError(.rejected, "ERP rejected the document (\(status)): \(detail)", status: status)
        // 503: the ERP (or a proxy with no backend to forward to) did not take the request; 500, 502, 504 and the
        // rest may come after it was applied.
        default: return ERPError(.serverError, "ERP answered \(status)\(detail.isEmpty ? "" : ": \(detail)")", status: status, notSent: status == 503)
        }
    }

    static func escapeQuery(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+#"))) ?? s
    }

    static func escape(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? s
    }

    /// The models carry explicit snake_case `CodingKeys` (cheaper than the key strategies, which convert every key).
    static let encoder = JSONEncoder()
    static let decoder = JSONDecoder()
}
