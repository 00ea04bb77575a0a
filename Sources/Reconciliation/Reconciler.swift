import BridgeDomain
import BridgeMessaging
import ERP
import Foundation
import Logging
import Messaging
import Metrics
import PriceSync
import Shopify

/// Runs reconciliation requests: the domain's reconciler for the shop, then the report (JSON + Markdown under
/// `reconciler.reports_dir`), the summary event on `bridge.events` and the metrics.
///
/// Metrics (labels `domain`, `shop`): `reconcile_runs_total{outcome}`, `reconcile_checked_total`,
/// `reconcile_mismatches_total{kind}`, `reconcile_healed_total`, `reconcile_reported_total`,
/// `reconcile_last_success_timestamp_seconds` (runs that completed and were not dry runs),
/// `reconcile_duration_seconds{domain}`.
public final class Reconciler: Sendable {
    /// Domains this version reconciles; the others are refused with a clear error.
    public static let supportedDomains: [ReconcilerSettings.Domain] = [.orders, .inventory, .prices, .catalogue]

    public let settings: ReconcilerSettings
    public let reports: ReportStore
    public let orders: [String: OrdersReconciler]
    public let inventory: [String: InventoryReconciler]
    public let prices: [String: PricesReconciler]
    public let catalogue: [String: CatalogueReconciler]
    let publisher: AMQPConnection
    let logger: Logger

    public init(
        settings: ReconcilerSettings, orders: [OrdersReconciler], inventory: [InventoryReconciler], prices: [PricesReconciler] = [],
        catalogue: [CatalogueReconciler] = [], publisher: AMQPConnection, logger: Logger
    ) {
        self.settings = settings
        self.reports = ReportStore(directory: settings.reportsDir)
        self.orders = Dictionary(orders.map { ($0.shop.id, $0) }, uniquingKeysWith: { a, _ in a })
        self.inventory = Dictionary(inventory.map { ($0.shop.id, $0) }, uniquingKeysWith: { a, _ in a })
        self.prices = Dictionary(prices.map { ($0.shop.id, $0) }, uniquingKeysWith: { a, _ in a })
        self.catalogue = Dictionary(catalogue.map { ($0.shop.id, $0) }, uniquingKeysWith: { a, _ in a })
        self.publisher = publisher
        self.logger = logger
    }

    public struct Refused: Error, CustomStringConvertible {
        public var description: String
    }

