import Foundation
import Logging
import Messaging
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Test support (used only by the test targets): a real RabbitMQ node for tests. `./dev test` starts a shared one and exports `BRIDGE_TEST_BROKER_DIR`; tests that
/// stop or kill the broker start a private node of their own (`TestBroker.startPrivate()`), so they never disturb
/// tests running in parallel. Every test works in its own vhost.
public struct TestBroker: Sendable {
    public let runDir: String
    public let amqpPort: Int
    public let mgmtPort: Int
    /// Set when the node was started with TLS (`startPrivate(tls: true)`).
    public let tlsPort: Int?
    public let caFile: String?

    public static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    public static var script: String { repositoryRoot + "/scripts/broker" }

    public struct Missing: Error, CustomStringConvertible {
        public var description: String {
            "no test broker: run the tests with ./dev test (it starts a private RabbitMQ and sets BRIDGE_TEST_BROKER_DIR)"
        }
    }

    /// The shared broker that `./dev test` started.
    public static func shared() throws -> TestBroker {
        guard let dir = ProcessInfo.processInfo.environment["BRIDGE_TEST_BROKER_DIR"] else { throw Missing() }
        return try TestBroker(runDir: dir)
    }

    public init(runDir: String) throws {
        self.runDir = runDir
        let text = try String(contentsOfFile: runDir + "/broker.env", encoding: .utf8)
        var values: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1)
            if parts.count == 2 { values[String(parts[0])] = String(parts[1]) }
        }
        guard let a = values["BROKER_AMQP_PORT"].flatMap(Int.init), let m = values["BROKER_MGMT_PORT"].flatMap(Int.init)
        else { throw Missing() }
        amqpPort = a
        mgmtPort = m
        tlsPort = values["BROKER_TLS_PORT"].flatMap(Int.init)
        caFile = values["BROKER_CA_FILE"]
    }

    /// Runs `body` with a brand-new private node (about 6-10 s to start), stopped and removed afterwards.
    public static func withPrivate<T>(tls: Bool = false, _ body: (TestBroker) async throws -> T) async throws -> T {
        let broker = try await startPrivate(tls: tls)
        do {
            let result = try await body(broker)
            await broker.destroy()
            return result
        } catch {
            await broker.destroy()
            throw error
        }
    }

    /// Private nodes live under BRIDGE_TEST_PRIVATE_DIR when set (./dev test stops whatever is left there).
    /// - Parameter consumerTimeout: the node's `consumer_timeout`, checked every second (`scripts/broker` sets
    ///   `channel_tick_interval`; RabbitMQ's default checks once a minute: a 10 s timeout closed the channel after 60 s).
    public static func startPrivate(tls: Bool = false, consumerTimeout: Duration? = nil) async throws -> TestBroker {
        let base = ProcessInfo.processInfo.environment["BRIDGE_TEST_PRIVATE_DIR"] ?? NSTemporaryDirectory()
        let dir = base + "/bridge-broker-\(UUID().uuidString.prefix(8))"
        try await run(
            script, ["start", dir] + (tls ? ["--tls"] : []) + (consumerTimeout.map { ["--consumer-timeout", "\($0.wholeMilliseconds)"] } ?? []))
        return try TestBroker(runDir: dir)
    }

    public func stop() async throws { try await Self.run(Self.script, ["stop", runDir]) }
    public func start() async throws { try await Self.run(Self.script, ["start", runDir]) }
    public func kill() async throws { try await Self.run(Self.script, ["kill", runDir]) }
    /// Freezes the broker process (SIGSTOP): connections stay open, nothing is answered; `thaw()` resumes it.
    public func freeze() throws { try signal(SIGSTOP) }
    public func thaw() throws { try signal(SIGCONT) }

    private func signal(_ sig: Int32) throws {
        let text = try String(contentsOfFile: runDir + "/rabbitmq.pid", encoding: .utf8)
        guard let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), Foundation.kill(pid, sig) == 0 else {
            throw CocoaError(.fileReadCorruptFile)
        }
    }
    /// A silent partition: every packet to and from this node's AMQP port is dropped (no RST, no FIN), so a client
    /// only notices by its own timeouts. Needs root and iptables (`TestDependency.iptables`); `heal()` undoes it.
    public func partition() async throws {
        for rule in partitionRules { _ = try await Self.run(TestDependency.iptablesPath, ["-w", "-I", "INPUT"] + rule) }
    }

    public func heal() async {
        for rule in partitionRules { _ = try? await Self.run(TestDependency.iptablesPath, ["-w", "-D", "INPUT"] + rule) }
    }

    private var partitionRules: [[String]] {
        [["-p", "tcp", "--dport", "\(amqpPort)", "-j", "DROP"], ["-p", "tcp", "--sport", "\(amqpPort)", "-j", "DROP"]]
    }

    public func ctl(_ args: [String]) async throws { try await Self.run(Self.script, ["ctl", runDir] + args) }

    public func destroy() async {
        try? await stop()
        try? FileManager.default.removeItem(atPath: runDir)
    }

    /// Runs a command to completion without blocking a cooperative thread; output goes to a file (a pipe would be
    /// held open by the broker it starts).
    @discardableResult
    public static func run(_ executable: String, _ args: [String]) async throws -> String {
        let logPath = NSTemporaryDirectory() + "bridge-cmd-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: logPath) }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        p.standardOutput = log
        p.standardError = log
        p.standardInput = FileHandle.nullDevice
        let status: Int32 = try await withCheckedThrowingContinuation { c in
            p.terminationHandler = { c.resume(returning: $0.terminationStatus) }
            do { try p.run() } catch { c.resume(throwing: error) }
        }
        try? log.close()
        let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        guard status == 0 else {
            throw NSError(domain: "TestBroker", code: Int(status), userInfo: [NSLocalizedDescriptionKey: "\(executable) \(args) failed: \(text)"])
        }
        return text
    }

    // MARK: vhosts and URLs

    public func url(vhost: String, user: String = "guest", password: String = "guest", query: String = "") -> String {
        let vh = vhost.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? vhost
        return "amqp://\(user):\(password)@127.0.0.1:\(amqpPort)/\(vh)\(query.isEmpty ? "" : "?" + query)"
    }

    /// Creates a fresh vhost with full permissions for guest.
    public func makeVhost(_ prefix: String = "t") async throws -> String {
        let name = "\(prefix)-\(UUID().uuidString.prefix(8).lowercased())"
        try await management("PUT", "/api/vhosts/\(name)", body: [:])
        try await management("PUT", "/api/permissions/\(name)/guest", body: ["configure": ".*", "write": ".*", "read": ".*"])
        return name
    }

    public func deleteVhost(_ name: String) async {
        _ = try? await management("DELETE", "/api/vhosts/\(name)", body: nil)
    }

    /// Calls the management HTTP API as guest; returns the decoded JSON (or nil for an empty body).
    @discardableResult
    public func management(_ method: String, _ path: String, body: Any?) async throws -> Any? {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(mgmtPort)\(path)")!)
        request.httpMethod = method
        request.setValue("Basic " + Data("guest:guest".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        if let body {
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
            request.httpBody = try JSONSerialization.data(withJSONObject: body)
        }
        request.timeoutInterval = 30
        let (data, response) = try await URLSession.shared.data(for: request)
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            throw NSError(domain: "management", code: status, userInfo: [NSLocalizedDescriptionKey: "\(method) \(path) -> \(status): \(String(decoding: data, as: UTF8.self))"])
        }
        return data.isEmpty ? nil : try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
    }

    /// A started connection to `vhost`, ready (or throws).
    public func connect(
        vhost: String, name: String = "test", user: String = "guest", password: String = "guest", query: String = "",
        onConnect: (@Sendable (AMQPChannelOperations) throws -> Void)? = nil
    ) async throws -> AMQPConnection {
        var config = try AMQPConnectionConfiguration(
            url: url(vhost: vhost, user: user, password: password, query: query), connectionName: name)
        config.reconnectMaxDelay = .milliseconds(500)
        var logger = Logger(label: "test.\(name)")
        logger.logLevel = .warning
        let c = AMQPConnection(configuration: config, logger: logger, onConnect: onConnect)
        c.start()
        // Generous: declaring the whole topology in a fresh vhost takes seconds when private brokers start beside it.
        try await c.waitUntilReady(timeout: .seconds(60))
        return c
    }
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes; returns whether it held.
public func eventually(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(50))
    }
    return try await condition()
}

