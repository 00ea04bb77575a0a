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
                consumerTagPrefix: "order-forwarder"),
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

        public init(
            queue: String = BridgeTopology.orders.name, forwarder: OrderForwarderSettings, retryDelays: [Duration], writeCustomers: Bool,
            erpProfile: BridgeConfig.ERPProfile = .upsert
        ) {
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
                erpProfile: config.erp.profile)
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
            return try await processRefund(message.body, shop: shop, context: &context)
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
        // A reconciliation replay: Shopify's state as the reconciler read it (its version is the read time), for an
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
        do {
            if let applied, applied.version >= version {
                try await ledger.release(shop: shop, orderId: order.id, owner: owner, recording: nil)
                return .staleSkipped(applied: applied.version, document: applied.erpDocument)
            }
            let result = try await withLeaseRenewal(shop: shop, orderId: order.id, owner: owner, logger: logger) {
                try await self.apply(order, version: version, shop: shop, owner: owner, applied: applied, replay: replay, logger: logger)
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
        _ order: ShopifyOrder, version: OrderVersion, shop: String, owner: String, applied: LedgerEntry?, replay: Bool,
        logger: Logger
    ) async throws -> Applied {
        let mapped: MappedOrder
        do {
            mapped = try mapper.map(order, shop: shop, triggeredAtMs: version.triggeredAtMs)
        } catch {
            throw ProcessingFailure(errorClass: error.code.rawValue, message: error.message, retryable: false)
        }
        if settings.writeCustomers, let customer = mapped.customer {
            _ = try await timed("upsert_customer") { () async throws(ERPError) in try await self.erp.upsertCustomer(customer) }
        }
        if let plain = plainERP {
            return try await applyPlain(
                mapped.salesOrder, plain, version: version, shop: shop, orderId: order.id, owner: owner, applied: applied,
                replay: replay, logger: logger)
        }
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
            // Another writer (or a ledger restored from an older backup): the ERP is ahead; the ledger catches up.
            metrics.erpStale("erp_newer")
            logger.warning("ERP holds a newer version than the ledger knew; recording the ERP's", metadata: meta)
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

    /// The plain profile: the ERP neither deduplicates nor checks versions, so the ledger does both. A create is
    /// announced (intent) under the lease before it is sent; finding an intent without a document means a crash
    /// between the create and the record, so the reference is looked up before creating again. A reconciliation
    /// replay looks it up too: it comes because the ERP may not hold the document the ledger recorded (an ERP
    /// restored from an older backup), and updating that document would fail or write into the wrong one.
    private func applyPlain(
        _ salesOrder: ERPSalesOrder, _ plain: any PlainERPPort, version: OrderVersion, shop: String, orderId: Int64,
        owner: String, applied: LedgerEntry?, replay: Bool, logger: Logger
    ) async throws -> Applied {
        var document = applied?.erpDocument
        let interrupted = !replay && document == nil ? try await ledger.hasIntent(.salesOrder, shop: shop, orderId: orderId) : false
        if replay || interrupted {
            let found = try await timed("find_sales_order") { () async throws(ERPError) in
                try await plain.findSalesOrders(externalRef: salesOrder.externalRef)
            }
            if interrupted { metrics.createRecovered("sales_order", found: found.count) }
            if found.count > 1 {
                logger.error(
                    "ERP holds several sales orders for one reference; updating the oldest",
                    metadata: ["erp_documents": "\(found.joined(separator: ","))"])
            } else if interrupted {
                logger.info("create interrupted before it was recorded; looked the reference up", metadata: ["found": "\(found.count)"])
            }
            if let recorded = document, !found.contains(recorded) {
                logger.warning(
                    "the ERP no longer holds the sales order the ledger recorded",
                    metadata: ["ledger_document": "\(recorded)", "found": "\(found.joined(separator: ","))"])
            }
            document = found.first
        }
        if let document {
            try await timed("update_sales_order") { () async throws(ERPError) in
                try await plain.updateSalesOrder(document: document, salesOrder)
            }
            return Applied(outcome: .updated, document: document, version: version)
        }
        guard try await ledger.markIntent(.salesOrder, shop: shop, orderId: orderId, owner: owner) else {
            throw LedgerError.leaseLost(shop: shop, orderId: orderId)
        }
        let created = try await timed("create_sales_order") { () async throws(ERPError) in try await plain.createSalesOrder(salesOrder) }
        return Applied(outcome: .created, document: created, version: version)
    }

    /// Runs `body` while renewing the order's lease every third of `lock_ttl`, so a slow ERP call cannot outlive it.
    /// A renewal that finds the lease taken over is counted; the fenced record then refuses to record.
    private func withLeaseRenewal<T: Sendable>(
        shop: String, orderId: Int64, owner: String, logger: Logger, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let ttl = settings.forwarder.lockTTL
        return try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                while true {
                    try await Task.sleep(for: ttl / 3)
                    do {
                        if try await !self.ledger.tryLock(shop: shop, orderId: orderId, owner: owner, ttl: ttl) {
                            logger.warning("order lease taken over while the ERP call was running", metadata: ["lock_ttl": "\(ttl)"])
                            return nil
                        }
                    } catch is CancellationError {
                        throw CancellationError()
                    } catch {
                        logger.warning("could not renew the order lease", metadata: ["error": "\(error)"])
                    }
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

    private func processRefund(_ body: [UInt8], shop: String, context: inout WorkContext) async throws -> Outcome {
        let refund: ShopifyRefund
        do {
            refund = try ShopifyRefund.decode(body)
        } catch {
            throw ProcessingFailure(errorClass: "invalid_json", message: "not a Shopify refund: \(Self.describe(error))", retryable: false)
        }
        context.logger[metadataKey: "order_id"] = "\(refund.orderId)"
        context.traceSubject = "\(refund.orderId)"
        context.logger[metadataKey: "refund_id"] = "\(refund.id)"
        if let doc = try await ledger.refundDocument(shop: shop, refundId: refund.id) {
            return .refundDuplicate(document: doc)
        }
        let log = context.logger
        let waiter = context
        // Under the order's lease: two deliveries of one refund never create two credit notes.
        return try await context.serialized("\(shop)/\(refund.orderId)") {
            try await self.recordRefundLeased(refund, shop: shop, waiter: waiter, logger: log)
        }
    }

    private func recordRefundLeased(_ refund: ShopifyRefund, shop: String, waiter: WorkContext, logger: Logger) async throws -> Outcome {
        let owner = "\(instance)-\(UUID().uuidString.prefix(8))"
        let applied = try await lease(shop: shop, orderId: refund.orderId, owner: owner, waiter: waiter)
        do {
            let outcome = try await recordRefund(refund, shop: shop, owner: owner, applied: applied, logger: logger)
            try await ledger.release(shop: shop, orderId: refund.orderId, owner: owner, recording: nil)
            return outcome
        } catch {
            _ = try? await ledger.release(shop: shop, orderId: refund.orderId, owner: owner, recording: nil)
            if case LedgerError.leaseLost = error { metrics.leaseLost() }
            throw error
        }
    }

    /// The caller holds the order's lease.
    private func recordRefund(_ refund: ShopifyRefund, shop: String, owner: String, applied: LedgerEntry?, logger: Logger) async throws -> Outcome {
        if let doc = try await ledger.refundDocument(shop: shop, refundId: refund.id) {
            return .refundDuplicate(document: doc)
        }
        let request = mapper.map(refund, shop: shop)
        var document: String
        if let plain = plainERP {
            guard let orderDocument = applied?.erpDocument else {
                // Like the upsert profile's 404: the order may still come (a refund delivered before its order).
                throw ERPError(.notFound, "sales order \(request.orderRef) not forwarded yet")
            }
            var found: [String] = []
            if try await ledger.hasIntent(.creditNote(refundId: refund.id), shop: shop, orderId: refund.orderId) {
                found = try await timed("find_credit_note") { () async throws(ERPError) in try await plain.findCreditNotes(refundRef: request.refundRef) }
                metrics.createRecovered("credit_note", found: found.count)
                if found.count > 1 {
                    logger.error("ERP holds several credit notes for one refund", metadata: ["erp_documents": "\(found.joined(separator: ","))"])
                }
            }
            if let existing = found.first {
                document = existing
            } else {
                guard try await ledger.markIntent(.creditNote(refundId: refund.id), shop: shop, orderId: refund.orderId, owner: owner) else {
                    throw LedgerError.leaseLost(shop: shop, orderId: refund.orderId)
                }
                document = try await timed("create_credit_note") { () async throws(ERPError) in
                    try await plain.createCreditNote(request, orderDocument: orderDocument)
                }
            }
        } else {
            document = try await timed("record_refund") { () async throws(ERPError) in try await self.erp.recordRefund(request) }
        }
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
