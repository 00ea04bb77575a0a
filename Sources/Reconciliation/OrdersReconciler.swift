import BridgeDomain
import ERP
import Foundation
import Logging
import Messaging
import Shopify

/// Orders (Shopify owns them): every Shopify order updated in the window against the ERP by external reference.
///
/// - Missing in the ERP, or behind in version, status, financial status, total or refunded amount: re-sent as the order's current
///   Shopify state to `q.orders` (`OrderReplay`); the order-forwarder writes it with its idempotency and version
///   order, also where its ledger believes the order was written (an ERP restored from a backup). A refunded amount
///   the ERP lacks also re-sends the order's refunds (`refunds/create`, booked once per refund). A re-sent order is
///   counted healed only when a re-read of the ERP then matches (`confirm`, within `reconciler.verify_wait`);
///   otherwise it is reported `heal_unconfirmed`.
/// - ERP orders of the shop with no Shopify order (orphans), several ERP documents for one order (duplicates) and
///   an ERP version ahead of Shopify's: reported, never changed or deleted.
/// - Orders changed within `reconciler.settle` are not compared: their webhooks may still be in the queues.
///
/// Nothing is written into Shopify: healing goes through the policy check for `orders -> erp`, and a policy
/// that does not let orders flow into the ERP turns every difference into a report.
public struct OrdersReconciler: Sendable {
    public let shop: BridgeConfig.Shop
    public let client: ShopifyAdminClient
    public let erp: any ERPOrderReader
    public let publisher: AMQPConnection
    public let policy: SourceOfTruthPolicy
    public let settings: ReconcilerSettings
    public let reports: ReportStore
    let logger: Logger
    /// Called after each healed order with the number healed so far (tests interrupt a run here).
    let afterHeal: (@Sendable (Int) async throws -> Void)?

    public init(
        shop: BridgeConfig.Shop, client: ShopifyAdminClient, erp: any ERPOrderReader, publisher: AMQPConnection,
        policy: SourceOfTruthPolicy, settings: ReconcilerSettings, reports: ReportStore, logger: Logger,
        afterHeal: (@Sendable (Int) async throws -> Void)? = nil
    ) {
        self.shop = shop
        self.client = client
        self.erp = erp
        self.publisher = publisher
        self.policy = policy
        self.settings = settings
        self.reports = reports
        self.logger = logger
        self.afterHeal = afterHeal
    }

    /// Kinds a replay of Shopify's state heals.
    static let healable: Set<String> = ["missing_in_erp", "version_behind", "status", "financial_status", "total", "refunded"]

