import AsyncHTTPClient
import BridgeDomain
import BridgeMessaging
import Foundation
import Logging
import Messaging
import Metrics
import ServiceLifecycle
import Synchronization
import Worker

/// What the alerter remembers between evaluations: per work queue, when its dead-letter queue's oldest message
/// arrived and the last one's reason (from `message.dead_lettered` events), and since when it has had no consumer.
/// An alerter that starts while a DLQ already holds messages dates them from its first look (it cannot know
/// better: RabbitMQ keeps no age for a quorum queue's messages); the age is then a lower bound.
public final class AlerterState: Sendable {
    struct Queue {
        var oldestDeadLetterAt: Date?
        var lastDeadLetter: BridgeEvents.DeadLettered?
        var noConsumerSince: Date?
        var lastDepth = 0
        /// The work queue's depth at each evaluation, pruned to the lag window (and one before it).
        var depths: [(at: Date, messages: Int)] = []
    }

    private let queues = Mutex<[String: Queue]>([:])

    /// One worker instance's heartbeats, newest last (pruned to what the longest window needs).
    struct Worker {
        var queue: String
        var interval: Double
        var samples: [(at: Date, shops: [String: BridgeEvents.WorkerHeartbeat.Counts])] = []
        var circuit: String?
        var circuitSince: Date?
        /// The heartbeat at which its successful deliveries last grew (heartbeat resolution).
        var lastProgressAt: Date?
    }

    private let workers = Mutex<[String: Worker]>([:])
    private let reconciles = Mutex<[String: ReconcileObservation]>([:])

    /// What a `reconcile.completed` event says (the reconciler's report; only the fields the rules read).
    struct ReconcileEvent: Decodable {
        var runId: String
        var domain: String
        var shop: String
        var dryRun: Bool
        var finishedAt: Date?
        var healed: Int
        var reported: Int
        var mismatches: [String: Int]
        var error: String?
    }

    /// A `reconcile.completed` event's body (the reconciler's JSON report). Dry runs change nothing here: they are
    /// someone looking, not the scheduled truth.
    public func reconcileCompleted(json: Data) throws {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let e = try decoder.decode(ReconcileEvent.self, from: json)
        guard !e.dryRun else { return }
        let at = e.finishedAt ?? Date()
        reconciles.withLock { r in
            var o = r["\(e.domain)|\(e.shop)"] ?? ReconcileObservation(domain: e.domain, shop: e.shop)
            o.lastRunId = e.runId
            o.lastRunAt = at
            o.lastError = e.error
            if e.error == nil {
                o.lastSuccessAt = at
                o.differed = e.healed + e.reported
                o.kinds = e.mismatches
            }
            r["\(e.domain)|\(e.shop)"] = o
        }
    }

    /// The last scheduled-or-manual (not dry) run per domain and shop.
    public var reconcileObservations: [ReconcileObservation] { reconciles.withLock { Array($0.values) } }
    /// How much heartbeat history is kept: the longest window a rule looks back over.
    let history: TimeInterval

    public init(history: Duration = .seconds(1800)) {
        self.history = history.seconds + 60
    }

    /// A `worker.heartbeat` event. Samples are kept in the order of their own timestamps (a late copy is dropped).
    public func heartbeat(_ h: BridgeEvents.WorkerHeartbeat) {
        guard let at = Timestamp.parse(h.at) else { return }
        workers.withLock { w in
            var entry = w[h.instance] ?? Worker(queue: h.queue, interval: h.intervalSeconds)
            if let last = entry.samples.last, last.at >= at { return }
            if let last = entry.samples.last {
                let succeeded = { (shops: [String: BridgeEvents.WorkerHeartbeat.Counts]) in shops.values.reduce(0) { $0 + $1.handled - $1.failed } }
                if succeeded(h.shops) > succeeded(last.shops) { entry.lastProgressAt = at }
            }
            entry.samples.append((at, h.shops))
            entry.interval = h.intervalSeconds
            entry.circuit = h.circuit
            entry.circuitSince = h.circuitSince.flatMap(Timestamp.parse)
            // Keep one sample older than the longest window (the baseline), drop the ones before it.
            if let cut = entry.samples.lastIndex(where: { at.timeIntervalSince($0.at) > history }), cut > 0 {
                entry.samples.removeFirst(cut)
            }
            w[h.instance] = entry
        }
    }

