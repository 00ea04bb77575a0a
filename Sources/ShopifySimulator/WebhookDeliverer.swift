import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore

/// Delivers webhook events the way Shopify does: a POST per subscription with Shopify's headers and an HMAC-SHA256
/// (base64) of the body under the shop's secret; a 5 s deadline; any non-2xx (or no answer) is retried 8 times over
/// about four hours (`timeScale` shrinks the schedule so tests take seconds). Faults can be injected: duplicate
/// deliveries, random delays (which reorder), dropped deliveries.
public actor WebhookDeliverer {
    public struct Policy: Sendable {
        public var deadline: Duration = .seconds(5)
        /// Shopify: 8 retries over ~4 hours.
        public var retryDelays: [Duration] = [
            .seconds(10), .seconds(30), .seconds(60), .seconds(300), .seconds(900), .seconds(1800), .seconds(3600),
            .seconds(7200),
        ]
        /// Multiplies every retry delay (0.001: the four hours take ~14 s).
        public var timeScale: Double = 1
        public init(timeScale: Double = 1) { self.timeScale = timeScale }

        func delay(after attempt: Int) -> Duration {
            let d = retryDelays[min(attempt, retryDelays.count - 1)]
            return .nanoseconds(Int64(Double(d.components.seconds) * 1e9 * timeScale))
        }
    }

    /// Faults, switched at runtime (`PUT /_sim/faults`).
    public struct Faults: Codable, Sendable, Equatable {
        /// Share of deliveries sent twice (same webhook id).
        public var duplicateRate: Double = 0
        /// Share of deliveries never sent (for reconciliation to find).
        public var dropRate: Double = 0
        /// Each delivery waits a random 0...max ms first; deliveries overtake each other (reordering).
        public var maxDelayMs: Int = 0

        enum CodingKeys: String, CodingKey {
            case duplicateRate = "duplicate_rate"
            case dropRate = "drop_rate"
            case maxDelayMs = "max_delay_ms"
        }
        public init() {}
        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            duplicateRate = try c.decodeIfPresent(Double.self, forKey: .duplicateRate) ?? 0
            dropRate = try c.decodeIfPresent(Double.self, forKey: .dropRate) ?? 0
            maxDelayMs = try c.decodeIfPresent(Int.self, forKey: .maxDelayMs) ?? 0
        }
    }

    /// One delivery (all attempts of one webhook to one subscription).
    public struct Delivery: Sendable, Equatable {
        public enum Outcome: String, Sendable { case pending, delivered, failed, dropped }
        public var webhookId: String
        public var topic: String
        public var orderId: Int64?
        public var url: String
        /// HTTP status per attempt (0: no answer within the deadline or connection refused).
        public var attempts: [Int] = []
        /// When each attempt was made.
        public var attemptTimes: [Date] = []
        public var outcome: Outcome = .pending
        public var duplicated = false
    }

    public let domain: String
    public let apiVersion: String
    private let secret: String
    public let policy: Policy
    public private(set) var faults = Faults()
    /// topic -> URL; "*" matches every topic.
    public private(set) var subscriptions: [String: String] = [:]
    public private(set) var log: [Delivery] = []
    private var indexById: [String: Int] = [:]
    private let client: HTTPClient
    private let logger: Logger
    private var inFlight = 0

    public init(domain: String, secret: String, apiVersion: String = "2026-07", policy: Policy = .init(), logger: Logger = Logger(label: "shopify-sim")) {
        self.domain = domain
        self.secret = secret
        self.apiVersion = apiVersion
        self.policy = policy
        self.logger = logger
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: .seconds(1), read: .seconds(5))
        config.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config)
    }

    public func shutdown() async { try? await client.shutdown() }

    public func subscribe(topic: String, url: String) { subscriptions[topic] = url }
    public func unsubscribeAll() { subscriptions = [:] }
    public func setFaults(_ f: Faults) { faults = f }

    /// The Shopify signature: base64(HMAC-SHA256(key: secret, message: body)).
    public static func sign(_ body: Data, secret: String) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))
        return Data(mac).base64EncodedString()
    }

    /// Deliveries still in progress (including waits between retries).
    public var pending: Int { inFlight }

    /// Delivers `events` to their subscriptions and returns when every delivery finished (delivered, failed after
    /// the last retry, or dropped). Deliveries run concurrently.
    public func deliver(_ events: [WebhookEvent]) async {
        await withTaskGroup(of: Void.self) { group in
            for event in events {
                for url in urls(for: event.topic) {
                    let webhookId = UUID().uuidString.lowercased()
                    var d = Delivery(webhookId: webhookId, topic: event.topic, orderId: event.orderId, url: url)
                    let f = faults
                    if f.dropRate > 0, Double.random(in: 0..<1) < f.dropRate {
                        d.outcome = .dropped
                        append(d)
                        continue
                    }
                    d.duplicated = f.duplicateRate > 0 && Double.random(in: 0..<1) < f.duplicateRate
                    append(d)
                    inFlight += 1
                    let delay = f.maxDelayMs > 0 ? Int.random(in: 0...f.maxDelayMs) : 0
                    group.addTask {
                        if delay > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
                        await self.attempt(event, webhookId: webhookId, url: url)
                    }
                }
            }
        }
    }

    private func urls(for topic: String) -> [String] {
        var out: [String] = []
        if let u = subscriptions[topic] { out.append(u) }
        if let u = subscriptions["*"], !out.contains(u) { out.append(u) }
        return out
    }

    private func append(_ d: Delivery) {
        indexById[d.webhookId] = log.count
        log.append(d)
    }

    private func record(_ webhookId: String, status: Int, at date: Date) {
        guard let i = indexById[webhookId] else { return }
        log[i].attempts.append(status)
        log[i].attemptTimes.append(date)
    }

    private func finish(_ webhookId: String, _ outcome: Delivery.Outcome) {
        if let i = indexById[webhookId] { log[i].outcome = outcome }
        inFlight -= 1
    }

    private func attempt(_ event: WebhookEvent, webhookId: String, url: String) async {
        var attempt = 0
        while true {
            let status = await post(event, webhookId: webhookId, url: url)
            record(webhookId, status: status, at: Date())
            if (200..<300).contains(status) {
                if let i = indexById[webhookId], log[i].duplicated {
                    // The duplicate: the same delivery again, same webhook id.
                    let again = await post(event, webhookId: webhookId, url: url)
                    record(webhookId, status: again, at: Date())
                }
                finish(webhookId, .delivered)
                return
            }
            guard attempt < policy.retryDelays.count else {
                logger.warning("webhook failed after every retry", metadata: ["topic": "\(event.topic)", "webhook_id": "\(webhookId)"])
                finish(webhookId, .failed)
                return
            }
            try? await Task.sleep(for: policy.delay(after: attempt))
            attempt += 1
        }
    }

    /// One POST; the status, or 0 when there was no answer in time.
    private func post(_ event: WebhookEvent, webhookId: String, url: String) async -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-Shopify-Topic", value: event.topic)
        request.headers.add(name: "X-Shopify-Hmac-Sha256", value: Self.sign(event.body, secret: secret))
        request.headers.add(name: "X-Shopify-Shop-Domain", value: domain)
        request.headers.add(name: "X-Shopify-API-Version", value: apiVersion)
        request.headers.add(name: "X-Shopify-Webhook-Id", value: webhookId)
        request.headers.add(name: "X-Shopify-Event-Id", value: event.eventId)
        request.headers.add(
            name: "X-Shopify-Triggered-At",
            value: ShopifyOrderFixture.isoMilliseconds(event.triggeredAt))
        request.body = .bytes(ByteBuffer(bytes: event.body))
        do {
            let response = try await client.execute(request, timeout: .seconds(Int64(policy.deadline.components.seconds)))
            _ = try? await response.body.collect(upTo: 1 << 20)
            return Int(response.status.code)
        } catch {
            return 0
        }
    }
}
