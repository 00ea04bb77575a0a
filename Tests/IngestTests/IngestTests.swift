import BridgeDomain
import BridgeMessaging
import BridgeRuntime
import BridgeTestSupport
import ERPSimulator
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Ingest
import Logging
import Messaging
import ShopifySimulator
import Synchronization
import Testing

/// An ingest wired to a real broker in its own vhost, driven through HummingbirdTesting.
struct IngestHarness {
    let broker: TestBroker
    let vhost: String
    let config: BridgeConfig
    let publisher: AMQPConnection
    let admin: AMQPConnection
    let app: Application<RouterResponder<BasicRequestContext>>

    static let oldSecret = "old-secret-aaaaaaaaaaaaaaaaaaaa"
    static let newSecret = "new-secret-bbbbbbbbbbbbbbbbbbbb"
    static let erpSecret = "erp-secret-cccccccccccccccccccc"

    static func make(broker: TestBroker, yaml given: String = "", heartbeat: String = "10s") async throws -> IngestHarness {
        // Tests that expect 200 get the longest confirm timeout the configuration allows (4.5 s, under Shopify's
        // 5 s): on a loaded CI machine a confirm can take seconds. The frozen-broker test sets its own.
        var extra = given
        if !extra.contains("confirm_timeout") {
            extra = extra.isEmpty ? "ingest: {confirm_timeout: 4500ms}" : extra.replacingOccurrences(of: "ingest: {", with: "ingest: {confirm_timeout: 4500ms, ")
        }
        let vhost = try await broker.makeVhost("ingest")
        let yaml = """
            broker: {url: '\(broker.url(vhost: vhost))', heartbeat: \(heartbeat)}
            shops: [acme, beta]
            shop:
              acme: {domain: acme.myshopify.com, webhook_secrets: [\(newSecret), \(oldSecret)], admin_token: t}
              beta: {domain: beta.myshopify.com, webhook_secrets: [beta-secret-dddddddddddddddd], admin_token: t}
            erp: {webhook_secret: \(erpSecret)}
            \(extra)
            """
        let config = try await loadConfig(yaml: yaml, defaultHTTPPort: 0)
        let topology = BridgeTopology.topology(config.topology)
        var logger = Logger(label: "test.ingest")
        logger.logLevel = .critical
        var connectionConfig = try config.broker.connection(name: "ingest-test")
        connectionConfig.reconnectMaxDelay = .milliseconds(500)
        let publisher = AMQPConnection(configuration: connectionConfig, logger: logger, onConnect: { try topology.declare(using: $0) })
        publisher.start()
        try await publisher.waitUntilReady()
        let admin = try await broker.connect(vhost: vhost, name: "ingest-admin")
        let router = Router()
        IngestService(config: config, publisher: publisher, logger: logger).addRoutes(to: router)
        return IngestHarness(
            broker: broker, vhost: vhost, config: config, publisher: publisher, admin: admin,
            app: Application(router: router, logger: logger))
    }

    func close() async {
        await publisher.close(drain: .zero)
        await admin.close(drain: .zero)
        await broker.deleteVhost(vhost)
    }

    /// A trigger time a minute ago, on a whole second (deliveries older than `ingest.max_delivery_age` are ignored).
    static let triggeredMs = (Timestamp.milliseconds(Date()) / 1000 - 60) * 1000
    static var triggeredAt: String { Timestamp.string(milliseconds: triggeredMs) }

    static func shopifyHeaders(
        body: [UInt8], topic: String = "orders/create", shop: String = "acme.myshopify.com", secret: String = newSecret,
        webhookId: String = UUID().uuidString, triggeredAt: String = IngestHarness.triggeredAt
    ) -> HTTPFields {
        var h = HTTPFields()
        h[.shopifyTopic] = topic
        h[.shopifyHmac] = WebhookSignature.sign(body, secret: secret)
        h[.shopifyShopDomain] = shop
        h[.shopifyAPIVersion] = "2026-07"
        h[.shopifyWebhookId] = webhookId
        h[.shopifyEventId] = "evt-\(webhookId)"
        h[.shopifyTriggeredAt] = triggeredAt
        h[.contentType] = "application/json"
        return h
    }

    static func orderBody(_ id: Int64 = 5_678_901_234_567_890_123, size: Int = 0) -> [UInt8] {
        var json = "{\"id\":\(id),\"name\":\"#1001\",\"total_price\":\"19.99\",\"note\":\"Grüße 🛒\""
        if size > json.count { json += ",\"pad\":\"" + String(repeating: "x", count: size - json.count - 10) + "\"" }
        return Array((json + "}").utf8)
    }

    func count(_ queue: String) async throws -> Int { try await admin.queueCounts(queue).messages }

