import BridgeDomain
import BridgeMessaging
import Foundation

/// What the alerter knows about one work queue at one evaluation: the broker's counts (read each time) and what the
/// dead-letter events told it (RabbitMQ keeps no age for a quorum queue's messages, `head_message_timestamp` being
/// classic-only, so the age of the oldest dead letter comes from the `message.dead_lettered` events).
public struct QueueObservation: Sendable, Equatable {
    public var queue: String
    /// The process that consumes it; nil: none is configured to (no consumer is expected).
    public var expectedConsumer: String?
    public var messages: Int
    public var consumers: Int
    public var deadLetters: Int
    /// When the oldest dead letter still in the DLQ arrived (nil: unknown, or the DLQ is empty).
    public var oldestDeadLetterAt: Date?
    public var lastDeadLetter: BridgeEvents.DeadLettered?
    /// Since when the queue has had no consumer (nil: it has one).
    public var noConsumerSince: Date?
    /// The queue's depth `alerter.lag_for` ago (nil: the alerter has not watched that long).
    public var messagesLagWindowAgo: Int?

    public init(
        queue: String, expectedConsumer: String?, messages: Int, consumers: Int, deadLetters: Int, oldestDeadLetterAt: Date? = nil,
        lastDeadLetter: BridgeEvents.DeadLettered? = nil, noConsumerSince: Date? = nil, messagesLagWindowAgo: Int? = nil
    ) {
        self.messagesLagWindowAgo = messagesLagWindowAgo
        self.queue = queue
        self.expectedConsumer = expectedConsumer
        self.messages = messages
        self.consumers = consumers
        self.deadLetters = deadLetters
        self.oldestDeadLetterAt = oldestDeadLetterAt
        self.lastDeadLetter = lastDeadLetter
        self.noConsumerSince = noConsumerSince
    }
}

/// What the workers of one work queue reported over a window (from their `worker.heartbeat` events).
public struct FlowObservation: Sendable, Equatable {
    public struct OpenCircuit: Sendable, Equatable {
        public var instance: String
        /// `open` or `half_open`.
        public var state: String
        public var since: Date
        public init(instance: String, state: String, since: Date) {
            self.instance = instance
            self.state = state
            self.since = since
        }
    }

    public var queue: String
    /// Per shop domain: deliveries settled and failed within the window.
    public var shops: [String: BridgeEvents.WorkerHeartbeat.Counts]
    /// Whether some worker's heartbeats reach back to the window's start (else the counts cover less than the window,
    /// and silence cannot be told from an alerter that just started).
    public var covered: Bool
    /// Workers whose heartbeat is current.
    public var liveWorkers: Int
    public var openCircuits: [OpenCircuit]
    /// The last heartbeat at which some worker's successful deliveries had grown.
    public var lastSuccessAt: Date?

    public init(
        queue: String, shops: [String: BridgeEvents.WorkerHeartbeat.Counts] = [:], covered: Bool = false, liveWorkers: Int = 0,
        openCircuits: [OpenCircuit] = []
    ) {
        self.queue = queue
        self.shops = shops
        self.covered = covered
        self.liveWorkers = liveWorkers
        self.openCircuits = openCircuits
    }
}

/// The last reconciliation run (not a dry run) of one domain for one shop, from `reconcile.completed` events.
public struct ReconcileObservation: Sendable, Equatable {
    public var domain: String
    public var shop: String
    public var lastRunId: String?
    public var lastRunAt: Date?
    /// Why the last run stopped (nil: it completed).
    public var lastError: String?
    public var lastSuccessAt: Date?
    /// Differences the last completed run found (healed + reported), and by kind.
    public var differed = 0
    public var kinds: [String: Int] = [:]

    public init(domain: String, shop: String) {
        self.domain = domain
        self.shop = shop
    }
}

/// The rules, as a pure function of what was observed: the same observations give the same alerts, which is what
/// the tests check and what makes a restarted alerter agree with the one before it.
///
/// - `dead_letters`: a dead-letter queue holds a message (warning); its oldest is older than
///   `alerter.dead_letter_age` (critical).
/// - `no_consumer`: a work queue whose consumer process is configured has had no consumer for
///   `alerter.no_consumer_grace` (critical): messages wait, nothing is lost, but nothing moves either.
public enum AlertRules {
    /// Every rule the alerter evaluates (the `alerts_firing{rule}` gauge has a series for each).
    public static let names = [
        "dead_letters", "no_consumer", "consumer_lag", "error_rate", "circuit_open", "silence", "reconcile_failed", "reconcile_drift", "reconcile_missed",
        "process_not_ready",
    ]

