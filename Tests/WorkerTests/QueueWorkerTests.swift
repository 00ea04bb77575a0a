import BridgeDomain
import BridgeMessaging
import BridgeTestSupport
import Foundation
import Logging
import Messaging
import ServiceLifecycle
import Synchronization
import Testing
import Worker

/// A handler scripted by the message body: `ok`, `flaky` (fails once, transiently), `poison` (permanent),
/// `key:<k>` (serialized per key, 50 ms each), `slow` (takes 1.5 s).
final class ScriptedHandler: QueueHandler {
    struct Failure: Error {}
    let handled = Mutex<[String: Int]>([:])
    let attemptsSeen = Mutex<[String: [Int]]>([:])
    let activePerKey = Mutex<[String: Int]>([:])
    let maxPerKey = Mutex<[String: Int]>([:])
    let maxOverall = Mutex<(now: Int, max: Int)>((0, 0))

    var subject: String { "test message" }

    func handle(_ message: InboundMessage, context: inout WorkContext) async throws -> WorkOutcome {
        let kind = String(decoding: message.body, as: UTF8.self)
        let id = message.envelope.deliveryId
        attemptsSeen.withLock { $0[id, default: []].append(message.envelope.attempt) }
        switch kind {
        case "flaky" where message.envelope.attempt == 0:
            throw ProcessingFailure(errorClass: "flaky_dependency", message: "first attempt fails", retryable: true)
        case "poison":
            throw ProcessingFailure(errorClass: "poison", message: "never works", retryable: false)
        case "slow":
            try await Task.sleep(for: .milliseconds(1500))
        case let k where k.hasPrefix("key:"):
            try await context.serialized(k) {
                self.activePerKey.withLock { a in
                    a[k, default: 0] += 1
                    let n = a[k]!
                    self.maxPerKey.withLock { $0[k] = max($0[k] ?? 0, n) }
                }
                self.maxOverall.withLock { $0.now += 1; $0.max = max($0.max, $0.now) }
                try await Task.sleep(for: .milliseconds(50))
                self.maxOverall.withLock { $0.now -= 1 }
                self.activePerKey.withLock { $0[k, default: 0] -= 1 }
            }
        default:
            break
        }
        handled.withLock { $0[id, default: 0] += 1 }
        return WorkOutcome("done")
    }

    func classify(_ error: any Error) -> WorkFailure {
        if let f = error as? ProcessingFailure { return .failed(f) }
        return .failed(ProcessingFailure(errorClass: "unexpected", message: "\(error)", retryable: true))
    }
}

@Suite("QueueWorker: the consumer runtime every queue uses", .serialized)
struct QueueWorkerTests {
    static let settings = BridgeConfig.TopologySettings(retryDelays: [.seconds(1)])
    static let queue = BridgeTopology.compliance.name

    static func world(_ prefix: String) async throws -> (TestBroker, String, AMQPConnection, AMQPConnection) {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost(prefix)
        let topology = BridgeTopology.topology(settings)
        let pub = try await broker.connect(vhost: vhost, name: "\(prefix)-pub", onConnect: { try topology.declare(using: $0) })
        let consumer = try await broker.connect(vhost: vhost, name: "\(prefix)-consume")
        return (broker, vhost, pub, consumer)
    }

    static func send(_ pub: AMQPConnection, _ body: String, id: String) async throws {
        let envelope = InboundEnvelope(source: .shopify, shopDomain: "acme.myshopify.com", topic: "customers/redact", deliveryId: id)
        try await pub.publish(exchange: "", routingKey: queue, body: Array(body.utf8), properties: envelope.properties())
    }

    static var logger: Logger {
        var l = Logger(label: "test.worker")
        l.logLevel = .critical
        return l
    }

