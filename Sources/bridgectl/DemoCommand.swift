import ArgumentParser
import AsyncHTTPClient
import BridgeDomain
import BridgeMessaging
import BridgeRuntime
import Foundation
import Messaging

#if canImport(Glibc)
import Glibc
#endif

/// `bridgectl demo` (`./dev demo`, compose's `demo` service): a scripted sale against the running stack and its two
/// simulators, narrated as it goes, then checked from the simulators' own records (never from the bridge's counters):
/// every order placed in Shopify is in the ERP once, in its latest state. Exits 1 when one is missing, wrong or
/// duplicated. For the sandbox only: it withdraws an item from the ERP, takes the ERP down and injects faults.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run the self-checking demo against the running stack and its simulators (sandbox only).",
        discussion: """
            A sale with duplicated and reordered webhooks; the ERP down for --outage seconds mid-sale; orders with an \
            item the ERP does not know dead-lettered with their reason; the item added and the dead letters replayed; \
            --extra-forwarders more forwarders started mid-sale. Then a table from both simulators: orders placed, in \
            the ERP in their latest state, missing, wrong, duplicated, dead letters by reason, replayed, latency.
            """)

    @OptionGroup var options: ProcessOptions
    @Option(help: "shopify-sim's address.") var shopifySim = "http://127.0.0.1:8091"
    @Option(help: "erp-sim's address.") var erpSim = "http://127.0.0.1:8090"
    @Option(help: "erp-sim's API key.") var erpKey = "demo-erp-key"
    @Option(help: "Orders in the sale.") var orders = 600
    @Option(help: "Orders per second.") var rate = 20.0
    @Option(help: "Seconds the ERP is down mid-sale (0: no outage).") var outage = 20.0
    @Option(help: "The item the ERP does not know during the sale (added back before the replay).") var withdrawnSku = "SKU-00005"
    @Option(help: "Forwarders started mid-sale beside the running ones (child processes of this command).") var extraForwarders = 2
    @Option(help: "The order-forwarder executable (default: beside bridgectl).") var forwarderBinary: String?
    @Option(name: .customLong("forwarder-env"), help: "KEY=VALUE for the extra forwarders' environment (repeatable).")
    var forwarderEnvironment: [String] = []
    @Option(help: "Directory for the extra forwarders' logs (default: discarded).") var logDirectory: String?
    @Option(help: "The RabbitMQ console, for the closing pointers.") var console = "http://127.0.0.1:15672"
    @Option(name: .customLong("metrics"), help: "A metrics URL for the closing pointers (repeatable).") var metricsURLs: [String] = []
    @Option(help: "Seconds to wait for the bridge to catch up after the sale and after the replay.") var settleTimeout = 300.0

    func validate() throws {
        guard orders > 0, rate > 0 else { throw ValidationError("--orders and --rate must be positive") }
        for e in forwarderEnvironment where !e.contains("=") { throw ValidationError("--forwarder-env takes KEY=VALUE, not \(e)") }
    }

    func run() async throws {
        let config = try await loadConfig(options)
        guard let shop = config.shops.first?.id else { throw ValidationError("the configuration names no shop") }
        let sims = DemoSimulators(shopify: shopifySim, erp: erpSim, erpKey: erpKey)
        let say = narrator()
        let ordersQueue = try DeadLetters.workQueue(named: "orders")
        var verdict: DemoVerdict?
        try await withConnection(config) { broker in
            verdict = try await scenario(shop: shop, sims: sims, broker: broker, ordersQueue: ordersQueue, say: say)
        }
        guard let verdict else { throw ExitCode.failure }
        FileHandle.standardOutput.write(Data(verdict.table(console: console, metrics: metricsURLs, dlq: BridgeTopology.deadLetterQueue(of: ordersQueue)).utf8))
        if !verdict.passed { throw ExitCode.failure }
    }

    func scenario(
        shop: String, sims: DemoSimulators, broker: AMQPConnection, ordersQueue: String, say: @escaping @Sendable (String) -> Void
    ) async throws -> DemoVerdict {
        // 0. What is there already: the check covers the orders this run places.
        guard try await sims.get(sims.shopify, "/_sim/traffic")["running"] as? Bool == false else {
            throw ValidationError("shopify-sim is already running a sale; wait for it to finish")
        }
        let existing = Set(try await sims.shopifyOrders().map(\.id))
        let lettersBefore = try await DeadLetters.list(broker, workQueue: ordersQueue, limit: 0).total
        let duplicatedBefore = try await sims.get(sims.shopify, "/_sim/deliveries?limit=0")["duplicated"] as? Int ?? 0
        let duration = Double(orders) / rate
        say("a sale of \(orders) orders at \(Int(rate))/s (~\(Int(duration)) s) in shopify-sim, through ingest, RabbitMQ and the forwarders into erp-sim")
        if lettersBefore > 0 { say("note: \(BridgeTopology.deadLetterQueue(of: ordersQueue)) already holds \(lettersBefore) dead letters; they are replayed with this run's") }

        // 1. Faults: Shopify delivers some webhooks twice and out of order; the ERP does not know one item.
        try await sims.send(sims.shopify, "PUT", "/_sim/faults", #"{"duplicate_rate": 0.1, "max_delay_ms": 400}"#)
        say("shopify-sim delivers 10% of webhooks twice and delays each by up to 400 ms (they overtake each other)")
        try await sims.send(sims.erp, "DELETE", "/_admin/skus", #"["\#(withdrawnSku)"]"#)
        say("erp-sim does not know \(withdrawnSku): orders with it will be refused (422 unknown_sku) and dead-lettered")

        // 2. The sale, with the ERP outage and the extra forwarders on a timeline.
        try await sims.send(
            sims.shopify, "POST", "/_sim/traffic", #"{"orders": \#(orders), "orders_per_second": \#(rate), "custom_lines": false, "seed": \#(UInt64.random(in: 1...1_000_000))}"#)
        let saleStarted = ContinuousClock.now
        var children: [Process] = []
        defer { Self.stop(children, say: say) }
        if outage > 0 {
            try await Task.sleep(until: saleStarted + .seconds(duration * 0.2))
            try await sims.send(sims.erp, "PUT", "/_admin/maintenance", #"{"seconds": \#(outage)}"#)
            say("the ERP goes down for \(Int(outage)) s (erp-sim refuses connections): webhooks keep being accepted and queued")
        }
        if extraForwarders > 0 {
            try await Task.sleep(until: saleStarted + .seconds(duration * 0.5))
            children = try startForwarders(say: say)
        }
        var lastProgress = ContinuousClock.now
        while try await sims.get(sims.shopify, "/_sim/traffic")["running"] as? Bool == true {
            if ContinuousClock.now - lastProgress > .seconds(5) {
                lastProgress = ContinuousClock.now
                let placed = try await sims.shopifyOrders().count - existing.count
                let inERP = try await sims.get(sims.erp, "/_inspect/stats")["orders"] as? Int ?? 0
                say("sale running: \(placed) orders placed in Shopify; the ERP holds \(inERP) sales orders")
            }
            try await Task.sleep(for: .milliseconds(500))
        }
        try await sims.send(sims.shopify, "DELETE", "/_sim/faults", nil)
        say("the sale is over; waiting for the bridge to catch up (the ERP's outage is absorbed by retries)")

        // 3. Caught up: every order is in the ERP in its latest state or dead-lettered.
        var check = try await settle(shop: shop, sims: sims, broker: broker, ordersQueue: ordersQueue, existing: existing, untilClean: false, say: say)
        let letters = try await DeadLetters.list(broker, workQueue: ordersQueue, limit: 10_000).letters
        var reasons: [String: Int] = [:]
        for l in letters { reasons["\(l.errorClass ?? l.brokerReason ?? "-")", default: 0] += 1 }
        say("dead letters: " + (reasons.isEmpty ? "none" : reasons.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")))
        if let example = letters.first(where: { $0.errorMessage?.contains(withdrawnSku) == true }) ?? letters.first {
            say("  e.g. order \(example.orderId ?? "-"): \(example.errorClass ?? "-"): \(example.errorMessage ?? "-")  (bridgectl dlq list --queue orders)")
        }

        // 4. The fix, then the replay.
        try await sims.send(sims.erp, "PUT", "/_admin/skus", #"["\#(withdrawnSku)"]"#)
        say("the fix: \(withdrawnSku) is added to the ERP")
        let replayed = try await DeadLetters.replay(broker, workQueue: ordersQueue)
        say("replayed \(replayed) dead letters to \(ordersQueue) (bridgectl dlq replay --queue orders --all)")
        check = try await settle(shop: shop, sims: sims, broker: broker, ordersQueue: ordersQueue, existing: existing, untilClean: true, say: say)
        let left = try await DeadLetters.list(broker, workQueue: ordersQueue, limit: 0).total
        Self.stop(children, say: say)
        children = []
        let deliveries = try await sims.get(sims.shopify, "/_sim/deliveries?limit=0")
        return DemoVerdict(
            check: check, deadLetters: reasons, replayed: replayed, lettersLeft: left,
            duplicatedDeliveries: (deliveries["duplicated"] as? Int ?? 0) - duplicatedBefore)
    }

    /// Polls both simulators until every order of this run is in the ERP in its latest state (`untilClean`) or is
    /// either that or dead-lettered, or until `settleTimeout`; a line of progress every 5 s.
    func settle(
        shop: String, sims: DemoSimulators, broker: AMQPConnection, ordersQueue: String, existing: Set<Int64>, untilClean: Bool,
        say: @Sendable (String) -> Void
    ) async throws -> DemoCheck {
        let deadline = ContinuousClock.now + .seconds(settleTimeout)
        var lastProgress = ContinuousClock.now
        while true {
            let check = try await DemoCheck.compute(shop: shop, sims: sims, existing: existing)
            let dead: Set<Int64>
            if untilClean {
                dead = []
            } else {
                let letters = try await DeadLetters.list(broker, workQueue: ordersQueue, limit: 10_000).letters
                dead = Set(letters.compactMap { $0.orderId.flatMap { Int64($0) } })
            }
            let unsettled = check.notRight.subtracting(dead)
            if unsettled.isEmpty || ContinuousClock.now >= deadline {
                if !unsettled.isEmpty {
                    say("gave up waiting after \(Int(settleTimeout)) s: \(unsettled.count) orders not in the ERP as Shopify has them")
                    return check
                }
                say("settled: \(check.right) of \(check.placed) orders in the ERP in their latest state" + (dead.isEmpty ? "" : ", \(check.notRight.intersection(dead).count) dead-lettered"))
                return check
            }
            if ContinuousClock.now - lastProgress > .seconds(5) {
                lastProgress = ContinuousClock.now
                say("catching up: \(check.right) of \(check.placed) orders in the ERP in their latest state" + (dead.isEmpty ? "" : ", \(dead.count) dead-lettered"))
            }
            try await Task.sleep(for: .seconds(1))
        }
    }

    /// Starts the extra forwarders: this command's environment, `--forwarder-env` on top, their ops port chosen by the
    /// system unless given.
    func startForwarders(say: (String) -> Void) throws -> [Process] {
        let binary = try forwarderBinary ?? {
            let me = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
            return URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("order-forwarder").path
        }()
        guard FileManager.default.isExecutableFile(atPath: binary) else { throw ValidationError("no order-forwarder at \(binary) (--forwarder-binary)") }
        var environment = ProcessInfo.processInfo.environment
        environment["HTTP_PORT"] = "0"
        for e in forwarderEnvironment {
            let parts = e.split(separator: "=", maxSplits: 1)
            environment[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
        var started: [Process] = []
        for i in 1...extraForwarders {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: binary)
            p.environment = environment
            if let logDirectory {
                let path = logDirectory + "/order-forwarder.demo-\(i).log"
                _ = FileManager.default.createFile(atPath: path, contents: nil)
                let handle = FileHandle(forWritingAtPath: path)
                p.standardOutput = handle
                p.standardError = handle
            } else {
                p.standardOutput = FileHandle.nullDevice
                p.standardError = FileHandle.nullDevice
            }
            try p.run()
            started.append(p)
        }
        say("\(extraForwarders) more forwarders start mid-sale (pids \(started.map { "\($0.processIdentifier)" }.joined(separator: ", "))): they share the queue and the ledger")
        return started
    }

    static func stop(_ processes: [Process], say: (String) -> Void) {
        guard !processes.isEmpty else { return }
        for p in processes where p.isRunning { p.terminate() }
        for p in processes { p.waitUntilExit() }
        say("the \(processes.count) extra forwarders stopped")
    }
}

/// Progress lines with the time since the demo started.
func narrator() -> @Sendable (String) -> Void {
    let started = ContinuousClock.now
    return { line in
        // Unbuffered, so progress shows while the demo runs (stdout may be a pipe).
        FileHandle.standardOutput.write(Data((String(format: "[%6.1f s] ", (ContinuousClock.now - started).seconds) + line + "\n").utf8))
    }
}

/// The two simulators' HTTP APIs, as the demo uses them.
struct DemoSimulators: Sendable {
    let shopify: String
    let erp: String
    let erpKey: String

    struct ShopOrder: Sendable {
        var id: Int64
        var total: Decimal
        var cancelled: Bool
        var refunded: Decimal
        var createdMs: Int64
    }

    struct ERPOrder: Sendable {
        var total: Decimal
        var status: String
        var refunded: Decimal
    }

    func request(_ base: String, _ method: String, _ path: String, _ body: String?) async throws -> (UInt, Data) {
        var r = HTTPClientRequest(url: base.trimmingCharacters(in: CharacterSet(charactersIn: "/")) + path)
        switch method {
        case "PUT": r.method = .PUT
        case "POST": r.method = .POST
        case "DELETE": r.method = .DELETE
        default: r.method = .GET
        }
        r.headers.add(name: "Authorization", value: "Bearer \(erpKey)")
        if let body {
            r.headers.add(name: "Content-Type", value: "application/json")
            r.body = .bytes(Array(body.utf8))
        }
        do {
            let response = try await HTTPClient.shared.execute(r, timeout: .seconds(30))
            return (response.status.code, Data(buffer: try await response.body.collect(upTo: 256 << 20)))
        } catch {
            throw ValidationError("could not reach \(base) (\(error)); is the stack up? (./dev up)")
        }
    }

    func send(_ base: String, _ method: String, _ path: String, _ body: String?) async throws {
        let (status, data) = try await request(base, method, path, body)
        guard (200..<300).contains(status) else {
            throw ValidationError("\(method) \(base)\(path): \(status) \(String(decoding: data.prefix(300), as: UTF8.self))")
        }
    }

    func get(_ base: String, _ path: String) async throws -> [String: Any] {
        let (status, data) = try await request(base, "GET", path, nil)
        guard status == 200, let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw ValidationError("GET \(base)\(path): \(status)")
        }
        return object
    }

    func shopifyOrders() async throws -> [ShopOrder] {
        (try await get(shopify, "/_sim/orders")["orders"] as? [[String: Any]] ?? []).compactMap { o in
            guard let id = (o["id"] as? NSNumber)?.int64Value else { return nil }
            return ShopOrder(
                id: id, total: Decimal(string: o["total_price"] as? String ?? "") ?? -1, cancelled: o["cancelled"] as? Bool ?? false,
                refunded: Decimal(string: o["refunded"] as? String ?? "") ?? 0, createdMs: (o["created_ms"] as? NSNumber)?.int64Value ?? 0)
        }
    }

    /// Every sales order document the ERP holds, by external reference (several when duplicated).
    func erpOrders() async throws -> [String: [ERPOrder]] {
        var out: [String: [ERPOrder]] = [:]
        for o in try await get(erp, "/api/v1/sales-orders")["orders"] as? [[String: Any]] ?? [] {
            guard let ref = o["external_ref"] as? String else { continue }
            out[ref, default: []].append(
                ERPOrder(
                    total: Decimal(string: o["total"] as? String ?? "") ?? -1, status: o["status"] as? String ?? "",
                    refunded: Decimal(string: o["refunded_total"] as? String ?? "") ?? 0))
        }
        return out
    }
}

/// Both simulators compared, order by order, for the orders this run placed.
struct DemoCheck: Sendable {
    var placed = 0
    var right = 0
    var missing = 0
    var wrong = 0
    var duplicated = 0
    var notRight: Set<Int64> = []
    var latenciesMs: [Int64] = []

    static func compute(shop: String, sims: DemoSimulators, existing: Set<Int64>) async throws -> DemoCheck {
        let shopOrders = try await sims.shopifyOrders().filter { !existing.contains($0.id) }
        let erp = try await sims.erpOrders()
        let created = try await sims.get(sims.erp, "/_inspect/created")
        var c = DemoCheck()
        c.placed = shopOrders.count
        for o in shopOrders {
            let ref = ERPReferenceFormat.salesOrder(shop: shop, orderId: o.id)
            guard let documents = erp[ref], let d = documents.first else {
                c.missing += 1
                c.notRight.insert(o.id)
                continue
            }
            if documents.count > 1 { c.duplicated += 1 }
            if let ms = (created[ref] as? NSNumber)?.int64Value { c.latenciesMs.append(ms - o.createdMs) }
            if d.total == o.total, (d.status == "cancelled") == o.cancelled, d.refunded == o.refunded, documents.count == 1 {
                c.right += 1
            } else {
                c.wrong += documents.count > 1 ? 0 : 1
                c.notRight.insert(o.id)
            }
        }
        return c
    }
}

/// The ERP's external reference for a Shopify order, as the forwarder writes it (`ERP.ERPReference`); repeated here so
/// the demo's check does not lean on the bridge's own code.
enum ERPReferenceFormat {
    static func salesOrder(shop: String, orderId: Int64) -> String { "shopify.\(shop).\(orderId)" }
}

struct DemoVerdict {
    var check: DemoCheck
    var deadLetters: [String: Int]
    var replayed: Int
    var lettersLeft: Int
    var duplicatedDeliveries: Int

    var passed: Bool { check.placed > 0 && check.missing == 0 && check.wrong == 0 && check.duplicated == 0 }

    func table(console: String, metrics: [String], dlq: String) -> String {
        func percentile(_ p: Double) -> String {
            let s = check.latenciesMs.sorted()
            guard !s.isEmpty else { return "-" }
            return String(format: "%.1f s", Double(s[min(s.count - 1, Int(Double(s.count - 1) * p))]) / 1000)
        }
        let rows: [(String, String)] = [
            ("orders placed in Shopify", "\(check.placed)"),
            ("in the ERP in their latest state (total, status, refunds)", "\(check.right)"),
            ("missing from the ERP", "\(check.missing)"),
            ("wrong in the ERP", "\(check.wrong)"),
            ("duplicated in the ERP (more than one document)", "\(check.duplicated)"),
            ("webhooks Shopify delivered twice (injected)", "\(duplicatedDeliveries)"),
            (
                "dead letters after the sale, by reason",
                deadLetters.isEmpty ? "0" : deadLetters.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            ),
            ("replayed after the fix", "\(replayed)"),
            ("dead letters left in \(dlq)", "\(lettersLeft)"),
            ("latency, order placed -> ERP document, p50 / p99", "\(percentile(0.5)) / \(percentile(0.99))"),
        ]
        let width = rows.map(\.0.count).max() ?? 0
        var out = "\nverified from the simulators (shopify-sim's orders against erp-sim's documents), not from the bridge's counters:\n"
        for (k, v) in rows { out += "  " + k.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + v + "\n" }
        out += "\nwhere to look:\n"
        out += "  RabbitMQ console  \(console)/#/queues/bridge/\(dlq)  (the dead letters, with x-error-class and x-error-message)\n"
        for m in metrics { out += "  metrics           \(m)\n" }
        out += passed ? "\nPASSED: every order placed in Shopify is in the ERP once, in its latest state\n" : "\nFAILED: orders are missing, wrong or duplicated in the ERP\n"
        return out
    }
}