    public static func evaluate(_ queues: [QueueObservation], settings: AlerterSettings, now: Date) -> [Alert] {
        var alerts: [Alert] = []
        for q in queues {
            let dlq = BridgeTopology.deadLetterQueue(of: q.queue)
            if q.deadLetters > 0 {
                var figures = ["dead_letters": "\(q.deadLetters)", "queue": q.queue]
                var critical = false
                if let oldest = q.oldestDeadLetterAt {
                    let age = max(0, now.timeIntervalSince(oldest))
                    figures["oldest_age_seconds"] = "\(Int(age))"
                    critical = age >= Double(settings.deadLetterAge.components.seconds)
                }
                if let last = q.lastDeadLetter {
                    figures["last_error_class"] = last.errorClass
                    figures["last_error"] = String(last.error.prefix(200))
                    if let id = last.messageId { figures["last_message_id"] = id }
                    if let topic = last.topic { figures["last_topic"] = topic }
                }
                let what = q.deadLetters == 1 ? "1 message" : "\(q.deadLetters) messages"
                alerts.append(
                    Alert(
                        rule: "dead_letters", severity: critical ? .critical : .warning, subject: dlq, shop: q.lastDeadLetter?.shop,
                        summary: "\(dlq) holds \(what) that could not be processed"
                            + (q.lastDeadLetter.map { " (last: \($0.errorClass))" } ?? ""),
                        figures: figures,
                        action: "read the reason on the dead letter, fix its cause (data, mapping, the ERP), then replay it",
                        command: "bridgectl dlq list --queue \(q.queue); after the fix: bridgectl dlq replay --queue \(q.queue) --all",
                        runbook: "\(settings.runbookURL)#alert-dead_letters"))
            }
            if let before = q.messagesLagWindowAgo, q.messages >= settings.lagMessages, q.messages > before, q.consumers > 0 {
                let minutes = Int(settings.lagFor.components.seconds) / 60
                alerts.append(
                    Alert(
                        rule: "consumer_lag", severity: .warning, subject: q.queue,
                        summary: "\(q.queue) has \(q.messages) messages waiting, up from \(before) \(minutes) min ago: its consumers fall behind",
                        figures: ["queue": q.queue, "messages": "\(q.messages)", "messages_before": "\(before)", "consumers": "\(q.consumers)"],
                        action: "scale the consumer (./dev scale order-forwarder N, docker compose up --scale order-forwarder=N), or see whether its dependency slowed down",
                        command: "bridgectl status", runbook: "\(settings.runbookURL)#alert-consumer_lag"))
            }
            if let process = q.expectedConsumer, q.consumers == 0, let since = q.noConsumerSince,
                now.timeIntervalSince(since) >= Double(settings.noConsumerGrace.components.seconds)
            {
                alerts.append(
                    Alert(
                        rule: "no_consumer", severity: .critical, subject: q.queue,
                        summary: "\(q.queue) has no consumer: \(process) is not running (\(q.messages) messages waiting)",
                        figures: [
                            "queue": q.queue, "messages": "\(q.messages)", "consumers": "0",
                            "no_consumer_seconds": "\(Int(now.timeIntervalSince(since)))",
                        ],
                        action: "start \(process) (docker compose up -d \(process), or ./dev up); the queue keeps every message until then",
                        command: "rabbitmqctl list_queues name messages consumers",
                        runbook: "\(settings.runbookURL)#alert-no_consumer"))
            }
        }
        return alerts.sorted { ($0.severity, $0.fingerprint) > ($1.severity, $1.fingerprint) }
    }