    /// Every inbound queue is empty: nothing was enqueued anywhere.
    func nothingEnqueued() async throws -> Bool {
        for q in [BridgeTopology.orders.name, BridgeTopology.compliance.name, BridgeTopology.shopifyInventory.name,
                  BridgeTopology.erpInventory.name, BridgeTopology.unroutedQueue] {
            if try await count(q) != 0 { return false }
        }
        return true
    }
}

@Suite("ingest: verified, deduplicated, durably enqueued")
struct IngestTests {
    @Test("a valid delivery is answered 200 only after exactly one message with every header is in the queue")
    func validDelivery() async throws {
        let h = try await IngestHarness.make(broker: try TestBroker.shared())
        let body = IngestHarness.orderBody()
        let headers = IngestHarness.shopifyHeaders(body: body, webhookId: "wh-valid-1")
        try await h.app.test(.router) { (client) async throws in
            let response = try await client.execute(uri: "/webhooks/shopify", method: .post, headers: headers, body: ByteBuffer(bytes: body))
            #expect(response.status == .ok)
        }
        #expect(try await h.count(BridgeTopology.orders.name) == 1)
        let m = try #require(try await h.admin.withChannel { try $0.get(BridgeTopology.orders.name, autoAck: true) })
        #expect(m.body == body, "the body is published untouched")
        #expect(m.routingKey == "orders.create")
        #expect(m.properties.messageId == "wh-valid-1")
        #expect(m.properties.correlationId == "wh-valid-1")
        #expect(m.properties.persistent)
        #expect(m.properties.contentType == "application/json")
        #expect(m.properties.timestamp != nil)
        let hd = m.properties.headers
        #expect(hd[EnvelopeHeader.source] == "shopify")
        #expect(hd[EnvelopeHeader.shop] == "acme.myshopify.com")
        #expect(hd[EnvelopeHeader.topic] == "orders/create")
        #expect(hd[EnvelopeHeader.webhookId] == "wh-valid-1")
        #expect(hd[EnvelopeHeader.eventId] == "evt-wh-valid-1")
        #expect(hd[EnvelopeHeader.triggeredAt]?.stringValue == IngestHarness.triggeredAt)
        #expect(hd[EnvelopeHeader.apiVersion] == "2026-07")
        #expect(hd[EnvelopeHeader.receivedAt] != nil)
        // What every consumer reads (QueueWorker parses each delivery with this same type) is what ingest sent.
        let envelope = InboundEnvelope(properties: m.properties, routingKey: m.routingKey)
        #expect(
            envelope
                == InboundEnvelope(
                    source: .shopify, shopDomain: "acme.myshopify.com", topic: "orders/create", deliveryId: "wh-valid-1",
                    eventId: "evt-wh-valid-1", triggeredAt: IngestHarness.triggeredAt, apiVersion: "2026-07",
                    receivedAt: hd[EnvelopeHeader.receivedAt]?.stringValue))
        #expect(envelope.triggeredAtMs == IngestHarness.triggeredMs)
        #expect(envelope.attempt == 0 && envelope.replays == 0)
        await h.close()
    }

    @Test("a verified delivery triggered longer ago than ingest.max_delivery_age (a captured request replayed days later) is answered 200, not enqueued, counted; one just inside the age is enqueued; a forged old one is still 401")
    func replayedOldDelivery() async throws {
        let h = try await IngestHarness.make(broker: try TestBroker.shared())
        let body = IngestHarness.orderBody()
        let now = Timestamp.milliseconds(Date())
        let old = IngestHarness.shopifyHeaders(body: body, webhookId: "wh-old-1", triggeredAt: Timestamp.string(milliseconds: now - 49 * 3_600_000))
        let recent = IngestHarness.shopifyHeaders(body: body, webhookId: "wh-old-2", triggeredAt: Timestamp.string(milliseconds: now - 47 * 3_600_000))
        let forged = {
            var f = old
            f[.shopifyHmac] = WebhookSignature.sign(body, secret: "not-the-shops-secret-000")
            return f
        }()
        try await h.app.test(.router) { (client) async throws in
            let r1 = try await client.execute(uri: "/webhooks/shopify", method: .post, headers: old, body: ByteBuffer(bytes: body))
            #expect(r1.status == .ok && String(buffer: r1.body).hasPrefix("ignored: too old"))
            let r2 = try await client.execute(uri: "/webhooks/shopify", method: .post, headers: forged, body: ByteBuffer(bytes: body))
            #expect(r2.status == .unauthorized)
            let r3 = try await client.execute(uri: "/webhooks/shopify", method: .post, headers: recent, body: ByteBuffer(bytes: body))
            #expect(r3.status == .ok && String(buffer: r3.body).hasPrefix("ok"))
        }
        #expect(try await h.count(BridgeTopology.orders.name) == 1, "only the delivery inside the age")
        let m = try #require(try await h.admin.withChannel { try $0.get(BridgeTopology.orders.name, autoAck: true) })
        #expect(m.properties.messageId == "wh-old-2")
        await h.close()
    }

    @Test("forged, unsigned, unknown-shop, header-less, empty and oversized requests get the right status and enqueue nothing")
    func rejections() async throws {
        let h = try await IngestHarness.make(broker: try TestBroker.shared(), yaml: "ingest: {max_body_bytes: 4096}")
        let body = IngestHarness.orderBody()
        try await h.app.test(.router) { (client) async throws in
            func post(_ headers: HTTPFields, _ body: [UInt8]) async throws -> HTTPResponse.Status {
                try await client.execute(uri: "/webhooks/shopify", method: .post, headers: headers, body: ByteBuffer(bytes: body)).status
            }
            // Forged: signed with a secret the shop does not have.
            #expect(try await post(IngestHarness.shopifyHeaders(body: body, secret: "attacker-secret"), body) == .unauthorized)
            // Signed for another body (tampered payload).
            var tampered = IngestHarness.shopifyHeaders(body: body)
            tampered[.shopifyHmac] = WebhookSignature.sign(Array("{}".utf8), secret: IngestHarness.newSecret)
            #expect(try await post(tampered, body) == .unauthorized)
            // Another shop's valid secret does not open this shop.
            #expect(try await post(IngestHarness.shopifyHeaders(body: body, secret: "beta-secret-dddddddddddddddd"), body) == .unauthorized)
            #expect(try await post(IngestHarness.shopifyHeaders(body: body, shop: "evil.myshopify.com"), body) == .unauthorized)
            var unsigned = IngestHarness.shopifyHeaders(body: body)
            unsigned[.shopifyHmac] = nil
            #expect(try await post(unsigned, body) == .unauthorized)
            var garbage = IngestHarness.shopifyHeaders(body: body)
            garbage[.shopifyHmac] = "not base64 at all"
            #expect(try await post(garbage, body) == .unauthorized)
            var noShop = IngestHarness.shopifyHeaders(body: body)
            noShop[.shopifyShopDomain] = nil
            #expect(try await post(noShop, body) == .unauthorized)
            // Missing required headers: 400, after the signature check.
            for name in ["X-Shopify-Topic", "X-Shopify-Webhook-Id", "X-Shopify-API-Version"] {
                var missing = IngestHarness.shopifyHeaders(body: body)
                missing[HTTPField.Name(name)!] = nil
                #expect(try await post(missing, body) == .badRequest, "without \(name)")
            }
            // Missing headers on a forged request still get 401 (nothing is revealed before the HMAC check).
            var forgedMissing = IngestHarness.shopifyHeaders(body: body, secret: "attacker-secret")
            forgedMissing[.shopifyTopic] = nil
            #expect(try await post(forgedMissing, body) == .unauthorized)
            #expect(try await post(IngestHarness.shopifyHeaders(body: []), []) == .badRequest)
            let big = IngestHarness.orderBody(size: 5000)
            #expect(try await post(IngestHarness.shopifyHeaders(body: big), big) == .contentTooLarge)
            // Compliance payload naming another shop than the signing one.
            let redact = Array("{\"shop_id\":1,\"shop_domain\":\"beta.myshopify.com\"}".utf8)
            #expect(try await post(IngestHarness.shopifyHeaders(body: redact, topic: "shop/redact"), redact) == .unauthorized)
        }
        #expect(try await h.nothingEnqueued())
        await h.close()
    }

    @Test("the same webhook id ten times gives ten 200s and one message")
    func duplicates() async throws {
        let h = try await IngestHarness.make(broker: try TestBroker.shared())
        let body = IngestHarness.orderBody()
        let headers = IngestHarness.shopifyHeaders(body: body, webhookId: "wh-dup")
        try await h.app.test(.router) { (client) async throws in
            for _ in 0..<10 {
                let r = try await client.execute(uri: "/webhooks/shopify", method: .post, headers: headers, body: ByteBuffer(bytes: body))
                #expect(r.status == .ok)
            }
        }
        #expect(try await h.count(BridgeTopology.orders.name) == 1)
        await h.close()
    }

    @Test("two replicas behind a load balancer: each verifies and enqueues on its own; a retry landing on the other replica is enqueued at most once more")
    func replicas() async throws {
        let h = try await IngestHarness.make(broker: try TestBroker.shared())
        // A second ingest with its own broker connection: the replicas share nothing but the broker.
        let topology = BridgeTopology.topology(h.config.topology)
        var logger = Logger(label: "test.ingest.2")
        logger.logLevel = .critical
        let publisher2 = AMQPConnection(
            configuration: try h.config.broker.connection(name: "ingest-test-2"), logger: logger,
            onConnect: { try topology.declare(using: $0) })
        publisher2.start()
        try await publisher2.waitUntilReady()
        let router2 = Router()
        IngestService(config: h.config, publisher: publisher2, logger: logger).addRoutes(to: router2)
        let replica2 = Application(router: router2, logger: logger)
        let body = IngestHarness.orderBody()
        try await h.app.test(.router) { (first) async throws in
            try await replica2.test(.router) { (second) async throws in
                // Round robin over 40 distinct webhooks.
                for i in 0..<40 {
                    let headers = IngestHarness.shopifyHeaders(body: body, webhookId: "rr-\(i)")
                    let r = i % 2 == 0
                        ? try await first.execute(uri: "/webhooks/shopify", method: .post, headers: headers, body: ByteBuffer(bytes: body))
                        : try await second.execute(uri: "/webhooks/shopify", method: .post, headers: headers, body: ByteBuffer(bytes: body))
                    #expect(r.status == .ok)
                }
                // Shopify retries one webhook and the balancer sends it to the other replica: both answer 200.
                let retry = IngestHarness.shopifyHeaders(body: body, webhookId: "rr-retried")
                #expect(try await first.execute(uri: "/webhooks/shopify", method: .post, headers: retry, body: ByteBuffer(bytes: body)).status == .ok)
                #expect(try await second.execute(uri: "/webhooks/shopify", method: .post, headers: retry, body: ByteBuffer(bytes: body)).status == .ok)
                #expect(try await first.execute(uri: "/webhooks/shopify", method: .post, headers: retry, body: ByteBuffer(bytes: body)).status == .ok)
            }
        }
        let ids = try await drainIds(h.admin, BridgeTopology.orders.name)
        #expect(Set(ids).count == 41, "every webhook enqueued")
        #expect(ids.count == 42, "the retry once per replica (each remembers its own), never more: downstream is idempotent")
        await publisher2.close(drain: .zero)
        await h.close()
    }

    @Test("during a secret rotation both the old and the new secret are accepted")
    func rotation() async throws {
        let h = try await IngestHarness.make(broker: try TestBroker.shared())
        let body = IngestHarness.orderBody()
        try await h.app.test(.router) { (client) async throws in
            for secret in [IngestHarness.oldSecret, IngestHarness.newSecret] {
                let r = try await client.execute(
                    uri: "/webhooks/shopify", method: .post, headers: IngestHarness.shopifyHeaders(body: body, secret: secret),
                    body: ByteBuffer(bytes: body))
                #expect(r.status == .ok)
            }
        }
        #expect(try await h.count(BridgeTopology.orders.name) == 2)
        await h.close()
    }

    @Test("compliance topics and app/uninstalled go to their own queue; inventory to the inventory queue; unknown topics are kept in q.unrouted")
    func routing() async throws {
        let h = try await IngestHarness.make(broker: try TestBroker.shared())
        let redact = Array("{\"shop_id\":1,\"shop_domain\":\"acme.myshopify.com\",\"customer\":{\"id\":1},\"orders_to_redact\":[2]}".utf8)
        let level = Array("{\"inventory_item_id\":1,\"location_id\":2,\"available\":3}".utf8)
        try await h.app.test(.router) { (client) async throws in
            for (topic, body) in [("customers/redact", redact), ("customers/data_request", redact), ("shop/redact", redact),
                                  ("app/uninstalled", level), ("inventory_levels/update", level), ("products/update", level),
                                  ("refunds/create", level)] {
                let r = try await client.execute(
                    uri: "/webhooks/shopify", method: .post, headers: IngestHarness.shopifyHeaders(body: body, topic: topic),
                    body: ByteBuffer(bytes: body))
                #expect(r.status == .ok, "\(topic)")
            }
        }
        #expect(try await h.count(BridgeTopology.compliance.name) == 4)
        #expect(try await h.count(BridgeTopology.shopifyInventory.name) == 1)
        #expect(try await h.count(BridgeTopology.orders.name) == 1)
        #expect(try await h.count(BridgeTopology.unroutedQueue) == 1)
        await h.close()
    }

    @Test("ERP events are verified with the ERP secret and enqueued on erp.in")
    func erpEvents() async throws {
        let h = try await IngestHarness.make(broker: try TestBroker.shared())
        let body = Array("{\"sku\":\"SKU-1\",\"location\":\"WH1\",\"available\":7}".utf8)
        @Sendable func headers(_ secret: String, id: String = UUID().uuidString) -> HTTPFields {
            var f = HTTPFields()
            f[.erpSignature] = WebhookSignature.sign(body, secret: secret)
            f[.erpEventId] = id
            return f
        }
        try await h.app.test(.router) { (client) async throws in
            let ok = try await client.execute(uri: "/webhooks/erp/inventory.changed", method: .post, headers: headers(IngestHarness.erpSecret, id: "e1"), body: ByteBuffer(bytes: body))
            #expect(ok.status == .ok)
            let again = try await client.execute(uri: "/webhooks/erp/inventory.changed", method: .post, headers: headers(IngestHarness.erpSecret, id: "e1"), body: ByteBuffer(bytes: body))
            #expect(again.status == .ok)
            let forged = try await client.execute(uri: "/webhooks/erp/inventory.changed", method: .post, headers: headers("wrong"), body: ByteBuffer(bytes: body))
            #expect(forged.status == .unauthorized)
            let badEvent = try await client.execute(uri: "/webhooks/erp/DROP%20TABLE", method: .post, headers: headers(IngestHarness.erpSecret), body: ByteBuffer(bytes: body))
            #expect(badEvent.status == .badRequest)
            var noId = headers(IngestHarness.erpSecret)
            noId[.erpEventId] = nil
            let missing = try await client.execute(uri: "/webhooks/erp/inventory.changed", method: .post, headers: noId, body: ByteBuffer(bytes: body))
            #expect(missing.status == .badRequest)
            let shipment = try await client.execute(uri: "/webhooks/erp/shipment.created", method: .post, headers: headers(IngestHarness.erpSecret), body: ByteBuffer(bytes: body))
            #expect(shipment.status == .ok)
        }
        #expect(try await h.count(BridgeTopology.erpInventory.name) == 1)
        #expect(try await h.count(BridgeTopology.erpShipments.name) == 1)
        let m = try #require(try await h.admin.withChannel { try $0.get(BridgeTopology.erpInventory.name, autoAck: true) })
        #expect(m.body == body)
        #expect(m.properties.headers[EnvelopeHeader.source] == "erp")
        #expect(m.properties.headers[EnvelopeHeader.eventId] == "e1")
        let envelope = InboundEnvelope(properties: m.properties, routingKey: m.routingKey)
        #expect(envelope.source == .erp)
        #expect(envelope.shopDomain == nil)
        #expect(envelope.topic == "inventory.changed")
        #expect(envelope.deliveryId == "e1" && envelope.eventId == "e1")
        await h.close()
    }
}