    @Test("acks after the effect, retries a transient failure with attempt+1, dead-letters a permanent one with its reason, serializes per key")
    func outcomes() async throws {
        let (broker, vhost, pub, consumer) = try await Self.world("worker")
        defer { Task { await pub.close(); await consumer.close(); await broker.deleteVhost(vhost) } }
        for i in 0..<20 { try await Self.send(pub, "ok", id: "ok-\(i)") }
        for i in 0..<3 { try await Self.send(pub, "flaky", id: "flaky-\(i)") }
        try await Self.send(pub, "poison", id: "poison-1")
        for i in 0..<12 { try await Self.send(pub, "key:\(i % 2)", id: "key-\(i)") }

        let handler = ScriptedHandler()
        let worker = QueueWorker(
            settings: .init(queue: Self.queue, prefetch: 16, retryDelays: Self.settings.retryDelays),
            handler: handler, consumer: consumer, publisher: pub, logger: Self.logger)
        let running = Task { try await worker.run() }
        defer { running.cancel() }
        let total = 20 + 3 * 2 + 1 + 12  // each flaky message is handled twice (the failure is settled as retried)
        #expect(await eventually(timeout: .seconds(60)) { worker.settledTotal >= total }, "\(worker.settledCounts)")
        #expect(worker.settledCounts == ["done": 20 + 3 + 12, "retried": 3, "dead_lettered": 1])

        let handled = handler.handled.withLock { $0 }
        #expect((0..<20).allSatisfy { handled["ok-\($0)"] == 1 }, "each message's effect exactly once")
        for i in 0..<3 { #expect(handler.attemptsSeen.withLock { $0["flaky-\(i)"] } == [0, 1], "a retry carries attempt+1") }
        #expect(handled["poison-1"] == nil)
        // Serialized per key, concurrent across keys.
        #expect(handler.maxPerKey.withLock { $0 } == ["key:0": 1, "key:1": 1])
        #expect(handler.maxOverall.withLock { $0.max } >= 2)

        // The poison message is in the DLQ with its reason; nothing is left unsettled.
        let dead = try #require(try await pub.withChannel { try $0.get(BridgeTopology.deadLetterQueue(of: Self.queue), autoAck: true) })
        #expect(dead.properties.messageId == "poison-1")
        #expect(dead.properties.headers[EnvelopeHeader.errorClass] == "poison")
        #expect(InboundEnvelope(properties: dead.properties).attempt == 1)
        #expect(try await eventually { try await pub.queueCounts(Self.queue).messages == 0 })
    }

    @Test("graceful shutdown: the message in flight finishes and is acked, the prefetched rest returns to the queue")
    func drain() async throws {
        let (broker, vhost, pub, consumer) = try await Self.world("worker-drain")
        defer { Task { await pub.close(); await consumer.close(); await broker.deleteVhost(vhost) } }
        try await Self.send(pub, "slow", id: "slow-1")
        for i in 0..<5 { try await Self.send(pub, "ok", id: "after-\(i)") }

        let handler = ScriptedHandler()
        // Prefetch 1: the slow message is in flight, the others wait in the queue or the prefetch buffer.
        let worker = QueueWorker(
            settings: .init(queue: Self.queue, prefetch: 1, retryDelays: Self.settings.retryDelays),
            handler: handler, consumer: consumer, publisher: pub, logger: Self.logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: worker)], logger: Self.logger))
        let running = Task { try await group.run() }
        #expect(await eventually { handler.attemptsSeen.withLock { $0["slow-1"] != nil } })
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(handler.handled.withLock { $0 } == ["slow-1": 1], "the message in flight finished; nothing new started")
        #expect(worker.settledCounts == ["done": 1])
        #expect(try await eventually { try await pub.queueCounts(Self.queue).messages == 5 }, "the rest is back in the queue")
    }
}

/// Counts handlers running outside their waits, for the concurrency limit: `hold:<k>` holds key k until `gate`
/// opens, `key:<k>` takes key k, `wait` waits (`context.waiting`) until `gate` opens, `work` takes 100 ms.
final class SlotHandler: QueueHandler {
    let gate = Mutex(false)
    let running = Mutex<(now: Int, max: Int)>((0, 0))
    let handled = Mutex<[String]>([])

