import AsyncHTTPClient
import BridgeTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `--state`: the simulators keep their state across a restart like the systems they stand for (issue 15), so a demo's
/// ERP and the forwarder's ledger never disagree after `./dev down` / `./dev up`. Against the real executables.
@Suite("simulator state: erp-sim and shopify-sim keep orders, stock and sequences across a restart", .serialized)
struct SimulatorStateTests {
    /// A simulator process on a free port, ready to answer.
    struct Sim {
        let process: Process
        let port: Int
        let output: Pipe

        static func start(_ name: String, _ arguments: [String], ready path: String) async throws -> Sim {
            let port = TestProcesses.freePort()
            let p = Process()
            p.executableURL = URL(fileURLWithPath: try TestProcesses.binary(name))
            p.arguments = arguments + ["--port", "\(port)"]
            let out = Pipe()
            p.standardOutput = out
            p.standardError = out
            try p.run()
            let sim = Sim(process: p, port: port, output: out)
            for _ in 0..<150 {
                if (try? await sim.get(path)) != nil { return sim }
                if !p.isRunning { break }
                try await Task.sleep(for: .milliseconds(100))
            }
            p.terminate()
            throw TestFailure("\(name) did not answer \(path) on \(port)")
        }

        func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

        func request(_ method: HTTPMethod, _ path: String, _ body: String? = nil) async throws -> (Int, [String: Any]) {
            var r = HTTPClientRequest(url: url(path))
            r.method = method
            r.headers.add(name: "Authorization", value: "Bearer state-key")
            r.headers.add(name: "Content-Type", value: "application/json")
            if let body { r.body = .bytes(ByteBuffer(string: body)) }
            let response = try await HTTPClient.shared.execute(r, timeout: .seconds(10))
            let data = try await response.body.collect(upTo: 1 << 24)
            let object = (try? JSONSerialization.jsonObject(with: Data(data.readableBytesView))) as? [String: Any] ?? [:]
            return (Int(response.status.code), object)
        }

        @discardableResult
        func get(_ path: String) async throws -> [String: Any] {
            let (status, object) = try await request(.GET, path)
            guard status == 200 else { throw TestFailure("GET \(path): \(status)") }
            return object
        }

        /// SIGTERM (a stop) or SIGKILL (a crash), and the process gone.
        func stop(signal: Int32 = SIGTERM) async throws {
            kill(process.processIdentifier, signal)
            for _ in 0..<100 where process.isRunning { try await Task.sleep(for: .milliseconds(100)) }
            #expect(!process.isRunning)
        }
    }

    struct TestFailure: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    static func order(_ sku: String = "SKU-00001") -> String {
        #"{"version":"2026-12-05T10:00:00Z","currency":"EUR","total":"19.98","lines":[{"sku":"\#(sku)","quantity":2,"unit_price":"9.99"}]}"#
    }

    static func directory() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("sim-state-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test("erp-sim: sales orders, document numbers, withdrawn items and the stock change feed survive a stop and a crash")
    func erpSimKeepsItsState() async throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["--api-key", "state-key", "--skus", "20", "--state", dir + "/erp.json"]
        var sim = try await Sim.start("erp-sim", args, ready: "/_inspect/stats")
        let (created, first) = try await sim.request(.PUT, "/api/v1/sales-orders/acme-1", Self.order())
        #expect(created == 201)
        let number = first["document_number"] as? String
        #expect(try await sim.request(.DELETE, "/_admin/skus", #"["SKU-00002"]"#).0 == 200)
        #expect(try await sim.request(.PUT, "/_admin/stock", #"{"sku":"SKU-00003","warehouse":"WH-2","available":7}"#).0 == 200)
        let cursor = try await sim.get("/api/v1/inventory/changes?cursor=0")["cursor"] as? String
        try await sim.stop()

        sim = try await Sim.start("erp-sim", args, ready: "/_inspect/stats")
        let (found, again) = try await sim.request(.GET, "/api/v1/sales-orders/acme-1")
        #expect(found == 200)
        #expect(again["document_number"] as? String == number)
        // The change feed is where it was: a consumer's cursor still points at the same change.
        let changes = try await sim.get("/api/v1/inventory/changes?cursor=0")
        #expect(changes["cursor"] as? String == cursor)
        #expect((changes["changes"] as? [[String: Any]])?.last?["available"] as? Int == 7)
        // The next document gets the next number: a restarted ERP does not hand out SO-000001 twice.
        let (_, second) = try await sim.request(.PUT, "/api/v1/sales-orders/acme-2", Self.order())
        #expect(second["document_number"] as? String != number)
        #expect(try await sim.request(.PUT, "/api/v1/sales-orders/acme-3", Self.order("SKU-00002")).0 == 422)

        // A crash (SIGKILL) after the state was saved (every half second) loses nothing either.
        #expect(try await sim.request(.PUT, "/api/v1/sales-orders/acme-4", Self.order()).0 == 201)
        try await Task.sleep(for: .milliseconds(1500))
        try await sim.stop(signal: SIGKILL)
        sim = try await Sim.start("erp-sim", args, ready: "/_inspect/stats")
        #expect(try await sim.request(.GET, "/api/v1/sales-orders/acme-4").0 == 200)
        #expect(try await sim.get("/_inspect/stats")["orders"] as? Int == 3)
        try await sim.stop()
    }

    @Test("shopify-sim: orders and id sequences survive a restart; a state file it cannot read stops it, naming the file")
    func shopifySimKeepsItsState() async throws {
        let dir = try Self.directory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["--skus", "50", "--state", dir + "/shop.json"]
        var sim = try await Sim.start("shopify-sim", args, ready: "/_sim/traffic")
        #expect(try await sim.request(.POST, "/_sim/traffic", #"{"orders":5,"orders_per_second":50}"#).0 == 202)
        func orders() async throws -> [Int64] {
            ((try await sim.get("/_sim/orders")["orders"] as? [[String: Any]]) ?? []).compactMap { ($0["id"] as? NSNumber)?.int64Value }
        }
        var placed: [Int64] = []
        for _ in 0..<50 where placed.count < 5 {
            placed = try await orders()
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(placed.count == 5)
        let stock = try await sim.get("/_sim/stock")["levels"] as? [[String: Any]]
        try await sim.stop()

        sim = try await Sim.start("shopify-sim", args, ready: "/_sim/traffic")
        #expect(try await orders() == placed)
        #expect(try await sim.get("/_sim/stock")["levels"] as? NSArray == stock.map { $0 as NSArray })
        #expect(try await sim.request(.POST, "/_sim/traffic", #"{"orders":2,"orders_per_second":50}"#).0 == 202)
        var after: [Int64] = []
        for _ in 0..<50 where after.count < 7 {
            after = try await orders()
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(after.count == 7)
        #expect(Set(after).count == 7)
        try await sim.stop()

        try Data("{ not json".utf8).write(to: URL(fileURLWithPath: dir + "/shop.json"))
        let (status, output) = try TestProcesses.run("shopify-sim", args + ["--port", "\(TestProcesses.freePort())"])
        #expect(status != 0)
        #expect(output.contains(dir + "/shop.json"))
    }
}