/// These stop and kill the broker, so they use a private node each.
@Suite("ingest with the simulators")
struct IngestWithSimulatorsTests {
    @Test("erp-sim pushes signed inventory.changed events; ingest verifies and enqueues every one on q.erp-inventory; a forged one is refused")
    func erpPush() async throws {
        let h = try await IngestHarness.make(broker: try TestBroker.shared())
        let router = Router()
        var logger = Logger(label: "test.ingest.http")
        logger.logLevel = .critical
        IngestService(config: h.config, publisher: h.publisher, logger: logger).addRoutes(to: router)
        let (port, serverTask) = await TestHTTPServer.start(router, label: "ingest")
        let inventory = ERPInventory(skus: 20, seed: 8)
        let pusher = ERPPusher(retryDelays: [.milliseconds(100)])
        await pusher.setTarget(.init(url: "http://127.0.0.1:\(port)/webhooks/erp", secret: IngestHarness.erpSecret))
        for c in await inventory.randomMovements(12, skuRange: 5) {
            #expect(await pusher.push(event: "inventory.changed", eventId: "erp-inventory-\(c.seq)", body: ERPPusher.inventoryChanged(c)))
        }
        // The same event again (a push retry after a lost answer) is not enqueued twice.
        let again = try #require(await inventory.changes(after: 0, limit: 1).first)
        #expect(await pusher.push(event: "inventory.changed", eventId: "erp-inventory-\(again.seq)", body: ERPPusher.inventoryChanged(again)))
        // A wrong secret is refused.
        let forger = ERPPusher(retryDelays: [])
        await forger.setTarget(.init(url: "http://127.0.0.1:\(port)/webhooks/erp", secret: "not-the-secret"))
        #expect(await forger.push(event: "inventory.changed", eventId: "forged-1", body: ERPPusher.inventoryChanged(again)) == false)
        // Normally exactly 12 (the repeated push is a duplicate within the window); a push answered 503 on a slow
        // confirm and then retried may be in the queue twice (at least once, by design), so count distinct ids.
        #expect(await eventually(timeout: .seconds(60)) { ((try? await h.count(BridgeTopology.erpInventory.name)) ?? 0) >= 12 })
        let ids = try await drainIds(h.admin, BridgeTopology.erpInventory.name)
        #expect(Set(ids) == Set((1...12).map { "erp-inventory-\($0)" }))
        #expect(!ids.contains("forged-1"))
        serverTask.cancel()
        await pusher.shutdown()
        await forger.shutdown()
        await h.close()
    }
}