    /// What the workers of each queue reported: per shop, deliveries settled and failed over the last `window`, whether
    /// the heartbeats reach back that far, and the circuits of the workers still alive. A worker silent for three of its
    /// intervals is gone (its counts before that still count in the window; its circuit does not).
    public func flows(window: Duration, now: Date) -> [FlowObservation] {
        let span = window.seconds
        let start = now.addingTimeInterval(-span)
        return workers.withLock { w in
            // Forget workers whose last heartbeat is older than the history.
            w = w.filter { now.timeIntervalSince($0.value.samples.last?.at ?? .distantPast) <= history }
            var flows: [String: FlowObservation] = [:]
            for (instance, worker) in w {
                guard let latest = worker.samples.last else { continue }
                var flow = flows[worker.queue] ?? FlowObservation(queue: worker.queue)
                let baselineSample = worker.samples.last(where: { $0.at <= start })
                if baselineSample != nil { flow.covered = true }
                let baseline = baselineSample ?? worker.samples[0]
                for (shop, counts) in latest.shops {
                    let before = baseline.shops[shop] ?? .init()
                    var c = flow.shops[shop] ?? .init()
                    c.handled += max(0, counts.handled - before.handled)
                    c.failed += max(0, counts.failed - before.failed)
                    flow.shops[shop] = c
                }
                if let p = worker.lastProgressAt, flow.lastSuccessAt.map({ $0 < p }) ?? true { flow.lastSuccessAt = p }
                let alive = now.timeIntervalSince(latest.at) <= max(3 * worker.interval, 1)
                if alive {
                    flow.liveWorkers += 1
                    if let state = worker.circuit, state != "closed" {
                        flow.openCircuits.append(.init(instance: instance, state: state, since: worker.circuitSince ?? latest.at))
                    }
                }
                flows[worker.queue] = flow
            }
            return flows.values.sorted { $0.queue < $1.queue }
        }
    }

    /// A `message.dead_lettered` event.
    public func deadLettered(_ event: BridgeEvents.DeadLettered) {
        let at = Timestamp.parse(event.at) ?? Date()
        queues.withLock { q in
            var entry = q[event.queue] ?? Queue()
            if entry.oldestDeadLetterAt.map({ at < $0 }) ?? true { entry.oldestDeadLetterAt = at }
            entry.lastDeadLetter = event
            q[event.queue] = entry
        }
    }

    /// The broker's counts for a queue, folded into what is remembered; returns the observation to evaluate.
    public func observe(
        queue: String, expectedConsumer: String?, messages: Int, consumers: Int, deadLetters: Int, now: Date, lagWindow: Duration = .seconds(600)
    ) -> QueueObservation {
        queues.withLock { q in
            var entry = q[queue] ?? Queue()
            let span = lagWindow.seconds
            entry.depths.append((now, messages))
            if let cut = entry.depths.lastIndex(where: { now.timeIntervalSince($0.at) >= span }), cut > 0 { entry.depths.removeFirst(cut) }
            let baseline = entry.depths.last { now.timeIntervalSince($0.at) >= span }
            if deadLetters == 0 {
                entry.oldestDeadLetterAt = nil
                entry.lastDeadLetter = nil
            } else if entry.oldestDeadLetterAt == nil {
                entry.oldestDeadLetterAt = now
            }
            if consumers > 0 {
                entry.noConsumerSince = nil
            } else if entry.noConsumerSince == nil {
                entry.noConsumerSince = now
            }
            entry.lastDepth = deadLetters
            q[queue] = entry
            return QueueObservation(
                queue: queue, expectedConsumer: expectedConsumer, messages: messages, consumers: consumers, deadLetters: deadLetters,
                oldestDeadLetterAt: entry.oldestDeadLetterAt, lastDeadLetter: entry.lastDeadLetter, noConsumerSince: entry.noConsumerSince,
                messagesLagWindowAgo: baseline?.messages)
        }
    }
}