    public func run(_ request: ReconcileRequest, resumed: Bool, progress: ReconcileProgress.Sink?) async throws -> ReconcileReport {
        let startedAt = Date()
        var report = ReconcileReport(
            runId: request.runId, domain: .orders, shop: shop.id, dryRun: request.dryRun, trigger: request.trigger, startedAt: startedAt)
        report.resumed = resumed
        let window = request.window ?? settings.domains[.orders]?.window ?? .seconds(48 * 3600)
        let windowStart = startedAt.addingTimeInterval(-Double(window.wholeMilliseconds) / 1000)
        report.windowStart = windowStart
        let pointsBefore = client.stats.pointsUsed
        let mayHeal = policy.mayWrite(.orders, into: .erp)
        if !mayHeal {
            logger.warning(
                "source_of_truth does not let orders flow into the ERP: differences are reported, not healed",
                metadata: ["owner": "\(policy.owner(of: .orders))"])
        }

        await progress?(.init(runId: request.runId, phase: "reading Shopify orders", done: 0, total: nil))
        let (orders, mode) = try await client.orders(
            updatedSince: windowStart, bulkThreshold: settings.bulkThreshold,
            progress: { n in Task { await progress?(.init(runId: request.runId, phase: "reading Shopify orders", done: n, total: nil)) } })
        report.readMode = mode.rawValue
        await progress?(.init(runId: request.runId, phase: "reading ERP orders", done: 0, total: nil))
        var erpByRef: [String: [ERPOrderRecord]] = [:]
        for record in try await erp.salesOrders(changedSince: windowStart) where ERPReference.shop(ofSalesOrder: record.externalRef) == shop.id {
            erpByRef[record.externalRef, default: []].append(record)
        }

        // What an interrupted delivery of this run re-sent already (empty for a new run).
        let healedBefore = request.dryRun ? [] : reports.healed(runId: request.runId)
        let settleCut = Timestamp.milliseconds(startedAt.addingTimeInterval(-Double(settings.settle.wholeMilliseconds) / 1000))
        var seen: Set<String> = []
        var toHeal: [(id: Int64, ref: String, refunds: Bool, order: ShopifyOrderSummary)] = []
        for (index, order) in orders.enumerated() {
            if index % 500 == 0 {
                await progress?(.init(runId: request.runId, phase: "comparing", done: index, total: orders.count))
            }
            guard let id = order.orderId else { continue }
            let ref = ERPReference.salesOrder(shop: shop.id, orderId: id)
            seen.insert(ref)
            let updatedMs = Timestamp.milliseconds(order.updatedAt) ?? 0
            if updatedMs > settleCut {
                report.inFlight += 1
                continue
            }
            report.checked += 1
            let documents: [ERPOrderRecord]
            if let listed = erpByRef[ref] {
                documents = listed
            } else {
                // Not changed in the ERP within the window (or missing): looked up by reference.
                documents = try await erp.salesOrders(externalRef: ref)
            }
            let differences = Self.compare(order, updatedMs: updatedMs, documents: documents, ref: ref)
            if differences.isEmpty {
                if healedBefore.contains(ref) {
                    // Re-sent by the interrupted delivery and in the ERP now: healed by this run, not a second time.
                    report.healed += 1
                    report.record(.init(kind: "healed_before_resume", id: "\(id)", ref: ref, action: "healed"), itemised: settings.itemised)
                } else {
                    report.matched += 1
                }
                continue
            }
            let heals = mayHeal && documents.count <= 1 && differences.contains { Self.healable.contains($0.kind) }
            // Re-sent now; counted healed only when the ERP then matches (`confirm`).
            let action = heals ? (request.dryRun ? "would_heal" : "resent") : "reported"
            for var d in differences {
                d.action = action
                report.record(d, itemised: settings.itemised)
            }
            if heals && !request.dryRun {
                toHeal.append(
                    (id, ref, order.refunded.value > 0 && differences.contains { $0.kind == "refunded" || $0.kind == "missing_in_erp" }, order))
            } else {
                report.reported += 1
            }
        }

        // ERP orders of this shop changed in the window whose Shopify order is not among the window's orders.
        for (ref, documents) in erpByRef.sorted(by: { $0.key < $1.key }) where !seen.contains(ref) {
            guard let id = ref.split(separator: ".").last.flatMap({ Int64($0) }) else { continue }
            if try await client.orderExists(id: id) { continue }
            report.checked += 1
            report.reported += 1
            report.record(
                .init(kind: "orphan_in_erp", id: "\(id)", ref: ref, shopify: "none", erp: documents.map(\.documentNumber).joined(separator: ","), action: "reported"),
                itemised: settings.itemised)
        }

        // Healing: Shopify's current state re-sent through the forwarder. An interrupted run (redelivered with the
        // same id) skips what it re-sent before.
        var resent: [String: (id: Int64, order: ShopifyOrderSummary)] = [:]
        if !toHeal.isEmpty {
            try policy.authorize(.orders, into: .erp)
            let log = try reports.healingLog(runId: request.runId)
            defer { log.close() }
            for (index, item) in toHeal.enumerated() {
                if index % 50 == 0 {
                    await progress?(.init(runId: request.runId, phase: "healing", done: index, total: toHeal.count))
                }
                if healedBefore.contains(item.ref) {
                    resent[item.ref] = (item.id, item.order)
                    continue
                }
                let readAt = Date()
                guard let (body, shopifyDate) = try await client.restOrderRead(id: item.id) else {
                    report.reported += 1
                    report.record(.init(kind: "gone_in_shopify", id: "\(item.id)", ref: item.ref, action: "reported"), itemised: settings.itemised)
                    continue
                }
                let replay = OrderReplay(
                    shopDomain: shop.domain, orderId: item.id, body: body, readAt: readAt, runId: request.runId, shopifyReadAt: shopifyDate)
                try await replay.publish(on: publisher)
                // Refunds the ERP may lack (a refunds/create webhook lost): each re-sent, booked once per reference.
                if item.refunds {
                    for refund in replay.refunds() { try await refund.publish(on: publisher) }
                }
                log.append(item.ref)
                resent[item.ref] = (item.id, item.order)
                try await afterHeal?(resent.count)
            }
        }
        try await confirm(resent, into: &report, runId: request.runId, progress: progress)
        report.pointsUsed = client.stats.pointsUsed - pointsBefore
        report.finishedAt = Date()
        return report
    }