/// What a webhook load saw: the ids answered 200, every status with its count, the slowest answer, and how many
/// were accepted after the fault was lifted.
struct WebhookLoadResult {
    var accepted: Set<String>
    var statuses: [UInt: Int]
    var slowest: Duration
    var acceptedAfterRecovery: Int
}

/// The load's shared switches (one object, so the sender tasks can capture it).
final class WebhookLoadFlags: Sendable {
    let stop = Atomic<Bool>(false)
    let recovered = Atomic<Bool>(false)
    let acceptedAfterRecovery = Atomic<Int>(0)
}

extension IngestHarness {
    /// `senders` clients post signed webhooks (ids `<idPrefix>-<sender>-<n>`) in a loop while a fault plays out:
    /// once `warmup` deliveries were accepted, `fault` runs (it breaks the broker and waits while broken), then
    /// `recover`, and the load stops when `afterRecovery` more deliveries were accepted (or a wait times out).
    func webhookLoad(
        senders: Int, body: [UInt8], idPrefix: String, warmup: Int, afterRecovery: Int,
        fault: @escaping @Sendable () async throws -> Void, recover: @escaping @Sendable () async throws -> Void
    ) async throws -> WebhookLoadResult {
        let accepted = Shared<Set<String>>([])
        let statuses = Shared<[UInt: Int]>([:])
        let slowest = Shared<Duration>(.zero)
        let flags = WebhookLoadFlags()
        try await app.test(.router) { (client) async throws in
            try await withThrowingTaskGroup(of: Void.self) { group in
                for sender in 0..<senders {
                    group.addTask {
                        var i = 0
                        while !flags.stop.load(ordering: .relaxed) {
                            let id = "\(idPrefix)-\(sender)-\(i)"
                            i += 1
                            let started = ContinuousClock.now
                            let r = try await client.execute(
                                uri: "/webhooks/shopify", method: .post,
                                headers: IngestHarness.shopifyHeaders(body: body, webhookId: id), body: ByteBuffer(bytes: body))
                            let took = ContinuousClock.now - started
                            slowest.withLock { $0 = max($0, took) }
                            statuses.withLock { $0[UInt(r.status.code), default: 0] += 1 }
                            if r.status == .ok {
                                accepted.withLock { _ = $0.insert(id) }
                                if flags.recovered.load(ordering: .relaxed) { flags.acceptedAfterRecovery.add(1, ordering: .relaxed) }
                            } else {
                                try await Task.sleep(for: .milliseconds(20))
                            }
                        }
                    }
                }
                group.addTask {
                    defer { flags.stop.store(true, ordering: .relaxed) }
                    guard await eventually(timeout: .seconds(60), { accepted.value.count >= warmup }) else { return }
                    try await fault()
                    try await recover()
                    flags.recovered.store(true, ordering: .relaxed)
                    _ = await eventually(timeout: .seconds(60)) { flags.acceptedAfterRecovery.load(ordering: .relaxed) >= afterRecovery }
                }
                try await group.waitForAll()
            }
        }
        return WebhookLoadResult(
            accepted: accepted.value, statuses: statuses.value, slowest: slowest.value,
            acceptedAfterRecovery: flags.acceptedAfterRecovery.load(ordering: .relaxed))
    }
}

