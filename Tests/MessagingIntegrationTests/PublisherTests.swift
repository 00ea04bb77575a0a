import BridgeTestSupport
import Foundation
import Messaging
import Testing

@Suite("Publisher: pipelined confirms against a real broker")
struct PublisherTests {
    @Test("100,000 confirmed publishes are all in the queue exactly once")
    func hundredThousandConfirmed() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("pub100k")
        defer { Task { await broker.deleteVhost(vhost) } }
        let c = try await broker.connect(vhost: vhost, name: "pub100k")
        defer { Task { await c.close() } }
        try await declareTestQueue(c, "q.bulk")

        let results = await publishMany(c, count: 100_000, concurrency: 512, routingKey: "q.bulk", bodySize: 128)
        let failures = results.values.compactMap { $0 }
        #expect(failures.isEmpty, "failures: \(failures.prefix(3))")
        #expect(results.count == 100_000)
        let counts = try await c.queueCounts("q.bulk")
        #expect(counts.messages == 100_000)
        // Exactly once by id, not only by count: consume everything and compare the ids with what was confirmed.
        let consumer = try await c.consume(queue: "q.bulk", prefetch: 1000)
        var seen: [String: Int] = [:]
        var received = 0
        for try await d in consumer.deliveries {
            seen[d.properties.messageId ?? "none", default: 0] += 1
            received += 1
            try await d.ack()
            if received == 100_000 { break }
        }
        consumer.cancel()
        #expect(seen.count == 100_000, "distinct ids")
        #expect(seen.values.allSatisfy { $0 == 1 }, "an id arrived twice")
        #expect(Set(seen.keys) == Set(results.keys), "every confirmed id, and only those")
    }

    @Test("an unroutable mandatory publish fails to its caller with 312 NO_ROUTE")
    func unroutableFails() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("unroutable")
        defer { Task { await broker.deleteVhost(vhost) } }
        let c = try await broker.connect(vhost: vhost)
        defer { Task { await c.close() } }
        try await c.withChannel { try $0.declareExchange("ex.topic", type: "topic") }
        try await declareTestQueue(c, "q.bound")
        try await c.withChannel { try $0.bindQueue("q.bound", exchange: "ex.topic", routingKey: "bound.#") }

        await #expect {
            try await c.publish(exchange: "ex.topic", routingKey: "nobody.listens", body: Array("x".utf8),
                                properties: MessageProperties(messageId: "lost-1"))
        } throws: { ($0 as? AMQPError)?.code == .unroutable && ($0 as? AMQPError)?.replyCode == 312 }
        // The routable neighbour in the same pipeline is confirmed, and the connection stays usable.
        try await c.publish(exchange: "ex.topic", routingKey: "bound.x", body: Array("y".utf8),
                            properties: MessageProperties(messageId: "ok-1"))
        #expect(try await c.queueCounts("q.bound").messages == 1)
        // Non-mandatory unroutable publishes are confirmed (and dropped by the broker), as AMQP specifies.
        try await c.publish(exchange: "ex.topic", routingKey: "nobody.listens", body: [1], mandatory: false)
    }

    /// Runs `count` publishes concurrently (one pipeline) and reports each one's outcome: "confirmed", "no_route" (312
    /// NO_ROUTE, the expected failure) or the unexpected error.
    static func publishOutcomes(_ count: Int, _ publish: @escaping @Sendable (Int) async throws -> Void) async -> [Int: String] {
        await withTaskGroup(of: (Int, String).self) { group -> [Int: String] in
            for i in 0..<count {
                group.addTask {
                    do {
                        try await publish(i)
                        return (i, "confirmed")
                    } catch let e as AMQPError where e.code == .unroutable && e.replyCode == 312 {
                        return (i, "no_route")
                    } catch {
                        return (i, "\(error)")
                    }
                }
            }
            var out: [Int: String] = [:]
            for await (i, outcome) in group { out[i] = outcome }
            return out
        }
    }

    @Test("unroutable and routable publishes interleaved in one pipeline are each reported correctly")
    func interleavedReturns() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("interleave")
        defer { Task { await broker.deleteVhost(vhost) } }
        let c = try await broker.connect(vhost: vhost)
        defer { Task { await c.close() } }
        try await declareTestQueue(c, "q.good")
        let outcomes = await Self.publishOutcomes(400) { i in
            try await c.publish(
                exchange: "", routingKey: i % 4 == 0 ? "q.missing" : "q.good", body: [UInt8(i % 256)],
                properties: MessageProperties(messageId: "i-\(i)"))
        }
        for (i, outcome) in outcomes { #expect(outcome == (i % 4 == 0 ? "no_route" : "confirmed"), "message \(i)") }
        #expect(try await c.queueCounts("q.good").messages == 300)
    }

    @Test("returns are matched to their own publish: same key, one routed and one returned, each reported right")
    func returnsMatchedByTag() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("retkey")
        defer { Task { await broker.deleteVhost(vhost) } }
        let c = try await broker.connect(vhost: vhost)
        defer { Task { await c.close() } }
        // A headers exchange routes on a header, so two publishes with the same message id, exchange and routing key
        // (the same "key") can be one routed, one returned. Interleaved in one pipeline, acks arrive multiple.
        try await c.withChannel { try $0.declareExchange("ex.h", type: "headers") }
        try await declareTestQueue(c, "q.h")
        try await c.withChannel { try $0.bindQueue("q.h", exchange: "ex.h", routingKey: "", arguments: ["x-match": "all", "route": "yes"]) }
        let outcomes = await Self.publishOutcomes(400) { i in
            try await c.publish(
                exchange: "ex.h", routingKey: "", body: [UInt8(i % 256)],
                properties: MessageProperties(messageId: "same", headers: ["route": .string(i % 2 == 0 ? "yes" : "no")]))
        }
        let wrong = outcomes.filter { $0.value != ($0.key % 2 == 0 ? "confirmed" : "no_route") }
        #expect(wrong.isEmpty, "\(wrong.count) publishes reported wrongly, e.g. \(wrong.prefix(3))")
        #expect(try await c.queueCounts("q.h").messages == 200)
    }

    @Test("publish properties and headers arrive intact")
    func propertiesRoundTrip() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("props")
        defer { Task { await broker.deleteVhost(vhost) } }
        let c = try await broker.connect(vhost: vhost)
        defer { Task { await c.close() } }
        try await declareTestQueue(c, "q.props")
        let when = Date(timeIntervalSince1970: 1_790_000_000)
        let headers: AMQPTable = [
            "x-bridge-shop": "acme.myshopify.com", "x-bridge-attempt": 3, "flag": true,
            "nested": .table(["a": .array(["x", 1])]), "unicode": "Grüße 🛒",
        ]
        try await c.publish(
            exchange: "", routingKey: "q.props", body: Array("{\"id\":1}".utf8),
            properties: MessageProperties(
                messageId: "wh-1", correlationId: "corr-1", contentType: "application/json", timestamp: when,
                headers: headers))
        let got = try await c.withChannel { try $0.get("q.props", autoAck: true) }
        let m = try #require(got)
        #expect(m.body == Array("{\"id\":1}".utf8))
        #expect(m.properties.messageId == "wh-1")
        #expect(m.properties.correlationId == "corr-1")
        #expect(m.properties.contentType == "application/json")
        #expect(m.properties.timestamp == when)
        #expect(m.properties.persistent)
        var received = m.properties.headers
        received["x-delivery-count"] = nil  // added by the quorum queue
        #expect(received[AMQPConnection.publishTagHeader]?.intValue ?? 0 > 0, "a mandatory publish carries its delivery tag")
        received[AMQPConnection.publishTagHeader] = nil
        #expect(received == headers)
    }

    @Test("a full queue (overflow=reject-publish) nacks, and the publish fails to its caller")
    func nackFails() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("nack")
        defer { Task { await broker.deleteVhost(vhost) } }
        let c = try await broker.connect(vhost: vhost)
        defer { Task { await c.close() } }
        // A classic queue enforces the limit exactly (a quorum queue's limit is applied a little lazily).
        try await declareTestQueue(
            c, "q.tiny", arguments: ["x-queue-type": "classic", "x-max-length": 2, "x-overflow": "reject-publish"])
        for i in 0..<2 {
            try await c.publish(exchange: "", routingKey: "q.tiny", body: [1], properties: MessageProperties(messageId: "\(i)"))
        }
        await #expect {
            try await c.publish(exchange: "", routingKey: "q.tiny", body: [1], properties: MessageProperties(messageId: "3"))
        } throws: { ($0 as? AMQPError)?.code == .nacked }
    }

    @Test("an idle connection survives three heartbeat intervals")
    func idleSurvivesHeartbeats() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("idle")
        defer { Task { await broker.deleteVhost(vhost) } }
        let c = try await broker.connect(vhost: vhost, name: "idle", query: "heartbeat=1")
        defer { Task { await c.close() } }
        try await declareTestQueue(c, "q.idle")
        try await Task.sleep(for: .milliseconds(3500))
        #expect(c.isConnected)
        #expect(c.currentStatus.reconnects == 0)
        try await c.publish(exchange: "", routingKey: "q.idle", body: [1])
        #expect(try await c.queueCounts("q.idle").messages == 1)
    }

    @Test("a missing queue is a 404 channel error and the connection stays up")
    func channelErrorKeepsConnection() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("404")
        defer { Task { await broker.deleteVhost(vhost) } }
        let c = try await broker.connect(vhost: vhost)
        defer { Task { await c.close() } }
        await #expect {
            _ = try await c.queueCounts("q.does-not-exist")
        } throws: { ($0 as? AMQPError)?.code == .channelClosed && ($0 as? AMQPError)?.replyCode == 404 }
        try await declareTestQueue(c, "q.after")
        #expect(try await c.queueCounts("q.after").messages == 0)
        #expect(c.currentStatus.reconnects == 0)
    }
}
