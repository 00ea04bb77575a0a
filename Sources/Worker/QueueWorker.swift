import BridgeDomain
import BridgeMessaging
import Foundation
import Logging
import Messaging
import Metrics
import Observability
import ServiceLifecycle
import Synchronization

/// One delivered message as a handler sees it: the untouched body and the typed envelope.
public struct InboundMessage: Sendable {
    public let delivery: AMQPDelivery
    public let envelope: InboundEnvelope
    public var body: [UInt8] { delivery.body }
    /// The broker redelivered it (a consumer died or a connection dropped before its ack).
    public var redelivered: Bool { delivery.redelivered }
}

/// What handling a message did, for the worker's metrics and tallies.
public struct WorkOutcome: Sendable {
    /// A short stable label (`created`, `stale_skipped`, `ignored_topic`...): `worker_messages_total{outcome}`.
    public var label: String
    /// The dependency the circuit guards was called and answered (closes a half-open circuit).
    public var calledDependency: Bool

    public init(_ label: String, calledDependency: Bool = false) {
        self.label = label
        self.calledDependency = calledDependency
    }
}

/// How a thrown error is routed, decided by the handler that knows its errors.
public enum WorkFailure: Sendable {
    /// The guarded dependency is unreachable: counts toward opening the circuit; while it is open the message is
    /// held unsettled (not cycled through the retry levels) and retried when a probe succeeds. When the circuit stays
    /// closed the message is parked (no attempt counted) for `retryAfter` or the first retry level.
    case outage(ProcessingFailure, retryAfter: Duration?)
    /// Anything else: retried (`failure.retryable`) or dead-lettered. `dependencyAnswered`: the dependency did answer
    /// (e.g. a validation error), which counts as a success for the circuit.
    case failed(ProcessingFailure, dependencyAnswered: Bool = false)
    /// Not a failure of the message: it cannot be decided for about `wait` (an earlier write's outcome is unknown
    /// and the dependency is given time to settle). Parked on a retry level without counting an attempt, so waiting
    /// never dead-letters it. `outage`: the dependency failed on the way (counts towards opening the circuit).
    case deferred(ProcessingFailure, wait: Duration, outage: Bool)
}

/// The per-message context a handler gets: a logger carrying the message's ids, and per-key serialization.
public struct WorkContext: Sendable {
    public var logger: Logger
    let locks: KeyedLock
    let slots: HandlerSlots?
    /// What the message is about (an order id), for its trace (`bridgectl trace --order`): set it once known.
    public var traceSubject: String?
    /// What the effect was (the ERP document), for the trace.
    public var traceDetail: String?

    init(logger: Logger, locks: KeyedLock, slots: HandlerSlots? = nil) {
        self.logger = logger
        self.locks = locks
        self.slots = slots
    }

    /// Runs `body` while no other message of this process with the same `key` is being handled (FIFO hand-over).
    /// Waiting for the key does not hold a handler slot (`waiting`).
    public func serialized<T: Sendable>(_ key: String, _ body: @Sendable () async throws -> T) async throws -> T {
        if await !locks.tryLock(key) {
            await waiting { await self.locks.lock(key) }
        }
        do {
            let value = try await body()
            await locks.unlock(key)
            return value
        } catch {
            await locks.unlock(key)
            throw error
        }
    }

    /// Runs `body`, a wait for something another delivery holds (an order's lease held by another process), without
    /// this delivery's handler slot: with `concurrency` below the prefetch, a prefetched delivery runs meanwhile.
    /// Takes a slot again before returning, ahead of the deliveries that have not started. Without a concurrency
    /// limit it just runs `body`.
    public func waiting<T: Sendable>(_ body: @Sendable () async throws -> T) async rethrows -> T {
        guard let slots else { return try await body() }
        await slots.release()
        do {
            let value = try await body()
            await slots.acquire(returning: true)
            return value
        } catch {
            await slots.acquire(returning: true)
            throw error
        }
    }
}

/// A queue's logic: everything but consuming, settling, retrying, the circuit and draining, which `QueueWorker` owns.
public protocol QueueHandler: Sendable {
    /// For log lines: "order", "compliance request".
    var subject: String { get }
    /// Runs once before consuming (migrations, warm-up). A throw stops the worker.
    func prepare() async throws
    /// Applies the message's effect. Return only once the effect is committed: the worker acks right after.
    func handle(_ message: InboundMessage, context: inout WorkContext) async throws -> WorkOutcome
    /// Classifies an error `handle` threw (never a `CancellationError`: the worker leaves those unsettled).
    func classify(_ error: any Error) -> WorkFailure
}