@Suite("ingest when the broker fails", .serialized)
struct IngestBrokerFailureTests {
    @Test("broker stopped -> 503 with Retry-After and nothing claimed; broker back -> 200 again")
    func brokerStopped() async throws {
        try await TestBroker.withPrivate { broker in
            let h = try await IngestHarness.make(broker: broker)
            let body = IngestHarness.orderBody()
            try await broker.stop()
            #expect(await eventually { !h.publisher.isConnected })
            try await h.app.test(.router) { (client) async throws in
                let r = try await client.execute(uri: "/webhooks/shopify", method: .post, headers: IngestHarness.shopifyHeaders(body: body, webhookId: "during-outage"), body: ByteBuffer(bytes: body))
                #expect(r.status == .serviceUnavailable)
                #expect(r.headers[.retryAfter] != nil)
            }
            try await broker.start()
            try await h.publisher.waitUntilReady(timeout: .seconds(30))
            try await h.admin.waitUntilReady(timeout: .seconds(30))
            try await h.app.test(.router) { (client) async throws in
                // Shopify retries the same webhook id: it must be published now (a 503 is never remembered as seen).
                let r = try await client.execute(uri: "/webhooks/shopify", method: .post, headers: IngestHarness.shopifyHeaders(body: body, webhookId: "during-outage"), body: ByteBuffer(bytes: body))
                #expect(r.status == .ok)
            }
            #expect(try await h.count(BridgeTopology.orders.name) == 1)
            await h.close()
        }
    }

