import ArgumentParser
import BenchSupport
import Foundation
import Ingest
import Sandbox
import Synchronization

/// End-to-end order benchmark: signed orders/create webhooks (generated sale traffic) -> ingest -> broker ->
/// order-forwarder(s) -> erp-sim. Prints orders/s from the first send to the last ERP commit, end-to-end latency
/// percentiles (send -> ERP commit, taken from erp-sim's creation times), and optionally the catch-up rate after an
/// ERP outage. The processes are started by `./dev bench`; this only drives and measures. It never fails on time.
@main
struct ForwarderBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forwarder-bench", abstract: "Orders per second and latency through ingest, forwarders and erp-sim.")

    @Option(help: "ingest HTTP port on 127.0.0.1.") var ingestPort: Int
    @Option(help: "erp-sim HTTP port on 127.0.0.1.") var erpPort: Int
    @Option(help: "Shop domain configured in ingest and the forwarders.") var shop = "bench.myshopify.com"
    @Option(help: "That shop's webhook secret.") var secret = "bench-secret-0123456789abcdef"
    @Option(help: "Orders to send.") var orders = 5000
    @Option(help: "Concurrent webhook connections.") var concurrency = 32
    @Option(help: "First order id (use a fresh range per run).") var firstOrderId: Int64 = 1_000_000_000_000
    @Option(help: "Label printed with the results (e.g. '2 forwarders').") var label = ""
    @Option(help: "ERP outage to simulate after the throughput run, seconds (0: none).") var outageSeconds = 0
    @Option(help: "Webhooks per second sent during the outage.") var outageRate = 100

    func run() throws {
        let generator = OrderGenerator(seed: UInt64(firstOrderId % 1_000_003), firstOrderId: firstOrderId)
        let fixtures = generator.orders(orders)
        let bodies = fixtures.map { Array($0.json()) }
        let before = try erpOrderCount()
        let start = Date()
        let sent = try send(fixtures, bodies: bodies, rate: 0)
        let allIn = try waitForERP(count: before + orders, timeout: 900)
        let seconds = allIn.timeIntervalSince(start)
        let latencies = try endToEnd(sent)
        print("\(label): \(orders) orders end to end in \(String(format: "%.1f", seconds)) s -> \(String(format: "%.0f", Double(orders) / seconds)) orders/s; "
            + "latency send -> ERP commit p50 \(pct(latencies, 0.5)) ms, p99 \(pct(latencies, 0.99)) ms, max \(pct(latencies, 1)) ms")

        guard outageSeconds > 0 else { return }
        let backlog = outageSeconds * outageRate
        let outageFixtures = OrderGenerator(seed: 99, firstOrderId: firstOrderId + Int64(orders) + 1).orders(backlog)
        _ = try HTTPConnection.json(port: erpPort, "PUT", "/_admin/faults", body: #"{"error_rate":1,"error_status":503}"#)
        let base = try erpOrderCount()
        _ = try send(outageFixtures, bodies: outageFixtures.map { Array($0.json()) }, rate: outageRate)
        _ = try HTTPConnection.json(port: erpPort, "PUT", "/_admin/faults", body: #"{"latency_ms":20}"#)
        let recovery = Date()
        let done = try waitForERP(count: base + backlog, timeout: 900)
        let catchUp = done.timeIntervalSince(recovery)
        print("\(label): ERP down \(outageSeconds) s while \(backlog) orders arrived; caught up in \(String(format: "%.1f", catchUp)) s -> \(String(format: "%.0f", Double(backlog) / catchUp)) orders/s catch-up")
    }

    func pct(_ sorted: [Int64], _ p: Double) -> Int64 {
        guard !sorted.isEmpty else { return -1 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    func erpOrderCount() throws -> Int {
        let (_, stats) = try HTTPConnection.json(port: erpPort, "GET", "/_inspect/stats")
        return (stats as? [String: Any])?["orders"] as? Int ?? 0
    }

    func waitForERP(count: Int, timeout: Double) throws -> Date {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try erpOrderCount() >= count { return Date() }
            usleep(50_000)
        }
        throw ValidationError("the ERP did not receive every order within \(Int(timeout)) s")
    }

    /// Sends each order once; returns send time (ms since epoch) per order id.
    func send(_ fixtures: [ShopifyOrderFixture], bodies: [[UInt8]], rate: Int) throws -> [Int64: Int64] {
        let next = Atomic<Int>(0)
        let sentAt = Mutex<[Int64: Int64]>([:])
        let failures = Atomic<Int>(0)
        let done = DispatchGroup()
        let started = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<concurrency {
            done.enter()
            let thread = Thread { [ingestPort, shop, secret] in
                defer { done.leave() }
                guard let conn = try? HTTPConnection(port: ingestPort) else { return }
                var local: [Int64: Int64] = [:]
                while true {
                    let n = next.add(1, ordering: .relaxed).oldValue
                    if n >= fixtures.count { break }
                    if rate > 0 {
                        // Open loop: order n leaves at n / rate seconds.
                        let due = started + UInt64(Double(n) / Double(rate) * 1e9)
                        let now = DispatchTime.now().uptimeNanoseconds
                        if due > now { usleep(useconds_t((due - now) / 1000)) }
                    }
                    let now = Date()
                    let ms = Int64((now.timeIntervalSince1970 * 1000).rounded())
                    let body = bodies[n]
                    let head = "POST /webhooks/shopify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        + "X-Shopify-Topic: orders/create\r\nX-Shopify-Shop-Domain: \(shop)\r\nX-Shopify-API-Version: 2026-07\r\n"
                        + "X-Shopify-Hmac-Sha256: \(WebhookSignature.sign(body, secret: secret))\r\n"
                        + "X-Shopify-Webhook-Id: bench-\(fixtures[n].id)\r\nX-Shopify-Event-Id: \(fixtures[n].id)\r\n"
                        + "X-Shopify-Triggered-At: \(now.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))\r\n"
                        + "Content-Length: \(body.count)\r\n\r\n"
                    var status = (try? conn.roundTrip(Array(head.utf8) + body)) ?? 0
                    while status == 503 {
                        // Shopify retries on non-2xx; so do we.
                        usleep(100_000)
                        status = (try? conn.roundTrip(Array(head.utf8) + body)) ?? 0
                    }
                    if status != 200 { failures.add(1, ordering: .relaxed) }
                    local[fixtures[n].id] = ms
                }
                sentAt.withLock { $0.merge(local) { a, _ in a } }
            }
            thread.start()
        }
        done.wait()
        let failed = failures.load(ordering: .relaxed)
        if failed > 0 { print("  \(failed) webhooks were not answered 200") }
        return sentAt.withLock { $0 }
    }

    /// Send -> ERP creation, per order, sorted.
    func endToEnd(_ sent: [Int64: Int64]) throws -> [Int64] {
        let (_, created) = try HTTPConnection.json(port: erpPort, "GET", "/_inspect/created")
        let byRef = created as? [String: Any] ?? [:]
        var out: [Int64] = []
        for (ref, value) in byRef {
            guard let idText = ref.split(separator: ".").last, let id = Int64(idText), let t0 = sent[id],
                let t1 = (value as? NSNumber)?.int64Value
            else { continue }
            out.append(t1 - t0)
        }
        return out.sorted()
    }
}
