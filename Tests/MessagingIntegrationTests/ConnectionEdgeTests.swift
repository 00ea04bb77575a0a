import BridgeTestSupport
import Foundation
import Logging
@testable import Messaging
import Testing

/// Edges of the connection's command handling: what a caller hears when its consumer is gone, or the connection was
/// never started. (consume() while disconnected needs a private broker: `ResilienceTests`, one private node at a time.)
@Suite("Connection edges: settles after a channel is reused, commands before start", .serialized)
struct ConnectionEdgeTests {
    @Test("commands queued on a connection that was never started fail when it is closed, instead of hanging")
    func commandsBeforeStart() async throws {
        var logger = Logger(label: "test.never-started")
        logger.logLevel = .critical
        let c = AMQPConnection(
            configuration: try AMQPConnectionConfiguration(url: "amqp://guest:guest@127.0.0.1:1/%2F", connectionName: "never-started"),
            logger: logger)
        // Each caller records what it heard; a caller that hangs never records (bounded wait below, not a hang).
        let answers = Shared<[String: String]>([:])
        Task {
            do { try await c.publish(exchange: "", routingKey: "q", body: [1], timeout: .seconds(3600)); answers.withLock { $0["publish"] = "ok" } }
            catch { answers.withLock { $0["publish"] = (error as? AMQPError)?.code.rawValue ?? "\(error)" } }
        }
        Task {
            do { _ = try await c.queueCounts("q"); answers.withLock { $0["counts"] = "ok" } }
            catch { answers.withLock { $0["counts"] = (error as? AMQPError)?.code.rawValue ?? "\(error)" } }
        }
        // Both are queued synchronously when their tasks run; give them a moment, then close the connection.
        try await Task.sleep(for: .milliseconds(200))
        await c.close()
        #expect(await eventually(timeout: .seconds(10)) { answers.value.count == 2 }, "a caller was left waiting: \(answers.value)")
        #expect(answers.value == ["publish": AMQPError.Code.closed.rawValue, "counts": AMQPError.Code.closed.rawValue])
    }

    @Test("an ack for a cancelled consumer's delivery never settles the next consumer's message on the reused channel")
    func ackAfterChannelReuse() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("reuse")
        defer { Task { await broker.deleteVhost(vhost) } }
        let c = try await broker.connect(vhost: vhost)
        defer { Task { await c.close() } }
        try await declareTestQueue(c, "q.old")
        try await declareTestQueue(c, "q.new")
        try await c.publish(exchange: "", routingKey: "q.old", body: Array("old".utf8))
        try await c.publish(exchange: "", routingKey: "q.new", body: Array("new".utf8))

        let first = try await c.consume(queue: "q.old", prefetch: 1)
        var old: AMQPDelivery?
        for try await d in first.deliveries {
            old = d
            break
        }
        let oldDelivery = try #require(old)
        first.cancel()
        // Two round trips on the connection thread: by then it has drained the cancelled channel's frames and put
        // its number back in the pool (reused last-in first-out), so the next consumer gets it, as a DLQ replay's
        // consumer does. Its delivery tags start at 1 again.
        _ = try await c.queueCounts("q.old")
        _ = try await c.queueCounts("q.new")
        let second = try await c.consume(queue: "q.new", prefetch: 1)
        var newDelivery: AMQPDelivery?
        for try await d in second.deliveries {
            newDelivery = d
            break
        }
        #expect(newDelivery?.channel == oldDelivery.channel, "precondition: the new consumer reuses the channel number")
        let reused = try #require(newDelivery)
        #expect(reused.deliveryTag == oldDelivery.deliveryTag)
        // The late ack of the old delivery is refused; it must not settle the new consumer's message.
        await #expect { try await oldDelivery.ack() } throws: { ($0 as? AMQPError)?.code == .staleDelivery }
        second.cancel()
        #expect(try await eventually { try await c.queueCounts("q.new").messages == 1 }, "the new consumer's message was settled by the old ack")
        #expect(try await c.queueCounts("q.old").messages == 1, "the cancelled consumer's delivery went back to its queue")
    }

    @Test("a consumer the broker cancels (its queue deleted) gives its channel back, and its late ack is refused")
    func brokerCancelledConsumerReturnsChannel() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("cancelled")
        defer { Task { await broker.deleteVhost(vhost) } }
        let c = try await broker.connect(vhost: vhost)
        let admin = try await broker.connect(vhost: vhost, name: "admin")
        defer { Task { await c.close(); await admin.close() } }
        try await declareTestQueue(c, "q.doomed")
        try await declareTestQueue(c, "q.next")
        try await c.publish(exchange: "", routingKey: "q.doomed", body: Array("doomed".utf8))
        try await c.publish(exchange: "", routingKey: "q.next", body: Array("next".utf8))

        let doomed = try await c.consume(queue: "q.doomed", prefetch: 1)
        var iterator = doomed.deliveries.makeAsyncIterator()
        let old = try #require(try await iterator.next())
        // Deleted from another connection: the broker sends basic.cancel (consumer_cancel_notify) and the stream ends
        // with consumerCancelled.
        _ = try await admin.withChannel { try $0.deleteQueue("q.doomed") }
        await #expect { while try await iterator.next() != nil {} } throws: { ($0 as? AMQPError)?.code == .consumerCancelled }
        // Two round trips: the thread has closed the cancelled channel and drained its frames; the number is free.
        _ = try await c.queueCounts("q.next")
        _ = try await c.queueCounts("q.next")
        let next = try await c.consume(queue: "q.next", prefetch: 1)
        var fresh: AMQPDelivery?
        for try await d in next.deliveries {
            fresh = d
            break
        }
        let reused = try #require(fresh)
        #expect(reused.channel == old.channel, "the broker-cancelled consumer's channel was not given back to the pool")
        await #expect { try await old.ack() } throws: { ($0 as? AMQPError)?.code == .staleDelivery }
        try await reused.ack()
        #expect(try await eventually { try await c.queueCounts("q.next").messages == 0 })
        next.cancel()
    }
}