    /// The rules over the workers' heartbeats:
    ///
    /// - `error_rate`: per queue and shop, failed / settled over `alerter.error_window` reaches `alerter.error_rate`
    ///   with at least `alerter.error_min_messages` settled (warning; critical from 50%).
    /// - `circuit_open`: a live worker has held its messages for an unreachable dependency (circuit open or probing)
    ///   for `alerter.circuit_open_for` (critical).
    /// - `silence`: inside `alerter.business_hours`, a shop (each of `silentShops`; all shops together when empty)
    ///   had no order settled on `q.orders` for `alerter.quiet_for`, while the forwarder's heartbeats cover that span
    ///   (warning). `errorFlows` are observed over the error window, `quietFlows` over `quiet_for`.
    public static func evaluate(
        errorFlows: [FlowObservation], quietFlows: [FlowObservation], silentShops: [String], settings: AlerterSettings, now: Date
    ) -> [Alert] {
        var alerts: [Alert] = []
        let window = Int(settings.errorWindow.components.seconds)
        for flow in errorFlows {
            for (shop, c) in flow.shops.sorted(by: { $0.key < $1.key }) where c.handled >= settings.errorMinMessages && c.handled > 0 {
                let rate = Double(c.failed) / Double(c.handled)
                guard rate >= settings.errorRate else { continue }
                let percent = (rate * 1000).rounded() / 10
                let shopName = shop == "-" ? nil : shop
                alerts.append(
                    Alert(
                        rule: "error_rate", severity: rate >= 0.5 ? .critical : .warning, subject: "\(flow.queue)|\(shop)", shop: shopName,
                        summary: "\(percent)% of \(shopName ?? "unattributed") deliveries on \(flow.queue) failed in the last \(window) s "
                            + "(\(c.failed) of \(c.handled))",
                        figures: [
                            "queue": flow.queue, "failed": "\(c.failed)", "settled": "\(c.handled)", "error_rate_percent": "\(percent)",
                            "window_seconds": "\(window)", "threshold_percent": "\((settings.errorRate * 1000).rounded() / 10)",
                        ],
                        action: "read the failures' reasons in the consumer's log (error_class) and in the DLQ; fix the cause (ERP validation, mapping, data)",
                        command: "bridgectl dlq list --queue \(flow.queue); curl <process>/metrics | grep worker_retried_total",
                        runbook: "\(settings.runbookURL)#alert-error_rate"))
            }
            let limit = settings.circuitOpenFor.seconds
            if let oldest = flow.openCircuits.min(by: { $0.since < $1.since }), now.timeIntervalSince(oldest.since) >= limit {
                let seconds = Int(now.timeIntervalSince(oldest.since))
                alerts.append(
                    Alert(
                        rule: "circuit_open", severity: .critical, subject: flow.queue,
                        summary: "\(flow.queue): the dependency is unreachable; \(flow.openCircuits.count) of \(flow.liveWorkers) workers "
                            + "have held their messages for \(seconds) s",
                        figures: [
                            "queue": flow.queue, "open_circuits": "\(flow.openCircuits.count)", "live_workers": "\(flow.liveWorkers)",
                            "open_seconds": "\(seconds)", "state": oldest.state,
                        ],
                        action: "check the ERP (or Shopify) the queue's process calls: its status page, credentials, rate limits; "
                            + "messages wait in the queue and drain on their own when it answers",
                        command: "curl <process>/metrics | grep worker_circuit_state; rabbitmqctl list_queues name messages",
                        runbook: "\(settings.runbookURL)#alert-circuit_open"))
            }
        }
        if let hours = settings.businessHours,
            let orders = quietFlows.first(where: { $0.queue == BridgeTopology.orders.name }), orders.covered, orders.liveWorkers > 0
        {
            let span = settings.quietFor.seconds
            if hours.covers(from: now.addingTimeInterval(-span), to: now) {
                let subjects: [(String?, Int)] =
                    silentShops.isEmpty
                    ? [(nil, orders.shops.values.reduce(0) { $0 + $1.handled })]
                    : silentShops.map { ($0, orders.shops[$0]?.handled ?? 0) }
                for (shop, handled) in subjects where handled == 0 {
                    alerts.append(
                        Alert(
                            rule: "silence", severity: .warning, subject: shop ?? "all shops", shop: shop,
                            summary: "no order from \(shop ?? "any shop") for \(Int(span) / 60) min during business hours",
                            figures: ["quiet_seconds": "\(Int(span))", "queue": orders.queue, "orders_settled": "0"],
                            action: "check that Shopify still delivers webhooks (the app's webhook subscriptions, ingest's "
                                + "ingest_requests_total and ingest_rejections_total, a rotated secret) and that the shop is selling",
                            command: "curl <ingest ops>/metrics | grep ingest_; bridgectl reconcile run --domain orders --shop <shop> --since 1h --dry-run",
                            runbook: "\(settings.runbookURL)#alert-silence"))
                }
            }
        }
        return alerts.sorted { ($0.severity, $0.fingerprint) > ($1.severity, $1.fingerprint) }
    }

