import BridgeDomain
import BridgeMessaging
import ERP
import Foundation
import Ledger
import Logging
import Messaging
import ServiceLifecycle
import Shopify
import Synchronization
import Worker

/// The order-forwarder: `q.orders` consumed by the shared `QueueWorker` with `OrderForwardingHandler` as its logic.
/// The worker owns consuming, acking after the effect, retries and the dead-letter queue, the ERP circuit breaker
/// and draining; this type only wires them together.
public final class OrderForwarder: Service, Sendable {
    public typealias Settings = OrderForwardingHandler.Settings

    public let worker: QueueWorker<OrderForwardingHandler>
    public var settings: Settings { worker.handler.settings }
    public var metrics: ForwarderMetrics { worker.handler.metrics }
    /// How many deliveries this forwarder settled, by outcome (created, updated, unchanged, stale_skipped,
    /// refund_recorded, refund_duplicate, ignored_topic, retried, dead_lettered, requeued): the end state a test waits
    /// for before it checks the ERP, instead of sleeping.
    public var settledCounts: [String: Int] { worker.settledCounts }
    public var settledTotal: Int { worker.settledTotal }

    /// - Parameters:
    ///   - shops: shop domain -> shop id (from configuration).
    ///   - consumer: the connection to consume on; `publisher` republishes to retry/DLQ with confirms.
    ///   - erp: the ERP adapter; for `erpProfile: .plain` it must also be a `PlainERPPort`.
    public init(
        settings: Settings, shops: [String: String], consumer: AMQPConnection, publisher: AMQPConnection, erp: any ERPPort,
        ledger: any OrderLedger, metrics: ForwarderMetrics = ForwarderMetrics(), logger: Logger
    ) throws {
        let handler = try OrderForwardingHandler(settings: settings, shops: shops, erp: erp, ledger: ledger, metrics: metrics, logger: logger)
        worker = QueueWorker(
            settings: .init(
                queue: settings.queue, prefetch: settings.forwarder.prefetch, concurrency: settings.forwarder.concurrency,
                retryDelays: settings.retryDelays,
                circuit: (settings.forwarder.breakerThreshold, settings.forwarder.breakerProbeInterval),
                consumerTagPrefix: "order-forwarder", maxHold: settings.maxHold),
            handler: handler, consumer: consumer, publisher: publisher, logger: logger)
    }

    /// Consumes until graceful shutdown (stop taking deliveries, finish the ones in flight, then cancel the consumer
    /// so undelivered prefetch returns to the queue) or cancellation.
    public func run() async throws { try await worker.run() }
}

/// Makes each ERP sales order match the latest Shopify state, exactly once in effect.
///
/// Per delivery: resolve the shop, take the order's lease in the ledger, skip versions not newer than the one
/// applied, map (exact `Decimal` totals), write the customer (only where the source-of-truth policy lets Shopify own
/// customers) and the sales order by external reference, record the version and ERP document, release the lease.
/// Every write is idempotent: a crash anywhere repeats at most an upsert the ERP already holds.
///
/// Failures: permanent (mapping, invalid JSON, ERP validation) -> dead-letter queue at once; transient -> the retry
/// levels; an ERP outage opens the worker's circuit breaker and the message is held until a probe succeeds.
public final class OrderForwardingHandler: QueueHandler, Sendable {
    public struct Settings: Sendable {
        public var queue: String
        public var forwarder: OrderForwarderSettings
        public var retryDelays: [Duration]
        /// Shopify customers go to the ERP only if configured AND the policy lets Shopify own customers.
        public var writeCustomers: Bool
        /// What the ERP guarantees; with `.plain` the forwarder provides exactly once and version order itself.
        public var erpProfile: BridgeConfig.ERPProfile
        /// `topology.max_hold`: the longest a delivery is held while the ERP circuit is open.
        public var maxHold: Duration
        /// `erp.timeout`: no request is sent later than this after its intent was marked (the HTTP deadline covers
        /// waiting for a connection too), so an unknown outcome is settled `erpTimeout + unknownOutcomeWait` after it.
        public var erpTimeout: Duration

        public init(
            queue: String = BridgeTopology.orders.name, forwarder: OrderForwarderSettings, retryDelays: [Duration], writeCustomers: Bool,
            erpProfile: BridgeConfig.ERPProfile = .upsert, maxHold: Duration = .seconds(600), erpTimeout: Duration = .seconds(10)
        ) {
            self.maxHold = maxHold
            self.erpTimeout = erpTimeout
            self.queue = queue
            self.forwarder = forwarder
            self.retryDelays = retryDelays
            self.writeCustomers = writeCustomers
            self.erpProfile = erpProfile
        }