    var subject: String { "test message" }

    private func working<T>(_ body: () async throws -> T) async rethrows -> T {
        running.withLock { $0.now += 1; $0.max = max($0.max, $0.now) }
        defer { running.withLock { $0.now -= 1 } }
        return try await body()
    }

    private func untilOpen() async throws {
        while !gate.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
    }

    func handle(_ message: InboundMessage, context: inout WorkContext) async throws -> WorkOutcome {
        let kind = String(decoding: message.body, as: UTF8.self)
        switch kind {
        case let k where k.hasPrefix("hold:"):
            try await context.serialized(String(k.dropFirst(5))) { try await self.working { try await self.untilOpen() } }
        case let k where k.hasPrefix("key:"):
            try await context.serialized(String(k.dropFirst(4))) { await self.working {} }
        case "wait":
            try await context.waiting { try await self.untilOpen() }
            await working {}
        default:
            try await working { try await Task.sleep(for: .milliseconds(100)) }
        }
        handled.withLock { $0.append(message.envelope.deliveryId) }
        return WorkOutcome("done")
    }

    func classify(_ error: any Error) -> WorkFailure {
        .failed(ProcessingFailure(errorClass: "unexpected", message: "\(error)", retryable: true))
    }
}

extension QueueWorkerTests {
    @Test("concurrency below the prefetch: at most that many handlers run; one waiting for a key or in `waiting` leaves its slot to a prefetched message")
    func concurrencyBelowPrefetch() async throws {
        let (broker, vhost, pub, consumer) = try await Self.world("worker-slots")
        defer { Task { await pub.close(); await consumer.close(); await broker.deleteVhost(vhost) } }
        // Slot 1: hold:A until the gate opens. key:A waits for A and `wait` waits for the gate: neither holds a slot,
        // so the work messages run, two at a time, while the gate is closed.
        let handler = SlotHandler()
        let worker = QueueWorker(
            settings: .init(queue: Self.queue, prefetch: 5, concurrency: 2, retryDelays: Self.settings.retryDelays),
            handler: handler, consumer: consumer, publisher: pub, logger: Self.logger)
        let running = Task { try await worker.run() }
        defer { running.cancel() }
        try await Self.send(pub, "hold:A", id: "hold")
        #expect(await eventually { handler.running.withLock { $0.now } == 1 }, "hold:A holds A")
        try await Self.send(pub, "key:A", id: "same-key")
        try await Self.send(pub, "wait", id: "waiting")
        for i in 0..<8 { try await Self.send(pub, "work", id: "work-\(i)") }
        let works = Set((0..<8).map { "work-\($0)" })
        #expect(
            await eventually(timeout: .seconds(30)) { works.isSubset(of: handler.handled.withLock { Set($0) }) },
            "the work ran beside the held key, the delivery waiting for it and the one in `waiting`: \(handler.handled.withLock { $0 })")
        #expect(handler.handled.withLock { $0 }.allSatisfy { works.contains($0) }, "nothing behind the gate finished")
        #expect(handler.running.withLock { $0.max } == 2, "never more than 2 handlers at once, and 2 when there was work")

        handler.gate.withLock { $0 = true }
        #expect(await eventually(timeout: .seconds(30)) { worker.settledTotal == 11 }, "\(worker.settledCounts)")
        let order = handler.handled.withLock { $0 }
        let holdAt = try #require(order.firstIndex(of: "hold"))
        let keyAt = try #require(order.firstIndex(of: "same-key"))
        #expect(holdAt < keyAt, "the delivery waiting for A ran after A's holder")
        #expect(handler.running.withLock { $0.max } == 2)
        #expect(try await eventually { try await pub.queueCounts(Self.queue).messages == 0 })
    }
}
