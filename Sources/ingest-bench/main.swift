import ArgumentParser
import BenchSupport
import CRawAMQPBench
import Foundation
import Ingest
import Sandbox
import Synchronization

/// Load generator for ingest: shopify-sim's signed orders/create webhooks (REST payloads from its seeded shop,
/// ~3 KB) with unique webhook ids, `concurrency` keep-alive connections, each on its own thread with blocking sockets
/// (a plain HTTP/1.1 client written here because no HTTP load tool can sign each request, and shopify-sim's own
/// deliverer waits for each answer like Shopify does, which measures less). Prints requests/s and latency
/// percentiles next to the raw rabbitmq-c confirmed-publish rate measured in the same run. Measures and prints; it
/// does not pass or fail on time.
@main
struct IngestBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest-bench", abstract: "Webhook throughput and latency through a running ingest.")

    @Option(help: "ingest HTTP port on 127.0.0.1.") var ingestPort: Int
    @Option(help: "Broker AMQP port (for the raw baseline).") var amqpPort: Int
    @Option(help: "Shop domain configured in ingest.") var shop = "bench.myshopify.com"
    @Option(help: "That shop's webhook secret.") var secret = "bench-secret-0123456789abcdef"
    @Option(help: "Requests to send (after a warm-up of 2,000).") var requests = 60_000
    @Option(help: "Concurrent connections.") var concurrency = 64
    @Option(help: "Most lines per order (shopify-sim's generator; 6 gives ~3 KB bodies).") var maxLines = 6
    @Option(help: "Distinct orders to cycle through.") var orders = 500
    @Option(help: "Also run paced (open-loop) at these rates, requests/s (comma-separated; empty for none).")
    var paced = "2000"

    func run() async throws {
        // Real order payloads from shopify-sim's generator, each signed once with the shop's secret.
        let store = ShopifyStore(domain: shop, seed: 2026, skus: 1000)
        var bodies: [[UInt8]] = []
        while bodies.count < orders {
            for event in await store.placeOrder(maxLines: maxLines) where event.topic == "orders/create" {
                bodies.append(Array(event.body))
            }
        }
        let signed = bodies.map { (body: $0, signature: WebhookSignature.sign($0, secret: secret)) }
        let meanSize = bodies.reduce(0) { $0 + $1.count } / bodies.count
        let runId = UUID().uuidString.prefix(8)

        print("ingest: signed orders/create webhooks from shopify-sim (\(bodies.count) orders, mean \(meanSize) bytes)")
        _ = try load(count: 2000, prefix: "warm-\(runId)", signed: signed, rate: 0)
        // Paced first, while the queue is still short (nothing consumes during the benchmark).
        for rate in paced.split(separator: ",").compactMap({ Int($0) }) where rate > 0 {
            let count = rate * 10
            let r = try load(count: count, prefix: "paced\(rate)-\(runId)", signed: signed, rate: rate)
            let s = r.latencies.sorted()
            func p(_ q: Double) -> Double { Double(s[min(s.count - 1, Int(Double(s.count) * q))]) / 1e6 }
            print(String(format: "  paced at %d/s for 10 s: achieved %.0f/s   p50 %.2f ms   p99 %.2f ms   max %.2f ms   statuses: %@",
                         rate, Double(count) / r.seconds, p(0.5), p(0.99), p(1.0),
                         r.statuses.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")))
        }
        let result = try load(count: requests, prefix: "run-\(runId)", signed: signed, rate: 0)
        let raw = bridge_raw_publish_bench("127.0.0.1", Int32(amqpPort), "guest", "guest", "/", "q.orders", 50_000, 64, Int32(meanSize))

        let sorted = result.latencies.sorted()
        func pct(_ p: Double) -> Double { Double(sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]) / 1e6 }
        print(String(format: "  closed loop, \(requests) requests over \(concurrency) connections: %.0f requests/s   p50 %.2f ms   p90 %.2f ms   p99 %.2f ms   max %.2f ms",
                     Double(requests) / result.seconds, pct(0.5), pct(0.9), pct(0.99), pct(1.0)))
        print("  statuses: \(result.statuses.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
        if raw > 0 {
            print(String(format: "raw rabbitmq-c confirmed publishes, 64 in flight, %d-byte bodies, same broker: %.0f msg/s", meanSize, 50_000 / raw))
        } else {
            print("raw baseline failed (code \(raw))")
        }
    }

    struct LoadResult {
        var seconds: Double
        var latencies: [UInt64]
        var statuses: [Int: Int]
    }

    /// Sends `count` requests over `concurrency` connections; closed-loop when `rate` is 0, otherwise each connection
    /// paces its sends so that together they offer `rate` requests/s (latency then excludes queueing in the client).
    func load(count: Int, prefix: String, signed: [(body: [UInt8], signature: String)], rate: Int) throws -> LoadResult {
        let next = Atomic<Int>(0)
        let results = Mutex<(latencies: [UInt64], statuses: [Int: Int])>(([], [:]))
        let done = DispatchGroup()
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<concurrency {
            done.enter()
            let thread = Thread { [ingestPort, shop, concurrency] in
                defer { done.leave() }
                let interval: UInt64 = rate > 0 ? UInt64(1e9 * Double(concurrency) / Double(rate)) : 0
                var nextSend = DispatchTime.now().uptimeNanoseconds + UInt64.random(in: 0...max(1, interval))
                var local: [UInt64] = []
                var statuses: [Int: Int] = [:]
                guard let conn = try? HTTPConnection(port: ingestPort) else { return }
                while true {
                    let n = next.add(1, ordering: .relaxed).oldValue
                    if n >= count { break }
                    let (body, signature) = signed[n % signed.count]
                    let head = "POST /webhooks/shopify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        + "X-Shopify-Topic: orders/create\r\nX-Shopify-Shop-Domain: \(shop)\r\nX-Shopify-API-Version: 2026-07\r\n"
                        + "X-Shopify-Hmac-Sha256: \(signature)\r\nX-Shopify-Webhook-Id: \(prefix)-\(n)\r\n"
                        + "X-Shopify-Triggered-At: 2026-11-27T10:00:00Z\r\nContent-Length: \(body.count)\r\n\r\n"
                    if interval > 0 {
                        let now = DispatchTime.now().uptimeNanoseconds
                        if nextSend > now { usleep(useconds_t((nextSend - now) / 1000)) }
                        nextSend += interval
                    }
                    let t0 = DispatchTime.now().uptimeNanoseconds
                    guard let status = try? conn.roundTrip(Array(head.utf8) + body) else { break }
                    local.append(DispatchTime.now().uptimeNanoseconds - t0)
                    statuses[status, default: 0] += 1
                }
                results.withLock {
                    $0.latencies += local
                    for (k, v) in statuses { $0.statuses[k, default: 0] += v }
                }
            }
            thread.start()
        }
        done.wait()
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let (latencies, statuses) = results.withLock { ($0.latencies, $0.statuses) }
        return LoadResult(seconds: seconds, latencies: latencies, statuses: statuses)
    }
}