/// `q.alerter`: every event on `bridge.events`. Dead-letter events are remembered (their time and reason); the
/// others are acknowledged (the next rules read them: reconciliation results, sync results).
public struct EventsHandler: QueueHandler {
    public let state: AlerterState
    /// Where `message.traced` batches go; nil: they are acknowledged and dropped.
    public let journal: TraceJournal?
    public var subject: String { "bridge event" }

    public init(state: AlerterState, journal: TraceJournal? = nil) {
        self.state = state
        self.journal = journal
    }

    public func handle(_ message: InboundMessage, context: inout WorkContext) async throws -> WorkOutcome {
        switch message.envelope.topic {
        case BridgeEvents.workerHeartbeat:
            do {
                state.heartbeat(try JSONDecoder().decode(BridgeEvents.WorkerHeartbeat.self, from: Data(message.body)))
            } catch {
                throw ProcessingFailure(errorClass: "invalid_payload", message: "not a worker heartbeat: \(error)", retryable: false)
            }
            return WorkOutcome("heartbeat_recorded")
        case BridgeEvents.reconcileCompleted:
            do {
                try state.reconcileCompleted(json: Data(message.body))
            } catch {
                throw ProcessingFailure(errorClass: "invalid_payload", message: "not a reconciliation report: \(error)", retryable: false)
            }
            return WorkOutcome("reconcile_recorded")
        case BridgeEvents.deadLettered:
            let event: BridgeEvents.DeadLettered
            do {
                event = try JSONDecoder().decode(BridgeEvents.DeadLettered.self, from: Data(message.body))
            } catch {
                throw ProcessingFailure(errorClass: "invalid_payload", message: "not a dead-letter event: \(error)", retryable: false)
            }
            state.deadLettered(event)
            return WorkOutcome("dead_letter_recorded")
        case BridgeEvents.traced:
            guard let journal else { return WorkOutcome("ignored_topic") }
            let batch: BridgeEvents.TraceBatch
            do {
                batch = try JSONDecoder().decode(BridgeEvents.TraceBatch.self, from: Data(message.body))
            } catch {
                throw ProcessingFailure(errorClass: "invalid_payload", message: "not a trace batch: \(error)", retryable: false)
            }
            do {
                try journal.append(batch.steps)
            } catch {
                throw ProcessingFailure(errorClass: "journal_write_failed", message: "\(error)", retryable: true)
            }
            return WorkOutcome("trace_recorded")
        default:
            return WorkOutcome("ignored_topic")
        }
    }

    public func classify(_ error: any Error) -> WorkFailure {
        if let f = error as? ProcessingFailure { return .failed(f) }
        return .failed(ProcessingFailure(errorClass: "internal", message: "\(error)", retryable: true))
    }
}

/// Evaluates the rules every `alerter.interval`: reads each work queue's and DLQ's counts from the broker (a
/// passive declare: no management plugin needed), exports them, and hands the alerts to the notifier.
///
/// Metrics: `bridge_queue_messages{queue}`, `bridge_queue_consumers{queue}`, `bridge_dlq_depth{queue}`,
/// `bridge_dlq_oldest_age_seconds{queue}` (0 when the DLQ is empty).
public final class AlertEvaluator: Service, Sendable {
    public let settings: AlerterSettings
    public let state: AlerterState
    public let notifier: Notifier
    let connection: AMQPConnection
    /// Work queue -> the process expected to consume it (nil: none configured).
    let watched: [(queue: String, consumer: String?)]
    /// The shop domains the `silence` rule expects orders from (empty: all shops together).
    let silentShops: [String]
    /// The reconciler's schedules and the shops they run for (`reconcile_missed`).
    let reconcileSchedules: [(domain: String, schedule: CronSchedule)]
    let reconcileShops: [String]
    /// When this alerter started: it cannot know of runs due before (`reconcile_missed` starts from here).
    let started = Date()
    let logger: Logger
    private let evaluations = Atomic<Int>(0)
    /// The broker's counts of the last evaluation (for `/status`).
    private let lastObservations = Mutex<[QueueObservation]>([])
    /// Readiness probes (`alerter.probes`): since when each has failed.
    private let probeStates = Mutex<[String: ProbeObservation]>([:])
    let client: HTTPClient
    let journal: TraceJournal?
    private let lastPrune = Mutex<Date?>(nil)

