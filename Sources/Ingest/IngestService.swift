import BridgeDomain
import BridgeMessaging
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Messaging
import NIOCore
import Synchronization


/// The front door: `POST /webhooks/shopify` and `POST /webhooks/erp/{event}`.
///
/// Verify first (HMAC over the raw body, constant time, per-shop secrets), then publish the untouched body to the
/// inbound exchange (persistent, mandatory, confirmed), and only then answer 200. Anything that could still be lost
/// gets 503 with Retry-After, never 200.
public struct IngestService: Sendable {
    /// The shops and the ERP's secret: replaced whole by `reload` (SIGHUP), read per request.
    struct Credentials: Sendable {
        var shops: [String: BridgeConfig.Shop]
        var erpSecret: String

        init(_ config: BridgeConfig) {
            var byDomain: [String: BridgeConfig.Shop] = [:]
            for shop in config.shops { byDomain[shop.domain] = shop }
            shops = byDomain
            erpSecret = config.erp.webhookSecret
        }
    }

    final class CredentialStore: Sendable {
        let current: Mutex<Credentials>
        init(_ c: Credentials) { current = Mutex(c) }
    }

    private let credentials: CredentialStore
    public var shops: [String: BridgeConfig.Shop] { credentials.current.withLock { $0.shops } }
    public var erpSecret: String { credentials.current.withLock { $0.erpSecret } }
    public let publisher: AMQPConnection
    public let settings: IngestSettings
    let logger: Logger
    let dedup: DeduplicationWindow
    let metrics = IngestMetrics()

    public init(config: BridgeConfig, publisher: AMQPConnection, logger: Logger) {
        let settings = config.ingest
        self.credentials = CredentialStore(Credentials(config))
        self.publisher = publisher
        self.settings = settings
        self.logger = logger
        self.dedup = DeduplicationWindow(window: settings.dedupWindow, capacity: settings.dedupCapacity)
    }

    /// Takes the shops and secrets of a configuration read again (SIGHUP: a rotated secret file, a shop added)
    /// without a restart; requests in flight finish with what they started with. Logs counts, never values.
    public func reload(_ config: BridgeConfig) {
        let next = Credentials(config)
        credentials.current.withLock { $0 = next }
        logger.notice(
            "shops and secrets reloaded",
            metadata: [
                "shops": "\(next.shops.keys.sorted().joined(separator: ","))",
                "webhook_secret_counts": "\(next.shops.values.map { "\($0.id)=\($0.webhookSecrets.count)" }.sorted().joined(separator: ","))",
                "erp_webhook_secret_set": "\(!next.erpSecret.isEmpty)",
            ])
    }

    static let complianceTopics: Set<String> = TopicCatalogue.shopifyNames(.compliance)

    public func addRoutes(to router: Router<BasicRequestContext>) {
        router.post("/webhooks/shopify") { request, _ in
            await self.handleShopify(request)
        }
        router.post("/webhooks/erp/{event}") { request, context in
            await self.handleERP(request, event: context.parameters.get("event") ?? "")
        }
    }

    // MARK: - Shopify

