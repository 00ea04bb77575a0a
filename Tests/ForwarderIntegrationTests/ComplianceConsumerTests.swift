import BridgeMessaging
import BridgeTestSupport
import Foundation
import Messaging
import Testing

/// q.compliance has a consumer: the order-forwarder process runs `ComplianceHandler` on the shared worker.
@Suite("q.compliance is consumed by the order-forwarder process")
struct ComplianceConsumerTests {
    @Test("each privacy webhook is recorded and acked; a body that is not a compliance payload is dead-lettered with its reason")
    func recordedAndDeadLettered() async throws {
        let h = try await ForwarderHarness.make("compliance")
        let f = try await h.startForwarder()
        let queue = BridgeTopology.compliance.name
        let redact = #"{"shop_id":954889,"shop_domain":"acme.myshopify.com","customer":{"id":191167,"email":"john@example.com"},"orders_to_redact":[299938,280263]}"#
        try await h.publish(Data(redact.utf8), topic: "customers/redact")
        let request = #"{"shop_id":954889,"shop_domain":"acme.myshopify.com","customer":{"id":191167},"orders_requested":[299938],"data_request":{"id":9999}}"#
        try await h.publish(Data(request.utf8), topic: "customers/data_request")
        try await h.publish(Data(#"{"shop_id":954889,"shop_domain":"acme.myshopify.com"}"#.utf8), topic: "shop/redact")
        try await h.publish(Data("not json".utf8), topic: "customers/redact")

        #expect(await eventually { f.compliance.settledTotal == 4 })
        #expect(f.compliance.settledCounts["recorded"] == 3)
        #expect(f.compliance.settledCounts["dead_lettered"] == 1)
        #expect(await eventually { (try? await h.publisher.queueCounts(queue).messages) == 0 })
        let dlq = BridgeTopology.deadLetterQueue(of: queue)
        #expect(await eventually { (try? await h.publisher.queueCounts(dlq).messages) == 1 })
        let dead = try #require(try await h.publisher.withChannel { try $0.get(dlq, autoAck: true) })
        #expect(dead.body == Array("not json".utf8))
        #expect(dead.properties.headers[EnvelopeHeader.errorClass] == "invalid_payload")
        #expect(dead.properties.headers[EnvelopeHeader.topic] == "customers/redact")
        await f.stop()
        await h.close()
    }
}