/// A quorum queue declared in `vhost` for a test.
public func declareTestQueue(_ c: AMQPConnection, _ name: String, arguments: AMQPTable = ["x-queue-type": "quorum"]) async throws {
    _ = try await c.withChannel { try $0.declareQueue(name, arguments: arguments) }
}

/// Publishes `count` messages with `concurrency` in flight; returns per-message outcomes (id -> error or nil).
public func publishMany(
    _ c: AMQPConnection, count: Int, concurrency: Int, exchange: String = "", routingKey: String, bodySize: Int = 64,
    idPrefix: String = "m"
) async -> [String: AMQPError?] {
    let body = [UInt8](repeating: 0x61, count: bodySize)
    var results: [String: AMQPError?] = [:]
    await withTaskGroup(of: (String, AMQPError?).self) { group in
        var next = 0
        func add() {
            let id = "\(idPrefix)-\(next)"
            next += 1
            group.addTask {
                do {
                    try await c.publish(
                        exchange: exchange, routingKey: routingKey, body: body,
                        properties: MessageProperties(messageId: id))
                    return (id, nil)
                } catch let e as AMQPError {
                    return (id, e)
                } catch {
                    return (id, AMQPError(.closed, "\(error)"))
                }
            }
        }
        for _ in 0..<min(concurrency, count) { add() }
        for await (id, error) in group {
            results[id] = error
            if next < count { add() }
        }
    }
    return results
}

