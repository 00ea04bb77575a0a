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

    public init(
        queue: String, expectedConsumer: String?, messages: Int, consumers: Int, deadLetters: Int, oldestDeadLetterAt: Date? = nil,
        lastDeadLetter: BridgeEvents.DeadLettered? = nil, noConsumerSince: Date? = nil
    ) {
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

/// The rules, as a pure function of what was observed: the same observations give the same alerts, which is what
/// the tests check and what makes a restarted alerter agree with the one before it.
///
/// - `dead_letters`: a dead-letter queue holds a message (warning); its oldest is older than
///   `alerter.dead_letter_age` (critical).
/// - `no_consumer`: a work queue whose consumer process is configured has had no consumer for
///   `alerter.no_consumer_grace` (critical): messages wait, nothing is lost, but nothing moves either.
public enum AlertRules {
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
}