    /// The reconciliation rules:
    ///
    /// - `reconcile_failed`: a domain's last run for a shop stopped with an error (warning).
    /// - `reconcile_drift`: its last completed run found `alerter.reconcile_drift` differences or more, healed or
    ///   reported: something upstream loses data (warning).
    /// - `reconcile_missed`: a scheduled run was due at least `alerter.reconcile_grace` ago, after this alerter started
    ///   watching, and no run of that domain for that shop has succeeded since (warning).
    public static func evaluate(
        reconciles: [ReconcileObservation], schedules: [(domain: String, schedule: CronSchedule)], shops: [String], watchingSince: Date,
        settings: AlerterSettings, now: Date
    ) -> [Alert] {
        var alerts: [Alert] = []
        let runbook = settings.runbookURL
        for o in reconciles.sorted(by: { ($0.domain, $0.shop) < ($1.domain, $1.shop) }) {
            let look = "bridgectl reconcile report --list; bridgectl reconcile report --run \(o.lastRunId ?? "<run>")"
            if let error = o.lastError {
                alerts.append(
                    Alert(
                        rule: "reconcile_failed", severity: .warning, subject: "\(o.domain)|\(o.shop)", shop: o.shop,
                        summary: "the \(o.domain) reconciliation of \(o.shop) failed: \(error.prefix(200))",
                        figures: ["domain": o.domain, "run": o.lastRunId ?? "-"],
                        action: "read the run's error (a configuration to fix, an API down), then run it again",
                        command: look + "; bridgectl reconcile run --domain \(o.domain) --shop \(o.shop)", runbook: "\(runbook)#alert-reconcile_failed"))
            } else if o.differed >= settings.reconcileDrift {
                let kinds = o.kinds.sorted { ($0.value, $0.key) > ($1.value, $1.key) }.prefix(4).map { "\($0.key)=\($0.value)" }
                alerts.append(
                    Alert(
                        rule: "reconcile_drift", severity: .warning, subject: "\(o.domain)|\(o.shop)", shop: o.shop,
                        summary: "the \(o.domain) reconciliation of \(o.shop) found \(o.differed) differences (\(kinds.joined(separator: ", ")))",
                        figures: ["domain": o.domain, "differences": "\(o.differed)", "threshold": "\(settings.reconcileDrift)", "run": o.lastRunId ?? "-"],
                        action: "read the report: healed differences mean a flow loses updates (dropped webhooks, lost ERP pushes), reported ones need a human",
                        command: look, runbook: "\(runbook)#alert-reconcile_drift"))
            }
        }
        let grace = settings.reconcileGrace.seconds
        for (domain, schedule) in schedules {
            // The latest run due after the alerter started and at least `grace` ago.
            var due: Date?
            var t = watchingSince
            for _ in 0..<10_000 {
                guard let next = schedule.next(after: t), next <= now.addingTimeInterval(-grace) else { break }
                due = next
                t = next
            }
            guard let due else { continue }
            for shop in shops {
                let success = reconciles.first { $0.domain == domain && $0.shop == shop }?.lastSuccessAt
                guard success.map({ $0 < due }) ?? true else { continue }
                alerts.append(
                    Alert(
                        rule: "reconcile_missed", severity: .warning, subject: "\(domain)|\(shop)", shop: shop,
                        summary: "no successful \(domain) reconciliation of \(shop) since the run due at \(Timestamp.string(milliseconds: Timestamp.milliseconds(due)))",
                        figures: ["domain": domain, "due": Timestamp.string(milliseconds: Timestamp.milliseconds(due)), "schedule": schedule.description],
                        action: "check that a reconciler is running and active (./dev status, its log); run it by hand",
                        command: "bridgectl reconcile report --list; bridgectl reconcile run --domain \(domain) --shop \(shop)",
                        runbook: "\(runbook)#alert-reconcile_missed"))
            }
        }
        return alerts
    }

    /// - `process_not_ready`: a process whose readiness probe (`alerter.probes`) has failed (not 200, or no answer)
    ///   for `alerter.not_ready_for` (critical): it is up but cannot do its work (broker, ledger or dependency).
    public static func evaluate(probes: [ProbeObservation], settings: AlerterSettings, now: Date) -> [Alert] {
        probes.compactMap { p in
            guard let since = p.failingSince, now.timeIntervalSince(since) >= settings.notReadyFor.seconds else { return nil }
            let seconds = Int(now.timeIntervalSince(since))
            return Alert(
                rule: "process_not_ready", severity: .critical, subject: p.name,
                summary: "\(p.name) has not been ready for \(seconds) s (\(p.lastResult))",
                figures: ["process": p.name, "not_ready_seconds": "\(seconds)", "last_result": p.lastResult],
                action: "open the process's /readyz: it names the failing check (broker, ledger, dependency); its log says why",
                command: "curl -s \(p.url)",
                runbook: "\(settings.runbookURL)#alert-process_not_ready")
        }
    }
}

/// One readiness probe as the alerter last saw it.
public struct ProbeObservation: Sendable, Equatable {
    public var name: String
    public var url: String
    /// Since when it has been failing without a success in between; nil: ready.
    public var failingSince: Date?
    /// `200`, `503`, or the transport error, shortened.
    public var lastResult: String

    public init(name: String, url: String, failingSince: Date?, lastResult: String) {
        self.name = name
        self.url = url
        self.failingSince = failingSince
        self.lastResult = lastResult
    }
}
