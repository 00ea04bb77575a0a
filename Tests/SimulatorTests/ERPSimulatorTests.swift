import ERPSimulator
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite("erp-sim: the generic ERP contract, atomic upserts, injectable faults")
struct ERPSimulatorTests {
    func app() -> (Application<RouterResponder<BasicRequestContext>>, ERPStore) {
        let store = ERPStore(skus: ["SKU-1", "SKU-2"])
        let router = Router()
        ERPSimulatorRoutes(store: store, apiKey: "k").addRoutes(to: router)
        return (Application(router: router), store)
    }

    static let auth: HTTPFields = [.authorization: "Bearer k", .contentType: "application/json"]

    static func order(version: String, total: String = "19.98", sku: String = "SKU-1") -> ByteBuffer {
        ByteBuffer(string: """
            {"version":"\(version)","currency":"EUR","total":"\(total)","lines":[{"sku":"\(sku)","quantity":2,"unit_price":"9.99"}]}
            """)
    }

    static func object(_ r: TestResponse) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(r.body.readableBytesView)) as? [String: Any]) ?? [:]
    }

    @Test("50 concurrent identical upserts create exactly one order with one document number")
    func concurrentUpsertsStayUnique() async throws {
        let (app, store) = app()
        try await app.test(.router) { client in
            let numbers = try await withThrowingTaskGroup(of: String.self) { group -> Set<String> in
                for _ in 0..<50 {
                    group.addTask {
                        let r = try await client.execute(
                            uri: "/api/v1/sales-orders/acme-1001", method: .put, headers: Self.auth,
                            body: Self.order(version: "2026-11-27T10:00:00Z"))
                        #expect(r.status == .created || r.status == .ok)
                        return Self.object(r)["document_number"] as? String ?? ""
                    }
                }
                var all: Set<String> = []
                for try await n in group { all.insert(n) }
                return all
            }
            #expect(numbers.count == 1)
        }
        #expect(await store.orderCount == 1)
        #expect(await store.writeCounts(ref: "acme-1001").creates == 1)
    }

    @Test("versions: a newer one updates, an older or equal one is ignored, money stays exact")
    func versionAware() async throws {
        let (app, store) = app()
        try await app.test(.router) { client in
            let a = try await client.execute(uri: "/api/v1/sales-orders/r1", method: .put, headers: Self.auth, body: Self.order(version: "2026-11-27T10:00:00Z"))
            #expect(a.status == .created)
            let b = try await client.execute(uri: "/api/v1/sales-orders/r1", method: .put, headers: Self.auth, body: Self.order(version: "2026-11-27T11:00:00Z", total: "0.30"))
            #expect(Self.object(b)["result"] as? String == "updated")
            let c = try await client.execute(uri: "/api/v1/sales-orders/r1", method: .put, headers: Self.auth, body: Self.order(version: "2026-11-27T10:30:00Z", total: "99.00"))
            #expect(Self.object(c)["result"] as? String == "stale_ignored")
            let g = try await client.execute(uri: "/api/v1/sales-orders/r1", method: .get, headers: Self.auth)
            #expect(Self.object(g)["total"] as? String == "0.3")
            let missing = try await client.execute(uri: "/api/v1/sales-orders/nope", method: .get, headers: Self.auth)
            #expect(missing.status == .notFound)
        }
        #expect(await store.order(ref: "r1")?.total == Decimal(string: "0.30"))
    }

    @Test("unknown SKU is a 422 naming the SKU; a wrong API key is a 401")
    func validation() async throws {
        let (app, _) = app()
        try await app.test(.router) { client in
            let r = try await client.execute(uri: "/api/v1/sales-orders/r2", method: .put, headers: Self.auth, body: Self.order(version: "2026-11-27T10:00:00Z", sku: "NOPE"))
            #expect(r.status == .unprocessableContent)
            #expect(Self.object(r)["sku"] as? String == "NOPE")
            let bad = try await client.execute(uri: "/api/v1/sales-orders/r2", method: .get, headers: [.authorization: "Bearer wrong"])
            #expect(bad.status == .unauthorized)
        }
    }

    @Test("faults switch on and off at runtime: 503s, 429 with Retry-After, then normal again")
    func faults() async throws {
        let (app, _) = app()
        try await app.test(.router) { client in
            let set = try await client.execute(uri: "/_admin/faults", method: .put, body: ByteBuffer(string: #"{"error_rate":1.0,"error_status":503}"#))
            #expect(set.status == .ok)
            let down = try await client.execute(uri: "/api/v1/sales-orders/x", method: .get, headers: Self.auth)
            #expect(down.status == .serviceUnavailable)
            _ = try await client.execute(uri: "/_admin/faults", method: .put, body: ByteBuffer(string: #"{"rate_limited_retry_after":7}"#))
            let limited = try await client.execute(uri: "/api/v1/sales-orders/x", method: .get, headers: Self.auth)
            #expect(limited.status == .tooManyRequests)
            #expect(limited.headers[.retryAfter] == "7")
            _ = try await client.execute(uri: "/_admin/faults", method: .delete)
            let back = try await client.execute(uri: "/api/v1/sales-orders/x", method: .get, headers: Self.auth)
            #expect(back.status == .notFound)
        }
    }

    @Test("latency is a distribution (base, jitter, a slow tail) and a timeout fault hangs calls until the caller gives up")
    func latencyAndTimeouts() async throws {
        let (app, _) = app()
        try await app.test(.router) { client in
            _ = try await client.execute(uri: "/_admin/faults", method: .put, body: ByteBuffer(string: #"{"latency_ms":10,"latency_jitter_ms":40,"slow_rate":0.2,"slow_ms":150}"#))
            var took: [Duration] = []
            for _ in 0..<30 {
                let start = ContinuousClock.now
                _ = try await client.execute(uri: "/api/v1/sales-orders/x", method: .get, headers: Self.auth)
                took.append(ContinuousClock.now - start)
            }
            #expect(took.allSatisfy { $0 >= .milliseconds(10) }, "never faster than the base latency")
            #expect(took.max()! - took.min()! >= .milliseconds(20), "spread, not a constant")
            #expect(took.contains { $0 >= .milliseconds(160) }, "a slow tail (20% of calls +150 ms; none in 30 has p = 0.001)")

            _ = try await client.execute(uri: "/_admin/faults", method: .put, body: ByteBuffer(string: #"{"timeout_rate":1.0,"hang_ms":600}"#))
            let start = ContinuousClock.now
            let hung = try await client.execute(uri: "/api/v1/sales-orders/x", method: .get, headers: Self.auth)
            #expect(ContinuousClock.now - start >= .milliseconds(600), "the call hangs (a client with a shorter timeout gives up)")
            #expect(hung.status == .gatewayTimeout)
            _ = try await client.execute(uri: "/_admin/faults", method: .delete)
            let back = try await client.execute(uri: "/api/v1/sales-orders/x", method: .get, headers: Self.auth)
            #expect(back.status == .notFound)
        }
    }
}