        /// From the bridge configuration; the customer write is gated by the source-of-truth policy here, in code,
        /// not only by config validation.
        public init(config: BridgeConfig) {
            self.init(
                forwarder: config.orderForwarder, retryDelays: config.topology.retryDelays,
                writeCustomers: config.orderForwarder.syncCustomers && config.policy.mayWrite(.customers, into: .erp),
                erpProfile: config.erp.profile, maxHold: config.topology.maxHold, erpTimeout: config.erp.timeout)
        }
    }

    /// The topics whose body is the order resource (from the topic catalogue).
    static let orderTopics = TopicCatalogue.shopifyNames(.order)
    static let refundTopics = TopicCatalogue.shopifyNames(.refund)

    public let settings: Settings
    public var subject: String { "order" }
    let shops: [String: String]
    let erp: any ERPPort
    /// Set for the plain profile (the same adapter, seen through its create/find/update port).
    let plainERP: (any PlainERPPort)?
    let ledger: any OrderLedger
    let mapper: OrderMapper
    public let metrics: ForwarderMetrics
    let logger: Logger
    let instance = UUID().uuidString.prefix(8)

    public init(
        settings: Settings, shops: [String: String], erp: any ERPPort, ledger: any OrderLedger,
        metrics: ForwarderMetrics = ForwarderMetrics(), logger: Logger
    ) throws {
        if settings.erpProfile == .plain {
            guard let plain = erp as? any PlainERPPort else {
                throw ConfigError(
                    key: "erp.profile", problem: "'plain' needs an ERP adapter with create, find and update",
                    fix: "use the REST adapter, or erp.profile: upsert")
            }
            plainERP = plain
        } else {
            plainERP = nil
        }
        self.settings = settings
        self.shops = shops
        self.erp = erp
        self.ledger = ledger
        self.mapper = OrderMapper(settings: settings.forwarder.mapping)
        self.metrics = metrics
        self.logger = logger
    }

    public func prepare() async throws { try await ledger.migrate() }

    // MARK: One delivery

    /// What processing did, for the metrics and the log line.
    enum Outcome: Sendable {
        case forwarded(ERPUpsertResult.Outcome, document: String)
        case staleSkipped(applied: OrderVersion, document: String)
        case refundRecorded(document: String)
        case refundDuplicate(document: String)
        case ignored

        var erpDocument: String? {
            switch self {
            case .forwarded(_, let d), .staleSkipped(_, let d), .refundRecorded(let d), .refundDuplicate(let d): return d
            case .ignored: return nil
            }
        }

        var calledERP: Bool {
            switch self {
            case .forwarded, .refundRecorded: return true
            default: return false
            }
        }
    }

    public func handle(_ message: InboundMessage, context: inout WorkContext) async throws -> WorkOutcome {
        let outcome = try await process(message, context: &context)
        context.traceDetail = outcome.erpDocument.map { "ERP document \($0)" }
        return WorkOutcome(record(outcome, env: message.envelope, logger: context.logger), calledDependency: outcome.calledERP)
    }

    public func classify(_ error: any Error) -> WorkFailure {
        switch error {
        case let u as OutcomeUnknown:
            return .deferred(
                ProcessingFailure(errorClass: "outcome_unknown", message: u.description, retryable: true), wait: u.wait, outage: u.outage)
        case let e as ERPError where e.indicatesOutage:
            return .outage(ProcessingFailure(errorClass: e.code.rawValue, message: e.message, retryable: true), retryAfter: e.retryAfter)
        case let e as ERPError:
            return .failed(ProcessingFailure(errorClass: e.code.rawValue, message: e.message, retryable: e.isRetryable), dependencyAnswered: true)
        case let f as ProcessingFailure:
            return .failed(f)
        case let e as LedgerError:
            return .failed(ProcessingFailure(errorClass: "lease_lost", message: "\(e)", retryable: true))
        default:
            // The ledger (database) failed: transient.
            return .failed(ProcessingFailure(errorClass: "ledger_unavailable", message: "\(error)", retryable: true))
        }
    }

