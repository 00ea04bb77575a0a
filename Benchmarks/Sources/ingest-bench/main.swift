import ArgumentParser
import CHTTPLoad
import CRawAMQPBench
import Foundation
import Ingest
import ShopifySimulator
import Synchronization

/// Load generator for ingest: shopify-sim's signed orders/create webhooks (REST payloads from its seeded shop,
/// ~3 KB) with unique webhook ids over `concurrency` keep-alive connections, driven by a single-threaded epoll
/// generator in C (`CHTTPLoad`: no available load tool signs each request, and shopify-sim's own deliverer waits for
/// each answer like Shopify does, which measures less; one thread keeps the generator's CPU use small on a machine
/// it shares with ingest and the broker). Prints requests/s and latency percentiles next to the raw rabbitmq-c
/// confirmed-publish rate measured in the same run. Only 2xx answers count as done (a 503 is not throughput): rates
/// and percentiles are over the 2xx answers, the sample size and the status histogram are printed, and any other
/// status fails the run (exit 1) after printing. Measures and prints; it does not pass or fail on time.
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
        var failures = 0
        // Paced first, while the queue is still short (nothing consumes during the benchmark).
        for rate in paced.split(separator: ",").compactMap({ Int($0) }) where rate > 0 {
            let count = rate * 10
            let r = try load(count: count, prefix: "paced\(rate)-\(runId)", signed: signed, rate: rate)
            print(String(format: "  paced at %d/s for 10 s: achieved %.0f/s (2xx)   p50 %.2f ms   p99 %.2f ms   max %.2f ms   n=%d   statuses: %@",
                         rate, Double(r.succeeded) / r.seconds, r.percentile(0.5), r.percentile(0.99), r.percentile(1.0), r.succeeded,
                         r.statusLine))
            failures += r.failed
        }
        let result = try load(count: requests, prefix: "run-\(runId)", signed: signed, rate: 0)
        failures += result.failed
        let raw = bridge_raw_publish_bench("127.0.0.1", Int32(amqpPort), "guest", "guest", "/", "q.orders", 50_000, 64, Int32(meanSize))

        print(String(format: "  closed loop, \(requests) requests over \(concurrency) connections: %.0f requests/s (2xx)   p50 %.2f ms   p90 %.2f ms   p99 %.2f ms   max %.2f ms   n=%d",
                     Double(result.succeeded) / result.seconds, result.percentile(0.5), result.percentile(0.9), result.percentile(0.99),
                     result.percentile(1.0), result.succeeded))
        print("  statuses: \(result.statusLine)")
        if raw > 0 {
            print(String(format: "raw rabbitmq-c confirmed publishes, 64 in flight, %d-byte bodies, same broker: %.0f msg/s", meanSize, 50_000 / raw))
        } else {
            print("raw baseline failed (code \(raw))")
        }
        if failures > 0 {
            print("FAILED: \(failures) requests were not answered 2xx (see the status histograms above)")
            throw ExitCode.failure
        }
    }

    struct LoadResult {
        var seconds: Double
        var latencies: [UInt64]
        var statuses: [Int32]

        /// Latencies of the 2xx answers only, sorted.
        var succeededLatencies: [UInt64] { zip(latencies, statuses).filter { (200..<300).contains($0.1) }.map(\.0).sorted() }
        var succeeded: Int { statuses.filter { (200..<300).contains($0) }.count }
        var failed: Int { statuses.count - succeeded }
        /// Milliseconds at quantile `q` of the 2xx answers.
        func percentile(_ q: Double) -> Double {
            let s = succeededLatencies
            guard !s.isEmpty else { return .nan }
            return Double(s[min(s.count - 1, Int(Double(s.count) * q))]) / 1e6
        }
        /// `202=59990 503=10 0=0` (0: no answer).
        var statusLine: String {
            var byStatus: [Int32: Int] = [:]
            for s in statuses { byStatus[s, default: 0] += 1 }
            return byStatus.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
    }

    /// Sends `count` requests over `concurrency` connections: closed loop when `rate` is 0, otherwise offered at
    /// `rate` requests/s on a fixed schedule (latency from the scheduled time).
    func load(count: Int, prefix: String, signed: [(body: [UInt8], signature: String)], rate: Int) throws -> LoadResult {
        var latencies = [UInt64](repeating: 0, count: count)
        var statuses = [Int32](repeating: 0, count: count)
        var seconds = 0.0
        // Stable C pointers to the bodies and signatures for the whole run.
        let bodyPointers = signed.map { entry -> UnsafeMutablePointer<UInt8> in
            let p = UnsafeMutablePointer<UInt8>.allocate(capacity: entry.body.count)
            p.initialize(from: entry.body, count: entry.body.count)
            return p
        }
        let signaturePointers = signed.map { strdup($0.signature)! }
        defer {
            bodyPointers.forEach { $0.deallocate() }
            signaturePointers.forEach { free($0) }
        }
        let lengths = signed.map(\.body.count)
        let rc = bodyPointers.map { UnsafePointer<UInt8>($0) as UnsafePointer<UInt8>? }.withUnsafeBufferPointer { bodies in
            signaturePointers.map { UnsafePointer<CChar>($0) as UnsafePointer<CChar>? }.withUnsafeBufferPointer { sigs in
                bridge_http_load(
                    Int32(ingestPort), Int32(concurrency), shop, "orders/create", prefix, bodies.baseAddress, lengths,
                    sigs.baseAddress, signed.count, count, Double(rate), &latencies, &statuses, &seconds)
            }
        }
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: -rc) ?? .EIO) }
        return LoadResult(seconds: seconds, latencies: latencies, statuses: statuses)
    }
}