    public init(
        settings: AlerterSettings, state: AlerterState, notifier: Notifier, connection: AMQPConnection, watched: [(queue: String, consumer: String?)],
        silentShops: [String] = [], reconcileSchedules: [(domain: String, schedule: CronSchedule)] = [], reconcileShops: [String] = [],
        journal: TraceJournal? = nil, client: HTTPClient = .shared, logger: Logger
    ) {
        self.journal = journal
        self.client = client
        self.silentShops = silentShops
        self.reconcileSchedules = reconcileSchedules
        self.reconcileShops = reconcileShops
        self.settings = settings
        self.state = state
        self.notifier = notifier
        self.connection = connection
        self.watched = watched
        self.logger = logger
    }

    /// The operator's screen (`GET /status`, `bridgectl status`): per flow its queue, DLQ, circuit, last success and
    /// failures over the error window; each reconciliation's last run; the alerts firing.
    public func status(now: Date = Date()) async -> StatusReport {
        let flows = Dictionary(state.flows(window: settings.errorWindow, now: now).map { ($0.queue, $0) }, uniquingKeysWith: { a, _ in a })
        let observed = lastObservations.withLock { $0 }
        var rows: [StatusReport.Flow] = []
        for w in watched {
            let o = observed.first { $0.queue == w.queue }
            let f = flows[w.queue]
            rows.append(
                StatusReport.Flow(
                    queue: w.queue, consumer: w.consumer, messages: o?.messages, consumers: o?.consumers, deadLetters: o?.deadLetters,
                    oldestDeadLetterSeconds: o?.oldestDeadLetterAt.map { Int(max(0, now.timeIntervalSince($0))) },
                    lastDeadLetterClass: o?.lastDeadLetter?.errorClass, liveWorkers: f?.liveWorkers ?? 0,
                    openCircuits: f?.openCircuits.count ?? 0, lastSuccessAt: f?.lastSuccessAt.map { Timestamp.string(milliseconds: Timestamp.milliseconds($0)) },
                    settled: f?.shops.values.reduce(0) { $0 + $1.handled } ?? 0, failed: f?.shops.values.reduce(0) { $0 + $1.failed } ?? 0))
        }
        let reconciliations = state.reconcileObservations.sorted { ($0.domain, $0.shop) < ($1.domain, $1.shop) }.map { r in
            StatusReport.Reconciliation(
                domain: r.domain, shop: r.shop, lastRunAt: r.lastRunAt.map { Timestamp.string(milliseconds: Timestamp.milliseconds($0)) },
                lastSuccessAt: r.lastSuccessAt.map { Timestamp.string(milliseconds: Timestamp.milliseconds($0)) }, error: r.lastError,
                differences: r.differed, run: r.lastRunId)
        }
        return StatusReport(
            at: Timestamp.string(milliseconds: Timestamp.milliseconds(now)), errorWindowSeconds: Int(settings.errorWindow.components.seconds),
            flows: rows, reconciliations: reconciliations, firing: await notifier.current)
    }

    /// Polls every readiness probe once (concurrently, 5 s each) and returns what is known of each.
    ///
    /// Metrics: `bridge_process_ready{process}` (1 ready, 0 not).
    func probe(now: Date) async -> [ProbeObservation] {
        guard !settings.probes.isEmpty else { return [] }
        let results = await withTaskGroup(of: (AlerterSettings.Probe, String).self) { group in
            for p in settings.probes {
                group.addTask {
                    do {
                        let response = try await self.client.execute(HTTPClientRequest(url: p.url), timeout: .seconds(5))
                        _ = try? await response.body.collect(upTo: 1 << 16)
                        return (p, "\(response.status.code)")
                    } catch {
                        return (p, String("\(error)".prefix(120)))
                    }
                }
            }
            var all: [(AlerterSettings.Probe, String)] = []
            for await r in group { all.append(r) }
            return all
        }
        return probeStates.withLock { states in
            for (p, result) in results {
                let ready = result == "200"
                let before = states[p.name]?.failingSince
                states[p.name] = ProbeObservation(name: p.name, url: p.url, failingSince: ready ? nil : (before ?? now), lastResult: result)
                Gauge(label: "bridge_process_ready", dimensions: [("process", p.name)]).record(ready ? 1 : 0)
                if !ready, before == nil {
                    logger.warning("a process is not ready", metadata: ["process": "\(p.name)", "result": "\(result)"])
                }
            }
            return settings.probes.compactMap { states[$0.name] }
        }
    }