    func process(_ message: InboundMessage, context: inout WorkContext) async throws -> Outcome {
        let env = message.envelope
        guard let domain = env.shopDomain, let shop = shops[domain] else {
            throw ProcessingFailure(
                errorClass: "unknown_shop", message: "shop '\(env.shopDomain ?? "none")' is not configured (shops, shop.<id>.domain)",
                retryable: false)
        }
        if Self.refundTopics.contains(env.topic) {
            return try await processRefund(message, shop: shop, context: &context)
        }
        guard Self.orderTopics.contains(env.topic) else { return .ignored }
        let order: ShopifyOrder
        do {
            order = try ShopifyOrder.decode(message.body)
        } catch {
            throw ProcessingFailure(errorClass: "invalid_json", message: "not a Shopify order: \(Self.describe(error))", retryable: false)
        }
        context.logger[metadataKey: "order_id"] = "\(order.id)"
        context.traceSubject = "\(order.id)"
        guard let updatedMs = Timestamp.milliseconds(order.updatedAt) else {
            throw ProcessingFailure(errorClass: "invalid_timestamp", message: "updated_at '\(order.updatedAt)' is not ISO-8601", retryable: false)
        }
        let version = OrderVersion(updatedAtMs: updatedMs, triggeredAtMs: env.triggeredAtMs ?? 0)
        // A reconciliation replay: Shopify's state as the reconciler read it (its version from Shopify's clock), for an
        // order the ERP lacks or holds behind; what the ledger recorded is not trusted to be in the ERP.
        let replay = env.source == .reconciler
        if let run = env.reconcileRun { context.logger[metadataKey: "reconcile_run"] = "\(run)" }

        // Workers of this process queue behind each other per order without touching the database; the ledger's
        // lease then guards against workers of other processes.
        let log = context.logger
        let waiter = context
        let outcome = try await context.serialized("\(shop)/\(order.id)") {
            try await self.applyLeased(order, version: version, shop: shop, replay: replay, waiter: waiter, logger: log)
        }
        if let document = outcome.erpDocument { context.logger[metadataKey: "erp_document"] = "\(document)" }
        return outcome
    }

    /// Takes the order's lease, skips a version not newer than the applied one, else applies it and records it
    /// (fenced: a worker whose lease was taken over records nothing). The lease is renewed while the ERP works.
    private func applyLeased(
        _ order: ShopifyOrder, version: OrderVersion, shop: String, replay: Bool, waiter: WorkContext, logger: Logger
    ) async throws -> Outcome {
        let owner = "\(instance)-\(UUID().uuidString.prefix(8))"
        let applied = try await lease(shop: shop, orderId: order.id, owner: owner, waiter: waiter)
        let held = HeldLease(owner: owner, ttl: settings.forwarder.lockTTL)
        do {
            // A replay is not held against the ledger (which may describe an ERP since restored): the ERP decides,
            // keeping what is as new or newer (upsert: its version check; plain: the lookup in `applyPlain`).
            if let applied, applied.version >= version, !replay {
                try await ledger.release(shop: shop, orderId: order.id, owner: owner, recording: nil)
                return .staleSkipped(applied: applied.version, document: applied.erpDocument)
            }
            let result = try await withLeaseRenewal(shop: shop, orderId: order.id, lease: held, logger: logger) {
                try await self.apply(order, version: version, shop: shop, lease: held, applied: applied, replay: replay, logger: logger)
            }
            try await ledger.release(
                shop: shop, orderId: order.id, owner: owner,
                recording: AppliedVersion(version: result.version, erpDocument: result.document))
            return .forwarded(result.outcome, document: result.document)
        } catch {
            // The lease is released on every path; if even that fails it expires after lock_ttl.
            _ = try? await ledger.release(shop: shop, orderId: order.id, owner: owner, recording: nil)
            if case LedgerError.leaseLost = error { metrics.leaseLost() }
            throw error
        }
    }

    /// What a write did: the outcome, the ERP document and the version to record.
    struct Applied: Sendable {
        var outcome: ERPUpsertResult.Outcome
        var document: String
        var version: OrderVersion
    }

