import BridgeDomain
import Foundation

/// An ERP failure, classified once where it is born: retryable (the ERP is down, slow, or limiting us) or
/// permanent (the ERP refused the data; retrying the same message cannot succeed).
public struct ERPError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Code: String, Sendable {
        /// Connection refused or reset, DNS, TLS: the ERP is not reachable.
        case unreachable = "erp_unreachable"
        /// No answer within the configured timeout.
        case timeout = "erp_timeout"
        /// 5xx.
        case serverError = "erp_server_error"
        /// 429: honour `retryAfter`.
        case rateLimited = "erp_rate_limited"
        /// 401/403: configuration problem (API key), not the message's fault, but retrying will not fix it quickly.
        case unauthorized = "erp_unauthorized"
        /// 404 where a parent must exist first (a refund before its order): retryable, the order may still come.
        case notFound = "erp_not_found"
        /// 422 unknown SKU.
        case unknownSKU = "erp_unknown_sku"
        /// Other 4xx: validation.
        case rejected = "erp_rejected"
        /// 2xx with a body we cannot read.
        case invalidResponse = "erp_invalid_response"
    }

    public var code: Code
    public var message: String
    public var status: Int?
    public var retryAfter: Duration?
    /// The request certainly was not applied (the connection was refused or never set up, the ERP said it did not read
    /// the whole request, a 503 Service Unavailable): for `unreachable`, `timeout` and `serverError`, which otherwise
    /// leave the outcome open.
    public var notSent: Bool

    public init(_ code: Code, _ message: String, status: Int? = nil, retryAfter: Duration? = nil, notSent: Bool = false) {
        self.code = code
        self.message = message
        self.status = status
        self.retryAfter = retryAfter
        self.notSent = notSent
    }

    /// Whether the ERP may have applied the request this error answers: a timeout, a 500/502/504 (from the ERP or a
    /// proxy in front of it), a connection lost after the request was sent, a 2xx whose body could not be read. A write that
    /// failed like this has an unknown outcome: the ERP may still commit it after the caller gave up. False only
    /// where the request was certainly not applied (refused before sending, 429, 4xx).
    public var mayHaveApplied: Bool {
        switch code {
        case .timeout, .unreachable, .serverError: return !notSent
        case .invalidResponse: return true
        case .rateLimited, .unauthorized, .notFound, .unknownSKU, .rejected: return false
        }
    }

    /// Transient failures are retried (and open the circuit breaker); permanent ones dead-letter at once.
    public var isRetryable: Bool {
        switch code {
        case .unreachable, .timeout, .serverError, .rateLimited, .notFound, .unauthorized: return true
        case .unknownSKU, .rejected, .invalidResponse: return false
        }
    }

    /// Whether this failure says the ERP itself is unhealthy (counts towards opening the circuit).
    public var indicatesOutage: Bool {
        switch code {
        case .unreachable, .timeout, .serverError, .rateLimited, .unauthorized: return true
        default: return false
        }
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// The ERP port: everything the bridge asks of an ERP. The generic REST adapter (`RESTERPClient`) speaks the
/// contract in docs/erp-api.yaml; an adapter for a real ERP implements the same protocol.
public protocol ERPPort: Sendable {
    /// Creates or updates by external reference; atomic and version-aware on the ERP side.
    func upsertSalesOrder(_ order: ERPSalesOrder) async throws(ERPError) -> ERPUpsertResult
    /// The ERP's copy of an order, or nil.
    func salesOrder(externalRef: String) async throws(ERPError) -> ERPSalesOrder?
    /// Creates or updates a customer by external reference; returns the ERP's customer number.
    func upsertCustomer(_ customer: ERPCustomer) async throws(ERPError) -> String
    /// Records a refund once per refund reference; replays return the original.
    func recordRefund(_ refund: ERPRefund) async throws(ERPError) -> String
}

/// A sales order a reference lookup found: its number, and the `version` field as the ERP stores it (what the bridge
/// wrote last; nil if the ERP does not keep it). After a write whose outcome was unknown it tells whether the ERP
/// already holds a newer version than the one about to be written.
public struct ERPFoundSalesOrder: Sendable, Equatable {
    public var documentNumber: String
    public var version: String?

    public init(documentNumber: String, version: String?) {
        self.documentNumber = documentNumber
        self.version = version
    }
}

/// What an ERP without an upsert offers (docs/erp-api.yaml, plain profile): create (a new document on every call),
/// find by reference (a filter that may return several documents), overwrite by document number (no version
/// check), credit notes created on every call. The bridge provides exactly once and version order itself: its
/// ledger records the intent before a create and the document number after it, and after a crash between the two
/// it looks the reference up before creating again.
public protocol PlainERPPort: Sendable {
    /// Creates a new sales order document; returns its number.
    func createSalesOrder(_ order: ERPSalesOrder) async throws(ERPError) -> String
    /// Every sales order holding `externalRef`, oldest first, with the version the bridge last wrote into it.
    func findSalesOrders(externalRef: String) async throws(ERPError) -> [ERPFoundSalesOrder]
    /// Overwrites document `document` with `order`.
    func updateSalesOrder(document: String, _ order: ERPSalesOrder) async throws(ERPError)
    /// Creates a credit note against the sales order document; returns its number.
    func createCreditNote(_ refund: ERPRefund, orderDocument: String) async throws(ERPError) -> String
    /// Numbers of every credit note carrying `refundRef`, oldest first.
    func findCreditNotes(refundRef: String) async throws(ERPError) -> [String]
}
