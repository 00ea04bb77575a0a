import BridgeTestSupport
import Foundation
import Logging
import Messaging
import Metrics
import MetricsTestKit
import Synchronization
import Testing

/// These tests stop, kill and alarm a broker, so each runs on a private node of its own.
@Suite("Resilience: broker restarts, crashes and alarms", .serialized)
struct ResilienceTests {
    @Test("broker stopped and restarted mid-stream: every publish is confirmed and present, or failed to its caller; consumers resume")
    func restartMidStream() async throws {
        try await TestBroker.withPrivate { broker in
            let vhost = try await broker.makeVhost("restart")
            let pub = try await broker.connect(vhost: vhost, name: "pub")
            let sub = try await broker.connect(vhost: vhost, name: "sub")
            defer { Task { await pub.close(); await sub.close() } }
            try await declareTestQueue(pub, "q.stream")
            try await declareTestQueue(pub, "q.live")

            // A consumer that should resume by itself after the restart.
            let received = Mutex<[String]>([])
            let consumer = try await sub.consume(queue: "q.live", prefetch: 10)
            let consuming = Task {
                for try await d in consumer.deliveries {
                    received.withLock { $0.append(d.properties.messageId ?? "") }
                    try? await d.ack()
                }
            }
            try await pub.publish(exchange: "", routingKey: "q.live", body: [1], properties: MessageProperties(messageId: "before"))
            #expect(await eventually { received.withLock { $0.contains("before") } })

            let state = StreamState()
            let publishing = Task {
                await withTaskGroup(of: Void.self) { group in
                    for worker in 0..<16 {
                        group.addTask {
                            var i = 0
                            while !state.stop.load(ordering: .relaxed) {
                                let id = "w\(worker)-\(i)"
                                i += 1
                                do {
                                    try await pub.publish(exchange: "", routingKey: "q.stream", body: [UInt8](repeating: 7, count: 256),
                                                          properties: MessageProperties(messageId: id), timeout: .seconds(5))
                                    state.confirmed.withLock { _ = $0.insert(id) }
                                    if state.restarted.load(ordering: .relaxed) { state.confirmedAfterRestart.add(1, ordering: .relaxed) }
                                } catch let e as AMQPError {
                                    state.failed.withLock { $0[id] = e.code }
                                    try? await Task.sleep(for: .milliseconds(20))
                                } catch {
                                    state.failed.withLock { $0[id] = .closed }
                                }
                            }
                        }
                    }
                }
            }
            // Some traffic first (a loaded CI machine needs longer than 20 s for it).
            #expect(await eventually(timeout: .seconds(120)) { state.confirmed.withLock { $0.count } >= 3000 })
            try await broker.stop()
            #expect(await eventually { !pub.isConnected })
            try await broker.start()
            state.restarted.store(true, ordering: .relaxed)
            #expect(await eventually(timeout: .seconds(60)) { state.confirmedAfterRestart.load(ordering: .relaxed) >= 2000 })
            state.stop.store(true, ordering: .relaxed)
            await publishing.value

            let confirmedIds = state.confirmed.withLock { $0 }
            let failures = state.failed.withLock { $0 }
            #expect(!failures.isEmpty, "the outage should have failed some publishes to their callers")
            #expect(Set(failures.values).isSubset(of: [.notConnected, .connectionLost, .confirmTimeout]))
            let present = try await consumeAllIds(pub, "q.stream")
            let presentSet = Set(present)
            let missing = confirmedIds.subtracting(presentSet)
            #expect(missing.count == 0, "\(missing.count) confirmed publishes are missing, e.g. \(missing.prefix(5))")
            // Nothing appears that was neither confirmed nor failed (ids are unique per attempt).
            #expect(presentSet.subtracting(confirmedIds).isSubset(of: Set(failures.keys)))
            #expect(pub.currentStatus.reconnects >= 1)

            // The consumer resumed by itself on the new connection.
            try await pub.publish(exchange: "", routingKey: "q.live", body: [2], properties: MessageProperties(messageId: "after"))
            #expect(await eventually(timeout: .seconds(30)) { received.withLock { $0.contains("after") } })
            consumer.cancel()
            consuming.cancel()
        }
    }