    func handleShopify(_ request: Request) async -> Response {
        metrics.enter()
        defer { metrics.leave() }
        let h = request.headers
        let topic = h[.shopifyTopic]
        let topicLabel = IngestMetrics.topicLabel(topic)
        func reject(_ status: HTTPResponse.Status, _ reason: String, _ message: String) -> Response {
            metrics.rejection(source: "shopify", reason: reason)
            metrics.request(source: "shopify", topic: topicLabel, status: status.code)
            logger.warning(
                "webhook rejected",
                metadata: [
                    "reason": "\(reason)", "topic": "\(topicLabel)",
                    "shop": "\(h[.shopifyShopDomain] ?? "-")",
                    "webhook_id": "\(h[.shopifyWebhookId] ?? "-")",
                ])
            return Self.text(status, message)
        }

        let body: ByteBuffer
        switch await collectBody(request) {
        case .success(let b): body = b
        case .failure(let r): return reject(r.status, r.reason, r.message)
        }
        guard let domain = h[.shopifyShopDomain], let shop = shops[domain.lowercased()] else {
            return reject(.unauthorized, "unknown_shop", "unknown shop")
        }
        guard let signature = h[.shopifyHmac] else {
            return reject(.unauthorized, "missing_signature", "missing X-Shopify-Hmac-Sha256")
        }
        let bytes = body.readableBytesView
        guard WebhookSignature.isValid(signature, body: bytes, secrets: shop.webhookSecrets) else {
            return reject(.unauthorized, "invalid_signature", "invalid signature")
        }
        // Verified from here on.
        guard let topic, !topic.isEmpty,
            let webhookId = h[.shopifyWebhookId], !webhookId.isEmpty,
            let apiVersion = h[.shopifyAPIVersion], !apiVersion.isEmpty
        else {
            return reject(
                .badRequest, "missing_headers",
                "X-Shopify-Topic, X-Shopify-Webhook-Id and X-Shopify-API-Version are required")
        }
        guard bytes.count > 0 else {
            return reject(.badRequest, "empty_body", "empty body")
        }
        if Self.complianceTopics.contains(topic), let claimed = Self.shopDomain(inPayload: bytes), claimed != shop.domain {
            return reject(.unauthorized, "shop_mismatch", "payload shop_domain does not match the signing shop")
        }
        // A verified delivery triggered longer ago than Shopify ever retries is a captured request played again:
        // answered 200 (a replayer learns nothing), not enqueued, counted and logged.
        if let maxAge = settings.maxDeliveryAge, let triggered = h[.shopifyTriggeredAt].flatMap(Timestamp.parse),
            Date().timeIntervalSince(triggered) > maxAge.seconds
        {
            metrics.stale(source: "shopify")
            metrics.request(source: "shopify", topic: topicLabel, status: 200)
            logger.warning(
                "delivery older than ingest.max_delivery_age ignored (a replayed request?)",
                metadata: [
                    "shop": "\(shop.domain)", "topic": "\(topic)", "webhook_id": "\(webhookId)",
                    "triggered_at": "\(h[.shopifyTriggeredAt] ?? "-")",
                ])
            return Self.text(.ok, "ignored: too old")
        }
        if dedup.contains(webhookId) {
            metrics.duplicate(source: "shopify")
            metrics.request(source: "shopify", topic: topicLabel, status: 200)
            return Self.text(.ok, "duplicate")
        }

        let properties = InboundEnvelope(
            source: .shopify, shopDomain: shop.domain, topic: topic, deliveryId: webhookId, eventId: h[.shopifyEventId],
            triggeredAt: h[.shopifyTriggeredAt], apiVersion: apiVersion, receivedAt: Self.now()
        ).properties()
        let routingKey = BridgeTopology.routingKey(forShopifyTopic: topic)
        let status = await publish(
            source: "shopify", exchange: BridgeTopology.shopifyInbound, routingKey: routingKey, body: Array(bytes),
            properties: properties,
            logMetadata: ["shop": "\(shop.domain)", "topic": "\(topic)", "webhook_id": "\(webhookId)"])
        metrics.request(source: "shopify", topic: topicLabel, status: status.code)
        if status == .ok { dedup.record(webhookId) }
        return status == .ok ? Self.text(.ok, "ok") : Self.unavailable()
    }

    // MARK: - ERP

    func handleERP(_ request: Request, event: String) async -> Response {
        metrics.enter()
        defer { metrics.leave() }
        let h = request.headers
        let erpSecret = self.erpSecret
        func reject(_ status: HTTPResponse.Status, _ reason: String, _ message: String) -> Response {
            metrics.rejection(source: "erp", reason: reason)
            metrics.request(source: "erp", topic: "erp", status: status.code)
            logger.warning("erp event rejected", metadata: ["reason": "\(reason)"])
            return Self.text(status, message)
        }
        let body: ByteBuffer
        switch await collectBody(request) {
        case .success(let b): body = b
        case .failure(let r): return reject(r.status, r.reason, r.message)
        }
        guard !erpSecret.isEmpty else {
            return reject(.unauthorized, "erp_not_configured", "ERP webhooks are not configured (erp.webhook_secret)")
        }
        guard let signature = h[.erpSignature] else {
            return reject(.unauthorized, "missing_signature", "missing X-ERP-Signature")
        }
        let bytes = body.readableBytesView
        guard WebhookSignature.isValid(signature, body: bytes, secrets: [erpSecret]) else {
            return reject(.unauthorized, "invalid_signature", "invalid signature")
        }
        guard event.range(of: "^[a-z0-9_]+(\\.[a-z0-9_]+)+$", options: .regularExpression) != nil else {
            return reject(.badRequest, "invalid_event", "event must look like inventory.changed or shipment.created")
        }
        guard let eventId = h[.erpEventId], !eventId.isEmpty else {
            return reject(.badRequest, "missing_headers", "X-ERP-Event-Id is required")
        }
        guard bytes.count > 0 else { return reject(.badRequest, "empty_body", "empty body") }
        let dedupKey = "erp:" + eventId
        if dedup.contains(dedupKey) {
            metrics.duplicate(source: "erp")
            metrics.request(source: "erp", topic: "erp", status: 200)
            return Self.text(.ok, "duplicate")
        }
        let properties = InboundEnvelope(
            source: .erp, shopDomain: nil, topic: event, deliveryId: eventId, eventId: eventId,
            triggeredAt: h[.erpTriggeredAt], receivedAt: Self.now()
        ).properties()
        let status = await publish(
            source: "erp", exchange: BridgeTopology.erpInbound, routingKey: event, body: Array(bytes),
            properties: properties, logMetadata: ["topic": "\(event)", "event_id": "\(eventId)"])
        metrics.request(source: "erp", topic: "erp", status: status.code)
        if status == .ok { dedup.record(dedupKey) }
        return status == .ok ? Self.text(.ok, "ok") : Self.unavailable()
    }

