import BridgeMessaging
import Foundation
import Metrics
import Worker

/// The consumer of `q.compliance`: Shopify's mandatory privacy webhooks (`customers/data_request`,
/// `customers/redact`, `shop/redact`) and `app/uninstalled`, on the shared `QueueWorker`.
///
/// Today it records each request (a log line with the shop, topic, delivery id and the ids in the payload, never
/// personal data, and `compliance_requests_total{shop,topic}`) so none sits unconsumed in the queue; Shopify expects
/// data requests and redactions to be completed within 30 days. What the bridge then does (purging dead letters
/// that carry the customer's orders, telling the ERP's owner, raising an alert) lands here later.
public struct ComplianceHandler: QueueHandler {
    public var subject: String { "compliance request" }

    public init() {}

    /// The ids of a compliance payload (no names, e-mails or phone numbers are read).
    struct Payload: Decodable {
        struct Customer: Decodable { let id: Int64? }
        let shop_id: Int64?
        let shop_domain: String?
        let customer: Customer?
        let orders_requested: [Int64]?
        let orders_to_redact: [Int64]?
    }

    public func handle(_ message: InboundMessage, context: inout WorkContext) async throws -> WorkOutcome {
        let topic = message.envelope.topic
        guard TopicCatalogue.shopify(named: topic)?.queue == BridgeTopology.compliance else {
            return WorkOutcome("ignored_topic")
        }
        let payload = try JSONDecoder().decode(Payload.self, from: Data(message.body))
        Counter(label: "compliance_requests_total", dimensions: [("shop", message.envelope.shopDomain ?? "-"), ("topic", topic)])
            .increment()
        context.logger.notice(
            "compliance request recorded",
            metadata: [
                "customer_id": "\(payload.customer?.id.map(String.init) ?? "-")",
                "orders": "\((payload.orders_requested ?? payload.orders_to_redact ?? []).count)",
            ])
        return WorkOutcome("recorded")
    }

    public func classify(_ error: any Error) -> WorkFailure {
        // The only failure is a body that is not a compliance payload: retrying cannot fix it.
        .failed(ProcessingFailure(errorClass: "invalid_payload", message: "\(error)", retryable: false))
    }
}