    @Test("broker killed (SIGKILL) with publishes in flight: none reported confirmed unless present after recovery")
    func killWithPublishesInFlight() async throws {
        try await TestBroker.withPrivate { broker in
            let vhost = try await broker.makeVhost("kill")
            let pub = try await broker.connect(vhost: vhost, name: "pub")
            defer { Task { await pub.close() } }
            try await declareTestQueue(pub, "q.k")
            // A quorum queue killed within milliseconds of its creation can come back empty (its Ra state is not
            // yet durable); production queues are declared long before. Give it a moment.
            try await Task.sleep(for: .seconds(2))

            let killer = Task {
                try await Task.sleep(for: .milliseconds(300))
                try await broker.kill()
            }
            let results = await publishMany(pub, count: 200_000, concurrency: 256, routingKey: "q.k", bodySize: 512, idPrefix: "k")
            try await killer.value
            let confirmed = Set(results.filter { $0.value == nil }.keys)
            let failedCount = results.count - confirmed.count
            #expect(failedCount > 0, "the kill should have failed publishes in flight")
            try await broker.start()
            _ = try await pub.waitUntilReady(timeout: .seconds(60))
            let present = Set(try await consumeAllIds(pub, "q.k", timeout: .seconds(120)))
            let missing = confirmed.subtracting(present)
            #expect(missing.count == 0, "\(missing.count) of \(confirmed.count) confirmed publishes are missing")
        }
    }

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

