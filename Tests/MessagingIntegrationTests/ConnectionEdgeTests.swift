import BridgeTestSupport
import Foundation
import Logging
import Messaging
import Testing

/// Edges of the connection's command handling: what a caller hears when the connection is down, or never started.
@Suite("Connection edges: consume while disconnected, commands before start", .serialized)
struct ConnectionEdgeTests {
    @Test("consume() while disconnected answers when the broker does: a missing queue throws, an existing one consumes")
    func consumeWhileDisconnected() async throws {
        try await TestBroker.withPrivate { broker in
            let vhost = try await broker.makeVhost("offline-consume")
            let c = try await broker.connect(vhost: vhost, name: "offline")
            defer { Task { await c.close() } }
            try await declareTestQueue(c, "q.there")
            try await broker.stop()
            #expect(await eventually(timeout: .seconds(30)) { !c.isConnected })
            let missing = Task { try await c.consume(queue: "q.nope") }
            let existing = Task { try await c.consume(queue: "q.there") }
            try await broker.start()
            // Both are answered by the broker after the reconnect, not optimistically before it.
            await #expect { _ = try await missing.value } throws: { ($0 as? AMQPError)?.code == .channelClosed }
            let consumer = try await existing.value
            try await c.publish(exchange: "", routingKey: "q.there", body: Array("after".utf8))
            var received: String?
            for try await d in consumer.deliveries {
                received = String(decoding: d.body, as: UTF8.self)
                try await d.ack()
                break
            }
            #expect(received == "after")
            consumer.cancel()
        }
    }

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
}
