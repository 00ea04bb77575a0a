import BridgeDomain
import BridgeMessaging
import BridgeTestSupport
import Foundation
import Messaging
import Testing

@Suite("Dead-letter tooling: list, show, replay, purge")
struct DeadLetterToolTests {
    @Test("dead letters are listed with their reason, replayed selectively or all with nothing lost, and purged")
    func lifecycle() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("dlq")
        defer { Task { await broker.deleteVhost(vhost) } }
        let settings = BridgeConfig.TopologySettings(deliveryLimit: 5, maxLength: 10_000, retryDelays: [.seconds(5)])
        let topology = BridgeTopology.topology(settings)
        let c = try await broker.connect(vhost: vhost, onConnect: { try topology.declare(using: $0) })
        let queue = BridgeTopology.orders.name
        let dlq = BridgeTopology.deadLetterQueue(of: queue)
        let router = FailureRouter(publisher: c, queue: queue, retryDelays: settings.retryDelays)

        // Three orders fail permanently (e.g. an unknown SKU).
        for i in 1...3 {
            try await c.publish(
                exchange: BridgeTopology.shopifyInbound, routingKey: "orders.create",
                body: Array("{\"id\":820982911946154500\(i),\"line_items\":[]}".utf8),
                properties: MessageProperties(messageId: "wh-\(i)", headers: [EnvelopeHeader.shop: "acme.myshopify.com", EnvelopeHeader.topic: "orders/create"]))
        }
        let consumer = try await c.consume(queue: queue, prefetch: 10)
        var failed = 0
        for try await d in consumer.deliveries {
            try await router.route(d, failure: ProcessingFailure(errorClass: "mapping_error", message: "unknown SKU ABC-1", retryable: false))
            failed += 1
            if failed == 3 { break }
        }
        consumer.cancel()
        #expect(try await eventually { try await c.queueCounts(dlq).messages == 3 })

        let (total, letters) = try await DeadLetters.list(c, workQueue: queue, limit: 10)
        #expect(total == 3)
        #expect(letters.count == 3)
        let first = try #require(letters.first { $0.messageId == "wh-1" })
        #expect(first.errorClass == "mapping_error")
        #expect(first.errorMessage == "unknown SKU ABC-1")
        #expect(first.shop == "acme.myshopify.com")
        #expect(first.orderId == "8209829119461545001")
        #expect(first.attempts == 1)
        #expect(first.firstFailureAt != nil)
        // Listing removed nothing.
        #expect(try await eventually { try await c.queueCounts(dlq).messages == 3 })
        let shown = try #require(try await DeadLetters.show(c, workQueue: queue, messageId: "wh-2"))
        #expect(String(decoding: shown.body, as: UTF8.self).contains("8209829119461545002"))

        // Replay one after the fix.
        #expect(try await DeadLetters.replay(c, workQueue: queue, ids: ["wh-2"]) == 1)
        #expect(try await eventually { try await c.queueCounts(queue).messages == 1 })
        #expect(try await eventually { try await c.queueCounts(dlq).messages == 2 })
        let replayed = try #require(try await c.withChannel { try $0.get(queue, autoAck: true) })
        #expect(replayed.properties.messageId == "wh-2")
        #expect(replayed.properties.headers[EnvelopeHeader.attempt] == nil, "a replay starts with fresh retries")
        #expect(replayed.properties.headers["x-bridge-replays"] == .int(1))
        #expect(replayed.properties.headers[EnvelopeHeader.shop] == "acme.myshopify.com")

        // Replay the rest, then nothing is left to purge.
        #expect(try await DeadLetters.replay(c, workQueue: queue) == 2)
        #expect(try await eventually { try await c.queueCounts(queue).messages == 2 })
        #expect(try await c.queueCounts(dlq).messages == 0)
        #expect(try await DeadLetters.purge(c, workQueue: queue) == 0)
        // Purge on a DLQ that holds letters: all of them go, and only from the DLQ.
        // (The replayed two are back in the work queue; rejecting them dead-letters them through the queue's DLX.)
        for _ in 0..<2 {
            let rejected = try await c.withChannel { ch -> Bool in
                guard let d = try ch.get(queue, autoAck: false) else { return false }
                try ch.rejectGot(d.deliveryTag, requeue: false)
                return true
            }
            #expect(rejected)
        }
        #expect(try await eventually { try await c.queueCounts(dlq).messages == 2 })
        #expect(try await DeadLetters.purge(c, workQueue: queue) == 2)
        #expect(try await c.queueCounts(dlq).messages == 0)
        #expect(try await c.queueCounts(queue).messages == 0)
        #expect(throws: ConfigError.self) { try DeadLetters.workQueue(named: "nope") }
        #expect(try DeadLetters.workQueue(named: "orders") == queue)
        await c.close()
    }
}