    @Test("broker frozen (no confirms): 503 with Retry-After after ingest.confirm_timeout, well inside Shopify's 5 s; thawed -> 200")
    func noConfirmInTime() async throws {
        try await TestBroker.withPrivate { broker in
            let h = try await IngestHarness.make(broker: broker, yaml: "ingest: {confirm_timeout: 800ms}")
            let body = IngestHarness.orderBody()
            try broker.freeze()
            let started = ContinuousClock.now
            try await h.app.test(.router) { (client) async throws in
                let r = try await client.execute(
                    uri: "/webhooks/shopify", method: .post, headers: IngestHarness.shopifyHeaders(body: body, webhookId: "frozen"),
                    body: ByteBuffer(bytes: body))
                #expect(r.status == .serviceUnavailable)
                #expect(r.headers[.retryAfter] != nil)
            }
            let waited = ContinuousClock.now - started
            try broker.thaw()
            #expect(waited >= .milliseconds(700), "it waited for the confirm (\(waited))")
            #expect(waited < .seconds(5), "and answered before Shopify gives up at 5 s, even on a loaded machine (\(waited))")
            try await h.publisher.waitUntilReady(timeout: .seconds(30))
            try await h.app.test(.router) { (client) async throws in
                let r = try await client.execute(
                    uri: "/webhooks/shopify", method: .post, headers: IngestHarness.shopifyHeaders(body: body, webhookId: "after-thaw"),
                    body: ByteBuffer(bytes: body))
                #expect(r.status == .ok)
            }
            await h.close()
        }
    }

