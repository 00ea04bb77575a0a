import BridgeMessaging
import BridgeTestSupport
import Foundation
import Ingest
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// ingest is the one process on the internet: its public listener's limits, against the real executable.
@Suite("ingest's public edge: slow clients are cut, connections capped, webhooks only", .serialized)
struct IngestEdgeTests {
    static let secret = "edge-secret-0123456789abcdef"

    func post(port: Int, id: String) async throws -> Int {
        let body = Data("{\"id\":820982911946154508,\"total_price\":\"10.00\"}".utf8)
        var request = ProcessTests.webhookRequest(port: port, body: body, signature: WebhookSignature.sign(body, secret: Self.secret), webhookId: id)
        request.timeoutInterval = 20
        let (_, response) = try await URLSession.shared.data(for: request)
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    static func metric(_ text: String, _ prefix: String) -> Double {
        text.split(separator: "\n").filter { $0.hasPrefix(prefix) }.compactMap { $0.split(separator: " ").last.flatMap { Double($0) } }.reduce(0, +)
    }

    @Test("a client trickling its headers, one trickling its body and an idle kept-alive one are each cut within their timeout, and counted; a signed webhook sent meanwhile is enqueued")
    func slowClientsAreCut() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("edge-slow")
        defer { Task { await broker.deleteVhost(vhost) } }
        let (p, port, ops) = try await ProcessTests().launchIngest(
            broker: broker, vhost: vhost, secret: Self.secret,
            environment: ["INGEST_HEADER_TIMEOUT": "1s", "INGEST_BODY_TIMEOUT": "1s", "INGEST_IDLE_TIMEOUT": "1s"])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }

        let headers = RawClient(port: port)
        #expect(headers.send("POST /webhooks/shopify HTTP/1.1\r\nHost: ingest\r\n"))
        let body = RawClient(port: port)
        #expect(body.send("POST /webhooks/shopify HTTP/1.1\r\nHost: ingest\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"id\":"))
        let idle = RawClient(port: port)
        #expect(idle.send("GET / HTTP/1.1\r\nHost: ingest\r\n\r\n"))
        #expect(idle.read(wait: .seconds(5))?.hasPrefix("HTTP/1.1 404") == true, "anything but a webhook is 404 on the public port")

        // Meanwhile Shopify's delivery goes through.
        #expect(try await post(port: port, id: "edge-valid-1") == 200)

        let limit = Duration.seconds(8)
        let lasted = [
            headers.trickleUntilClosed("X-Slow: a\r\n", limit: limit), body.trickleUntilClosed("1", limit: limit),
            idle.trickleUntilClosed(nil, limit: limit),
        ]
        #expect(lasted.allSatisfy { $0 != nil }, "every slow connection is closed by the server: \(lasted)")
        let c = try await broker.connect(vhost: vhost)
        #expect(try await c.queueCounts(BridgeTopology.orders.name).messages == 1)
        await c.close()
        let metrics = await TestProcesses.get("http://127.0.0.1:\(ops)/metrics").1
        for phase in ["header", "body", "idle"] {
            #expect(Self.metric(metrics, "http_connections_timed_out_total{phase=\"\(phase)\"") >= 1, "\(phase) timeout counted")
        }
        #expect(p.isRunning)
    }

    @Test("past ingest.max_connections the server stops accepting without crashing, counts it, and serves the next webhook once a slot frees")
    func connectionCap() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("edge-cap")
        defer { Task { await broker.deleteVhost(vhost) } }
        let (p, port, ops) = try await ProcessTests().launchIngest(
            broker: broker, vhost: vhost, secret: Self.secret, environment: ["INGEST_MAX_CONNECTIONS": "3", "INGEST_HEADER_TIMEOUT": "2s"])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        // Three clients that say nothing hold every slot (until the header timeout cuts them).
        let silent = (0..<3).map { _ in RawClient(port: port) }
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await post(port: port, id: "edge-cap-1") == 200, "served once a silent client was cut")
        let metrics = await TestProcesses.get("http://127.0.0.1:\(ops)/metrics").1
        #expect(Self.metric(metrics, "http_connection_limit_reached_total") >= 1, "the cap was reached and counted")
        #expect(Self.metric(metrics, "http_connections_timed_out_total{phase=\"header\"") >= 1)
        #expect(p.isRunning)
        _ = silent
    }
}