    /// Maps and writes customer (if allowed) and sales order. The caller holds the order's lease.
    private func apply(
        _ order: ShopifyOrder, version: OrderVersion, shop: String, lease: HeldLease, applied: LedgerEntry?, replay: Bool,
        logger: Logger
    ) async throws -> Applied {
        let mapped: MappedOrder
        do {
            mapped = try mapper.map(order, shop: shop, triggeredAtMs: version.triggeredAtMs)
        } catch {
            throw ProcessingFailure(errorClass: error.code.rawValue, message: error.message, retryable: false)
        }
        if settings.writeCustomers, let customer = mapped.customer {
            try lease.check(shop: shop, orderId: order.id)
            _ = try await timed("upsert_customer") { () async throws(ERPError) in try await self.erp.upsertCustomer(customer) }
        }
        if let plain = plainERP {
            return try await applyPlain(
                mapped.salesOrder, plain, version: version, shop: shop, orderId: order.id, lease: lease, applied: applied,
                replay: replay, logger: logger)
        }
        try lease.check(shop: shop, orderId: order.id)
        let result = try await timed("upsert_sales_order") { () async throws(ERPError) in
            try await self.erp.upsertSalesOrder(mapped.salesOrder)
        }
        guard result.outcome == .staleIgnored else {
            return Applied(outcome: result.outcome, document: result.documentNumber, version: version)
        }
        // The ledger holds nothing as new as `version`, yet the ERP says it holds something at least as new.
        let held = OrderVersion(erpVersion: result.version)
        let meta: Logger.Metadata = ["version": "\(version)", "erp_version": "\(result.version)", "erp_document": "\(result.documentNumber)"]
        switch held {
        case .some(let h) where h == version:
            // Written before, but the record was lost (a crash between the ERP's commit and the ledger's).
            metrics.erpStale("same_version")
            logger.info("ERP already held this version; recording it", metadata: meta)
            return Applied(outcome: .staleIgnored, document: result.documentNumber, version: version)
        case .some(let h) where h > version:
            // Another writer (or a ledger restored from an older backup): the ERP is ahead; the ledger catches up. For a
            // replay this is the expected answer where the ERP is in step: it is not held against the ledger.
            metrics.erpStale("erp_newer")
            if replay {
                logger.info("the ERP holds a newer version than the replay; recording the ERP's", metadata: meta)
            } else {
                logger.warning("ERP holds a newer version than the ledger knew; recording the ERP's", metadata: meta)
            }
            return Applied(outcome: .staleIgnored, document: result.documentNumber, version: h)
        default:
            // The ERP ignored a version the bridge orders newer: an update would be lost. Never recorded as applied.
            metrics.erpStale("erp_disagrees")
            logger.error("ERP ignored a version the ledger orders newer; dead-lettering instead of recording it", metadata: meta)
            throw ProcessingFailure(
                errorClass: "erp_version_order",
                message: "the ERP ignored version \(version.erpVersion) as stale while holding \(result.version); it must order versions as strings (docs/erp-api.yaml)",
                retryable: false)
        }
    }

    /// The plain profile: the ERP neither deduplicates nor checks versions, so the ledger does both.
    ///
    /// Every create or overwrite is announced (a write intent) under the lease before it is sent, and the intent is
    /// settled when its result is recorded. An intent still standing means an earlier write's outcome is unknown: it
    /// timed out, failed with a 5xx or a lost connection after sending, or its worker died or lost its lease
    /// mid-call. The ERP may still commit it, so while the intent is younger than `settleAfter` (`erp.timeout` +
    /// `unknown_outcome_wait`) no other write of the order is made (the delivery is parked, no attempt counted); once
    /// it is older the reference is looked up, and the write goes to what the ERP holds: nothing when it already holds
    /// this version or a newer one, else an update of the document found, a create only when the lookup is empty. A reconciliation replay looks the reference up too: it comes because the ERP may
    /// not hold the document the ledger recorded (an ERP restored from an older backup).
    private func applyPlain(
        _ salesOrder: ERPSalesOrder, _ plain: any PlainERPPort, version: OrderVersion, shop: String, orderId: Int64,
        lease: HeldLease, applied: LedgerEntry?, replay: Bool, logger: Logger
    ) async throws -> Applied {
        var document = applied?.erpDocument
        let unsure = try await settledIntent(.salesOrder, kind: "sales_order", shop: shop, orderId: orderId)
        if replay || unsure {
            try lease.check(shop: shop, orderId: orderId)
            let matches = try await unlessUnsure(unsure, kind: "sales order") {
                try await self.timed("find_sales_order") { () async throws(ERPError) in
                    try await plain.findSalesOrders(externalRef: salesOrder.externalRef)
                }
            }
            let found = matches.map(\.documentNumber)
            if unsure {
                metrics.unknownOutcomeResolved("sales_order", found: found.count)
                logger.info(
                    "an earlier write's outcome was unknown; looked the reference up after the wait",
                    metadata: ["found": "\(found.count)", "erp_documents": "\(found.joined(separator: ","))"])
            }
            if found.count > 1 {
                logger.error(
                    "ERP holds several sales orders for one reference; updating the oldest",
                    metadata: ["erp_documents": "\(found.joined(separator: ","))"])
            }
            if let recorded = document, !found.contains(recorded) {
                logger.warning(
                    "the ERP no longer holds the sales order the ledger recorded",
                    metadata: ["ledger_document": "\(recorded)", "found": "\(found.joined(separator: ","))"])
            }
            document = found.first
            // A write whose outcome was unknown may have landed after all, and it may be newer than this version (the
            // orders/paid behind a timed-out orders/create): never overwrite what the ERP holds with an older version.
            if let first = matches.first, let held = first.version.flatMap(OrderVersion.init(erpVersion:)), held >= version {
                metrics.erpStale("erp_newer")
                logger.info(
                    "the ERP already holds this version or a newer one; recording it instead of writing",
                    metadata: ["version": "\(version)", "erp_version": "\(held)", "erp_document": "\(first.documentNumber)"])
                return Applied(outcome: .staleIgnored, document: first.documentNumber, version: held)
            }
        }
        return try await announced(.salesOrder, kind: "sales_order", shop: shop, orderId: orderId, lease: lease) {
            if let document {
                try await self.timed("update_sales_order") { () async throws(ERPError) in
                    try await plain.updateSalesOrder(document: document, salesOrder)
                }
                return Applied(outcome: .updated, document: document, version: version)
            }
            let created = try await self.timed("create_sales_order") { () async throws(ERPError) in try await plain.createSalesOrder(salesOrder) }
            return Applied(outcome: .created, document: created, version: version)
        }
    }

