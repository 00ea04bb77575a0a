import BridgeDomain
import BridgeMessaging
import BridgeTestSupport
import Foundation
import Messaging
import Testing

@Suite("Topology: one definition, exported and declared identically")
struct TopologyTests {
    /// Queues, exchanges and bindings of a vhost as the broker reports them, normalised for comparison.
    struct Snapshot: Equatable, CustomStringConvertible {
        var queues: [String: String]
        var exchanges: Set<String>
        var bindings: Set<String>
        var description: String { "queues=\(queues.keys.sorted()) exchanges=\(exchanges.sorted()) bindings=\(bindings.count)" }
    }

    func snapshot(_ broker: TestBroker, vhost: String) async throws -> Snapshot {
        let defs = try #require(try await broker.management("GET", "/api/definitions/\(vhost)", body: nil) as? [String: Any])
        func canonical(_ v: Any) -> String {
            let data = try! JSONSerialization.data(withJSONObject: v, options: [.sortedKeys, .fragmentsAllowed])
            return String(decoding: data, as: UTF8.self)
        }
        var queues: [String: String] = [:]
        for q in defs["queues"] as? [[String: Any]] ?? [] {
            queues[q["name"] as! String] = canonical(["durable": q["durable"]!, "arguments": q["arguments"]!])
        }
        let exchanges = Set((defs["exchanges"] as? [[String: Any]] ?? []).map { e in
            "\(e["name"]!)|\(e["type"]!)|\(e["durable"]!)|\(e["internal"]!)|\(canonical(e["arguments"]!))"
        })
        let bindings = Set((defs["bindings"] as? [[String: Any]] ?? []).map { b in
            "\(b["source"]!)|\(b["destination"]!)|\(b["destination_type"]!)|\(b["routing_key"]!)"
        })
        return Snapshot(queues: queues, exchanges: exchanges, bindings: bindings)
    }