    @Test("a return left by a publish whose caller timed out does not fail a later publish with the same key")
    func staleReturnAfterTimeout() async throws {
        try await TestBroker.withPrivate { broker in
            let vhost = try await broker.makeVhost("stale-return")
            let c = try await broker.connect(vhost: vhost, name: "pub")
            defer { Task { await c.close() } }
            // Frozen broker: the publish to a queue that does not exist yet times out before its return and ack.
            try broker.freeze()
            await #expect {
                try await c.publish(
                    exchange: "", routingKey: "q.late", body: [1], properties: MessageProperties(messageId: "same"),
                    timeout: .milliseconds(500))
            } throws: { ($0 as? AMQPError)?.code == .confirmTimeout }
            try broker.thaw()
            // Thawed, the broker returns that publish (no queue) and acks it. Then the queue appears, and a confirmed
            // marker proves the earlier return and ack have been read.
            try await declareTestQueue(c, "q.late")
            try await c.publish(exchange: "", routingKey: "q.late", body: [0], properties: MessageProperties(messageId: "marker"))
            // The same message id, exchange and routing key again: routable now, so confirmed (not "unroutable").
            try await c.publish(exchange: "", routingKey: "q.late", body: [2], properties: MessageProperties(messageId: "same"))
            #expect(try await c.queueCounts("q.late").messages == 2)
        }
    }

    /// A metrics backend to read gauges from, bootstrapped once for this test process (no other test bootstraps one).
    static let metrics: TestMetrics = {
        let m = TestMetrics()
        MetricsSystem.bootstrap(m)
        return m
    }()

    @Test("a memory alarm blocks the publisher: publishes fail fast as blocked, and resume when it clears")
    func blockedConnection() async throws {
        _ = Self.metrics  // before the connection creates its gauges
        try await TestBroker.withPrivate { broker in
            let vhost = try await broker.makeVhost("blocked")
            let pub = try await broker.connect(vhost: vhost, name: "pub")
            defer { Task { await pub.close() } }
            try await declareTestQueue(pub, "q.b")
            try await pub.publish(exchange: "", routingKey: "q.b", body: [1])

            let blockedGauge = try Self.metrics.expectGauge("bridge_amqp_blocked", [("connection", pub.configuration.connectionName)])
            try await broker.ctl(["set_vm_memory_high_watermark", "0.0000001"])
            // The broker sends connection.blocked when the next publish arrives while the alarm is on.
            _ = try? await pub.publish(exchange: "", routingKey: "q.b", body: [2], timeout: .seconds(2))
            #expect(await eventually { pub.isBlocked })
            // Visible as a metric too, not only as state.
            #expect(await eventually { blockedGauge.lastValue == 1 })
            await #expect { try await pub.publish(exchange: "", routingKey: "q.b", body: [3]) } throws: {
                ($0 as? AMQPError)?.code == .blocked
            }
            try await broker.ctl(["set_vm_memory_high_watermark", "0.6"])
            #expect(await eventually { !pub.isBlocked })
            #expect(await eventually { blockedGauge.lastValue == 0 })
            try await pub.publish(exchange: "", routingKey: "q.b", body: [4])
        }
    }

    @Test("a silent partition under load: every answer by its deadline, nothing confirmed is lost, recovery after the heal")
    func silentPartition() async throws {
        try TestDependency.require(TestDependency.iptables, "root with iptables", install: "run as root; apt-get install iptables")
        try await TestBroker.withPrivate { broker in
            let vhost = try await broker.makeVhost("partition")
            // Heartbeat 2 s: the connection notices the partition after ~4 s (rabbitmq-c's heartbeat check, and
            // TCP_USER_TIMEOUT for data left unacknowledged), then reconnect attempts block in connect for up to 5 s.
            let pub = try await broker.connect(vhost: vhost, name: "pub", query: "heartbeat=2")
            defer { Task { await pub.close() } }
            try await declareTestQueue(pub, "q.p")
            let timeout = Duration.seconds(1)
            let load = LoadRecorder()
            let publishing = load.start(pub, queue: "q.p", workers: 8, bodySize: 512, timeout: timeout)
            #expect(await eventually(timeout: .seconds(60)) { load.confirmed.count >= 200 })
            try await broker.partition()
            do {
                #expect(await eventually(timeout: .seconds(30)) { !pub.isConnected }, "the partition was never noticed")
                try await Task.sleep(for: .seconds(6))
            } catch {}
            await broker.heal()
            let healed = ContinuousClock.now
            #expect(await eventually(timeout: .seconds(60)) { load.confirmed(after: healed) >= 200 }, "no recovery after the heal")
            load.stop()
            await publishing.value

            // The caller-side deadline: nobody waited past it (plus a margin for a loaded machine).
            let slowest = load.slowest
            #expect(slowest.map { $0.took <= timeout + .milliseconds(600) } ?? false,
                    "slowest answer \(slowest.map { "\($0.took) (\($0.error?.rawValue ?? "confirmed"))" } ?? "none"), deadline \(timeout)")
            let failures = load.failures()
            #expect(!failures.isEmpty, "the partition should have failed publishes to their callers")
            #expect(Set(failures.keys).isSubset(of: [.notConnected, .connectionLost, .confirmTimeout]), "\(failures)")
            let present = Set(try await consumeAllIds(pub, "q.p"))
            let missing = load.confirmed.subtracting(present)
            #expect(missing.isEmpty, "\(missing.count) confirmed publishes are missing, e.g. \(missing.prefix(5))")
        }
    }

    @Test("a memory alarm with the socket buffer full: the thread never blocks in a send, every answer by its deadline")
    func alarmWithFullSocketBuffer() async throws {
        try await TestBroker.withPrivate { broker in
            let vhost = try await broker.makeVhost("alarm-full")
            let pub = try await broker.connect(vhost: vhost, name: "pub")
            defer { Task { await pub.close() } }
            try await declareTestQueue(pub, "q.big")
            try await pub.publish(exchange: "", routingKey: "q.big", body: [1], properties: MessageProperties(messageId: "first"))
            let stallsBefore = pub.threadStalls

            try await broker.ctl(["set_vm_memory_high_watermark", "0.0000001"])
            // 1 MB messages from 32 publishers: far more than the kernel's socket buffers hold once the broker stops
            // reading the connection.
            let timeout = Duration.seconds(2)
            let load = LoadRecorder()
            let publishing = load.start(pub, queue: "q.big", workers: 32, bodySize: 1 << 20, timeout: timeout)
            #expect(await eventually(timeout: .seconds(30)) { pub.isBlocked }, "the broker never blocked the connection")
            try await Task.sleep(for: .seconds(4))
            // While blocked: the thread kept coming round its loop (it read connection.blocked, answered deadlines).
            let stallsBlocked = pub.threadStalls - stallsBefore
            try await broker.ctl(["set_vm_memory_high_watermark", "0.6"])
            let cleared = ContinuousClock.now
            #expect(await eventually(timeout: .seconds(60)) { load.confirmed(after: cleared) >= 20 }, "no recovery after the alarm")
            load.stop()
            await publishing.value

            #expect(stallsBlocked == 0, "the connection thread was stuck \(stallsBlocked) time(s) while the broker was not reading")
            let slowest = load.slowest
            #expect(slowest.map { $0.took <= timeout + .milliseconds(600) } ?? false,
                    "slowest answer \(slowest.map { "\($0.took) (\($0.error?.rawValue ?? "confirmed"))" } ?? "none"), deadline \(timeout)")
            #expect(load.failures()[.blocked, default: 0] > 0, "\(load.failures())")
            let present = Set(try await consumeAllIds(pub, "q.big"))
            let missing = load.confirmed.subtracting(present)
            #expect(missing.isEmpty, "\(missing.count) confirmed publishes are missing, e.g. \(missing.prefix(5))")
        }
    }
}