    /// How long after its intent was marked (or touched) a write's outcome is settled: its request reached the ERP
    /// within `erp.timeout` or never, and the ERP committed it within `unknown_outcome_wait` of receiving it or never.
    var settleAfter: Duration { settings.erpTimeout + settings.forwarder.unknownOutcomeWait }

    /// Whether an earlier write of `intent` stands whose outcome is unknown but settled (older than `settleAfter`:
    /// look the ERP up before writing). Throws `OutcomeUnknown` while it is younger: the ERP may still commit it, and
    /// the order is fenced until then.
    private func settledIntent(_ intent: WriteIntent, kind: String, shop: String, orderId: Int64) async throws -> Bool {
        guard let age = try await ledger.intentAge(intent, shop: shop, orderId: orderId) else { return false }
        let wait = settleAfter
        guard age >= wait else {
            metrics.unknownOutcome(kind, "fenced")
            throw OutcomeUnknown(what: kind, wait: wait - age, outage: false, cause: "an earlier write may still be committed by the ERP")
        }
        return true
    }

    /// Runs a lookup that resolves an unknown outcome: while `unsure`, an ERP failure leaves the order fenced (parked,
    /// no attempt counted) instead of walking it to the dead-letter queue.
    private func unlessUnsure<T: Sendable>(_ unsure: Bool, kind: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let e as ERPError where unsure && e.indicatesOutage {
            throw OutcomeUnknown(
                what: kind, wait: settings.retryDelays.first ?? .seconds(5), outage: true,
                cause: "the lookup that would settle an earlier write failed (\(e.code.rawValue))")
        }
    }

    /// Sends one mutating write of the plain profile: checks the lease is still held, records the intent, calls.
    /// A failure that may have reached the ERP touches the intent (the wait counts from when the caller gave up) and
    /// is thrown as `OutcomeUnknown`; one that certainly did not clears it. The caller's record settles a success.
    private func announced<T: Sendable>(
        _ intent: WriteIntent, kind: String, shop: String, orderId: Int64, lease: HeldLease, _ write: () async throws -> T
    ) async throws -> T {
        try lease.check(shop: shop, orderId: orderId)
        guard try await ledger.markIntent(intent, shop: shop, orderId: orderId, owner: lease.owner) else {
            throw LedgerError.leaseLost(shop: shop, orderId: orderId)
        }
        try lease.check(shop: shop, orderId: orderId)
        do {
            return try await write()
        } catch let e as ERPError where e.mayHaveApplied {
            metrics.unknownOutcome(kind, "sent")
            _ = try? await ledger.markIntent(intent, shop: shop, orderId: orderId, owner: lease.owner)
            throw OutcomeUnknown(
                what: kind, wait: settleAfter, outage: e.indicatesOutage,
                cause: "\(e.code.rawValue): the ERP may still commit it")
        } catch let e as ERPError {
            _ = try? await ledger.clearIntent(intent, shop: shop, orderId: orderId, owner: lease.owner)
            throw e
        }
    }

