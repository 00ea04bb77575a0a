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

        public init(queue: String = BridgeTopology.orders.name, forwarder: OrderForwarderSettings, retryDelays: [Duration], writeCustomers: Bool) {
            self.queue = queue
            self.forwarder = forwarder
            self.retryDelays = retryDelays
            self.writeCustomers = writeCustomers
        }

        /// From the bridge configuration; the customer write is gated by the source-of-truth policy here, in code,
        /// not only by config validation.
        public init(config: BridgeConfig) {
            self.init(
                forwarder: config.orderForwarder, retryDelays: config.topology.retryDelays,
                writeCustomers: config.processes.orderForwarderSyncCustomers && config.policy.mayWrite(.customers, into: .erp))
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
    let ledger: any OrderLedger
    let mapper: OrderMapper
    let breaker: CircuitBreaker
    public let metrics: ForwarderMetrics
    let logger: Logger
    let instance = UUID().uuidString.prefix(8)
    private let inFlight = Atomic<Int>(0)
    private let localLocks = KeyedLock()
    private let draining = Atomic<Bool>(false)

    /// - Parameters:
    ///   - shops: shop domain -> shop id (from configuration).
    ///   - consumer: the connection to consume on; `publisher` republishes to retry/DLQ with confirms.
    public init(
        settings: Settings, shops: [String: String], consumer: AMQPConnection, publisher: AMQPConnection, erp: any ERPPort,
        ledger: any OrderLedger, metrics: ForwarderMetrics = ForwarderMetrics(), logger: Logger
    ) {
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
                try await delivery.ack()
                record(outcome, env: env, logger: logger)
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
        let outcome = try await localLocks.withLock("\(shop)/\(order.id)") {
            try await self.applyLeased(order, version: version, shop: shop)
        }
        if let document = outcome.erpDocument { logger[metadataKey: "erp_document"] = "\(document)" }
        return outcome
    }

    /// Takes the order's lease, skips a version not newer than the applied one, else applies it and records it.
    private func applyLeased(_ order: ShopifyOrder, version: OrderVersion, shop: String) async throws -> Outcome {
        let owner = "\(instance)-\(UUID().uuidString.prefix(8))"
        let applied = try await lease(shop: shop, orderId: order.id, owner: owner)
        do {
            if let applied, applied.version >= version {
                try await ledger.release(shop: shop, orderId: order.id, owner: owner, recording: nil)
                return .staleSkipped(applied: applied.version, document: applied.erpDocument)
            }
            let result = try await apply(order, shop: shop)
            try await ledger.release(
                shop: shop, orderId: order.id, owner: owner,
                recording: AppliedVersion(version: version, erpDocument: result.documentNumber))
            return .forwarded(result.outcome, document: result.documentNumber)
        } catch {
            // The lease is released on every path; if even that fails it expires after lock_ttl.
            _ = try? await ledger.release(shop: shop, orderId: order.id, owner: owner, recording: nil)
            throw error
        }
    }

    /// Maps and writes customer (if allowed) and sales order. The caller holds the order's lease.
    private func apply(_ order: ShopifyOrder, shop: String) async throws -> ERPUpsertResult {
        let mapped: MappedOrder
        do {
            mapped = try mapper.map(order, shop: shop)
        } catch {
            throw ProcessingFailure(errorClass: error.code.rawValue, message: error.message, retryable: false)
        }
        if settings.writeCustomers, let customer = mapped.customer {
            _ = try await timed("upsert_customer") { () async throws(ERPError) in try await self.erp.upsertCustomer(customer) }
        }
        return try await timed("upsert_sales_order") { () async throws(ERPError) in
            try await self.erp.upsertSalesOrder(mapped.salesOrder)
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
        let request = mapper.map(refund, shop: shop)
        let doc = try await timed("record_refund") { () async throws(ERPError) in try await self.erp.recordRefund(request) }
        logger[metadataKey: "erp_document"] = "\(doc)"
        try await ledger.recordRefund(shop: shop, refundId: refund.id, orderId: refund.orderId, erpDocument: doc)
        return .refundRecorded(document: doc)
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
            if let t = env.triggeredAtMs {
                metrics.endToEnd(.milliseconds(Timestamp.milliseconds(Date()) - t))
            }
            logger.info("order forwarded", metadata: ["result": "\(result.rawValue)", "erp_document": "\(document)"])
        case .staleSkipped(let applied, _):
            metrics.order("stale_skipped")
            logger.debug("stale order version skipped", metadata: ["applied_version": "\(applied)"])
        case .refundRecorded(let document):
            metrics.refund("recorded")
            logger.info("refund recorded", metadata: ["erp_document": "\(document)"])
        case .refundDuplicate:
            metrics.refund("duplicate_skipped")
            logger.debug("refund already recorded")
        case .ignored:
            metrics.order("ignored_topic")
            logger.debug("topic not forwarded")
        }
    }

    private func fail(_ d: AMQPDelivery, _ failure: ProcessingFailure, logger: Logger) async {
        do {
            switch try await router.route(d, failure: failure) {
            case .retried(let level, let delay):
                metrics.retried(failure.errorClass)
                logger.warning(
                    "order sync failed, retrying later",
                    metadata: ["error_class": "\(failure.errorClass)", "error": "\(failure.message)", "retry_level": "\(level)", "retry_in": "\(delay)"])
            case .deadLettered:
                metrics.deadLettered(failure.errorClass)
                logger.error(
                    "order sync failed, dead-lettered",
                    metadata: ["error_class": "\(failure.errorClass)", "error": "\(failure.message)", "dlq": "\(BridgeTopology.deadLetterQueue(of: settings.queue))"])
            }
        } catch {
            // Could not hand it to retry/DLQ (broker trouble): return it to the queue; nothing is lost.
            metrics.retried("requeued")
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