    @Test("every topic in the catalogue lands, through the broker's own routing, in the queue the catalogue names (or q.unrouted)")
    func catalogueRouting() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("catalogue")
        defer { Task { await broker.deleteVhost(vhost) } }
        let topology = BridgeTopology.topology(.init())
        let c = try await broker.connect(vhost: vhost, name: "catalogue", onConnect: { try topology.declare(using: $0) })
        defer { Task { await c.close() } }
        #expect(Set(TopicCatalogue.all.map(\.name)).count == TopicCatalogue.all.count, "a topic is listed twice")
        for topic in TopicCatalogue.all {
            let exchange = topic.source == .shopify ? BridgeTopology.shopifyInbound : BridgeTopology.erpInbound
            try await c.publish(
                exchange: exchange, routingKey: topic.routingKey, body: [1], properties: MessageProperties(messageId: topic.name))
        }
        var expected: [String: Set<String>] = [:]
        for topic in TopicCatalogue.all {
            expected[topic.queue?.name ?? BridgeTopology.unroutedQueue, default: []].insert(topic.name)
            // Queues that take a copy of a topic another queue owns (q.inventory-orders: new and cancelled orders).
            for copy in BridgeTopology.workQueues where copy.copies.contains(topic.routingKey) {
                expected[copy.name, default: []].insert(topic.name)
            }
        }
        for queue in BridgeTopology.workQueues.map(\.name) + [BridgeTopology.unroutedQueue] {
            let got = try await drainIds(c, queue)
            #expect(got.count == Set(got).count, "\(queue) got a topic twice: \(got.sorted())")
            #expect(Set(got) == expected[queue] ?? [], "\(queue)")
        }
    }

    @Test("definitions.json imported into a fresh vhost equals what the code declares, and re-declaring is accepted")
    func importedEqualsDeclared() async throws {
        let broker = try TestBroker.shared()
        let settings = BridgeConfig.TopologySettings()
        let imported = "defs-\(UUID().uuidString.prefix(8).lowercased())"
        let data = try BridgeDefinitions.export(settings: settings, vhost: imported)
        try await broker.management("POST", "/api/definitions", body: try JSONSerialization.jsonObject(with: data))
        try await broker.management("PUT", "/api/permissions/\(imported)/guest", body: ["configure": ".*", "write": ".*", "read": ".*"])
        let declared = try await broker.makeVhost("declared")
        defer { Task { await broker.deleteVhost(imported); await broker.deleteVhost(declared) } }

        let topology = BridgeTopology.topology(settings)
        let c = try await broker.connect(vhost: declared, onConnect: { try topology.declare(using: $0) })
        await c.close()
        let fromFile = try await snapshot(broker, vhost: imported)
        let fromCode = try await snapshot(broker, vhost: declared)
        #expect(fromFile.queues.count == topology.queues.count)
        #expect(fromFile.bindings.count == topology.bindings.count)
        #expect(fromFile == fromCode)

        // Declaring the code's topology over the imported one is accepted (no 406: same arguments).
        let again = try await broker.connect(vhost: imported, onConnect: { try topology.declare(using: $0) })
        #expect(again.isReady)
        await again.close()
    }

    @Test("every process user has least privilege: allowed paths work, others are refused with 403")
    func leastPrivilege() async throws {
        let broker = try TestBroker.shared()
        let vhost = "perm-\(UUID().uuidString.prefix(8).lowercased())"
        let data = try BridgeDefinitions.export(settings: BridgeConfig.TopologySettings(), vhost: vhost)
        try await broker.management("POST", "/api/definitions", body: try JSONSerialization.jsonObject(with: data))
        defer { Task { await broker.deleteVhost(vhost) } }
        let topology = BridgeTopology.topology(BridgeConfig.TopologySettings())
        func connect(_ user: String) async throws -> AMQPConnection {
            try await broker.connect(
                vhost: vhost, name: user, user: user, password: BridgeDefinitions.developmentPassword(for: user),
                onConnect: { try topology.verify(using: $0) })
        }
        func isRefused(_ error: any Error) -> Bool { (error as? AMQPError)?.replyCode == 403 }

        let ingest = try await connect("ingest")
        try await ingest.publish(exchange: BridgeTopology.shopifyInbound, routingKey: "orders.create", body: [1])
        try await ingest.publish(exchange: BridgeTopology.erpInbound, routingKey: "inventory.changed", body: [1])
        await #expect { _ = try await ingest.consume(queue: BridgeTopology.orders.name) } throws: { isRefused($0) }
        await #expect {
            try await ingest.publish(exchange: BridgeTopology.deadLetter, routingKey: BridgeTopology.orders.name, body: [1])
        } throws: { isRefused($0) }
        // A refused publish kills the publish channel; the connection starts over by itself.
        try await ingest.waitUntilReady()
        await #expect { try await ingest.withChannel { try $0.declareQueue("q.rogue", arguments: ["x-queue-type": "quorum"]) } } throws: { isRefused($0) }
        await ingest.close()

        let forwarder = try await connect("order-forwarder")
        let consumer = try await forwarder.consume(queue: BridgeTopology.orders.name)
        consumer.cancel()
        try await forwarder.publish(exchange: BridgeTopology.deadLetter, routingKey: BridgeTopology.orders.name, body: [1])
        await #expect {
            try await forwarder.publish(exchange: BridgeTopology.shopifyInbound, routingKey: "orders.create", body: [1])
        } throws: { isRefused($0) }
        try await forwarder.waitUntilReady()
        await #expect { _ = try await forwarder.consume(queue: BridgeTopology.erpInventory.name) } throws: { isRefused($0) }
        await forwarder.close()

        let syncer = try await connect("inventory-syncer")
        let c2 = try await syncer.consume(queue: BridgeTopology.erpInventory.name)
        c2.cancel()
        await #expect { _ = try await syncer.consume(queue: BridgeTopology.orders.name) } throws: { isRefused($0) }
        await syncer.close()

        let reconciler = try await connect("reconciler")
        try await reconciler.publish(exchange: BridgeTopology.work, routingKey: BridgeTopology.orders.name, body: [1])
        await #expect {
            try await reconciler.publish(exchange: BridgeTopology.shopifyInbound, routingKey: "orders.create", body: [1])
        } throws: { isRefused($0) }
        await reconciler.close()

        let alerter = try await connect("alerter")
        let c3 = try await alerter.consume(queue: BridgeTopology.alerter.name)
        c3.cancel()
        await #expect { _ = try await alerter.consume(queue: BridgeTopology.orders.name) } throws: { isRefused($0) }
        await alerter.close()
    }
}
