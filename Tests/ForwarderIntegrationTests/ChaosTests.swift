import BridgeDomain
import BridgeMessaging
import BridgeTestSupport
import ERPSimulator
import Foundation
import Logging
import Messaging
import OrderForwarding
import Reconciliation
import ShopifySimulator
import Testing

/// `./dev chaos`: the order path under the faults a sale brings, one cell per fault and ERP profile, counted only
/// from the simulators' own records: shopify-sim's orders (what Shopify holds) against erp-sim's documents and credit
/// notes, and the dead-letter queue as the broker holds it. Never from the bridge's counters.
///
/// Runs only when `BRIDGE_CHAOS` is set (`quick`: 100 orders a cell, the ERP down 15 s; `full`: 500 orders, the ERP
/// down 60 s, i.e. ten minutes at a time scale of 1/10; past consumer_timeout: 30 s against 6 s quick, 60 s against
/// 12 s full). Each cell prints one `chaos |` row; `./dev chaos` gathers
/// them into the table. A cell fails (and the command exits 1) when any order is lost, any sales order or credit note
/// is duplicated, or any ERP order is stale (older than Shopify's).
@Suite(
    "chaos: the order path under a sale's faults, counted from the simulators", .serialized,
    .enabled(if: ChaosMode.current != nil, "set BRIDGE_CHAOS=quick|full (./dev chaos)"))
struct ChaosTests {
    static var mode: ChaosMode? { ChaosMode.current }
    static var orders: Int { mode == .full ? 500 : 100 }
    static var outage: Duration { mode == .full ? .seconds(60) : .seconds(15) }
    static var consumerTimeout: Duration { mode == .full ? .seconds(12) : .seconds(6) }

    enum Cell: String, CaseIterable, CustomTestStringConvertible, Sendable {
        /// 20% of webhooks delivered twice, up to 400 ms out of order; a third of the orders changed twice within one
        /// `updated_at` second.
        case duplicates = "duplicates + reordering + same-second"
        /// 30% of ERP calls take 1.5 s against a 1 s client timeout; the ERP commits them anyway.
        case slow = "ERP slower than erp.timeout on 30%"
        /// 20% of ERP calls answered 500 (the ERP may or may not have applied them: erp-sim applies none).
        case errors = "ERP answering 20% 500s"
        /// The ERP refuses connections mid-sale (ten minutes time-scaled by 1/10 in full mode, 15 s in quick).
        case down = "ERP down mid-sale"
        /// kill -9 of a forwarder process mid-sale, a new one started.
        case killForwarder = "kill -9 of the forwarder"
        /// kill -9 of the ingest process mid-sale (webhooks in its hands unanswered: Shopify retries them), a new one
        /// started on the same port.
        case killIngest = "kill -9 of ingest"
        /// The broker stopped and started again mid-sale (its own node): ingest answers 503 meanwhile (Shopify retries),
        /// every process reconnects.
        case brokerRestart = "broker restart under load"
        /// The ERP restored from a backup taken mid-sale (sales orders and credit notes written since are gone), then
        /// one reconciliation run.
        case restoredBackup = "ERP restored from a mid-sale backup"
        /// The ERP down five times the broker's `consumer_timeout` (its own node, timeout lowered: 6 s quick, 12 s full,
        /// checked every second).
        case pastConsumerTimeout = "ERP down past consumer_timeout"

        var testDescription: String { rawValue }
    }

    struct Row: CustomStringConvertible {
        var cell: Cell
        var profile: ERPStore.Profile
        var orders = 0
        var refunds = 0
        var cancelled = 0
        var lost = 0
        var duplicatedOrders = 0
        var duplicatedCreditNotes = 0
        var stale = 0
        var deadLettered: [String: Int] = [:]
        var seconds = 0.0

