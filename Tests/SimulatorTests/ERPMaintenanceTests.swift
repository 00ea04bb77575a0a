import AsyncHTTPClient
import BridgeTestSupport
import ERPSimulator
import Foundation
import Glibc
import Logging
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

#if canImport(Glibc)
#endif

@Suite("erp-sim maintenance window: connection refused, then back with its state")
struct ERPMaintenanceTests {
    /// Whether a TCP connection to 127.0.0.1:port is accepted right now.
    static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }

    /// An erp-sim (API key "k") holding one order, on a port the system chose.
    static func startSimulator(withOrder ref: String) async throws -> (ERPStore, Int, Task<Void, any Error>) {
        let store = ERPStore(skus: ["SKU-00001"])
        _ = await store.upsert(ref: ref, version: "2026-11-27T10:00:00.000Z", status: "open", currency: "EUR", total: 1, lines: [])
        var logger = Logger(label: "erp-sim")
        logger.logLevel = .critical
        let (port, task) = try await ERPSimulatorServer.start(routes: ERPSimulatorRoutes(store: store, apiKey: "k"), logger: logger)
        return (store, port, task)
    }

    @Test("PUT /_admin/maintenance closes the port for the window; afterwards the same orders are there")
    func maintenanceWindow() async throws {
        let (_, port, task) = try await Self.startSimulator(withOrder: "shopify.acme.1")
        defer { task.cancel() }
        #expect(Self.canConnect(port))

        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/_admin/maintenance")!)
        request.httpMethod = "PUT"
        request.httpBody = Data(#"{"seconds": 2}"#.utf8)
        let (_, response) = try await URLSession.shared.data(for: request)
        #expect((response as? HTTPURLResponse)?.statusCode == 202)
        let start = ContinuousClock.now
        #expect(await eventually(timeout: .seconds(2)) { !Self.canConnect(port) }, "connections are refused during the window")
        #expect(await eventually(timeout: .seconds(30)) { Self.canConnect(port) }, "the port opens again after the window")
        #expect(ContinuousClock.now - start >= .milliseconds(1500))

        var get = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/api/v1/sales-orders/shopify.acme.1")!)
        get.setValue("Bearer k", forHTTPHeaderField: "Authorization")
        let (_, again) = try await URLSession.shared.data(for: get)
        #expect((again as? HTTPURLResponse)?.statusCode == 200, "the state survived the window")
    }

    @Test("clients hammering through three windows: calls fail during each, succeed between, the simulator survives")
    func hammeredWindows() async throws {
        let (store, port, task) = try await Self.startSimulator(withOrder: "shopify.acme.2")
        #expect(Self.canConnect(port))
        // async-http-client, not URLSession: Foundation's URLSession on Linux crashed the test process in
        // libdispatch (a socket's dispatch source finalized twice) under this churn of refused connections.
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
        func get() async -> Bool {
            var r = HTTPClientRequest(url: "http://127.0.0.1:\(port)/api/v1/sales-orders/shopify.acme.2")
            r.headers.add(name: "Authorization", value: "Bearer k")
            guard let response = try? await http.execute(r, timeout: .seconds(5)) else { return false }
            _ = try? await response.body.collect(upTo: 1 << 20)
            return response.status.code == 200
        }
        let counts = Shared<(ok: Int, failed: Int)>((0, 0))
        let stop = Shared(false)
        let clients = Task {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        while !stop.withLock({ $0 }) {
                            let ok = await get()
                            counts.withLock { ok ? ($0.ok += 1) : ($0.failed += 1) }
                            // Refused calls fail in microseconds: pace them, the machine is shared with other tests.
                            try? await Task.sleep(for: .milliseconds(5))
                        }
                    }
                }
            }
        }
        for _ in 0..<3 {
            try await Task.sleep(for: .milliseconds(400))
            await store.requestMaintenance(.milliseconds(500))
            try await Task.sleep(for: .milliseconds(900))
        }
        try await Task.sleep(for: .milliseconds(800))
        stop.withLock { $0 = true }
        await clients.value
        let (ok, failed) = counts.withLock { $0 }
        #expect(failed > 0, "calls fail while the port is closed")
        #expect(ok > 0, "and succeed between windows (\(ok) ok, \(failed) failed: a refused call fails fast, so they count more)")
        #expect(await eventually(timeout: .seconds(30)) { await get() }, "served again after the last window")
        try await http.shutdown()
        task.cancel()
        _ = await task.result
    }
}