    public func run(_ request: ReconcileRequest, resumed: Bool) async throws -> ReconcileReport {
        guard Self.supportedDomains.contains(request.domain) else {
            throw Refused(description: "domain \(request.domain.rawValue) is not reconciled by this version (supported: \(Self.supportedDomains.map(\.rawValue)))")
        }
        guard ReportStore.isValidRunId(request.runId) else { throw Refused(description: "run id '\(request.runId)' is not a file name") }
        guard let ordersReconciler = orders[request.shop] else {
            throw Refused(description: "no shop '\(request.shop)' in the configuration (shops: \(orders.keys.sorted()))")
        }
        var logger = self.logger
        logger[metadataKey: "run_id"] = "\(request.runId)"
        logger[metadataKey: "domain"] = "\(request.domain.rawValue)"
        logger[metadataKey: "shop"] = "\(request.shop)"
        logger.info("reconciliation started", metadata: ["dry_run": "\(request.dryRun)", "trigger": "\(request.trigger)", "resumed": "\(resumed)"])
        let started = Date()
        let publisher = self.publisher
        let eventLogger = logger
        let progress: ReconcileProgress.Sink = { p in
            await Self.publishEvent(ReconcileRequest.progressTopic, runId: p.runId, body: p, on: publisher, logger: eventLogger)
        }
        let dims = [("domain", request.domain.rawValue), ("shop", request.shop)]
        do {
            let report: ReconcileReport
            switch request.domain {
            case .inventory:
                guard let inventory = inventory[request.shop] else {
                    throw Refused(description: "inventory is not reconciled for shop \(request.shop): the inventory-syncer is not enabled")
                }
                report = try await inventory.run(request, resumed: resumed, progress: progress)
            case .prices:
                guard let prices = prices[request.shop] else {
                    throw Refused(
                        description: "prices are not reconciled for shop \(request.shop): set shop.\(request.shop).price_lists and/or shop.\(request.shop).dtc_price_list")
                }
                report = try await prices.run(request, resumed: resumed, progress: progress)
            case .catalogue:
                guard let catalogue = catalogue[request.shop] else {
                    throw Refused(description: "the catalogue is not reconciled for shop \(request.shop)")
                }
                report = try await catalogue.run(request, resumed: resumed, progress: progress)
            default:
                report = try await ordersReconciler.run(request, resumed: resumed, progress: progress)
            }
            try reports.save(report)
            Self.record(report)
            Counter(label: "reconcile_runs_total", dimensions: dims + [("outcome", "completed")]).increment()
            if !report.dryRun {
                Gauge(label: "reconcile_last_success_timestamp_seconds", dimensions: dims).record(Date().timeIntervalSince1970)
            }
            Metrics.Timer(label: "reconcile_duration_seconds", dimensions: [("domain", request.domain.rawValue)], preferredDisplayUnit: .seconds)
                .recordNanoseconds(Int64(report.seconds * 1e9))
            logger.notice(
                "reconciliation finished",
                metadata: [
                    "checked": "\(report.checked)", "matched": "\(report.matched)", "healed": "\(report.healed)",
                    "reported": "\(report.reported)", "in_flight": "\(report.inFlight)", "mismatches": "\(report.mismatches)",
                    "points": "\(report.pointsUsed)", "seconds": "\(String(format: "%.1f", report.seconds))",
                ])
            await Self.publishEvent(ReconcileRequest.completedTopic, runId: report.runId, body: report, on: publisher, logger: logger)
            return report
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            Counter(label: "reconcile_runs_total", dimensions: dims + [("outcome", "failed")]).increment()
            logger.error("reconciliation failed", metadata: ["error": "\(error)"])
            var failed = ReconcileReport(
                runId: request.runId, domain: request.domain, shop: request.shop, dryRun: request.dryRun, trigger: request.trigger,
                startedAt: started)
            failed.finishedAt = Date()
            // The error class first where there is one, as on a dead letter (`price_list_currency_mismatch: ...`).
            failed.error = (error as? PriceSyncError).map { "\($0.errorClass): \($0)" } ?? "\(error)"
            failed.resumed = resumed
            // A run that stops for good (a configuration the merchant must fix) is kept, so `bridgectl reconcile
            // report` shows why; one that is retried keeps its run id and writes its report when it completes.
            if error is PriceSyncError || error is PolicyViolation || error is Refused {
                do { try reports.save(failed) } catch { logger.error("report not saved", metadata: ["error": "\(error)"]) }
            }
            await Self.publishEvent(ReconcileRequest.completedTopic, runId: request.runId, body: failed, on: publisher, logger: logger)
            throw error
        }
    }

    static func record(_ r: ReconcileReport) {
        let dims = [("domain", r.domain.rawValue), ("shop", r.shop)]
        Counter(label: "reconcile_checked_total", dimensions: dims).increment(by: r.checked)
        Counter(label: "reconcile_healed_total", dimensions: dims).increment(by: r.healed)
        Counter(label: "reconcile_reported_total", dimensions: dims).increment(by: r.reported)
        for (kind, n) in r.mismatches {
            Counter(label: "reconcile_mismatches_total", dimensions: dims + [("kind", kind)]).increment(by: n)
        }
    }

    /// Events are information: unconfirmed delivery to nobody is fine (`mandatory: false`), a failure only logged.
    static func publishEvent(_ topic: String, runId: String, body: some Encodable, on publisher: AMQPConnection, logger: Logger) async {
        let envelope = InboundEnvelope(
            source: .reconciler, shopDomain: nil, topic: topic, deliveryId: "\(topic)-\(runId)-\(UUID().uuidString.prefix(8))",
            receivedAt: Timestamp.string(milliseconds: Timestamp.milliseconds(Date())))
        do {
            try await publisher.publish(
                exchange: BridgeTopology.events, routingKey: topic, body: Array(try ReconcileReport.encoder.encode(body)),
                properties: envelope.properties(appId: "shopify-erp-bridge/reconciler"), mandatory: false)
        } catch {
            logger.warning("could not publish a reconciliation event", metadata: ["topic": "\(topic)", "error": "\(error)"])
        }
    }
}
