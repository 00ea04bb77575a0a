import Foundation
import Hummingbird
import Logging
import Prometheus

/// A named readiness check (`broker`, `topology`, ...).
public struct ReadinessCheck: Sendable {
    public let name: String
    public let check: @Sendable () -> Bool
    public init(_ name: String, _ check: @escaping @Sendable () -> Bool) {
        self.name = name
        self.check = check
    }
}

/// The endpoints every process serves: `/healthz` (alive), `/readyz` (every readiness check passes), `/metrics`
/// (Prometheus text format).
public enum OpsRoutes {
    public static func add(
        to router: Router<BasicRequestContext>,
        process: String,
        readiness: [ReadinessCheck],
        registry: PrometheusCollectorRegistry
    ) {
        router.get("/healthz") { _, _ -> Response in
            json(.ok, ["status": "alive", "process": process])
        }
        router.get("/readyz") { _, _ -> Response in
            var checks: [String: Bool] = [:]
            for c in readiness { checks[c.name] = c.check() }
            let ready = checks.values.allSatisfy { $0 }
            return json(ready ? .ok : .serviceUnavailable, ["ready": ready, "process": process, "checks": checks])
        }
        router.get("/metrics") { _, _ -> Response in
            var buffer = ByteBuffer()
            buffer.writeBytes(registry.emitToBuffer())
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: buffer))
        }
    }

    public static func json(_ status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
