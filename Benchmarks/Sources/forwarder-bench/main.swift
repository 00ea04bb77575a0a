import ArgumentParser
import BenchSupport
import Foundation

/// End-to-end order benchmark: a shopify-sim sale (signed orders/create and orders/paid webhooks, plus
/// inventory_levels/update, delivered the way Shopify delivers them) -> ingest -> broker -> order-forwarder(s) ->
/// erp-sim. Prints orders/s from the start of the sale to the last ERP commit, end-to-end latency percentiles
/// (order placed in shopify-sim -> sales order created in erp-sim), and optionally the catch-up rate after an ERP
/// outage. `./dev bench` starts the processes; this only drives and measures. It never fails on time; it fails
/// (exit 1) when a placed order never reached the ERP, and prints the sample size with every percentile.
@main
struct ForwarderBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "forwarder-bench", abstract: "Orders per second and latency: shopify-sim -> ingest -> forwarders -> erp-sim.")

    @Option(help: "shopify-sim HTTP port on 127.0.0.1 (its webhooks go to ingest).") var shopifyPort: Int
    @Option(help: "erp-sim HTTP port on 127.0.0.1.") var erpPort: Int
    @Option(help: "Orders in the sale.") var orders = 5000
    @Option(help: "Webhook deliveries in flight in shopify-sim.") var concurrency = 32
    @Option(help: "Label printed with the results (e.g. '2 forwarders').") var label = ""
    @Option(help: "ERP outage to simulate after the throughput run, seconds (0: none).") var outageSeconds = 0
    @Option(help: "Orders per second placed during the outage.") var outageRate = 100
    @Option(help: "erp-sim's per-call latency to restore after the outage, milliseconds.") var erpLatencyMs = 20

    func run() throws {
        let before = try erpOrderCount()
        let callsBefore = try erpStat("calls")
        let known = try simOrders()
        let start = Date()
        try startSale(orders: orders, rate: 0)
        let allIn = try waitForERP(count: before + orders, timeout: 900)
        let seconds = allIn.timeIntervalSince(start)
        let (latencies, missing) = try endToEnd(excluding: known)
        print("\(label): \(orders) orders end to end in \(String(format: "%.1f", seconds)) s -> \(String(format: "%.0f", Double(orders) / seconds)) orders/s; "
            + "latency order placed -> ERP commit p50 \(pct(latencies, 0.5)) ms, p99 \(pct(latencies, 0.99)) ms, max \(pct(latencies, 1)) ms (n=\(latencies.count)); "
            + "ERP calls by then \(try erpStat("calls") - callsBefore)")
        guard missing.isEmpty, latencies.count == orders else {
            print("FAILED: \(missing.count) of \(orders) placed orders are not in the ERP (first: \(missing.prefix(5)))")
            throw ExitCode.failure
        }

        guard outageSeconds > 0 else { return }
        try waitForSaleToFinish()
        let backlog = outageSeconds * outageRate
        _ = try HTTPConnection.json(port: erpPort, "PUT", "/_admin/faults", body: #"{"error_rate":1,"error_status":503}"#)
        let base = try erpOrderCount()
        try startSale(orders: backlog, rate: outageRate)
        try waitForSaleToFinish()
        _ = try HTTPConnection.json(port: erpPort, "PUT", "/_admin/faults", body: #"{"latency_ms":\#(erpLatencyMs)}"#)
        let recovery = Date()
        let done = try waitForERP(count: base + backlog, timeout: 900)
        let catchUp = done.timeIntervalSince(recovery)
        print("\(label): ERP down \(outageSeconds) s while \(backlog) orders arrived; caught up in \(String(format: "%.1f", catchUp)) s -> \(String(format: "%.0f", Double(backlog) / catchUp)) orders/s catch-up")
    }

    func startSale(orders: Int, rate: Int) throws {
        // Only creates (and their orders/paid): every order is one new ERP order, so the count measures progress.
        let profile = #"{"orders":\#(orders),"orders_per_second":\#(rate),"update_share":0,"cancel_share":0,"refund_share":0,"concurrency":\#(concurrency),"seed":\#(Int.random(in: 1...1_000_000))}"#
        let (status, _) = try HTTPConnection.json(port: shopifyPort, "POST", "/_sim/traffic", body: profile)
        guard status == 202 else { throw ValidationError("shopify-sim refused the sale (\(status))") }
    }

    func waitForSaleToFinish() throws {
        while true {
            let (_, state) = try HTTPConnection.json(port: shopifyPort, "GET", "/_sim/traffic")
            if (state as? [String: Any])?["running"] as? Bool == false { return }
            usleep(100_000)
        }
    }

    func pct(_ sorted: [Int64], _ p: Double) -> Int64 {
        guard !sorted.isEmpty else { return -1 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    func erpOrderCount() throws -> Int { try erpStat("orders") }

    func erpStat(_ name: String) throws -> Int {
        let (_, stats) = try HTTPConnection.json(port: erpPort, "GET", "/_inspect/stats")
        return (stats as? [String: Any])?[name] as? Int ?? 0
    }

    func waitForERP(count: Int, timeout: Double) throws -> Date {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try erpOrderCount() >= count { return Date() }
            usleep(50_000)
        }
        throw ValidationError("the ERP did not receive every order within \(Int(timeout)) s")
    }

    /// Order id -> placed time (ms) in shopify-sim.
    func simOrders() throws -> [Int64: Int64] {
        let (_, body) = try HTTPConnection.json(port: shopifyPort, "GET", "/_sim/orders")
        var out: [Int64: Int64] = [:]
        for o in (body as? [String: Any])?["orders"] as? [[String: Any]] ?? [] {
            if let id = (o["id"] as? NSNumber)?.int64Value, let t = (o["created_ms"] as? NSNumber)?.int64Value { out[id] = t }
        }
        return out
    }

    /// Placed in shopify-sim -> created in erp-sim, per order of this run, sorted; and the orders of this run the ERP
    /// does not have.
    func endToEnd(excluding known: [Int64: Int64]) throws -> ([Int64], [Int64]) {
        let placed = try simOrders().filter { known[$0.key] == nil }
        let (_, created) = try HTTPConnection.json(port: erpPort, "GET", "/_inspect/created")
        var out: [Int64] = []
        var reached: Set<Int64> = []
        for (ref, value) in created as? [String: Any] ?? [:] {
            guard let idText = ref.split(separator: ".").last, let id = Int64(idText), let t0 = placed[id],
                let t1 = (value as? NSNumber)?.int64Value
            else { continue }
            reached.insert(id)
            out.append(t1 - t0)
        }
        return (out.sorted(), placed.keys.filter { !reached.contains($0) }.sorted())
    }
}