    /// A re-sent order counts as healed only once a re-read of the ERP shows it as Shopify has it (one document, its
    /// version, status, financial status, total and refunded amount; a version ahead of the compared one also
    /// matches: a newer Shopify state got there). Re-read by reference in rounds (after 0.5 s, doubling to 5 s) until
    /// `reconciler.verify_wait` has passed (checked before every read); a read the ERP refuses leaves the order
    /// pending. What still differs then is reported `heal_unconfirmed` (re-sent: the next run compares it again).
    /// An order Shopify changed again after the compare (ahead in the ERP and different) is unconfirmed too.
    func confirm(
        _ resent: [String: (id: Int64, order: ShopifyOrderSummary)], into report: inout ReconcileReport, runId: String,
        progress: ReconcileProgress.Sink?
    ) async throws {
        guard !resent.isEmpty else { return }
        var pending = resent
        let deadline = ContinuousClock.now + settings.verifyWait
        // The forwarder needs a moment for what was just re-sent; an ERP busy with those writes may refuse a read
        // (429, 503, a timeout): that order stays pending, the run goes on, and only the deadline ends the wait.
        var pause = Duration.milliseconds(500)
        var unreadable = 0
        confirming: while !pending.isEmpty, ContinuousClock.now < deadline {
            try await Task.sleep(for: min(pause, deadline - ContinuousClock.now))
            pause = min(pause * 2, .seconds(5))
            await progress?(.init(runId: runId, phase: "confirming healed orders in the ERP", done: resent.count - pending.count, total: resent.count))
            for ref in pending.keys.sorted() {
                if ContinuousClock.now >= deadline { break confirming }
                let item = pending[ref]!
                let documents: [ERPOrderRecord]
                do {
                    documents = try await erp.salesOrders(externalRef: ref)
                } catch {
                    unreadable += 1
                    continue
                }
                let updatedMs = Timestamp.milliseconds(item.order.updatedAt) ?? 0
                let differences = Self.compare(item.order, updatedMs: updatedMs, documents: documents, ref: ref)
                if differences.allSatisfy({ $0.kind == "erp_ahead" }) {
                    pending[ref] = nil
                    report.healed += 1
                }
            }
        }
        if unreadable > 0 {
            logger.warning(
                "ERP reads failed while confirming re-sent orders (those orders stay unconfirmed unless a later read matched)",
                metadata: ["run_id": "\(runId)", "failed_reads": "\(unreadable)"])
        }
        for (ref, item) in pending.sorted(by: { $0.key < $1.key }) {
            report.reported += 1
            report.record(
                .init(kind: "heal_unconfirmed", id: "\(item.id)", ref: ref, action: "reported"), itemised: settings.itemised)
        }
        if !pending.isEmpty {
            logger.warning(
                "re-sent orders not yet as Shopify has them in the ERP: reported heal_unconfirmed",
                metadata: ["run_id": "\(runId)", "unconfirmed": "\(pending.count)", "wait": "\(settings.verifyWait)"])
        }
    }

    /// Financial statuses REST's `financial_status` (what the bridge writes) and GraphQL's `displayFinancialStatus`
    /// (what the reconciler reads, upper-cased) both name (Shopify Admin API 2026-07, `OrderDisplayFinancialStatus`).
    static let financialStatuses: Set<String> = [
        "authorized", "paid", "partially_paid", "partially_refunded", "pending", "refunded", "voided",
    ]

    /// How Shopify's order and the ERP's documents for it differ (empty: they match).
    static func compare(
        _ order: ShopifyOrderSummary, updatedMs: Int64, documents: [ERPOrderRecord], ref: String
    ) -> [ReconcileReport.Difference] {
        let id = order.legacyResourceId
        guard let doc = documents.first else {
            return [.init(kind: "missing_in_erp", id: id, ref: ref, shopify: order.name, erp: "none", action: "")]
        }
        var out: [ReconcileReport.Difference] = []
        if documents.count > 1 {
            out.append(.init(kind: "duplicate_in_erp", id: id, ref: ref, shopify: order.name, erp: documents.map(\.documentNumber).joined(separator: ","), action: ""))
        }
        let erpUpdated = doc.version.split(separator: "|").first.flatMap { Timestamp.milliseconds(String($0)) } ?? 0
        if erpUpdated < updatedMs {
            out.append(.init(kind: "version_behind", id: id, ref: ref, shopify: order.updatedAt, erp: doc.version, action: ""))
        } else if erpUpdated > updatedMs {
            out.append(.init(kind: "erp_ahead", id: id, ref: ref, shopify: order.updatedAt, erp: doc.version, action: ""))
        }
        let status = order.isCancelled ? "cancelled" : "open"
        if doc.status != status { out.append(.init(kind: "status", id: id, ref: ref, shopify: status, erp: doc.status, action: "")) }
        // Compared only where the ERP keeps it (a change within the same `updated_at` second shows nowhere else) and
        // both sides hold a value REST and GraphQL share (`financialStatuses`): GraphQL's EXPIRED, or an ERP's own
        // words, are not compared.
        if let erp = doc.financialStatus?.lowercased(), let shopify = order.displayFinancialStatus?.lowercased(),
            Self.financialStatuses.contains(erp), Self.financialStatuses.contains(shopify), erp != shopify
        {
            out.append(.init(kind: "financial_status", id: id, ref: ref, shopify: shopify, erp: erp, action: ""))
        }
        if doc.total.value != order.total.value {
            out.append(.init(kind: "total", id: id, ref: ref, shopify: "\(order.total)", erp: "\(doc.total)", action: ""))
        }
        if doc.refundedTotal.value != order.refunded.value {
            out.append(.init(kind: "refunded", id: id, ref: ref, shopify: "\(order.refunded)", erp: "\(doc.refundedTotal)", action: ""))
        }
        return out
    }
}