        var passed: Bool { lost == 0 && duplicatedOrders == 0 && duplicatedCreditNotes == 0 && stale == 0 }
        var description: String {
            let dlq = deadLettered.isEmpty ? "0" : deadLettered.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            return "chaos | \(cell.rawValue) | \(profile) | \(orders) | \(refunds) | \(cancelled) | \(lost) | \(duplicatedOrders) | "
                + "\(duplicatedCreditNotes) | \(stale) | \(dlq) | \(Int(seconds)) s | \(passed ? "ok" : "FAILED")"
        }
    }

    @Test("every order once and current in the ERP, every refund once", arguments: Cell.allCases, ERPStore.Profile.allCases)
    func cell(_ cell: Cell, profile: ERPStore.Profile) async throws {
        let started = ContinuousClock.now
        // The broker restart and the lowered consumer_timeout get a node of their own.
        var privateBroker: TestBroker?
        if cell == .brokerRestart { privateBroker = try await TestBroker.startPrivate() }
        if cell == .pastConsumerTimeout { privateBroker = try await TestBroker.startPrivate(consumerTimeout: Self.consumerTimeout) }
        let h: ForwarderHarness
        do {
            h = try await ForwarderHarness.make("chaos", profile: profile, broker: privateBroker)
        } catch {
            await privateBroker?.destroy()
            throw error
        }
        var logger = Logger(label: "erp-sim")
        logger.logLevel = .warning
        // A real server (with maintenance windows) in front of the harness's store.
        let (port, erpTask) = try await ERPSimulatorServer.start(
            routes: ERPSimulatorRoutes(store: h.store, apiKey: ForwarderHarness.apiKey), logger: logger)
        let erpURL = "http://127.0.0.1:\(port)"
        var timeouts = ["ERP_TIMEOUT": "5s", "ORDER_FORWARDER_UNKNOWN_OUTCOME_WAIT": "3s"]
        if cell == .slow { timeouts = ["ERP_TIMEOUT": "1s", "ORDER_FORWARDER_UNKNOWN_OUTCOME_WAIT": "3s"] }
        // Deliveries held for an open circuit are parked well before the broker's consumer_timeout.
        if cell == .pastConsumerTimeout { timeouts["TOPOLOGY_MAX_HOLD"] = "2s" }
        let mapping = OrderMappingSettings(missingSKU: .catchAll, catchAllItem: "SKU-00001")

        var inProcess: RunningForwarder?
        var process: Process?
        let processEnvironment = [
            "BROKER_URL": h.broker.url(vhost: h.vhost), "HTTP_PORT": "0", "HTTP_HOST": "127.0.0.1", "LOG_LEVEL": "error",
            "TOPOLOGY_RETRY_DELAYS": "1s,2s", "SHOPS": ForwarderHarness.shopId,
            "SHOP_ACME_DOMAIN": ForwarderHarness.shopDomain, "SHOP_ACME_WEBHOOK_SECRETS": "unused-here",
            "SHOP_ACME_ADMIN_TOKEN": "unused-here", "ERP_BASE_URL": erpURL, "ERP_API_KEY": ForwarderHarness.apiKey,
            "ORDER_FORWARDER_LEDGER": "sqlite:\(h.ledgerPath)", "ORDER_FORWARDER_LOCK_TTL": "3s", "ORDER_FORWARDER_LOCK_WAIT": "4s",
            "ORDER_FORWARDER_MISSING_SKU": "catch_all", "ORDER_FORWARDER_CATCH_ALL_ITEM": "SKU-00001",
        ].merging(h.erpProfileEnvironment) { $1 }.merging(timeouts) { $1 }
        if cell == .killForwarder {
            (process, _) = try TestProcesses.launch("order-forwarder", environment: processEnvironment)
        } else {
            inProcess = try await h.startForwarder(mapping: mapping, breakerThreshold: 5, probeInterval: .seconds(1), erpURL: erpURL, environment: timeouts)
        }
        defer { if let process, process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let reconnectsBefore = inProcess?.consumer.currentStatus.reconnects ?? 0

        // Ingest: in-process, or the executable (killed and started again) on a port of its own.
        let ingestURL: String
        var ingestTask: Task<Void, any Error>?
        let ingestPort = TestProcesses.freePort()
        let ingestOpsPort = TestProcesses.freePort()
        let ingestEnvironment = [
            "BROKER_URL": h.broker.url(vhost: h.vhost), "HTTP_PORT": "\(ingestPort)", "HTTP_HOST": "127.0.0.1",
            "INGEST_OPS_PORT": "\(ingestOpsPort)", "LOG_LEVEL": "error", "TOPOLOGY_RETRY_DELAYS": "1s,2s",
            "SHOPS": ForwarderHarness.shopId, "SHOP_ACME_DOMAIN": ForwarderHarness.shopDomain,
            "SHOP_ACME_WEBHOOK_SECRETS": SaleEndToEndTests.secret, "SHOP_ACME_ADMIN_TOKEN": "unused-here",
        ]
        var ingestProcess: Process?
        if cell == .killIngest {
            (ingestProcess, _) = try TestProcesses.launch("ingest", environment: ingestEnvironment)
            ingestURL = "http://127.0.0.1:\(ingestPort)/webhooks/shopify"
            #expect(await eventually(timeout: .seconds(30)) { await TestProcesses.get("http://127.0.0.1:\(ingestOpsPort)/readyz").0 == 200 }, "ingest started")
        } else {
            let (url, task) = try await SaleEndToEndTests.startIngest(h)
            ingestURL = url
            ingestTask = task
        }
        defer { if let ingestProcess, ingestProcess.isRunning { kill(ingestProcess.processIdentifier, SIGKILL) } }
        // Webhooks duplicated (20%) and reordered (up to 400 ms) in the duplicates cell only. Where ingest or the broker
        // goes away, Shopify's retries are time-scaled by 1/100 (the four hours in 2.3 minutes), not 1/1000.
        let outsideIngest = cell == .killIngest || cell == .brokerRestart
        let (store, deliverer) = await SaleEndToEndTests.shop(
            seed: 61, ingestURL: ingestURL, duplicateRate: cell == .duplicates ? 0.2 : 0, maxDelayMs: cell == .duplicates ? 400 : 0,
            timeScale: outsideIngest ? 0.01 : 0.001)
        var replacement: Process?
        let ingestReplacement = Shared<Process?>(nil)
        var admin: TestShopifyAdmin?
        var reconciler: ReconcilerTests.RunningReconciler?
        // Torn down whether the cell passes, fails or throws: the next cells run on the same two cores.
        func teardown() async {
            ingestTask?.cancel()
            if let p = ingestReplacement.withLock({ $0 }), p.isRunning { kill(p.processIdentifier, SIGKILL) }
            await reconciler?.stop()
            await admin?.stop()
            await deliverer.shutdown()
            await inProcess?.stop()
            if let replacement, replacement.isRunning {
                kill(replacement.processIdentifier, SIGTERM)
                _ = await eventually(timeout: .seconds(20)) { !replacement.isRunning }
                if replacement.isRunning { kill(replacement.processIdentifier, SIGKILL) }
            }
            erpTask.cancel()
            await h.close()
            await privateBroker?.destroy()
        }
        do {
            var faults = ERPStore.Faults()
            switch cell {
            case .duplicates:
                break
            case .slow:
                faults.slowRate = 0.3
                faults.slowMs = 1500
            case .errors:
                faults.errorRate = 0.2
                faults.errorStatus = 500
            case .down, .killForwarder, .killIngest, .brokerRestart, .restoredBackup, .pastConsumerTimeout:
                faults.latencyMs = 10
            }
            await h.store.setFaults(faults)

            // The fault in the middle of the sale.
            let victim = process?.processIdentifier ?? ingestProcess?.processIdentifier
            let broker = h.broker
            let backup = Shared<ERPStore.State?>(nil)
            let disruption = Task {
                switch cell {
                case .down:
                    try await Task.sleep(for: .seconds(2))
                    await h.store.requestMaintenance(Self.outage)
                case .pastConsumerTimeout:
                    try await Task.sleep(for: .seconds(2))
                    await h.store.requestMaintenance(Self.consumerTimeout * 5)
                case .killForwarder, .killIngest:
                    _ = await eventually(timeout: .seconds(120)) { await h.store.orderCount >= Self.orders / 3 }
                    if let victim { kill(victim, SIGKILL) }
                    let at = await h.store.orderCount
                    if cell == .killIngest {
                        try await Task.sleep(for: .seconds(1))
                        let (p, _) = try TestProcesses.launch("ingest", environment: ingestEnvironment)
                        ingestReplacement.withLock { $0 = p }
                    }
                    return at
                case .brokerRestart:
                    _ = await eventually(timeout: .seconds(120)) { await h.store.orderCount >= Self.orders / 3 }
                    try await broker.stop()
                    let at = await h.store.orderCount
                    try await broker.start()
                    return at
                case .restoredBackup:
                    _ = await eventually(timeout: .seconds(120)) { await h.store.orderCount >= Self.orders / 2 }
                    let state = await h.store.state
                    backup.withLock { $0 = state }
                    return state.salesOrderCount
                default:
                    break
                }
                return 0
            }
            let paced = [.killForwarder, .down, .killIngest, .brokerRestart, .restoredBackup, .pastConsumerTimeout].contains(cell)
            let sale = await TrafficGenerator(store: store, deliverer: deliverer).run(
                SaleProfile(
                    orders: Self.orders, ordersPerSecond: paced ? 20 : 0, updateShare: 0.3, cancelShare: 0.1,
                    refundShare: 0.2, sameSecondShare: cell == .duplicates ? 0.35 : 0.2, seed: 62, concurrency: 16))
            let atDisruption = try await disruption.value
            #expect(sale.placed == Self.orders, "the sale placed every order")
            if let victim = process ?? ingestProcess {
                victim.waitUntilExit()
                #expect(victim.terminationReason == .uncaughtSignal && atDisruption < Self.orders, "killed mid-sale (\(atDisruption) orders in the ERP)")
            }
            if cell == .brokerRestart { #expect(atDisruption < Self.orders, "restarted mid-sale (\(atDisruption) orders in the ERP)") }
            if outsideIngest {
                // Shopify's side of it: some webhooks were refused or unanswered and delivered on a retry.
                let retried = await deliverer.log.filter { $0.attempts.count > 1 }.count
                #expect(retried > 0, "webhooks retried after ingest or the broker went away: \(retried)")
            }
            if cell == .killForwarder {
                (replacement, _) = try TestProcesses.launch("order-forwarder", environment: processEnvironment)
            }
            let orders = await store.orders
            var healedReport = ""
            // Duplicates made before a restore are erased by it: counted before as well as after.
            var duplicatedBeforeRestore: (orders: Set<String>, creditNotes: Set<String>) = ([], [])
            if cell == .restoredBackup {
                // The sale settles, then the ERP comes back from the backup, and one reconciliation run heals it.
                let state = try #require(backup.withLock { $0 })
                #expect(state.salesOrderCount < Self.orders, "the backup was taken mid-sale (\(state.salesOrderCount) sales orders)")
                _ = await eventually(timeout: .seconds(300)) { await h.mismatches(orders).isEmpty }
                duplicatedBeforeRestore = (Set(await h.store.duplicatedRefs()), Set(await h.store.duplicatedRefunds()))
                await h.store.restoreBackup(state)
                let lostByRestore = Set(await h.mismatches(orders).compactMap { $0.split(separator: ":").first }).count
                #expect(lostByRestore > 0, "the restore undid orders")
                admin = try await TestShopifyAdmin.serve(store, deliverer: deliverer)
                let reports = h.dir.appendingPathComponent("reports").path
                reconciler = try await ReconcilerTests.startReconciler(h, admin: admin!, reports: reports, verifyWait: .seconds(120))
                let report = try #require(try await ReconcilerTests.reconcile(h, reports: reports, timeout: .seconds(300)))
                healedReport = "restore undid \(lostByRestore) orders; reconcile: \(report.summary)"
                // The run's own account, checked against the simulators' (the table below counts from them alone).
                #expect(report.healed >= lostByRestore && report.mismatches["heal_unconfirmed"] == nil, "\(report.summary)")
            }

            // Settled: every Shopify order in the ERP in its latest state, or the wait runs out (what is left is counted).
            _ = await eventually(timeout: .seconds(Self.mode == .full ? 600 : 300)) { await h.mismatches(orders).isEmpty }
            // Then quiet: the work queue and its retry levels empty and no ERP call for 6 s (longer than the longest
            // unknown-outcome fence, 1 s + 3 s, and a retry level), so a late duplicate is counted too.
            let queues = [BridgeTopology.orders.name] + ["1s", "2s"].map { "\(BridgeTopology.orders.name).retry.\($0)" }
            var lastCalls = -1
            var quietSince = ContinuousClock.now
            _ = await eventually(timeout: .seconds(120)) {
                var empty = true
                for q in queues where ((try? await h.publisher.queueCounts(q).messages) ?? 1) > 0 { empty = false }
                let calls = await h.store.arrivals
                if !empty || calls != lastCalls {
                    lastCalls = calls
                    quietSince = .now
                    return false
                }
                return ContinuousClock.now - quietSince > .seconds(6)
            }
            var row = Row(cell: cell, profile: profile)
            row.orders = sale.placed
            row.refunds = orders.values.reduce(0) { $0 + $1.refunds.count }
            row.cancelled = orders.values.filter(\.cancelled).count
            let mismatches = await h.mismatches(orders)
            row.lost = mismatches.filter { $0.hasSuffix(": missing") }.count
            row.stale = Set(mismatches.filter { !$0.hasSuffix(": missing") }.compactMap { $0.split(separator: ":").first }).count
            row.duplicatedOrders = duplicatedBeforeRestore.orders.union(await h.store.duplicatedRefs()).count
            row.duplicatedCreditNotes = duplicatedBeforeRestore.creditNotes.union(await h.store.duplicatedRefunds()).count
            let letters = try await DeadLetters.list(h.publisher, workQueue: BridgeTopology.orders.name, limit: 1000)
            for letter in letters.letters { row.deadLettered[letter.errorClass ?? letter.brokerReason ?? "?", default: 0] += 1 }
            row.seconds = Double((ContinuousClock.now - started).wholeMilliseconds) / 1000
            if cell == .pastConsumerTimeout, let inProcess {
                // The fault happened and was absorbed as designed: deliveries parked before the broker's timeout, and
                // the broker never closed the consuming channel.
                #expect(inProcess.forwarder.settledCounts["parked", default: 0] > 0, "held deliveries were parked")
                #expect(inProcess.consumer.currentStatus.reconnects == reconnectsBefore, "the broker never closed the consuming channel")
            }
            print(row)
            if !healedReport.isEmpty { print("chaos   \(cell.rawValue) (\(profile)): \(healedReport)") }
            if !mismatches.isEmpty { print("chaos   first differences: \(mismatches.prefix(5))") }
            #expect(row.passed, "\(row)")
        } catch {
            await teardown()
            throw error
        }
        await teardown()
    }
}

/// `BRIDGE_CHAOS`: which chaos run, if any.
enum ChaosMode: String, Sendable {
    case quick, full
    static var current: ChaosMode? { ProcessInfo.processInfo.environment["BRIDGE_CHAOS"].flatMap(ChaosMode.init(rawValue:)) }
}
