import BridgeDomain
import Foundation

/// What the reconciler compares of an ERP sales order with Shopify's order: a document as the ERP holds it.
public struct ERPOrderRecord: Decodable, Sendable, Equatable {
    public var externalRef: String
    public var documentNumber: String
    /// The version the bridge wrote (`<updated_at>|<triggered_at>`, see `OrderVersion`).
    public var version: String
    /// `open` or `cancelled`.
    public var status: String
    public var currency: String?
    public var total: Amount
    /// What the ERP booked as refunded (its credit notes), not the figure in the order document.
    public var refundedTotal: Amount
    /// The Shopify financial status the bridge wrote (`paid`, `pending`, `partially_refunded`...), when the ERP keeps
    /// it: two changes within one `updated_at` second (created, then paid) differ only here.
    public var financialStatus: String?

    public init(
        externalRef: String, documentNumber: String, version: String, status: String, currency: String?, total: Amount,
        refundedTotal: Amount, financialStatus: String? = nil
    ) {
        self.financialStatus = financialStatus
        self.externalRef = externalRef
        self.documentNumber = documentNumber
        self.version = version
        self.status = status
        self.currency = currency
        self.total = total
        self.refundedTotal = refundedTotal
    }

    enum CodingKeys: String, CodingKey {
        case externalRef = "external_ref"
        case documentNumber = "document_number"
        case version, status, currency, total
        case refundedTotal = "refunded_total"
        case financialStatus = "financial_status"
    }
}

/// The reads the reconciler needs of an ERP's sales orders (docs/erp-api.yaml, both profiles).
public protocol ERPOrderReader: Sendable {
    /// Every sales order the ERP changed at or after `since`, oldest change first.
    func salesOrders(changedSince since: Date) async throws(ERPError) -> [ERPOrderRecord]
    /// Every document holding `externalRef` (several: duplicates a plain-profile ERP was given), oldest first.
    func salesOrders(externalRef: String) async throws(ERPError) -> [ERPOrderRecord]
}

extension RESTERPClient: ERPOrderReader {
    private struct OrderList: Decodable { var orders: [ERPOrderRecord] }

    public func salesOrders(changedSince since: Date) async throws(ERPError) -> [ERPOrderRecord] {
        // Whole seconds, rounded down (an ERP need not parse fractions; one more second of orders is harmless).
        let at = Date(timeIntervalSince1970: since.timeIntervalSince1970.rounded(.down)).formatted(Date.ISO8601FormatStyle())
        return try await get("/api/v1/sales-orders?changed_since=\(Self.escapeQuery(at))", OrderList.self, what: "sales-order list").orders
    }

    public func salesOrders(externalRef: String) async throws(ERPError) -> [ERPOrderRecord] {
        try await get("/api/v1/sales-orders?external_ref=\(Self.escapeQuery(externalRef))", OrderList.self, what: "sales-order lookup").orders
    }
}