extension QueueHandler {
    public func prepare() async throws {}
}

/// The consumer runtime every queue uses: consume with a prefetch (at most that many messages in flight), hand each
/// message to the handler, ack after its effect, route failures through `FailureRouter` (retry levels, then the
/// dead-letter queue, each with the reason in headers), hold messages while the circuit is open, and drain on
/// graceful shutdown: stop taking messages, let the ones in flight finish, release the held ones (they return to
/// the queue with the consumer).
///
/// Metrics, the same for every queue: `worker_messages_total{queue,outcome}`, `worker_handle_seconds{queue}`,
/// `worker_in_flight{queue}`, `worker_retried_total{queue,error_class}`, `worker_dead_lettered_total{queue,reason}`,
/// `worker_requeued_total{queue}`, `worker_parked_total{queue,reason}`, `worker_held_for_circuit_total{queue}`, `worker_ack_failed_total{queue}`,
/// `worker_circuit_state{queue}` (0 closed, 1 half-open, 2 open), `worker_circuit_transitions_total{queue}`.
/// Log lines carry `queue`, `shop`, `topic` and `delivery_id`, plus what the handler adds.
public final class QueueWorker<Handler: QueueHandler>: Service, Sendable {
    public struct Settings: Sendable {
        public var queue: String
        public var prefetch: Int
        /// Handlers running at once (at most `prefetch`; nil: `prefetch`). Below the prefetch, a delivery waiting for
        /// a key another delivery holds (`WorkContext.serialized`, `WorkContext.waiting`) leaves its slot to a
        /// prefetched one, so the waits do not idle the worker's writes.
        public var concurrency: Int?
        public var retryDelays: [Duration]
        /// Consecutive outages that open the circuit, and how long it stays open before a probe; nil: no circuit.
        public var circuit: (threshold: Int, probeInterval: Duration)?
        /// How often the worker publishes its `worker.heartbeat` (circuit and counts, for the alerter); nil: never.
        public var heartbeat: Duration?
        /// How often the worker publishes the trace steps of the deliveries it settled (`message.traced`); nil: never.
        public var trace: Duration?
        public var consumerTagPrefix: String
        /// The longest a delivery is held unsettled while the circuit is open; then it is parked on a retry level
        /// (no attempt counted) and comes back later. Must stay below the broker's `consumer_timeout` (30 min by
        /// default), past which RabbitMQ closes the channel and returns every unacked delivery with its delivery
        /// count raised. Nil: held for as long as the circuit stays open.
        public var maxHold: Duration?

        public init(
            queue: String, prefetch: Int, concurrency: Int? = nil, retryDelays: [Duration],
            circuit: (threshold: Int, probeInterval: Duration)? = nil, heartbeat: Duration? = .seconds(15),
            trace: Duration? = .seconds(1), consumerTagPrefix: String? = nil, maxHold: Duration? = .seconds(600)
        ) {
            self.trace = trace
            self.maxHold = maxHold
            self.queue = queue
            self.prefetch = max(1, prefetch)
            self.concurrency = concurrency.map { min(max(1, $0), max(1, prefetch)) }
            self.retryDelays = retryDelays
            self.circuit = circuit
            self.heartbeat = heartbeat
            self.consumerTagPrefix = consumerTagPrefix ?? queue
        }
    }

    public let settings: Settings
    public let handler: Handler
    let consumer: AMQPConnection
    let router: FailureRouter
    let publisher: AMQPConnection
    let breaker: CircuitBreaker?
    let logger: Logger
    private let locks = KeyedLock()
    /// Present when `concurrency` is below the prefetch.
    private let slots: HandlerSlots?
    private let inFlight = Atomic<Int>(0)
    private let draining = Atomic<Bool>(false)
    private let settled = Mutex<[String: Int]>([:])
    /// Handled and failed deliveries by shop since start, for the heartbeat.
    private let shopCounts = Mutex<[String: BridgeEvents.WorkerHeartbeat.Counts]>([:])
    private let instance = "\(ProcessInfo.processInfo.hostName):\(getpid()):\(UUID().uuidString.prefix(6))"
    private let cache = MetricCache()
    private let traces: TraceRecorder
    /// How often trace steps are published; nil: none are recorded at all. Never for the alerter's own queue (it
    /// would only talk to itself, and steps recorded there would pile up unsent).
    private let traceInterval: Duration?
    private let inFlightGauge: Gauge
    private let handleTimer: Metrics.Timer

