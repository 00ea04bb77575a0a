import BridgeDomain
import BridgeMessaging
import BridgeTestSupport
import Foundation
import Messaging
import Testing

@Suite("Consumer, retries and dead letters against a real broker")
struct ConsumerTests {
    @Test("deliveries arrive with prefetch bounding the unacknowledged window, and acks remove them")
    func consumeWithPrefetch() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("consume")
        defer { Task { await broker.deleteVhost(vhost) } }
        let pub = try await broker.connect(vhost: vhost, name: "pub")
        let sub = try await broker.connect(vhost: vhost, name: "sub")
        defer { Task { await pub.close(); await sub.close() } }
        try await declareTestQueue(pub, "q.work")
        _ = await publishMany(pub, count: 50, concurrency: 50, routingKey: "q.work")

        let consumer = try await sub.consume(queue: "q.work", prefetch: 5)
        var held: [AMQPDelivery] = []
        for try await d in consumer.deliveries {
            held.append(d)
            if held.count == 5 { break }
        }
        // With 5 unacked, the broker sends no more: the queue still holds 45 ready messages.
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await pub.queueCounts("q.work").messages == 45)
        for d in held { try await d.ack() }
        var seen = held.count
        for try await d in consumer.deliveries {
            try await d.ack()
            seen += 1
            if seen == 50 { break }
        }
        consumer.cancel()
        #expect(seen == 50)
        #expect(try await eventually { try await pub.queueCounts("q.work").messages == 0 })
    }

    @Test("the broker's consumer cancel (queue deleted) ends the stream with consumerCancelled")
    func consumerCancelSurfaced() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("cancel")
        defer { Task { await broker.deleteVhost(vhost) } }
        let admin = try await broker.connect(vhost: vhost, name: "admin")
        let sub = try await broker.connect(vhost: vhost, name: "sub")
        defer { Task { await admin.close(); await sub.close() } }
        try await declareTestQueue(admin, "q.doomed")
        let consumer = try await sub.consume(queue: "q.doomed")
        try await admin.withChannel { try $0.deleteQueue("q.doomed") }
        await #expect {
            for try await _ in consumer.deliveries {}
        } throws: { ($0 as? AMQPError)?.code == .consumerCancelled }
        #expect(sub.isConnected)
    }

    @Test("a message failing transiently walks every retry level, then lands in the DLQ with reason and attempts")
    func retryWalkToDLQ() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("retry")
        defer { Task { await broker.deleteVhost(vhost) } }
        let settings = BridgeConfig.TopologySettings(
            deliveryLimit: 5, maxLength: 10_000, retryDelays: [.milliseconds(200), .milliseconds(400)])
        let topology = BridgeTopology.topology(settings)
        let pub = try await broker.connect(vhost: vhost, name: "pub", onConnect: { try topology.declare(using: $0) })
        let sub = try await broker.connect(vhost: vhost, name: "sub")
        defer { Task { await pub.close(); await sub.close() } }
        let queue = BridgeTopology.orders.name
        let router = FailureRouter(publisher: pub, queue: queue, retryDelays: settings.retryDelays)

        let started = ContinuousClock.now
        try await pub.publish(
            exchange: BridgeTopology.shopifyInbound, routingKey: "orders.create", body: Array("{\"id\":42}".utf8),
            properties: MessageProperties(messageId: "wh-42", headers: [EnvelopeHeader.shop: "acme.myshopify.com"]))

        let consumer = try await sub.consume(queue: queue, prefetch: 1)
        var outcomes: [FailureRouter.Outcome] = []
        var attemptsSeen: [Int64] = []
        for try await d in consumer.deliveries {
            attemptsSeen.append(d.properties.headers[EnvelopeHeader.attempt]?.intValue ?? 0)
            let outcome = try await router.route(
                d, failure: ProcessingFailure(errorClass: "erp_unavailable", message: "ERP answered 503", retryable: true))
            outcomes.append(outcome)
            if outcome == .deadLettered { break }
        }
        consumer.cancel()
        let elapsed = ContinuousClock.now - started
        #expect(outcomes == [.retried(level: 1, delay: .milliseconds(200)), .retried(level: 2, delay: .milliseconds(400)), .deadLettered])
        #expect(attemptsSeen == [0, 1, 2])
        // The retry levels really delayed it (jitter: at least 80% of each level).
        #expect(elapsed >= .milliseconds(480))

        let dlq = BridgeTopology.deadLetterQueue(of: queue)
        let dead = try #require(try await pub.withChannel { try $0.get(dlq, autoAck: true) })
        #expect(dead.body == Array("{\"id\":42}".utf8))
        #expect(dead.properties.messageId == "wh-42")
        #expect(dead.properties.headers[EnvelopeHeader.attempt] == .int(3))
        #expect(dead.properties.headers[EnvelopeHeader.errorClass] == "erp_unavailable")
        #expect(dead.properties.headers[EnvelopeHeader.errorMessage] == "ERP answered 503")
        #expect(dead.properties.headers[EnvelopeHeader.originQueue] == .string(queue))
        #expect(dead.properties.headers[EnvelopeHeader.shop] == "acme.myshopify.com")
        #expect(dead.properties.headers[EnvelopeHeader.firstFailureAt] != nil)
        #expect(try await pub.queueCounts(queue).messages == 0)
    }

    @Test("a permanent failure goes to the DLQ at once")
    func permanentFailureDeadLettersAtOnce() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("permanent")
        defer { Task { await broker.deleteVhost(vhost) } }
        let settings = BridgeConfig.TopologySettings(deliveryLimit: 5, maxLength: 10_000, retryDelays: [.seconds(5)])
        let topology = BridgeTopology.topology(settings)
        let pub = try await broker.connect(vhost: vhost, name: "pub", onConnect: { try topology.declare(using: $0) })
        defer { Task { await pub.close() } }
        let queue = BridgeTopology.orders.name
        try await pub.publish(exchange: BridgeTopology.shopifyInbound, routingKey: "orders.updated", body: Array("not json".utf8))
        let consumer = try await pub.consume(queue: queue, prefetch: 1)
        for try await d in consumer.deliveries {
            let outcome = try await FailureRouter(publisher: pub, queue: queue, retryDelays: settings.retryDelays)
                .route(d, failure: ProcessingFailure(errorClass: "invalid_json", message: "body is not JSON", retryable: false))
            #expect(outcome == .deadLettered)
            break
        }
        consumer.cancel()
        let dead = try #require(try await pub.withChannel { try $0.get(BridgeTopology.deadLetterQueue(of: queue), autoAck: true) })
        #expect(dead.properties.headers[EnvelopeHeader.attempt] == .int(1))
        #expect(dead.properties.headers[EnvelopeHeader.errorClass] == "invalid_json")
    }

    @Test("a message whose consumer dies before acking is dead-lettered by the delivery limit")
    func deliveryLimitDeadLetters() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("poison")
        defer { Task { await broker.deleteVhost(vhost) } }
        let settings = BridgeConfig.TopologySettings(deliveryLimit: 2, maxLength: 10_000, retryDelays: [.seconds(5)])
        let topology = BridgeTopology.topology(settings)
        let admin = try await broker.connect(vhost: vhost, name: "admin", onConnect: { try topology.declare(using: $0) })
        defer { Task { await admin.close() } }
        let queue = BridgeTopology.orders.name
        try await admin.publish(
            exchange: BridgeTopology.shopifyInbound, routingKey: "orders.create", body: Array("poison".utf8),
            properties: MessageProperties(messageId: "poison-1"))

        // delivery limit 2 = 3 deliveries; each consumer takes the message and dies (connection closed, no ack).
        for round in 0..<3 {
            let doomed = try await broker.connect(vhost: vhost, name: "doomed-\(round)")
            let consumer = try await doomed.consume(queue: queue, prefetch: 1)
            var got: AMQPDelivery?
            for try await d in consumer.deliveries {
                got = d
                break
            }
            #expect(got?.properties.messageId == "poison-1")
            if round > 0 { #expect(got?.deliveryCount == Int64(round)) }
            await doomed.close(drain: .zero)
        }
        let dlq = BridgeTopology.deadLetterQueue(of: queue)
        #expect(try await eventually { try await admin.queueCounts(dlq).messages == 1 })
        let dead = try #require(try await admin.withChannel { try $0.get(dlq, autoAck: true) })
        #expect(dead.properties.messageId == "poison-1")
        #expect(dead.properties.headers["x-first-death-reason"] == "delivery_limit")
        #expect(try await admin.queueCounts(queue).messages == 0)
    }

    @Test("settling a delivery from a closed connection fails as stale instead of acking the wrong message")
    func staleSettle() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("stale")
        defer { Task { await broker.deleteVhost(vhost) } }
        let c = try await broker.connect(vhost: vhost)
        try await declareTestQueue(c, "q.s")
        try await c.publish(exchange: "", routingKey: "q.s", body: [1])
        let consumer = try await c.consume(queue: "q.s", prefetch: 1)
        var delivery: AMQPDelivery?
        for try await d in consumer.deliveries {
            delivery = d
            break
        }
        await c.close()
        await #expect { try await delivery!.ack() } throws: { ($0 as? AMQPError)?.code == .closed }
    }
}