    /// Runs `body` while renewing the order's lease every third of `lock_ttl`, so a slow ERP call cannot outlive it.
    /// Fenced at the write: a renewal that finds the lease gone (taken over, or released by another), or no renewal
    /// succeeding before the lease's local deadline (the ledger unreachable, the process paused), cancels `body`, and
    /// `body` checks the lease before each ERP call, so a worker that lost the order makes no further call for it.
    private func withLeaseRenewal<T: Sendable>(
        shop: String, orderId: Int64, lease: HeldLease, logger: Logger, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let ttl = settings.forwarder.lockTTL
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                while true {
                    try await Task.sleep(for: min(ttl / 3, max(.zero, lease.remaining - .milliseconds(1))))
                    let started = ContinuousClock.now
                    do {
                        if try await self.ledger.renew(shop: shop, orderId: orderId, owner: lease.owner, ttl: ttl) {
                            lease.renewed(at: started)
                            continue
                        }
                        lease.lose()
                        logger.warning("order lease lost while the ERP call was running; cancelling it", metadata: ["lock_ttl": "\(ttl)"])
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        logger.warning("could not renew the order lease", metadata: ["error": "\(error)"])
                        guard lease.remaining <= .zero else { continue }
                        lease.lose()
                        logger.warning("order lease expired without a renewal; cancelling the ERP call", metadata: ["lock_ttl": "\(ttl)"])
                    }
                    throw LedgerError.leaseLost(shop: shop, orderId: orderId)
                }
            }
            while let next = try await group.next() {
                if let value = next {
                    group.cancelAll()
                    return value
                }
            }
            throw CancellationError()
        }
    }

    private func processRefund(_ message: InboundMessage, shop: String, context: inout WorkContext) async throws -> Outcome {
        let refund: ShopifyRefund
        do {
            refund = try ShopifyRefund.decode(message.body)
        } catch {
            throw ProcessingFailure(errorClass: "invalid_json", message: "not a Shopify refund: \(Self.describe(error))", retryable: false)
        }
        context.logger[metadataKey: "order_id"] = "\(refund.orderId)"
        context.traceSubject = "\(refund.orderId)"
        context.logger[metadataKey: "refund_id"] = "\(refund.id)"
        // A reconciliation replay comes because the ERP may lack the credit note the ledger recorded (an ERP restored
        // from an older backup): the ERP is asked, not the ledger.
        let replay = message.envelope.source == .reconciler
        if !replay, let doc = try await ledger.refundDocument(shop: shop, refundId: refund.id) {
            return .refundDuplicate(document: doc)
        }
        let log = context.logger
        let waiter = context
        // Under the order's lease: two deliveries of one refund never create two credit notes.
        return try await context.serialized("\(shop)/\(refund.orderId)") {
            try await self.recordRefundLeased(refund, shop: shop, replay: replay, waiter: waiter, logger: log)
        }
    }

    private func recordRefundLeased(
        _ refund: ShopifyRefund, shop: String, replay: Bool, waiter: WorkContext, logger: Logger
    ) async throws -> Outcome {
        let owner = "\(instance)-\(UUID().uuidString.prefix(8))"
        let applied = try await lease(shop: shop, orderId: refund.orderId, owner: owner, waiter: waiter)
        let held = HeldLease(owner: owner, ttl: settings.forwarder.lockTTL)
        do {
            let outcome = try await withLeaseRenewal(shop: shop, orderId: refund.orderId, lease: held, logger: logger) {
                try await self.recordRefund(refund, shop: shop, lease: held, applied: applied, replay: replay, logger: logger)
            }
            try await ledger.release(shop: shop, orderId: refund.orderId, owner: owner, recording: nil)
            return outcome
        } catch {
            _ = try? await ledger.release(shop: shop, orderId: refund.orderId, owner: owner, recording: nil)
            if case LedgerError.leaseLost = error { metrics.leaseLost() }
            throw error
        }
    }

    /// The caller holds the order's lease. Plain profile: the credit note is announced like a sales-order write
    /// (`announced`), and an earlier one whose outcome is unknown is waited for and looked up (`settledIntent`). A
    /// replay looks the refund up in the ERP whatever the ledger says, and books it again only if the ERP lacks it.
    private func recordRefund(
        _ refund: ShopifyRefund, shop: String, lease: HeldLease, applied: LedgerEntry?, replay: Bool, logger: Logger
    ) async throws -> Outcome {
        let recorded = try await ledger.refundDocument(shop: shop, refundId: refund.id)
        if !replay, let recorded { return .refundDuplicate(document: recorded) }
        let request = mapper.map(refund, shop: shop)
        var document: String
        if let plain = plainERP {
            let intent = WriteIntent.creditNote(refundId: refund.id)
            let unsure = try await settledIntent(intent, kind: "credit_note", shop: shop, orderId: refund.orderId)
            var found: [String] = []
            if unsure || replay {
                try lease.check(shop: shop, orderId: refund.orderId)
                found = try await unlessUnsure(unsure, kind: "credit note") {
                    try await self.timed("find_credit_note") { () async throws(ERPError) in try await plain.findCreditNotes(refundRef: request.refundRef) }
                }
                if unsure { metrics.unknownOutcomeResolved("credit_note", found: found.count) }
                if found.count > 1 {
                    logger.error("ERP holds several credit notes for one refund", metadata: ["erp_documents": "\(found.joined(separator: ","))"])
                }
            }
            if let existing = found.first {
                if replay, recorded != nil { return .refundDuplicate(document: existing) }
                document = existing
            } else {
                // The credit note goes against the order's document as the ERP holds it now (a replay: the ledger's
                // may be gone with a restored backup; the order's replay ahead of this one re-created it).
                let orderDocument: String
                if replay {
                    try lease.check(shop: shop, orderId: refund.orderId)
                    let orders = try await timed("find_sales_order") { () async throws(ERPError) in
                        try await plain.findSalesOrders(externalRef: request.orderRef)
                    }
                    guard let first = orders.first else { throw ERPError(.notFound, "sales order \(request.orderRef) not in the ERP yet") }
                    orderDocument = first.documentNumber
                } else {
                    guard let known = applied?.erpDocument else {
                        // The order's own write is in the ERP's hands with an unknown outcome: wait with it, uncounted
                        // (`settledIntent` throws while it is fenced). Once that is settled, a missing order is counted
                        // like any other (it may be dead-lettered).
                        _ = try await settledIntent(.salesOrder, kind: "credit_note", shop: shop, orderId: refund.orderId)
                        // Like the upsert profile's 404: the order may still come (a refund delivered before its order).
                        throw ERPError(.notFound, "sales order \(request.orderRef) not forwarded yet")
                    }
                    orderDocument = known
                }
                document = try await announced(intent, kind: "credit_note", shop: shop, orderId: refund.orderId, lease: lease) {
                    try await self.timed("create_credit_note") { () async throws(ERPError) in
                        try await plain.createCreditNote(request, orderDocument: orderDocument)
                    }
                }
            }
        } else {
            try lease.check(shop: shop, orderId: refund.orderId)
            // Idempotent by refund reference: a replay re-books a credit note the ERP lost, and returns the one it holds.
            document = try await timed("record_refund") { () async throws(ERPError) in try await self.erp.recordRefund(request) }
        }
        try lease.check(shop: shop, orderId: refund.orderId)
        try await ledger.recordRefund(shop: shop, refundId: refund.id, orderId: refund.orderId, erpDocument: document)
        return .refundRecorded(document: document)
    }

    /// Takes the order's lease (and reads what was applied), waiting up to `lockWait` for another worker (another
    /// process: this process's own deliveries of the order queue in `serialized`); then gives up as retryable. The
    /// wait leaves the delivery's handler slot to another order (`WorkContext.waiting`).
    private func lease(shop: String, orderId: Int64, owner: String, waiter: WorkContext) async throws -> LedgerEntry? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: settings.forwarder.lockWait)
        let ttl = settings.forwarder.lockTTL
        if case .acquired(let entry) = try await ledger.acquire(shop: shop, orderId: orderId, owner: owner, ttl: ttl) {
            return entry
        }
        return try await waiter.waiting {
            try await self.pollLease(shop: shop, orderId: orderId, owner: owner, deadline: deadline)
        }
    }

    private func pollLease(shop: String, orderId: Int64, owner: String, deadline: ContinuousClock.Instant) async throws -> LedgerEntry? {
        let clock = ContinuousClock()
        var pause = Duration.milliseconds(5)
        while true {
            guard clock.now < deadline else {
                throw ProcessingFailure(
                    errorClass: "order_busy", message: "another worker held order \(orderId) for longer than the lock wait",
                    retryable: true)
            }
            // Capped at 20 ms: the holder is usually one ERP call from done, and past its release this delivery's
            // order waits for nothing. A waiter polls at most 50 times a second, one indexed row each.
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(20))
            if case .acquired(let entry) = try await ledger.acquire(
                shop: shop, orderId: orderId, owner: owner, ttl: settings.forwarder.lockTTL)
            {
                return entry
            }
        }
    }

    private func timed<T>(_ operation: String, _ body: () async throws(ERPError) -> T) async throws(ERPError) -> T {
        let start = ContinuousClock.now
        do {
            let v = try await body()
            metrics.erpCall(operation, .now - start, ok: true)
            return v
        } catch {
            metrics.erpCall(operation, .now - start, ok: false)
            throw error
        }
    }

    // MARK: Settling

    /// Counts and logs what happened; returns the outcome's label (for the worker's metrics and tallies).
    private func record(_ outcome: Outcome, env: InboundEnvelope, logger: Logger) -> String {
        switch outcome {
        case .forwarded(let result, let document):
            let label = result == .staleIgnored ? "unchanged" : result.rawValue
            metrics.order(label)
            if let t = env.triggeredAtMs {
                metrics.endToEnd(.milliseconds(Timestamp.milliseconds(Date()) - t))
            }
            logger.info("order forwarded", metadata: ["result": "\(result.rawValue)", "erp_document": "\(document)"])
            return label
        case .staleSkipped(let applied, _):
            metrics.order("stale_skipped")
            logger.debug("stale order version skipped", metadata: ["applied_version": "\(applied)"])
            return "stale_skipped"
        case .refundRecorded(let document):
            metrics.refund("recorded")
            logger.info("refund recorded", metadata: ["erp_document": "\(document)"])
            return "refund_recorded"
        case .refundDuplicate:
            metrics.refund("duplicate_skipped")
            logger.debug("refund already recorded")
            return "refund_duplicate"
        case .ignored:
            metrics.order("ignored_topic")
            logger.debug("topic not forwarded")
            return "ignored_topic"
        }
    }

    /// A decoding error without payload values (which may hold personal data).
    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let ctx):
            return "missing \((ctx.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            return "wrong type at \(ctx.codingPath.map(\.stringValue).joined(separator: "."))"
        case DecodingError.dataCorrupted(let ctx):
            return ctx.codingPath.isEmpty ? "invalid JSON" : "invalid value at \(ctx.codingPath.map(\.stringValue).joined(separator: "."))"
        default:
            return "unreadable"
        }
    }
}

