import ArgumentParser
import BridgeDomain
import BridgeMessaging
import BridgeRuntime
import Foundation
import Messaging
import Reconciliation

struct ReconcileCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reconcile", abstract: "Reconciliation: run one now, show reports.", subcommands: [Run.self, Report.self])

    struct Run: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the active reconciler to reconcile one domain of one shop now, and print its report.",
            discussion: """
                The run is queued on q.reconcile and executed by the active reconciler, one run at a time; a progress \
                line follows it. --dry-run compares and reports without healing. Needs a running reconciler and a \
                broker user that may publish to bridge.work and declare a temporary queue (the admin user).
                """)
        @OptionGroup var options: ProcessOptions
        @Option(help: "orders, inventory, prices or catalogue.") var domain: String
        @Option(help: "Shop id (or myshopify domain).") var shop: String
        @Option(help: "How far back to look, e.g. 24h or 90m (default: reconciler.<domain>.window).") var since: String?
        @Flag(help: "Compare and report only; heal nothing.") var dryRun = false
        @Flag(help: "Print the report as JSON.") var json = false
        @Option(help: "Seconds to wait for the report.") var timeout = 1800

        func run() async throws {
            let config = try await loadConfig(options)
            guard let domain = ReconcilerSettings.Domain(rawValue: domain), Reconciler.supportedDomains.contains(domain) else {
                fail("domain '\(self.domain)' is not reconciled by this version (supported: \(Reconciler.supportedDomains.map(\.rawValue).joined(separator: ", ")))", code: 2)
            }
            guard let shop = config.shops.first(where: { $0.id == self.shop || $0.domain == self.shop }) else {
                fail("no shop '\(self.shop)' in the configuration (shops: \(config.shops.map(\.id)))", code: 2)
            }
            var window: Duration?
            if let since {
                guard let d = parseDuration(since), d > .zero else { fail("--since '\(since)' is not a duration such as 24h or 90m", code: 2) }
                window = d
            }
            let request = ReconcileRequest(
                runId: ReportStore.newRunId(), domain: domain, shop: shop.id, window: window, dryRun: dryRun, trigger: "bridgectl")
            let replies = "bridgectl.reconcile.\(request.runId)"
            let terminal = isatty(STDOUT_FILENO) == 1
            try await withConnection(config) { c in
                let consumers = try await c.queueCounts(BridgeTopology.reconcile.name).consumers
                guard consumers > 0 else {
                    fail("no reconciler consumes \(BridgeTopology.reconcile.name): start one (a standby does not consume)", code: 1)
                }
                _ = try await c.withChannel { ops in
                    try ops.declareQueue(replies, durable: false, exclusive: true, autoDelete: true, arguments: ["x-queue-type": "classic"])
                    try ops.bindQueue(replies, exchange: BridgeTopology.events, routingKey: ReconcileRequest.completedTopic)
                    try ops.bindQueue(replies, exchange: BridgeTopology.events, routingKey: ReconcileRequest.progressTopic)
                }
                try await request.publish(on: c, appId: "shopify-erp-bridge/bridgectl")
                print("\(domain.rawValue) reconciliation of \(shop.id) queued (run \(request.runId)\(dryRun ? ", dry run" : ""))")
                let consumer = try await c.consume(queue: replies, prefetch: 50)
                let deadline = ContinuousClock.now + .seconds(timeout)
                let found: ReconcileReport? = try await withThrowingTaskGroup(of: ReconcileReport?.self) { group in
                    group.addTask {
                        for try await d in consumer.deliveries {
                            try? await d.ack()
                            if d.routingKey == ReconcileRequest.progressTopic {
                                if terminal, let p = try? ReconcileReport.decoder.decode(ReconcileProgress.self, from: Data(d.body)),
                                    p.runId == request.runId
                                {
                                    FileHandle.standardOutput.write(Data("\r\u{1B}[K  \(p.line)".utf8))
                                }
                                continue
                            }
                            if let r = try? ReconcileReport.decoder.decode(ReconcileReport.self, from: Data(d.body)), r.runId == request.runId {
                                return r
                            }
                        }
                        return nil
                    }
                    group.addTask {
                        try? await Task.sleep(until: deadline)
                        return nil
                    }
                    let first = try await group.next() ?? nil
                    group.cancelAll()
                    consumer.cancel()
                    return first
                }
                if terminal { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
                guard let report = found else {
                    fail("no report within \(timeout) s; the run goes on: see the reconciler's log (run_id \(request.runId)) and `bridgectl reconcile report --run \(request.runId)`", code: 1)
                }
                try printReport(report, json: json)
                if report.error != nil { throw ExitCode(1) }
            }
        }
    }

    struct Report: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show a reconciliation report (reconciler.reports_dir on this host).")
        @OptionGroup var options: ProcessOptions
        @Flag(help: "The newest report (the default).") var last = false
        @Option(help: "The report of this run id.") var run: String?
        @Flag(help: "List the run ids with a report, newest first.") var list = false
        @Flag(help: "Print the report as JSON.") var json = false
        @Option(help: "Reports directory (default: reconciler.reports_dir).") var reportsDir: String?

        func run() async throws {
            let dir: String
            if let reportsDir {
                dir = reportsDir
            } else {
                dir = try await loadConfig(options).reconciler.reportsDir
            }
            let store = ReportStore(directory: dir)
            if list {
                for id in store.runIds() { print(id) }
                return
            }
            let report: ReconcileReport?
            if let run {
                guard ReportStore.isValidRunId(run) else { fail("'\(run)' is not a run id", code: 2) }
                report = try store.report(runId: run)
            } else {
                report = try store.last()
            }
            guard let report else {
                fail(run.map { "no report of run \($0) in \(dir)" } ?? "no reconciliation report in \(dir) yet", code: 1)
            }
            try printReport(report, json: json)
        }
    }
}

private func printReport(_ report: ReconcileReport, json: Bool) throws {
    if json {
        print(String(decoding: try ReconcileReport.encoder.encode(report), as: UTF8.self))
    } else {
        print(report.markdown, terminator: "")
    }
}

private func fail(_ message: String, code: Int32) -> Never {
    FileHandle.standardError.write(Data("bridgectl: \(message)\n".utf8))
    Foundation.exit(code)
}