    /// - Parameters:
    ///   - consumer: the connection to consume on; `publisher` republishes to retry and DLQ with confirms.
    public init(
        settings: Settings, handler: Handler, consumer: AMQPConnection, publisher: AMQPConnection, logger: Logger
    ) {
        self.settings = settings
        self.handler = handler
        self.consumer = consumer
        self.router = FailureRouter(publisher: publisher, queue: settings.queue, retryDelays: settings.retryDelays)
        self.publisher = publisher
        slots = settings.concurrency.flatMap { $0 < settings.prefetch ? HandlerSlots($0) : nil }
        var logger = logger
        logger[metadataKey: "queue"] = "\(settings.queue)"
        self.logger = logger
        let queue = [("queue", settings.queue)]
        traces = TraceRecorder(dropped: Counter(label: "worker_trace_dropped_total", dimensions: queue))
        traceInterval = settings.queue == BridgeTopology.alerter.name ? nil : settings.trace
        inFlightGauge = Gauge(label: "worker_in_flight", dimensions: queue)
        handleTimer = Metrics.Timer(label: "worker_handle_seconds", dimensions: queue, preferredDisplayUnit: .seconds)
        breaker = settings.circuit.map {
            CircuitBreaker(
                threshold: $0.threshold, probeInterval: $0.probeInterval,
                gauge: Gauge(label: "worker_circuit_state", dimensions: queue),
                transitions: Counter(label: "worker_circuit_transitions_total", dimensions: queue))
        }
    }

    /// Messages settled so far, by outcome label (the handler's, plus `retried`, `dead_lettered`, `requeued`): the
    /// end state a test waits for instead of sleeping.
    public var settledCounts: [String: Int] { settled.withLock { $0 } }
    public var settledTotal: Int { settled.withLock { $0.values.reduce(0, +) } }
    /// Deliveries being handled right now (what `worker_in_flight` exports).
    public var inFlightCount: Int { inFlight.load(ordering: .relaxed) }
    private func tally(_ outcome: String) { settled.withLock { $0[outcome, default: 0] += 1 } }
    private func tally(shop: String?, failed: Bool) {
        shopCounts.withLock { counts in
            var c = counts[shop ?? "-", default: .init()]
            c.handled += 1
            if failed { c.failed += 1 }
            counts[shop ?? "-"] = c
        }
    }

    /// The heartbeat as it would be sent now.
    public func heartbeat() async -> BridgeEvents.WorkerHeartbeat {
        let circuit = await breaker?.state.rawValue
        let since = await breaker?.since
        return BridgeEvents.WorkerHeartbeat(
            queue: settings.queue, instance: "\(instance):\(settings.queue)",
            intervalSeconds: settings.heartbeat?.seconds ?? 0,
            circuit: circuit, circuitSince: since, shops: shopCounts.withLock { $0 })
    }

    /// Publishes the heartbeat every `settings.heartbeat` until cancelled (not for the alerter's own queue: it would
    /// only talk to itself).
    private func sendHeartbeats() async {
        guard let interval = settings.heartbeat, settings.queue != BridgeTopology.alerter.name else { return }
        while !Task.isCancelled {
            await BridgeEvents.publish(
                BridgeEvents.workerHeartbeat, body: await heartbeat(), key: settings.queue,
                appId: "shopify-erp-bridge/\(settings.consumerTagPrefix)", expiration: max(interval * 4, .seconds(60)),
                on: publisher, logger: logger)
            try? await Task.sleep(for: interval)
        }
    }

