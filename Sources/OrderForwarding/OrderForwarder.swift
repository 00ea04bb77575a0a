import BridgeCore
import ERP
import Foundation
import Ledger
import Logging
import Messaging
import ServiceLifecycle
import Shopify
import Synchronization

/// Consumes `q.orders` and makes each ERP sales order match the latest Shopify state, exactly once in effect.
///
/// Per delivery: resolve the shop, take the order's lease in the ledger, skip versions not newer than the one
/// applied, map (exact `Decimal` totals), write the customer (only where the source-of-truth policy lets Shopify own
/// customers) and the sales order by external reference, record the version and ERP document, release the lease,
/// ack. Every write is idempotent: a crash anywhere repeats at most an upsert the ERP already holds.
///
/// Failures: permanent (mapping, invalid JSON, ERP validation) -> dead-letter queue at once; transient -> the retry
/// levels; an ERP outage opens the circuit breaker and the message is held (not settled) until a probe succeeds.
public final class OrderForwarder: Service, Sendable {
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
                writeCustomers: config.processes.orderForwarderSyncCustomers && config.policy.mayWrite(.customers, into: .erp),
                erpProfile: config.erp.profile)
        }
    }

    static let orderTopics: Set<String> = [
        "orders/create", "orders/updated", "orders/paid", "orders/cancelled", "orders/fulfilled",
        "orders/partially_fulfilled",
    ]

    public let settings: Settings
    let shops: [String: String]
    let consumer: AMQPConnection
    let router: FailureRouter
    let erp: any ERPPort
    /// Set for the plain profile (the same adapter, seen through its create/find/update port).
    let plainERP: (any PlainERPPort)?
    let ledger: any OrderLedger
    let mapper: OrderMapper
    let breaker: CircuitBreaker
    public let metrics: ForwarderMetrics
    let logger: Logger
    let instance = UUID().uuidString.prefix(8)
    private let inFlight = Atomic<Int>(0)
    private let localLocks = KeyedLock()
    private let draining = Atomic<Bool>(false)
    private let settled = Mutex<[String: Int]>([:])

    /// How many deliveries this forwarder settled, by outcome (created, updated, unchanged, stale_skipped,
    /// refund_recorded, refund_duplicate, ignored_topic, retried, dead_lettered, requeued): the end state a test waits
    /// for before it checks the ERP, instead of sleeping.
    public var settledCounts: [String: Int] { settled.withLock { $0 } }
    public var settledTotal: Int { settled.withLock { $0.values.reduce(0, +) } }
    private func tally(_ outcome: String) { settled.withLock { $0[outcome, default: 0] += 1 } }

    /// - Parameters:
    ///   - shops: shop domain -> shop id (from configuration).
    ///   - consumer: the connection to consume on; `publisher` republishes to retry/DLQ with confirms.
    ///   - erp: the ERP adapter; for `erpProfile: .plain` it must also be a `PlainERPPort`.
    public init(
        settings: Settings, shops: [String: String], consumer: AMQPConnection, publisher: AMQPConnection, erp: any ERPPort,
        ledger: any OrderLedger, metrics: ForwarderMetrics = ForwarderMetrics(), logger: Logger
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
        self.consumer = consumer
        self.router = FailureRouter(publisher: publisher, queue: settings.queue, retryDelays: settings.retryDelays)
        self.erp = erp
        self.ledger = ledger
        self.mapper = OrderMapper(settings: settings.forwarder.mapping)
        self.metrics = metrics
        self.breaker = CircuitBreaker(
            threshold: settings.forwarder.breakerThreshold, probeInterval: settings.forwarder.breakerProbeInterval,
            gauge: metrics.circuitState, transitions: metrics.circuitTransitions)
        self.logger = logger
    }

    /// Consumes until graceful shutdown (stop taking deliveries, finish the ones in flight, then cancel the consumer
    /// so undelivered prefetch returns to the queue) or cancellation.
    public func run() async throws {
        try await ledger.migrate()
        try await consumer.waitUntilReady(timeout: .seconds(60))
        let stream = try await consumer.consume(
            queue: settings.queue, prefetch: UInt16(settings.forwarder.prefetch), consumerTagPrefix: "order-forwarder")
        logger.info("consuming", metadata: ["queue": "\(settings.queue)", "prefetch": "\(settings.forwarder.prefetch)"])
        await withDiscardingTaskGroup { group in
            group.addTask {
                // Graceful shutdown: stop starting work, release messages held for the circuit, let the rest finish.
                try? await gracefulShutdown()
                self.draining.store(true, ordering: .relaxed)
                await self.breaker.stop()
                while self.inFlight.load(ordering: .relaxed) > 0, !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(20))
                }
                stream.cancel()
            }
            do {
                for try await delivery in stream.deliveries {
                    // While draining, new deliveries stay unsettled: they return to the queue with the consumer.
                    if draining.load(ordering: .relaxed) { continue }
                    metrics.inFlight.record(inFlight.add(1, ordering: .relaxed).newValue)
                    group.addTask {
                        await self.handle(delivery)
                        self.metrics.inFlight.record(self.inFlight.subtract(1, ordering: .relaxed).newValue)
                    }
                }
            } catch {
                logger.error("consumer stopped", metadata: ["queue": "\(settings.queue)", "error": "\(error)"])
            }
            group.cancelAll()
        }
        logger.info("stopped consuming", metadata: ["queue": "\(settings.queue)"])
    }

    // MARK: One delivery

    struct Envelope {
        var shopDomain: String?
        var topic: String
        var webhookId: String
        var triggeredAtMs: Int64?

        init(_ d: AMQPDelivery) {
            let h = d.properties.headers
            shopDomain = h[EnvelopeHeader.shop]?.stringValue
            topic = h[EnvelopeHeader.topic]?.stringValue ?? d.properties.type ?? d.routingKey.replacingOccurrences(of: ".", with: "/")
            webhookId = h[EnvelopeHeader.webhookId]?.stringValue ?? d.properties.messageId ?? "-"
            triggeredAtMs = h[EnvelopeHeader.triggeredAt]?.stringValue.flatMap(Timestamp.milliseconds)
        }
    }

    /// What processing did, for the ack path's metrics and log.
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

    func handle(_ delivery: AMQPDelivery) async {
        let env = Envelope(delivery)
        var logger = self.logger
        logger[metadataKey: "shop"] = "\(env.shopDomain ?? "-")"
        logger[metadataKey: "topic"] = "\(env.topic)"
        logger[metadataKey: "webhook_id"] = "\(env.webhookId)"
        var heldLogged = false
        while true {
            do {
                try await breaker.acquire()
            } catch {
                // Shutting down with the circuit open: the message stays unsettled and returns to the queue.
                return
            }
            do {
                let outcome = try await process(delivery, env, logger: &logger)
                if outcome.calledERP { await breaker.recordSuccess() } else { await breaker.releaseProbe() }
                record(outcome, env: env, logger: logger)
                do {
                    try await delivery.ack()
                } catch {
                    // The effect is committed and recorded; only the ack was lost (the connection dropped). The broker
                    // redelivers the message and the ledger skips it: no copy to the retry queue on top of that.
                    metrics.ackFailed()
                    logger.warning("order applied but the ack failed; the broker will redeliver it", metadata: ["error": "\(error)"])
                }
                return
            } catch let e as ERPError where e.indicatesOutage {
                let open = await breaker.recordOutage(retryAfter: e.retryAfter)
                if open {
                    // Hold the message (unsettled) until the probe succeeds, instead of cycling through retries.
                    if !heldLogged {
                        logger.warning("ERP unavailable, holding message until the circuit closes", metadata: ["error": "\(e)"])
                        metrics.held()
                        heldLogged = true
                    }
                    continue
                }
                await fail(delivery, ProcessingFailure(errorClass: e.code.rawValue, message: e.message, retryable: true), logger: logger)
                return
            } catch let e as ERPError {
                await breaker.recordSuccess()
                await fail(delivery, ProcessingFailure(errorClass: e.code.rawValue, message: e.message, retryable: e.isRetryable), logger: logger)
                return
            } catch let f as ProcessingFailure {
                await breaker.releaseProbe()
                await fail(delivery, f, logger: logger)
                return
            } catch let e as LedgerError {
                await breaker.releaseProbe()
                await fail(delivery, ProcessingFailure(errorClass: "lease_lost", message: "\(e)", retryable: true), logger: logger)
                return
            } catch is CancellationError {
                await breaker.releaseProbe()
                return
            } catch {
                await breaker.releaseProbe()
                // The ledger (database) failed: transient.
                await fail(delivery, ProcessingFailure(errorClass: "ledger_unavailable", message: "\(error)", retryable: true), logger: logger)
                return
            }
        }
    }

    func process(_ d: AMQPDelivery, _ env: Envelope, logger: inout Logger) async throws -> Outcome {
        guard let domain = env.shopDomain, let shop = shops[domain] else {
            throw ProcessingFailure(
                errorClass: "unknown_shop", message: "shop '\(env.shopDomain ?? "none")' is not configured (shops, shop.<id>.domain)",
                retryable: false)
        }
        if env.topic == "refunds/create" {
            return try await processRefund(d, shop: shop, logger: &logger)
        }
        guard Self.orderTopics.contains(env.topic) else { return .ignored }
        let order: ShopifyOrder
        do {
            order = try ShopifyOrder.decode(d.body)
        } catch {
            throw ProcessingFailure(errorClass: "invalid_json", message: "not a Shopify order: \(Self.describe(error))", retryable: false)
        }
        logger[metadataKey: "order_id"] = "\(order.id)"
        guard let updatedMs = Timestamp.milliseconds(order.updatedAt) else {
            throw ProcessingFailure(errorClass: "invalid_timestamp", message: "updated_at '\(order.updatedAt)' is not ISO-8601", retryable: false)
        }
        let version = OrderVersion(updatedAtMs: updatedMs, triggeredAtMs: env.triggeredAtMs ?? 0)

        // Workers of this process queue behind each other per order without touching the database; the ledger's
        // lease then guards against workers of other processes.
        let log = logger
        let outcome = try await localLocks.withLock("\(shop)/\(order.id)") {
            try await self.applyLeased(order, version: version, shop: shop, logger: log)
        }
        if let document = outcome.erpDocument { logger[metadataKey: "erp_document"] = "\(document)" }
        return outcome
    }

    /// Takes the order's lease, skips a version not newer than the applied one, else applies it and records it
    /// (fenced: a worker whose lease was taken over records nothing). The lease is renewed while the ERP works.
    private func applyLeased(_ order: ShopifyOrder, version: OrderVersion, shop: String, logger: Logger) async throws -> Outcome {
        let owner = "\(instance)-\(UUID().uuidString.prefix(8))"
        let applied = try await lease(shop: shop, orderId: order.id, owner: owner)
        do {
            if let applied, applied.version >= version {
                try await ledger.release(shop: shop, orderId: order.id, owner: owner, recording: nil)
                return .staleSkipped(applied: applied.version, document: applied.erpDocument)
            }
            let result = try await withLeaseRenewal(shop: shop, orderId: order.id, owner: owner, logger: logger) {
                try await self.apply(order, version: version, shop: shop, owner: owner, applied: applied, logger: logger)
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
        _ order: ShopifyOrder, version: OrderVersion, shop: String, owner: String, applied: LedgerEntry?, logger: Logger
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
            return try await applyPlain(mapped.salesOrder, plain, version: version, shop: shop, orderId: order.id, owner: owner, applied: applied, logger: logger)
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
    /// between the create and the record, so the reference is looked up before creating again.
    private func applyPlain(
        _ salesOrder: ERPSalesOrder, _ plain: any PlainERPPort, version: OrderVersion, shop: String, orderId: Int64,
        owner: String, applied: LedgerEntry?, logger: Logger
    ) async throws -> Applied {
        var document = applied?.erpDocument
        if document == nil, try await ledger.hasIntent(.salesOrder, shop: shop, orderId: orderId) {
            let found = try await timed("find_sales_order") { () async throws(ERPError) in
                try await plain.findSalesOrders(externalRef: salesOrder.externalRef)
            }
            metrics.createRecovered("sales_order", found: found.count)
            if found.count > 1 {
                logger.error(
                    "ERP holds several sales orders for one reference; updating the oldest",
                    metadata: ["erp_documents": "\(found.joined(separator: ","))"])
            } else {
                logger.info("create interrupted before it was recorded; looked the reference up", metadata: ["found": "\(found.count)"])
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

    private func processRefund(_ d: AMQPDelivery, shop: String, logger: inout Logger) async throws -> Outcome {
        let refund: ShopifyRefund
        do {
            refund = try ShopifyRefund.decode(d.body)
        } catch {
            throw ProcessingFailure(errorClass: "invalid_json", message: "not a Shopify refund: \(Self.describe(error))", retryable: false)
        }
        logger[metadataKey: "order_id"] = "\(refund.orderId)"
        logger[metadataKey: "refund_id"] = "\(refund.id)"
        if let doc = try await ledger.refundDocument(shop: shop, refundId: refund.id) {
            return .refundDuplicate(document: doc)
        }
        let log = logger
        // Under the order's lease: two deliveries of one refund never create two credit notes.
        return try await localLocks.withLock("\(shop)/\(refund.orderId)") {
            try await self.recordRefundLeased(refund, shop: shop, logger: log)
        }
    }

    private func recordRefundLeased(_ refund: ShopifyRefund, shop: String, logger: Logger) async throws -> Outcome {
        let owner = "\(instance)-\(UUID().uuidString.prefix(8))"
        let applied = try await lease(shop: shop, orderId: refund.orderId, owner: owner)
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

    /// Takes the order's lease (and reads what was applied), waiting up to `lockWait` for another worker; then
    /// gives up as retryable.
    private func lease(shop: String, orderId: Int64, owner: String) async throws -> LedgerEntry? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: settings.forwarder.lockWait)
        var pause = Duration.milliseconds(5)
        while true {
            if case .acquired(let entry) = try await ledger.acquire(
                shop: shop, orderId: orderId, owner: owner, ttl: settings.forwarder.lockTTL)
            {
                return entry
            }
            guard clock.now < deadline else {
                throw ProcessingFailure(
                    errorClass: "order_busy", message: "another worker held order \(orderId) for longer than the lock wait",
                    retryable: true)
            }
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .milliseconds(100))
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

    private func record(_ outcome: Outcome, env: Envelope, logger: Logger) {
        switch outcome {
        case .forwarded(let result, let document):
            metrics.order(result == .staleIgnored ? "unchanged" : result.rawValue)
            tally(result == .staleIgnored ? "unchanged" : result.rawValue)
            if let t = env.triggeredAtMs {
                metrics.endToEnd(.milliseconds(Timestamp.milliseconds(Date()) - t))
            }
            logger.info("order forwarded", metadata: ["result": "\(result.rawValue)", "erp_document": "\(document)"])
        case .staleSkipped(let applied, _):
            metrics.order("stale_skipped")
            tally("stale_skipped")
            logger.debug("stale order version skipped", metadata: ["applied_version": "\(applied)"])
        case .refundRecorded(let document):
            metrics.refund("recorded")
            tally("refund_recorded")
            logger.info("refund recorded", metadata: ["erp_document": "\(document)"])
        case .refundDuplicate:
            metrics.refund("duplicate_skipped")
            tally("refund_duplicate")
            logger.debug("refund already recorded")
        case .ignored:
            metrics.order("ignored_topic")
            tally("ignored_topic")
            logger.debug("topic not forwarded")
        }
    }

    private func fail(_ d: AMQPDelivery, _ failure: ProcessingFailure, logger: Logger) async {
        do {
            switch try await router.route(d, failure: failure) {
            case .retried(let level, let delay):
                metrics.retried(failure.errorClass)
                tally("retried")
                logger.warning(
                    "order sync failed, retrying later",
                    metadata: ["error_class": "\(failure.errorClass)", "error": "\(failure.message)", "retry_level": "\(level)", "retry_in": "\(delay)"])
            case .deadLettered:
                metrics.deadLettered(failure.errorClass)
                tally("dead_lettered")
                logger.error(
                    "order sync failed, dead-lettered",
                    metadata: ["error_class": "\(failure.errorClass)", "error": "\(failure.message)", "dlq": "\(BridgeTopology.deadLetterQueue(of: settings.queue))"])
            }
        } catch {
            // Could not hand it to retry/DLQ (broker trouble): return it to the queue; nothing is lost.
            metrics.retried("requeued")
            tally("requeued")
            logger.error("could not route failed message, requeueing", metadata: ["error_class": "\(failure.errorClass)", "route_error": "\(error)"])
            try? await d.nack(requeue: true)
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
