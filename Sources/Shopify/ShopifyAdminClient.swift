import AsyncHTTPClient
import BridgeDomain
import Foundation
import Logging
import Metrics
import NIOCore
import Synchronization

/// A failed Admin API call, classified once: `retryable` failures are worth another attempt later (the shop is
/// unreachable, answered 5xx or 429, or stayed throttled), the others are not (a bad token, a query Shopify refuses).
public enum ShopifyAdminError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The query costs more than Shopify's single-query limit: a bug in the caller, which must split it.
    case maxCostExceeded(requested: Int, limit: Int)
    /// Still throttled after every attempt (the bucket never had the points: another app is using the budget).
    case throttled(attempts: Int)
    /// 401/403: the access token is wrong or lacks a scope.
    case unauthorized(status: Int, message: String)
    /// No answer, a 5xx, or a 429.
    case unavailable(String)
    /// Errors of the query itself (not throttling): validation, a missing field, an internal error.
    case graphQL([String])
    /// An answer that is not Shopify's JSON envelope, or data of another shape.
    case invalidResponse(String)

    public var retryable: Bool {
        switch self {
        case .throttled, .unavailable: return true
        case .maxCostExceeded, .unauthorized, .graphQL, .invalidResponse: return false
        }
    }

    public var description: String {
        switch self {
        case .maxCostExceeded(let r, let l): return "query cost \(r) exceeds Shopify's single-query limit \(l): split it"
        case .throttled(let n): return "still throttled after \(n) attempts"
        case .unauthorized(let s, let m): return "HTTP \(s): \(m)"
        case .unavailable(let m): return "Shopify unavailable: \(m)"
        case .graphQL(let m): return "GraphQL errors: \(m.joined(separator: "; "))"
        case .invalidResponse(let m): return "invalid response: \(m)"
        }
    }
}

/// A cost-aware client of one shop's Admin GraphQL API (`POST {admin_url}/admin/api/{version}/graphql.json`),
/// over async-http-client, for the inventory-syncer and the reconciler.
///
/// Shopify rate-limits GraphQL by query cost: a leaky bucket per shop (the plan's restore rate, 20 seconds of it in
/// the bucket). This client keeps its own picture of the bucket (`GraphQLCostBudget`, corrected by every answer's
/// `extensions.cost.throttleStatus`) and makes each request wait for its points, so it runs just under the restore
/// rate instead of hitting `THROTTLED`. A `THROTTLED` answer anyway (another app shares the bucket) is retried
/// after the time the bucket needs; `MAX_COST_EXCEEDED` is the caller's bug and thrown at once. Each document's
/// requested cost is learnt from its first answer and reserved from then on.
///
/// Metrics (label `shop`): `shopify_api_requests_total{outcome}`, `shopify_api_points_used_total` (actual cost),
/// `shopify_api_throttled_total`, `shopify_api_bucket_available` (the estimate after each answer).
public final class ShopifyAdminClient: Sendable {
    public struct Configuration: Sendable {
        /// The shop's id in config (`acme`): metric label and log field.
        public var shopId: String
        /// `https://acme.myshopify.com`, or the simulator's URL.
        public var adminURL: String
        public var apiVersion: String
        /// Never logged.
        public var accessToken: String
        /// Until the first answer: the plan's restore rate (points/s) and bucket size.
        public var restoreRate: Double
        public var bucketSize: Double
        public var timeout: Duration
        /// Attempts of one call while Shopify answers `THROTTLED`.
        public var maxThrottledAttempts: Int

        public init(
            shopId: String, adminURL: String, apiVersion: String, accessToken: String, restoreRate: Double,
            bucketSize: Double? = nil, timeout: Duration = .seconds(30), maxThrottledAttempts: Int = 20
        ) {
            self.shopId = shopId
            self.adminURL = adminURL.hasSuffix("/") ? String(adminURL.dropLast()) : adminURL
            self.apiVersion = apiVersion
            self.accessToken = accessToken
            self.restoreRate = restoreRate
            self.bucketSize = bucketSize ?? restoreRate * 20
            self.timeout = timeout
            self.maxThrottledAttempts = maxThrottledAttempts
        }

