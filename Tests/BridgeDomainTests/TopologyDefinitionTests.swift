import BridgeDomain
import BridgeMessaging
import Crypto
import Foundation
import Messaging
import Testing

@Suite("Topology definition")
struct TopologyDefinitionTests {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    @Test("deploy/rabbitmq/definitions.json is the current export (run `bridgectl topology export` after a change)")
    func committedDefinitionsAreCurrent() throws {
        let committed = try Data(contentsOf: URL(fileURLWithPath: Self.root + "/deploy/rabbitmq/definitions.json"))
        let fresh = try BridgeDefinitions.export(settings: BridgeConfig.TopologySettings())
        #expect(committed == fresh)
    }

    @Test("every work queue is a quorum queue with a delivery limit and at-least-once dead-lettering into its DLQ; a copy queue expires and drops its oldest instead of refusing ingest")
    func workQueueArguments() {
        let t = BridgeTopology.topology(BridgeConfig.TopologySettings())
        for w in BridgeTopology.workQueues {
            let q = t.queues.first { $0.name == w.name }!
            #expect(q.arguments["x-queue-type"] == "quorum")
            #expect(q.arguments["x-delivery-limit"] == .int(10))
            if let maxAge = w.maxAge {
                #expect(q.arguments["x-overflow"] == "drop-head")
                #expect(q.arguments["x-message-ttl"] == .int(maxAge.wholeMilliseconds))
                #expect(q.arguments["x-dead-letter-exchange"] == nil, "expired copies are dropped, not dead-lettered")
            } else {
                #expect(q.arguments["x-dead-letter-strategy"] == "at-least-once")
                #expect(q.arguments["x-overflow"] == "reject-publish")
                #expect(q.arguments["x-dead-letter-exchange"] == .string(BridgeTopology.deadLetter))
            }
            #expect(t.queues.contains { $0.name == BridgeTopology.deadLetterQueue(of: w.name) })
            #expect(t.bindings.contains(.init(exchange: BridgeTopology.deadLetter, queue: w.name + ".dlq", routingKey: w.name)))
            for d in [Duration.seconds(5), .seconds(30), .seconds(300)] {
                let r = t.queues.first { $0.name == BridgeTopology.retryQueue(of: w.name, delay: d) }!
                #expect(r.arguments["x-dead-letter-exchange"] == .string(BridgeTopology.work))
                #expect(r.arguments["x-dead-letter-routing-key"] == .string(w.name))
            }
        }
        #expect(BridgeTopology.retryQueue(of: "q.orders", delay: .seconds(300)) == "q.orders.retry.5m")
        #expect(BridgeTopology.label(.milliseconds(250)) == "250ms")
    }

    @Test("password hashes follow rabbit_password_hashing_sha256")
    func passwordHash() throws {
        let h = BridgeDefinitions.passwordHash("secret", user: "u", deterministicSalt: true)
        let raw = try #require(Data(base64Encoded: h))
        #expect(raw.count == 36)
        let salt = Array(raw.prefix(4))
        #expect(Array(raw.dropFirst(4)) == Array(SHA256.hash(data: salt + Array("secret".utf8))))
    }

    @Test("broker URLs parse, vhosts decode, and passwords never appear in the redacted form")
    func brokerURL() throws {
        let c = try AMQPConnectionConfiguration(url: "amqp://ingest:s3cr%2Ft@rabbit:5673/bridge?heartbeat=4")
        #expect(c.host == "rabbit")
        #expect(c.port == 5673)
        #expect(c.vhost == "bridge")
        #expect(c.password == "s3cr/t")
        #expect(c.heartbeat == .seconds(4))
        #expect(!c.redactedURL.contains("s3cr"))
        #expect(try AMQPConnectionConfiguration(url: "amqp://h/%2F").vhost == "/")
        #expect(try AMQPConnectionConfiguration(url: "amqp://h").vhost == "/")
        #expect(throws: AMQPError.self) { try AMQPConnectionConfiguration(url: "amqps://h/v") }
        #expect(try AMQPConnectionConfiguration(url: "amqps://h/v", caFile: "/ca.pem").port == 5671)
    }
}