/// Drains `queue` with basic.get (auto-ack) and returns the message ids found, in order.
public func drainIds(_ c: AMQPConnection, _ queue: String) async throws -> [String] {
    try await c.withChannel { ops in
        var ids: [String] = []
        while let m = try ops.get(queue, autoAck: true) { ids.append(m.properties.messageId ?? "") }
        return ids
    }
}

/// Consumes everything in `queue` and returns the ids (acking each). A quorum queue recovering after a crash or
/// restart reports a growing count for a few seconds (longer on a loaded machine), so this drains in rounds: wait
/// until the count holds still for a second, consume that many, and repeat until the queue reads 0 twice in a row.
public func consumeAllIds(_ c: AMQPConnection, _ queue: String, timeout: Duration = .seconds(60)) async throws -> [String] {
    let deadline = ContinuousClock.now + timeout
    var ids: [String] = []
    var emptyReads = 0
    while emptyReads < 2, ContinuousClock.now < deadline {
        var total = try await c.queueCounts(queue).messages
        while true {
            try await Task.sleep(for: .seconds(1))
            let again = try await c.queueCounts(queue).messages
            if again == total { break }
            total = again
        }
        if total == 0 {
            emptyReads += 1
            continue
        }
        emptyReads = 0
        let consumer = try await c.consume(queue: queue, prefetch: 1000)
        var taken = 0
        for try await d in consumer.deliveries {
            ids.append(d.properties.messageId ?? "")
            try await d.ack()
            taken += 1
            if taken >= total || ContinuousClock.now > deadline { break }
        }
        consumer.cancel()
    }
    return ids
}

/// A value shared between concurrent test tasks.
public final class Shared<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>
    public init(_ value: Value) { storage = Mutex(value) }
    public func withLock<R>(_ body: (inout Value) -> R) -> R { storage.withLock { body(&$0) } }
    public var value: Value { storage.withLock { $0 } }
}