    @Test("a silent partition under webhook load: every answer (200 or 503) within confirm_timeout + a margin, every 200 enqueued")
    func silentPartition() async throws {
        try TestDependency.require(TestDependency.iptables, "root with iptables", install: "run as root; apt-get install iptables")
        try await TestBroker.withPrivate { broker in
            // Heartbeat 2 s: the partition is noticed after ~4 s; reconnect attempts then block in connect for 5 s.
            let h = try await IngestHarness.make(broker: broker, yaml: "ingest: {confirm_timeout: 1s}", heartbeat: "2s")
            try await Task.sleep(for: .seconds(2))
            let load = try await h.webhookLoad(
                senders: 8, body: IngestHarness.orderBody(size: 2000), idPrefix: "partition", warmup: 200, afterRecovery: 200,
                fault: {
                    try await broker.partition()
                    _ = await eventually(timeout: .seconds(30)) { !h.publisher.isConnected }
                    try? await Task.sleep(for: .seconds(6))
                },
                recover: { await broker.heal() })
            await broker.heal()
            let seen = load.statuses
            #expect(Set(seen.keys).isSubset(of: [200, 503]), "\(seen)")
            #expect((seen[503] ?? 0) > 0, "the partition should have produced 503s: \(seen)")
            #expect(load.acceptedAfterRecovery >= 200, "ingest did not recover after the heal: \(seen)")
            #expect(load.slowest <= .milliseconds(1000 + 750), "slowest answer \(load.slowest), confirm_timeout 1 s")
            try await h.admin.waitUntilReady(timeout: .seconds(60))
            let present = Set(try await consumeAllIds(h.admin, BridgeTopology.orders.name, timeout: .seconds(120)))
            let missing = load.accepted.subtracting(present)
            #expect(missing.isEmpty, "\(missing.count) of \(load.accepted.count) deliveries answered 200 are missing")
            await h.close()
        }
    }

    @Test("a memory alarm while 16 senders post 1 MB webhooks: every answer (200 or 503) within confirm_timeout + a margin, every 200 enqueued")
    func memoryAlarmLargeBodies() async throws {
        try await TestBroker.withPrivate { broker in
            let h = try await IngestHarness.make(broker: broker, yaml: "ingest: {confirm_timeout: 2s}")
            try await Task.sleep(for: .seconds(2))
            // 1 MB bodies: once the broker stops reading, far more than the socket buffers hold.
            let load = try await h.webhookLoad(
                senders: 16, body: IngestHarness.orderBody(size: 1 << 20), idPrefix: "alarm", warmup: 20, afterRecovery: 20,
                fault: {
                    try await broker.ctl(["set_vm_memory_high_watermark", "0.0000001"])
                    _ = await eventually(timeout: .seconds(30)) { h.publisher.isBlocked }
                    try? await Task.sleep(for: .seconds(5))
                },
                recover: { try await broker.ctl(["set_vm_memory_high_watermark", "0.6"]) })
            let seen = load.statuses
            #expect(Set(seen.keys).isSubset(of: [200, 503]), "\(seen)")
            #expect((seen[503] ?? 0) > 0, "the alarm should have produced 503s: \(seen)")
            #expect(load.acceptedAfterRecovery >= 20, "ingest did not recover after the alarm: \(seen)")
            // Not asserted here: threadStalls == 0. Through ingest (1 MB bodies, a 5 MB body limit) one stall over 250 ms
            // was seen in a parallel run, not yet explained; the answers stayed within their deadline (the watchdog).
            // The send budget itself is proven at the connection level (ResilienceTests "a memory alarm with the socket
            // buffer full...").
            #expect(load.slowest <= .milliseconds(2000 + 750), "slowest answer \(load.slowest), confirm_timeout 2 s")
            try await h.admin.waitUntilReady(timeout: .seconds(60))
            let present = Set(try await consumeAllIds(h.admin, BridgeTopology.orders.name, timeout: .seconds(120)))
            let missing = load.accepted.subtracting(present)
            #expect(missing.isEmpty, "\(missing.count) of \(load.accepted.count) deliveries answered 200 are missing")
            await h.close()
        }
    }

