import BridgeTestSupport
import Foundation
import Hummingbird
import Logging
import NIOCore
import Shopify
import ShopifySimulator
import Testing

/// A webhook receiver for the tests: records every request, answers with scripted statuses (then 200).
final class Receiver: Sendable {
    struct Request: Sendable {
        var headers: [String: String]
        var body: Data
        var at: Date
    }
    let requests: Shared<[Request]>
    let task: Task<Void, any Error>
    let url: String

    init(script: [Int] = []) async {
        let requests = Shared<[Request]>([])
        let statuses = Shared<[Int]>(script)
        let router = Router()
        let handler: @Sendable (Hummingbird.Request, BasicRequestContext) async throws -> Response = { request, _ in
            let body = try await request.body.collect(upTo: 1 << 22)
            var headers: [String: String] = [:]
            for f in request.headers { headers[f.name.canonicalName.lowercased()] = f.value }
            headers[":path"] = request.uri.path
            requests.withLock { $0.append(Request(headers: headers, body: Data(body.readableBytesView), at: Date())) }
            let status = statuses.withLock { s -> Int in s.isEmpty ? 200 : s.removeFirst() }
            return Response(status: .init(code: status))
        }
        router.post("/hook", use: handler)
        router.post("/hook/{event}", use: handler)
        let (port, task) = await TestHTTPServer.start(router, label: "receiver")
        self.task = task
        url = "http://127.0.0.1:\(port)/hook"
        self.requests = requests
    }

    func stop() { task.cancel() }
}

@Suite("shopify-sim: webhooks as Shopify sends them, retries, faults, deterministic sale traffic")
struct ShopifySimulatorTests {
    static let secret = "shpss_test_secret_0123456789"

    func sim(timeScale: Double = 1, deadline: Duration = .seconds(5)) -> (ShopifyStore, WebhookDeliverer) {
        var policy = WebhookDeliverer.Policy(timeScale: timeScale)
        policy.deadline = deadline
        return (ShopifyStore(domain: "acme.myshopify.com", seed: 7, skus: 50), WebhookDeliverer(domain: "acme.myshopify.com", secret: Self.secret, policy: policy))
    }

    @Test("an order emits orders/create, orders/paid and inventory_levels/update with Shopify's headers; Python's hmac verifies the signature")
    func headersAndSignature() async throws {
        let receiver = await Receiver()
        let (store, deliverer) = sim()
        await deliverer.subscribe(topic: "*", url: receiver.url)
        let events = await store.placeOrder(maxLines: 3)
        await deliverer.deliver(events)
        let got = receiver.requests.value
        #expect(got.count == events.count)
        let topics = got.compactMap { $0.headers["x-shopify-topic"] }
        #expect(topics.contains("orders/create"))
        #expect(topics.contains("orders/paid"))
        #expect(topics.contains("inventory_levels/update"))
        let create = try #require(got.first { $0.headers["x-shopify-topic"] == "orders/create" })
        for h in ["x-shopify-hmac-sha256", "x-shopify-shop-domain", "x-shopify-api-version", "x-shopify-webhook-id", "x-shopify-event-id", "x-shopify-triggered-at"] {
            #expect(create.headers[h] != nil, "\(h)")
        }
        #expect(create.headers["x-shopify-shop-domain"] == "acme.myshopify.com")

        // An independent implementation: Python's hmac over the raw body.
        #expect(try pythonHMAC(secret: Self.secret, body: create.body) == create.headers["x-shopify-hmac-sha256"])

        // REST-shaped: the bridge's own model reads it; money strings, 64-bit ids.
        let order = try ShopifyOrder.decode(Array(create.body))
        #expect(order.id > 9_007_199_254_740_992)
        let raw = try #require(try JSONSerialization.jsonObject(with: create.body) as? [String: Any])
        #expect(raw["total_price"] is String)
        receiver.stop()
        await deliverer.shutdown()
    }

