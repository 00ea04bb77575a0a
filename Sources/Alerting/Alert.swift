import Foundation

/// One condition that needs a human: which rule, how bad, where, the figures that fired it, what to do and where to
/// look closer. Alerts with one `fingerprint` are one alert (notified once per repeat interval, then resolved).
public struct Alert: Sendable, Equatable, Codable {
    public enum Severity: String, Sendable, Codable, Comparable {
        case warning, critical
        public static func < (a: Severity, b: Severity) -> Bool { a == .warning && b == .critical }
    }

    /// The rule (`dead_letters`, `no_consumer`), also the runbook section (`#alert-<rule>`).
    public var rule: String
    public var severity: Severity
    /// What the alert is about: a queue, a shop.
    public var subject: String
    public var shop: String?
    /// One line for a human.
    public var summary: String
    /// The figures that fired it (depth, age in seconds, the last error class...), by name.
    public var figures: [String: String]
    /// What to do first.
    public var action: String
    /// The command to look closer (`bridgectl dlq list q.orders`).
    public var command: String
    /// The runbook section.
    public var runbook: String

    public var fingerprint: String { "\(rule)|\(subject)" }

    public init(
        rule: String, severity: Severity, subject: String, shop: String? = nil, summary: String, figures: [String: String], action: String,
        command: String, runbook: String
    ) {
        self.rule = rule
        self.severity = severity
        self.subject = subject
        self.shop = shop
        self.summary = summary
        self.figures = figures
        self.action = action
        self.command = command
        self.runbook = runbook
    }
}

/// A notice about an alert: it started firing, it is still firing (the repeat interval passed), or it resolved.
public struct AlertNotice: Sendable, Equatable, Codable {
    public enum State: String, Sendable, Codable {
        case firing, repeating, resolved
    }

    public var state: State
    public var alert: Alert
    /// When the condition was first seen, ISO-8601.
    public var since: String
    public var at: String

    public init(state: State, alert: Alert, since: String, at: String) {
        self.state = state
        self.alert = alert
        self.since = since
        self.at = at
    }

    /// The text a chat channel shows.
    public var text: String {
        let mark = state == .resolved ? "RESOLVED" : alert.severity.rawValue.uppercased()
        var lines = ["[\(mark)] \(alert.summary)"]
        if state != .resolved {
            let figures = alert.figures.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            lines.append("\(figures)")
            lines.append("What to do: \(alert.action)")
            lines.append("Look closer: `\(alert.command)` · runbook: \(alert.runbook)")
        }
        lines.append("since \(since)")
        return lines.joined(separator: "\n")
    }
}
