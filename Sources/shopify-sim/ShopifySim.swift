import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ShopifySimulator
import SimulatorKit

/// A simulated Shopify shop: seeded catalogue and stock, orders from a traffic generator, webhooks delivered with
/// Shopify's headers, HMAC, deadline and retry schedule, injectable faults, the Admin GraphQL API (cost, throttling,
/// inventory mutations, bulk operations), and an inspection API under /_sim.
@main
struct ShopifySim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "shopify-sim", abstract: "A simulated Shopify shop for demos, tests and benchmarks.")

    @Option(help: "Listen address.") var host = "127.0.0.1"
    @Option(help: "Listen port (0: any free port, printed at start).") var port = 8091
    @Option(help: "The shop's myshopify domain.") var shop = "demo.myshopify.com"
    @Option(help: "Webhook signing secret (the app's client secret).") var secret = "demo-webhook-secret-change-me"
    @Option(help: "Admin API access token (X-Shopify-Access-Token).") var accessToken = "shpat_demo_token_change_me"
    @Option(help: "Plan, for the API's rate limit: standard (100 points/s), advanced (200), plus (1000), enterprise (2000).")
    var plan = "standard"
    @Option(help: "A restore rate of its own, points/s (overrides --plan; the bucket holds 20 s of it). Small values show throttling.")
    var restoreRate: Double?
    @Option(help: "Deliver every topic to this URL (e.g. http://127.0.0.1:8080/webhooks/shopify).") var webhookURL: String?
    @Option(help: "Seed for catalogue, stock and traffic.") var seed: UInt64 = 42
    @Option(help: "Variants (SKU-00001 ...).") var skus = 1000
    @Option(help: "Locations.") var locations = 2
    @Option(help: "Multiplies Shopify's retry schedule (8 retries over ~4 h); 0.001 makes it ~14 s.") var timeScale = 1.0
    @Option(help: "Start a sale at once: orders per second (0: none).") var trafficRate = 0.0
    @Option(help: "Orders in that sale.") var trafficOrders = 1000
    @Option(
        help: """
            Keep the shop's state in this file (JSON): restored at start, saved every half second when it changed and \
            at stop, so a restart keeps orders, levels and id sequences (without it: in memory).
            """)
    var state: String?

    func run() async throws {
        let logger: Logger = {
            var l = Logger(label: "shopify-sim")
            l.logLevel = .info
            return l
        }()
        let store = ShopifyStore(domain: shop, seed: seed, skus: skus, locations: locations)
        var saver: Task<Void, Never>?
        if let state {
            let attached = try await StateFile(path: state).attach(
                ShopifyStore.State.self, restore: { await store.restore($0) }, snapshot: { await store.state },
                report: { logger.error("\($0)") })
            if attached.restored {
                let count = await store.orderCount
                logger.notice("state restored", metadata: ["file": "\(state)", "orders": "\(count)"])
            }
            saver = attached.saver
        }
        defer { saver?.cancel() }
        let deliverer = WebhookDeliverer(domain: shop, secret: secret, policy: .init(timeScale: timeScale), logger: logger)
        if let webhookURL { await deliverer.subscribe(topic: "*", url: webhookURL) }
        guard let apiPlan = ShopifyPlan(rawValue: plan) else {
            throw ValidationError("--plan must be one of \(ShopifyPlan.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let router = Router()
        ShopifySimulatorRoutes(store: store, deliverer: deliverer).addRoutes(to: router)
        try ShopifyAdminAPI(store: store, deliverer: deliverer, accessToken: accessToken, plan: apiPlan, restoreRate: restoreRate)
            .addRoutes(to: router)
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "shopify-sim"),
            onServerRunning: { channel in print("shopify-sim listening on \(channel.localAddress?.port ?? -1) for \(shop)") },
            logger: logger)
        if trafficRate > 0 {
            let generator = TrafficGenerator(store: store, deliverer: deliverer)
            let profile = SaleProfile(orders: trafficOrders, ordersPerSecond: trafficRate, seed: seed)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await app.runService() }
                group.addTask {
                    let r = await generator.run(profile)
                    logger.info("sale finished", metadata: ["placed": "\(r.placed)", "events": "\(r.events)"])
                }
                try await group.next()
                try await group.waitForAll()
            }
        } else {
            try await app.runService()
        }
        await deliverer.shutdown()
        saver?.cancel()
        await saver?.value
    }
}