    @Test("broker killed in the middle of concurrent deliveries: every delivery answered 200 is in the queue")
    func brokerKilledMidStream() async throws {
        try await TestBroker.withPrivate { broker in
            let h = try await IngestHarness.make(broker: broker)
            // Let the new quorum queues settle before the crash (see docs/guarantees.md, "Found while testing": young queues and SIGKILL).
            try await Task.sleep(for: .seconds(2))
            let accepted = Shared<Set<String>>([])
            let statuses = Shared<[UInt: Int]>([:])
            let body = IngestHarness.orderBody(size: 3000)
            try await h.app.test(.router) { (client) async throws in
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask {
                        try await Task.sleep(for: .milliseconds(700))
                        try await broker.kill()
                    }
                    for worker in 0..<32 {
                        group.addTask {
                            for i in 0..<150 {
                                let id = "kill-\(worker)-\(i)"
                                let r = try await client.execute(
                                    uri: "/webhooks/shopify", method: .post,
                                    headers: IngestHarness.shopifyHeaders(body: body, webhookId: id), body: ByteBuffer(bytes: body))
                                statuses.withLock { $0[UInt(r.status.code), default: 0] += 1 }
                                if r.status == .ok { accepted.withLock { _ = $0.insert(id) } }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
            }
            let ok = accepted.value
            let seen = statuses.value
            #expect(Set(seen.keys).isSubset(of: [200, 503]), "\(seen)")
            #expect((seen[503] ?? 0) > 0, "the crash should have produced 503s: \(seen)")
            #expect(ok.count > 0)
            try await broker.start()
            try await h.admin.waitUntilReady(timeout: .seconds(60))
            let present = Set(try await consumeAllIds(h.admin, BridgeTopology.orders.name, timeout: .seconds(120)))
            let missing = ok.subtracting(present)
            #expect(missing.count == 0, "\(missing.count) of \(ok.count) deliveries answered 200 are missing")
            await h.close()
        }
    }

    @Test("shopify-sim delivering through a broker outage: 503s, Shopify's retries, then every webhook enqueued exactly once")
    func shopifyRetriesThroughOutage() async throws {
        try await TestBroker.withPrivate { broker in
            let h = try await IngestHarness.make(broker: broker)
            let router = Router()
            var logger = Logger(label: "test.ingest.http")
            logger.logLevel = .critical
            IngestService(config: h.config, publisher: h.publisher, logger: logger).addRoutes(to: router)
            let (port, serverTask) = await TestHTTPServer.start(router, label: "ingest")

            // Shopify's schedule scaled by 0.004: retries after 40 ms ... 28.8 s, the last ~56 s after the first try
            // (room for a slow broker restart on a loaded machine).
            let store = ShopifyStore(domain: "acme.myshopify.com", seed: 9, skus: 50)
            let deliverer = WebhookDeliverer(domain: "acme.myshopify.com", secret: IngestHarness.newSecret, policy: .init(timeScale: 0.004))
            await deliverer.subscribe(topic: "orders/create", url: "http://127.0.0.1:\(port)/webhooks/shopify")
            var events: [WebhookEvent] = []
            for _ in 0..<20 { events += await store.placeOrder().filter { $0.topic == "orders/create" } }

            try await broker.stop()
            #expect(await eventually { !h.publisher.isConnected })
            let delivery = Task { await deliverer.deliver(events) }
            try await Task.sleep(for: .seconds(2))
            try await broker.start()
            await delivery.value
            try await h.admin.waitUntilReady(timeout: .seconds(60))

            let log = await deliverer.log
            #expect(log.count == 20)
            #expect(log.allSatisfy { $0.outcome == .delivered }, "\(log.map(\.attempts))")
            #expect(log.allSatisfy { $0.attempts.first == 503 }, "the first attempts met the outage")
            let ids = try await consumeAllIds(h.admin, BridgeTopology.orders.name, timeout: .seconds(60))
            #expect(ids.count == 20, "one message per webhook, no duplicates")
            #expect(Set(ids) == Set(log.map(\.webhookId)))
            serverTask.cancel()
            await deliverer.shutdown()
            await h.close()
        }
    }
}