        /// From a configured shop and its plan.
        public init(shop: BridgeConfig.Shop) {
            self.init(
                shopId: shop.id, adminURL: shop.adminURL, apiVersion: shop.apiVersion, accessToken: shop.adminToken,
                restoreRate: Double(shop.plan.restoreRatePerSecond), bucketSize: Double(shop.plan.bucketSize))
        }
    }

    /// What this client has done so far (tests and benchmarks read it; the same figures are exported as metrics).
    public struct Stats: Sendable, Equatable {
        public var requests = 0
        public var throttled = 0
        public var pointsUsed = 0
        public var waited: Duration = .zero
    }

    public let configuration: Configuration
    let client: HTTPClient
    private let budget: GraphQLCostBudget
    private let knownCosts = Mutex<[Int: Int]>([:])
    private let counters = Mutex(Stats())
    private let logger: Logger
    private let pointsUsed: Counter
    private let throttledCounter: Counter
    private let bucketGauge: Gauge

    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        var c = HTTPClient.Configuration()
        c.timeout = .init(connect: .seconds(5), read: .milliseconds(configuration.timeout.wholeMilliseconds))
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: c)
        budget = GraphQLCostBudget(maximum: configuration.bucketSize, restoreRate: configuration.restoreRate)
        var logger = logger
        logger[metadataKey: "shop"] = "\(configuration.shopId)"
        self.logger = logger
        let shop = [("shop", configuration.shopId)]
        pointsUsed = Counter(label: "shopify_api_points_used_total", dimensions: shop)
        throttledCounter = Counter(label: "shopify_api_throttled_total", dimensions: shop)
        bucketGauge = Gauge(label: "shopify_api_bucket_available", dimensions: shop)
    }

    /// Closes pooled connections; `ShopifyAdminClientService` calls it when the process stops.
    public func shutdown() async {
        try? await client.shutdown()
    }

    public var stats: Stats { counters.withLock { $0 } }

    /// The bucket as this client sees it now.
    public var bucketEstimate: Double { get async { await budget.estimate } }

    private struct Body<V: Encodable>: Encodable {
        var query: String
        var variables: V
    }

    private struct ErrorBody: Decodable {
        struct Extensions: Decodable {
            var code: String?
            var cost: Int?
            var maxCost: Int?
        }
        var message: String
        var extensions: Extensions?
    }

    private struct Cost: Decodable {
        var requestedQueryCost: Int?
        var actualQueryCost: Int?
        var throttleStatus: ThrottleStatus?
    }

    private struct Envelope<D: Decodable>: Decodable {
        struct Extensions: Decodable { var cost: Cost? }
        var data: D?
        var errors: [ErrorBody]?
        var extensions: Extensions?
    }

    /// Runs `document` with `variables` and decodes `data` as `D`, waiting for the bucket's points first and
    /// retrying `THROTTLED` answers.
    ///
    /// - Parameter expectedCost: the cost to reserve for a document this client has not sent before (afterwards
    ///   the requested cost Shopify reported is used).
    ///   - mayProceed: asked right before each request goes out (after any wait for points): false throws
    ///     `.unavailable` without sending (a writer that can no longer confirm it is the one writer).
    public func execute<D: Decodable & Sendable, V: Encodable & Sendable>(
        _ document: String, variables: V, expectedCost: Int = 10, as type: D.Type = D.self,
        mayProceed: (@Sendable () -> Bool)? = nil
    ) async throws(ShopifyAdminError) -> D {
        let key = document.hashValue
        let body: Data
        do {
            body = try JSONEncoder().encode(Body(query: document, variables: variables))
        } catch {
            throw .invalidResponse("variables cannot be encoded: \(error)")
        }
        for attempt in 1...configuration.maxThrottledAttempts {
            let cost = knownCosts.withLock { $0[key] } ?? expectedCost
            let wait = await budget.reserve(cost)
            if wait > .zero {
                counters.withLock { $0.waited += wait }
                try? await Task.sleep(for: wait)
            }
            if let mayProceed, !mayProceed() {
                await budget.settle(reserved: cost, status: nil)
                throw .unavailable("not sent: this process can no longer confirm it is the one writer")
            }
            let envelope: Envelope<D>
            do {
                envelope = try await send(body, as: D.self)
            } catch {
                await budget.settle(reserved: cost, status: nil)
                count(outcome: "unavailable")
                throw error
            }
            let reported = envelope.extensions?.cost
            bucketGauge.record(await budget.settle(reserved: cost, status: reported?.throttleStatus))
            let errors = envelope.errors ?? []
            if let e = errors.first(where: { $0.extensions?.code == "MAX_COST_EXCEEDED" }) {
                count(outcome: "max_cost_exceeded")
                throw .maxCostExceeded(
                    requested: e.extensions?.cost ?? reported?.requestedQueryCost ?? cost, limit: e.extensions?.maxCost ?? 1000)
            }
            // Learnt only from a query Shopify accepted to price (one over the limit is never sent again anyway).
            if let requested = reported?.requestedQueryCost, requested > 0 {
                knownCosts.withLock { $0[key] = requested }
            }
            if errors.contains(where: { $0.extensions?.code == "THROTTLED" }) {
                count(outcome: "throttled")
                throttledCounter.increment()
                counters.withLock { $0.throttled += 1 }
                logger.debug("throttled", metadata: ["attempt": "\(attempt)", "cost": "\(cost)"])
                continue
            }
            if let used = reported?.actualQueryCost {
                pointsUsed.increment(by: used)
                counters.withLock { $0.pointsUsed += used }
            }
            guard errors.isEmpty else {
                count(outcome: "graphql_error")
                throw .graphQL(errors.map(\.message))
            }
            guard let data = envelope.data else {
                count(outcome: "invalid_response")
                throw .invalidResponse("no data and no errors")
            }
            count(outcome: "ok")
            return data
        }
        logger.warning("still throttled after every attempt", metadata: ["attempts": "\(configuration.maxThrottledAttempts)"])
        throw .throttled(attempts: configuration.maxThrottledAttempts)
    }

    private func count(outcome: String) {
        counters.withLock { $0.requests += 1 }
        Counter(label: "shopify_api_requests_total", dimensions: [("shop", configuration.shopId), ("outcome", outcome)])
            .increment()
    }

    private func send<D: Decodable>(_ body: Data, as type: D.Type) async throws(ShopifyAdminError) -> Envelope<D> {
        var request = HTTPClientRequest(url: "\(configuration.adminURL)/admin/api/\(configuration.apiVersion)/graphql.json")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-Shopify-Access-Token", value: configuration.accessToken)
        request.body = .bytes(ByteBuffer(bytes: body))
        let status: UInt
        let bytes: ByteBuffer
        do {
            let response = try await client.execute(request, timeout: .milliseconds(configuration.timeout.wholeMilliseconds))
            status = response.status.code
            bytes = try await response.body.collect(upTo: 64 << 20)
        } catch {
            throw .unavailable("\(error)")
        }
        switch status {
        case 200: break
        case 401, 403:
            throw .unauthorized(status: Int(status), message: String(buffer: bytes).prefix(200).description)
        case 429, 500...599:
            throw .unavailable("HTTP \(status)")
        default:
            throw .invalidResponse("HTTP \(status): \(String(buffer: bytes).prefix(200))")
        }
        do {
            return try JSONDecoder().decode(Envelope<D>.self, from: Data(bytes.readableBytesView))
        } catch {
            throw .invalidResponse("\(error)")
        }
    }
}