@Suite("TLS: amqps:// with a CA file")
struct TLSTests {
    @Test("amqps:// with the broker's CA connects, publishes and confirms; a wrong CA is refused")
    func amqps() async throws {
        try await TestBroker.withPrivate(tls: true) { broker in
            let vhost = try await broker.makeVhost("tls")
            let port = try #require(broker.tlsPort)
            let ca = try #require(broker.caFile)
            var logger = Logger(label: "test.tls")
            logger.logLevel = .critical
            let good = AMQPConnection(
                configuration: try AMQPConnectionConfiguration(url: "amqps://guest:guest@localhost:\(port)/\(vhost)", caFile: ca, connectionName: "tls"),
                logger: logger)
            good.start()
            try await good.waitUntilReady(timeout: .seconds(20))
            try await declareTestQueue(good, "q.tls")
            try await good.publish(exchange: "", routingKey: "q.tls", body: Array("secret payload".utf8))
            #expect(try await good.queueCounts("q.tls").messages == 1)
            await good.close()

            // A CA that did not sign the broker's certificate: never connects.
            let otherCA = NSTemporaryDirectory() + "other-ca-\(UUID().uuidString).pem"
            try await TestBroker.run("/usr/bin/openssl", [
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other",
                "-keyout", otherCA + ".key", "-out", otherCA,
            ])
            let bad = AMQPConnection(
                configuration: try AMQPConnectionConfiguration(url: "amqps://guest:guest@localhost:\(port)/\(vhost)", caFile: otherCA, connectionName: "tls-bad"),
                logger: logger)
            bad.start()
            await #expect(throws: AMQPError.self) { try await bad.waitUntilReady(timeout: .seconds(3)) }
            #expect(bad.currentStatus.lastError != nil)
            await bad.close()
        }
    }
}

/// Shared between the publishing workers of `restartMidStream`.
final class StreamState: Sendable {
    let confirmed = Mutex<Set<String>>([])
    let failed = Mutex<[String: AMQPError.Code]>([:])
    let confirmedAfterRestart = Atomic<Int>(0)
    let restarted = Atomic<Bool>(false)
    let stop = Atomic<Bool>(false)
}