    /// Publishes the settled deliveries' trace steps every `traceInterval` until cancelled (`run` flushes once more
    /// at the end).
    private func sendTraces() async {
        guard let interval = traceInterval else { return }
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            await flushTraces()
        }
    }

    func flushTraces() async {
        guard traceInterval != nil else { return }
        let steps = traces.take()
        var start = 0
        while start < steps.count {
            let batch = Array(steps[start..<min(start + 500, steps.count)])
            start += batch.count
            await BridgeEvents.publish(
                BridgeEvents.traced, body: BridgeEvents.TraceBatch(steps: batch), key: settings.queue,
                appId: "shopify-erp-bridge/\(settings.consumerTagPrefix)", on: publisher, logger: logger)
        }
    }

    /// Records one settled delivery for its trace.
    private func trace(
        _ message: InboundMessage, _ context: WorkContext, result: String, outcome: String, detail: String?, started: ContinuousClock.Instant
    ) {
        guard traceInterval != nil else { return }
        let e = message.envelope
        traces.record(
            BridgeEvents.TraceStep(
                queue: settings.queue, instance: instance, shop: e.shopDomain, topic: e.topic, webhookId: e.deliveryId,
                eventId: e.eventId, subject: context.traceSubject, result: result, outcome: outcome, detail: detail, attempt: e.attempt,
                replays: e.replays, redelivered: message.redelivered, receivedAt: e.receivedAt, triggeredAt: e.triggeredAt,
                replayedAt: e.replayedAt, durationMs: Int((ContinuousClock.now - started).wholeMilliseconds)))
    }

    private func count(_ name: String, _ labels: [(String, String)] = []) {
        cache.counter(name, [("queue", settings.queue)] + labels).increment()
    }

    /// Consumes until graceful shutdown or cancellation.
    public func run() async throws {
        // A standby waits here for its lease: a graceful shutdown ends the wait, and the worker with it.
        do {
            try await cancelWhenGracefulShutdown { try await self.handler.prepare() }
        } catch is CancellationError where Task.isShuttingDownGracefully {
            return
        }
        if Task.isShuttingDownGracefully || Task.isCancelled { return }
        try await consumer.waitUntilReady(timeout: .seconds(60))
        let stream = try await consumer.consume(
            queue: settings.queue, prefetch: UInt16(min(settings.prefetch, Int(UInt16.max))),
            consumerTagPrefix: settings.consumerTagPrefix)
        logger.info("consuming", metadata: ["prefetch": "\(settings.prefetch)", "concurrency": "\(settings.concurrency ?? settings.prefetch)"])
        await withDiscardingTaskGroup { group in
            group.addTask { await self.sendHeartbeats() }
            group.addTask { await self.sendTraces() }
            group.addTask {
                // Graceful shutdown: stop starting work, release messages held for the circuit, let the rest finish.
                try? await gracefulShutdown()
                self.draining.store(true, ordering: .relaxed)
                await self.breaker?.stop()
                while self.inFlight.load(ordering: .relaxed) > 0, !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(20))
                }
                stream.cancel()
            }
            do {
                for try await delivery in stream.deliveries {
                    // While draining, new deliveries stay unsettled: they return to the queue with the consumer.
                    if draining.load(ordering: .relaxed) { continue }
                    inFlightGauge.record(inFlight.add(1, ordering: .relaxed).newValue)
                    group.addTask {
                        await self.process(delivery)
                        self.inFlightGauge.record(self.inFlight.subtract(1, ordering: .relaxed).newValue)
                    }
                }
            } catch {
                logger.error("consumer stopped", metadata: ["error": "\(error)"])
            }
            group.cancelAll()
        }
        await flushTraces()
        logger.info("stopped consuming")
    }

    // MARK: One message

    func process(_ delivery: AMQPDelivery) async {
        let message = InboundMessage(delivery: delivery, envelope: InboundEnvelope(delivery))
        var logger = self.logger
        logger[metadataKey: "shop"] = "\(message.envelope.shopDomain ?? "-")"
        logger[metadataKey: "topic"] = "\(message.envelope.topic)"
        logger[metadataKey: "delivery_id"] = "\(message.envelope.deliveryId)"
        var heldLogged = false
        // The broker's consumer_timeout counts from the delivery: a message held for the circuit is parked before it.
        let holdDeadline = settings.maxHold.map { ContinuousClock.now.advanced(by: $0) }
        while true {
            do {
                if let breaker, try await !breaker.acquire(until: holdDeadline) {
                    await parkHeld(message, logger: logger)
                    return
                }
            } catch {
                // Shutting down with the circuit open: the message stays unsettled and returns to the queue.
                return
            }
            var context = WorkContext(logger: logger, locks: locks, slots: slots)
            let started = ContinuousClock.now
            do {
                let outcome = try await handleInSlot(message, context: &context)
                handleTimer.recordNanoseconds((ContinuousClock.now - started).wholeNanoseconds)
                if outcome.calledDependency { await breaker?.recordSuccess() } else { await breaker?.releaseProbe() }
                count("worker_messages_total", [("outcome", outcome.label)])
                tally(outcome.label)
                tally(shop: message.envelope.shopDomain, failed: false)
                trace(message, context, result: "handled", outcome: outcome.label, detail: context.traceDetail, started: started)
                do {
                    try await delivery.ack()
                } catch {
                    // The effect is committed; only the ack was lost (the connection dropped). The broker redelivers
                    // the message and the handler's idempotency skips it: no copy to the retry queue on top of that.
                    count("worker_ack_failed_total")
                    context.logger.warning(
                        "\(handler.subject) applied but the ack failed; the broker will redeliver it",
                        metadata: ["error": "\(error)"])
                }
                return
            } catch is CancellationError {
                await breaker?.releaseProbe()
                return
            } catch {
                handleTimer.recordNanoseconds((ContinuousClock.now - started).wholeNanoseconds)
                switch handler.classify(error) {
                case .outage(let failure, let retryAfter):
                    if let breaker, await breaker.recordOutage(retryAfter: retryAfter) {
                        // Hold the message (unsettled) until the probe succeeds, instead of cycling through retries.
                        if !heldLogged {
                            context.logger.warning(
                                "dependency unavailable, holding \(handler.subject) until the circuit closes",
                                metadata: ["error_class": "\(failure.errorClass)", "error": "\(failure.message)"])
                            count("worker_held_for_circuit_total")
                            heldLogged = true
                        }
                        continue
                    }
                    // The dependency failed, not the message (an ERP 500 now and then, a timeout): parked without
                    // counting an attempt, so sporadic errors never walk an order to the dead-letter queue.
                    await deferOrFail(
                        message, failure, wait: retryAfter ?? settings.retryDelays.first ?? .seconds(5), dependencyFailed: true,
                        context: context, started: started)
                    return
                case .failed(let failure, let answered):
                    if answered { await breaker?.recordSuccess() } else { await breaker?.releaseProbe() }
                    await fail(message, failure, context: context, started: started)
                    return
                case .deferred(let failure, let wait, let outage):
                    if outage { await breaker?.recordOutage() } else { await breaker?.releaseProbe() }
                    await deferOrFail(message, failure, wait: wait, dependencyFailed: outage, context: context, started: started)
                    return
                }
            }
        }
    }

    /// The handler, in one of the `concurrency` slots (if limited).
    private func handleInSlot(_ message: InboundMessage, context: inout WorkContext) async throws -> WorkOutcome {
        guard let slots else { return try await handler.handle(message, context: &context) }
        await slots.acquire()
        do {
            let outcome = try await handler.handle(message, context: &context)
            await slots.release()
            return outcome
        } catch {
            await slots.release()
            throw error
        }
    }

    /// Deferrals (`WorkFailure.deferred`, and outage failures that did not open the circuit) after which a message is
    /// routed as an ordinary failure. Parks for an open circuit do not count towards it: an outage of any length is
    /// waited out.
    static var maxDeferrals: Int { 50 }

    /// Parks a message that cannot be decided yet (a deferral, counted in `x-bridge-deferrals`). Waiting has a bound:
    /// a message deferred `maxDeferrals` times is failing after all, and walks the retry levels to the dead-letter
    /// queue with its reason, where a human sees it.
    private func deferOrFail(
        _ message: InboundMessage, _ failure: ProcessingFailure, wait: Duration, dependencyFailed: Bool, context: WorkContext,
        started: ContinuousClock.Instant
    ) async {
        let deferrals = message.delivery.properties.headers[EnvelopeHeader.deferrals]?.intValue ?? 0
        if deferrals >= Self.maxDeferrals {
            await fail(message, failure, context: context, started: started)
        } else {
            await park(message, failure, wait: wait, deferral: true, dependencyFailed: dependencyFailed, context: context, started: started)
        }
    }

    /// A delivery held for the open circuit as long as `maxHold` allows: parked so the broker's consumer_timeout
    /// never closes the channel over it.
    private func parkHeld(_ message: InboundMessage, logger: Logger) async {
        let reason = ProcessingFailure(
            errorClass: "circuit_open", message: "held for \(settings.maxHold ?? .zero) while the circuit was open; parked", retryable: true)
        await park(
            message, reason, wait: settings.retryDelays.first ?? .seconds(5), context: WorkContext(logger: logger, locks: locks),
            started: .now)
    }

    /// Parks the delivery (no attempt counted): `FailureRouter.park`. If even that fails, it is returned to the queue.
    /// - Parameter dependencyFailed: the park follows a failure of the dependency (an outage that did not open the
    ///   circuit, or one on the way to an unknown outcome): counted as a failed delivery in the heartbeat's per-shop
    ///   figures, so the alerter's `error_rate` still sees a sick ERP whose failures are parked rather than retried.
    private func park(
        _ message: InboundMessage, _ reason: ProcessingFailure, wait: Duration, deferral: Bool = false, dependencyFailed: Bool = false,
        context: WorkContext, started: ContinuousClock.Instant
    ) async {
        do {
            let routed = try await router.park(message.delivery, reason: reason, wait: wait, deferral: deferral)
            count("worker_parked_total", [("reason", reason.errorClass)])
            tally("parked")
            if dependencyFailed { tally(shop: message.envelope.shopDomain, failed: true) }
            trace(message, context, result: "parked", outcome: reason.errorClass, detail: reason.message, started: started)
            if case .parked(let delay) = routed {
                context.logger.info(
                    "\(handler.subject) parked, not failed",
                    metadata: ["reason": "\(reason.errorClass)", "detail": "\(reason.message)", "back_in": "\(delay)"])
            }
        } catch {
            count("worker_requeued_total")
            tally("requeued")
            context.logger.error(
                "could not park \(handler.subject), requeueing", metadata: ["reason": "\(reason.errorClass)", "route_error": "\(error)"])
            try? await message.delivery.nack(requeue: true)
        }
    }

    private func fail(_ message: InboundMessage, _ failure: ProcessingFailure, context: WorkContext, started: ContinuousClock.Instant) async {
        let d = message.delivery
        let logger = context.logger
        do {
            let routed = try await router.route(d, failure: failure)
            trace(
                message, context, result: { if case .deadLettered = routed { "dead_lettered" } else { "retry" } }(),
                outcome: failure.errorClass, detail: failure.message, started: started)
            switch routed {
            case .retried(let level, let delay):
                count("worker_retried_total", [("error_class", failure.errorClass)])
                tally("retried")
                tally(shop: InboundEnvelope(d).shopDomain, failed: true)
                logger.warning(
                    "\(handler.subject) failed, retrying later",
                    metadata: [
                        "error_class": "\(failure.errorClass)", "error": "\(failure.message)", "retry_level": "\(level)",
                        "retry_in": "\(delay)",
                    ])
            case .parked:
                break
            case .deadLettered:
                count("worker_dead_lettered_total", [("reason", failure.errorClass)])
                tally("dead_lettered")
                tally(shop: InboundEnvelope(d).shopDomain, failed: true)
                logger.error(
                    "\(handler.subject) failed, dead-lettered",
                    metadata: [
                        "error_class": "\(failure.errorClass)", "error": "\(failure.message)",
                        "dlq": "\(BridgeTopology.deadLetterQueue(of: settings.queue))",
                    ])
                // The alerter learns of it (and when: RabbitMQ keeps no age for a quorum queue's messages). Not for
                // the alerter's own queue: an event it cannot handle must not beget another.
                if settings.queue != BridgeTopology.alerter.name {
                    let envelope = InboundEnvelope(d)
                    await BridgeEvents.publish(
                        BridgeEvents.deadLettered,
                        body: BridgeEvents.DeadLettered(
                            queue: settings.queue, errorClass: failure.errorClass, error: failure.message, shop: envelope.shopDomain,
                            topic: envelope.topic, messageId: envelope.deliveryId),
                        key: envelope.deliveryId, appId: "shopify-erp-bridge/\(settings.consumerTagPrefix)", on: publisher, logger: logger)
                }
            }
        } catch {
            // Could not hand it to retry/DLQ (broker trouble): return it to the queue; nothing is lost.
            count("worker_requeued_total")
            tally("requeued")
            logger.error(
                "could not route failed \(handler.subject), requeueing",
                metadata: ["error_class": "\(failure.errorClass)", "route_error": "\(error)"])
            trace(message, context, result: "requeued", outcome: failure.errorClass, detail: failure.message, started: started)
            try? await d.nack(requeue: true)
        }
    }
}
