import Hummingbird
import Logging
import Shopify
import ShopifySimulator

/// shopify-sim's Admin API served over HTTP on a free port, with a bucket and a shop of the test's choosing, and
/// clients of the bridge's `ShopifyAdminClient` pointed at it.
public final class TestShopifyAdmin: Sendable {
    public static let token = "shpat_test_admin"
    public let store: ShopifyStore
    public let api: ShopifyAdminAPI
    public let deliverer: WebhookDeliverer
    public let port: Int
    let task: Task<Void, any Error>

    public static func start(
        bucket: ThrottleBucket = ThrottleBucket(restoreRate: 1000), skus: Int = 20, locations: Int = 2, initialStock: Int = 50,
        webhookSecret: String = "s", deliveryPolicy: WebhookDeliverer.Policy = .init(), seed: UInt64 = 3
    ) async throws -> TestShopifyAdmin {
        let store = ShopifyStore(domain: "acme.myshopify.com", seed: seed, skus: skus, locations: locations, initialStock: initialStock)
        let deliverer = WebhookDeliverer(domain: "acme.myshopify.com", secret: webhookSecret, policy: deliveryPolicy)
        let api = try ShopifyAdminAPI(store: store, deliverer: deliverer, accessToken: token, bucket: bucket)
        let router = Router()
        api.addRoutes(to: router)
        let (port, task) = await TestHTTPServer.start(router, label: "shopify-sim")
        return TestShopifyAdmin(store: store, api: api, deliverer: deliverer, port: port, task: task)
    }

    /// The Admin API of a shop a test already drives (a sale's store and deliverer), e.g. for a reconciler to read.
    public static func serve(
        _ store: ShopifyStore, deliverer: WebhookDeliverer, bucket: ThrottleBucket = ThrottleBucket(restoreRate: 1000)
    ) async throws -> TestShopifyAdmin {
        let api = try ShopifyAdminAPI(store: store, deliverer: deliverer, accessToken: token, bucket: bucket)
        let router = Router()
        api.addRoutes(to: router)
        let (port, task) = await TestHTTPServer.start(router, label: "shopify-sim")
        return TestShopifyAdmin(store: store, api: api, deliverer: deliverer, port: port, task: task)
    }

    init(store: ShopifyStore, api: ShopifyAdminAPI, deliverer: WebhookDeliverer, port: Int, task: Task<Void, any Error>) {
        self.store = store
        self.api = api
        self.deliverer = deliverer
        self.port = port
        self.task = task
    }

    /// A client for this shop; shut it down when done (async-http-client requires it).
    public func client(token: String = TestShopifyAdmin.token, restoreRate: Double = 1000, bucketSize: Double? = nil) -> ShopifyAdminClient {
        var logger = Logger(label: "shopify-client")
        logger.logLevel = .warning
        return ShopifyAdminClient(
            configuration: .init(
                shopId: "acme", adminURL: "http://127.0.0.1:\(port)", apiVersion: "2026-07", accessToken: token,
                restoreRate: restoreRate, bucketSize: bucketSize),
            logger: logger)
    }

    public func stop() async {
        task.cancel()
        await deliverer.shutdown()
    }
}