/// An earlier write's outcome is unknown (or the write just made failed after it may have reached the ERP): the
/// order stays fenced for `wait`, then the ERP is asked what it holds. Parked, not failed: no attempt is counted.
struct OutcomeUnknown: Error, CustomStringConvertible {
    var what: String
    var wait: Duration
    /// The ERP failed on the way (counts towards the circuit).
    var outage: Bool
    var cause: String

    var description: String { "\(what) write outcome unknown (\(cause)); the order waits \(wait) before the ERP is asked what it holds" }
}

/// The order's lease as its holder sees it, by the local monotonic clock: valid until 90% of `lock_ttl` after the
/// last acquire or renewal began (the ledger's expiry is later still, its clock started after ours), or lost at
/// once when a renewal found it gone. `check` before every ERP call: a holder that was paused, or cut off from the
/// ledger, past its lease makes no further call for the order.
final class HeldLease: Sendable {
    let owner: String
    private let ttl: Duration
    private let validUntil: Mutex<ContinuousClock.Instant?>

    init(owner: String, ttl: Duration) {
        self.owner = owner
        self.ttl = ttl
        // Made right after the acquire returned: the ledger's expiry was set a moment earlier, hence the wider margin.
        validUntil = Mutex(ContinuousClock.now.advanced(by: ttl * 8 / 10))
    }

    var remaining: Duration {
        validUntil.withLock { until in until.map { $0 - ContinuousClock.now } ?? .zero }
    }

    func renewed(at start: ContinuousClock.Instant) {
        validUntil.withLock { until in
            if until != nil { until = start.advanced(by: ttl * 9 / 10) }
        }
    }

    func lose() { validUntil.withLock { $0 = nil } }

    func check(shop: String, orderId: Int64) throws {
        guard remaining > .zero else { throw LedgerError.leaseLost(shop: shop, orderId: orderId) }
    }
}