    /// Prunes the trace journal once an hour.
    func pruneJournal(now: Date) {
        guard let journal else { return }
        let due = lastPrune.withLock { last -> Bool in
            guard last.map({ now.timeIntervalSince($0) >= 3600 }) ?? true else { return false }
            last = now
            return true
        }
        guard due else { return }
        do {
            let removed = try journal.prune(now: now)
            if removed > 0 { logger.info("trace journal pruned", metadata: ["removed": "\(removed)"]) }
        } catch {
            logger.warning("could not prune the trace journal", metadata: ["error": "\(error)"])
        }
    }

    /// Evaluations done so far (a test waits on it).
    public var evaluationCount: Int { evaluations.load(ordering: .relaxed) }

    public func run() async throws {
        logger.info(
            "alerter watching", metadata: ["queues": "\(watched.map(\.queue))", "interval": "\(settings.interval)"])
        // Stops at once on graceful shutdown (an evaluation cut short sends nothing more; the next alerter resumes).
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.evaluateOnce()
                try? await Task.sleep(for: self.settings.interval)
            }
        }
    }

    /// One evaluation; returns the alerts firing after it.
    @discardableResult
    public func evaluateOnce(now: Date = Date()) async -> [Alert] {
        var observations: [QueueObservation] = []
        for w in watched {
            do {
                let work = try await connection.queueCounts(w.queue)
                let dlq = try await connection.queueCounts(BridgeTopology.deadLetterQueue(of: w.queue))
                let o = state.observe(
                    queue: w.queue, expectedConsumer: w.consumer, messages: work.messages, consumers: work.consumers, deadLetters: dlq.messages,
                    now: now, lagWindow: settings.lagFor)
                let dims = [("queue", w.queue)]
                Gauge(label: "bridge_queue_messages", dimensions: dims).record(work.messages)
                Gauge(label: "bridge_queue_consumers", dimensions: dims).record(work.consumers)
                Gauge(label: "bridge_dlq_depth", dimensions: dims).record(dlq.messages)
                Gauge(label: "bridge_dlq_oldest_age_seconds", dimensions: dims)
                    .record(o.oldestDeadLetterAt.map { max(0, now.timeIntervalSince($0)) } ?? 0)
                observations.append(o)
            } catch {
                Counter(label: "alerter_broker_reads_failed_total").increment()
                logger.warning("could not read a queue's counts", metadata: ["queue": "\(w.queue)", "error": "\(error)"])
            }
        }
        lastObservations.withLock { $0 = observations }
        // A queue that could not be read keeps its alerts as they were (no resolved notice for a blind spot).
        var alerts = AlertRules.evaluate(observations, settings: settings, now: now)
        alerts += AlertRules.evaluate(
            errorFlows: state.flows(window: settings.errorWindow, now: now), quietFlows: state.flows(window: settings.quietFor, now: now),
            silentShops: silentShops, settings: settings, now: now)
        alerts += AlertRules.evaluate(probes: await probe(now: now), settings: settings, now: now)
        alerts += AlertRules.evaluate(
            reconciles: state.reconcileObservations, schedules: reconcileSchedules, shops: reconcileShops, watchingSince: started,
            settings: settings, now: now)
        let read = Set(observations.map(\.queue))
        let unread = watched.map(\.queue).filter { !read.contains($0) }
        alerts += await notifier.current.filter { a in
            unread.contains { a.subject == $0 || a.subject == BridgeTopology.deadLetterQueue(of: $0) }
        }
        await notifier.update(alerts, now: now)
        pruneJournal(now: now)
        evaluations.add(1, ordering: .relaxed)
        return await notifier.current
    }
}