    struct BodyRejection: Error {
        let status: HTTPResponse.Status
        let reason: String
        let message: String
    }

    /// The raw body, at most `ingest.max_body_bytes` (413 beyond).
    func collectBody(_ request: Request) async -> Result<ByteBuffer, BodyRejection> {
        do {
            return .success(try await request.body.collect(upTo: settings.maxBodyBytes))
        } catch is NIOTooManyBytesError {
            return .failure(BodyRejection(status: .contentTooLarge, reason: "body_too_large", message: "body exceeds \(settings.maxBodyBytes) bytes"))
        } catch {
            return .failure(BodyRejection(status: .badRequest, reason: "body_unreadable", message: "could not read the body"))
        }
    }

    // MARK: - Publishing

    /// Publishes and waits for the confirm. `.ok` only when the broker confirmed; `.serviceUnavailable` otherwise.
    func publish(
        source: String, exchange: String, routingKey: String, body: [UInt8], properties: MessageProperties,
        logMetadata: Logger.Metadata
    ) async -> HTTPResponse.Status {
        let started = ContinuousClock.now
        do {
            try await publisher.publish(
                exchange: exchange, routingKey: routingKey, body: body, properties: properties, mandatory: true,
                timeout: settings.confirmTimeout)
            metrics.confirmLatency(source: source, ContinuousClock.now - started)
            return .ok
        } catch {
            let e = error as? AMQPError
            let reason = e.map { "publish_\($0.code.rawValue)" } ?? "publish_failed"
            metrics.rejection(source: source, reason: reason)
            var metadata = logMetadata
            metadata["error"] = "\(error)"
            logger.error("enqueue failed; answering 503 so the sender retries", metadata: metadata)
            return .serviceUnavailable
        }
    }

    // MARK: - Helpers

    static func text(_ status: HTTPResponse.Status, _ message: String) -> Response {
        Response(
            status: status, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: message + "\n")))
    }

    static func unavailable() -> Response {
        Response(
            status: .serviceUnavailable,
            headers: [.contentType: "text/plain; charset=utf-8", .retryAfter: "5"],
            body: .init(byteBuffer: ByteBuffer(string: "not enqueued; retry later\n")))
    }

    static func shopDomain(inPayload bytes: some Collection<UInt8>) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { return nil }
        return object["shop_domain"] as? String
    }

    static func now() -> String {
        // Milliseconds: a trace orders ingest's receipt against Shopify's trigger and the workers' steps.
        Timestamp.string(milliseconds: Timestamp.milliseconds(Date()))
    }
}

/// The webhook headers ingest reads (HTTP field names are case-insensitive).
extension HTTPField.Name {
    public static let shopifyTopic = Self("X-Shopify-Topic")!
    public static let shopifyHmac = Self("X-Shopify-Hmac-Sha256")!
    public static let shopifyShopDomain = Self("X-Shopify-Shop-Domain")!
    public static let shopifyAPIVersion = Self("X-Shopify-API-Version")!
    public static let shopifyWebhookId = Self("X-Shopify-Webhook-Id")!
    public static let shopifyEventId = Self("X-Shopify-Event-Id")!
    public static let shopifyTriggeredAt = Self("X-Shopify-Triggered-At")!
    public static let erpSignature = Self("X-ERP-Signature")!
    public static let erpEventId = Self("X-ERP-Event-Id")!
    public static let erpTriggeredAt = Self("X-ERP-Triggered-At")!
}