    @Test("app/uninstalled and the three compliance topics go out signed, with Shopify's payload shapes")
    func lifecycleAndCompliance() async throws {
        let receiver = await Receiver()
        let (store, deliverer) = sim()
        await deliverer.subscribe(topic: "*", url: receiver.url)
        _ = await store.placeOrder()
        for topic in ShopifyStore.lifecycleTopics {
            await deliverer.deliver([try #require(await store.lifecycleEvent(topic))])
        }
        #expect(await store.lifecycleEvent("orders/delete") == nil)
        let got = receiver.requests.value
        #expect(got.compactMap { $0.headers["x-shopify-topic"] } == ShopifyStore.lifecycleTopics)
        for r in got {
            #expect(try pythonHMAC(secret: Self.secret, body: r.body) == r.headers["x-shopify-hmac-sha256"])
        }
        let bodies = got.compactMap { try? JSONSerialization.jsonObject(with: $0.body) as? [String: Any] }
        #expect(bodies[0]["myshopify_domain"] as? String == "acme.myshopify.com")
        #expect((bodies[1]["customer"] as? [String: Any])?["id"] != nil && bodies[1]["orders_requested"] is [Any])
        #expect(bodies[2]["orders_to_redact"] is [Any] && bodies[2]["shop_domain"] as? String == "acme.myshopify.com")
        #expect(bodies[3]["shop_id"] != nil && bodies[3].count == 2)
        receiver.stop()
        await deliverer.shutdown()
    }

    @Test("a failing endpoint is retried on Shopify's schedule (time-scaled), same webhook id, until it answers 2xx")
    func retrySchedule() async throws {
        let receiver = await Receiver(script: [500, 503, 404])
        // 10 s, 30 s, 60 s -> 100 ms, 300 ms, 600 ms. A long deadline: a slow answer on a loaded machine is not a failure
        // here (the schedule is what this checks).
        let (store, deliverer) = sim(timeScale: 0.01, deadline: .seconds(60))
        await deliverer.subscribe(topic: "orders/create", url: receiver.url)
        let events = await store.placeOrder(maxLines: 1).filter { $0.topic == "orders/create" }
        await deliverer.deliver(events)
        let got = receiver.requests.value
        #expect(got.count == 4)
        #expect(Set(got.compactMap { $0.headers["x-shopify-webhook-id"] }).count == 1, "retries carry the same webhook id")
        let gaps = zip(got.dropFirst(), got).map { $0.at.timeIntervalSince($1.at) }
        #expect(gaps.count == 3)
        for (gap, expected) in zip(gaps, [0.1, 0.3, 0.6]) {
            #expect(gap >= expected * 0.9, "gap \(gap) s, schedule \(expected) s")
            #expect(gap < expected * 10 + 10, "gap \(gap) s, schedule \(expected) s (generous: a loaded machine is slow)")
        }
        let log = await deliverer.log
        #expect(log.first?.attempts == [500, 503, 404, 200])
        #expect(log.first?.outcome == .delivered)

        // Never 2xx: 1 try + 8 retries, then failed.
        let down = await Receiver(script: Array(repeating: 500, count: 100))
        let (store2, deliverer2) = sim(timeScale: 0.0002)
        await deliverer2.subscribe(topic: "orders/create", url: down.url)
        await deliverer2.deliver(await store2.placeOrder(maxLines: 1).filter { $0.topic == "orders/create" })
        #expect(down.requests.value.count == 9)
        #expect(await deliverer2.log.first?.outcome == .failed)
        receiver.stop()
        down.stop()
        await deliverer.shutdown()
        await deliverer2.shutdown()
    }

    @Test("faults switch on and off: duplicates (same webhook id), drops (logged, never sent), delays")
    func faults() async throws {
        let receiver = await Receiver()
        // A long delivery deadline: on a loaded machine a slow answer must not turn into a retry (and a second request).
        let (store, deliverer) = sim(deadline: .seconds(60))
        await deliverer.subscribe(topic: "orders/create", url: receiver.url)
        var dup = WebhookDeliverer.Faults()
        dup.duplicateRate = 1
        await deliverer.setFaults(dup)
        await deliverer.deliver(await store.placeOrder().filter { $0.topic == "orders/create" })
        #expect(receiver.requests.value.count == 2)
        #expect(Set(receiver.requests.value.compactMap { $0.headers["x-shopify-webhook-id"] }).count == 1)

        var drop = WebhookDeliverer.Faults()
        drop.dropRate = 1
        await deliverer.setFaults(drop)
        await deliverer.deliver(await store.placeOrder().filter { $0.topic == "orders/create" })
        #expect(receiver.requests.value.count == 2)
        #expect(await deliverer.log.last?.outcome == .dropped)

        var delay = WebhookDeliverer.Faults()
        delay.maxDelayMs = 200
        await deliverer.setFaults(delay)
        var events: [WebhookEvent] = []
        for _ in 0..<20 { events += await store.placeOrder().filter { $0.topic == "orders/create" } }
        await deliverer.deliver(events)
        #expect(receiver.requests.value.count == 22)
        // Random delays run side by side, so deliveries overtake each other: what reorders webhooks in a sale. (In
        // order by chance: 1 in 20!.)
        let sent = events.map(\.eventId)
        let arrived = receiver.requests.value.suffix(20).compactMap { $0.headers["x-shopify-event-id"] }
        #expect(Set(arrived) == Set(sent))
        #expect(arrived != sent, "delayed deliveries arrived in the order they were sent")

        await deliverer.setFaults(.init())
        await deliverer.deliver(await store.placeOrder().filter { $0.topic == "orders/create" })
        #expect(receiver.requests.value.count == 23)
        receiver.stop()
        await deliverer.shutdown()
    }

    @Test("sale traffic is deterministic from its seed; orders decrement stock and every order maps")
    func deterministicTraffic() async throws {
        func run() async -> (TrafficResult, [Int64: ShopifyOrderFixture], ShopifyStore) {
            let store = ShopifyStore(domain: "acme.myshopify.com", seed: 3, skus: 100, initialStock: 1000)
            let deliverer = WebhookDeliverer(domain: "acme.myshopify.com", secret: Self.secret)
            let r = await TrafficGenerator(store: store, deliverer: deliverer).run(
                SaleProfile(orders: 200, ordersPerSecond: 0, updateShare: 0.3, cancelShare: 0.1, refundShare: 0.1, seed: 11), recordTopics: true)
            await deliverer.shutdown()
            return (r, await store.orders, store)
        }
        let (a, ordersA, store) = await run()
        let (b, ordersB, _) = await run()
        #expect(a == b)
        #expect(a.placed == 200)
        #expect(a.updated > 0 && a.cancelled > 0 && a.refunded > 0)
        #expect(a.topics.contains("refunds/create"))
        #expect(ordersA.keys.sorted() == ordersB.keys.sorted())
        #expect(ordersA.values.map(\.total).reduce(0, +) == ordersB.values.map(\.total).reduce(0, +))

        // Stock: what was sold (and not cancelled) left location 1.
        var sold: [String: Int] = [:]
        for o in ordersA.values where !o.cancelled {
            for l in o.lines { if let sku = l.sku { sold[sku, default: 0] += l.quantity } }
        }
        let variants = await store.variants
        let location = store.locations[0]
        for v in variants.prefix(20) {
            #expect(await store.available(item: v.inventoryItemId, location: location) == 1000 - (sold[v.sku] ?? 0))
        }
        // Skew: the first tenth of the SKUs sells more than the last tenth.
        let first = variants.prefix(10).map { sold[$0.sku] ?? 0 }.reduce(0, +)
        let last = variants.suffix(10).map { sold[$0.sku] ?? 0 }.reduce(0, +)
        #expect(first > last)
        // Every generated order is one the bridge can read.
        for o in ordersA.values.prefix(50) {
            let decoded = try ShopifyOrder.decode(Array(o.json()))
            #expect(decoded.totalPrice.value == o.total)
        }
    }
}