/// The alerter's wiring, from configuration to services (the executable runs it; tests build the same thing).
public struct AlerterProcess: Sendable {
    public let state: AlerterState
    public let notifier: Notifier
    public let evaluator: AlertEvaluator
    public let worker: QueueWorker<EventsHandler>
    public let journal: TraceJournal

    public var services: [any Service] { [evaluator, worker] }

    /// The work queues and the process expected to consume each, given what the configuration enables.
    public static func watched(_ config: BridgeConfig) -> [(queue: String, consumer: String?)] {
        BridgeTopology.workQueues.filter { $0.name != BridgeTopology.alerter.name }.map { q in
            let enabled: Bool =
                switch q.consumer {
                case "order-forwarder": config.orderForwarder.enabled
                case "inventory-syncer": config.inventorySyncer.enabled
                default: true
                }
            return (q.name, enabled ? q.consumer : nil)
        }
    }

    public static func build(
        config: BridgeConfig, consumer: AMQPConnection, publisher: AMQPConnection, channels: [any AlertChannel], logger: Logger
    ) throws -> AlerterProcess {
        let journal = try TraceJournal(path: config.alerter.traceJournal, retention: config.alerter.traceRetention)
        let state = AlerterState(history: max(config.alerter.errorWindow, config.alerter.quietFor))
        let notifier = Notifier(channels: channels, repeatInterval: config.alerter.repeatInterval, routing: config.alerter, logger: logger)
        let evaluator = AlertEvaluator(
            settings: config.alerter, state: state, notifier: notifier, connection: consumer, watched: watched(config),
            silentShops: config.shops.map(\.domain),
            reconcileSchedules: ReconcilerSettings.Domain.allCases.compactMap { d in config.reconciler.domains[d]?.schedule.map { (d.rawValue, $0) } },
            reconcileShops: config.shops.map(\.id), journal: journal, logger: logger)
        let worker = QueueWorker(
            settings: .init(queue: BridgeTopology.alerter.name, prefetch: 32, retryDelays: config.topology.retryDelays),
            handler: EventsHandler(state: state, journal: journal), consumer: consumer, publisher: publisher, logger: logger)
        return AlerterProcess(state: state, notifier: notifier, evaluator: evaluator, worker: worker, journal: journal)
    }
}

extension AlerterProcess {
    /// The configured channels: the log always, the Slack-compatible and the signed webhook when their URLs are set,
    /// e-mail when `alerter.smtp.host` is.
    public static func channels(_ settings: AlerterSettings, client: HTTPClient = .shared, logger: Logger) -> [any AlertChannel] {
        var channels: [any AlertChannel] = [LogChannel(logger: logger)]
        if let url = settings.slackWebhookURL { channels.append(SlackChannel(url: url, client: client)) }
        if let url = settings.webhookURL { channels.append(SignedWebhookChannel(url: url, secret: settings.webhookSecret, client: client)) }
        if let smtp = settings.smtp { channels.append(SMTPChannel(settings: smtp)) }
        return channels
    }

    /// `GET /status`: the operator's screen as JSON (what `bridgectl status` prints).
    public func statusJSON() async -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array((try? encoder.encode(await evaluator.status())) ?? Data("{}".utf8))
    }

    /// `GET /trace?order=ID|webhook=ID[&shop=DOMAIN]`: the journey of one order or delivery (what `bridgectl trace`
    /// prints), oldest first.
    public func traceJSON(order: String?, webhook: String?, shop: String?) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array(try encoder.encode(TraceLine.journey(try journal.steps(order: order, webhook: webhook, shop: shop))))
    }

    /// `GET /alerts`: the alerts firing now, as JSON (what `bridgectl alerts` prints).
    public func firingJSON() async -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        return Array((try? encoder.encode(await notifier.current)) ?? Data("[]".utf8))
    }
}
