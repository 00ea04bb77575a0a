import BridgeDomain
import Foundation

/// The one screen to open during a sale (`GET /status` on the alerter, printed by `bridgectl status`): per flow its
/// queue depth and consumers, its DLQ with the oldest letter's age, its circuits, when it last delivered something
/// and its failures over the error window; the last run of each reconciliation; the alerts firing.
public struct StatusReport: Codable, Sendable, Equatable {
    public struct Flow: Codable, Sendable, Equatable {
        public var queue: String
        /// The process expected to consume it (nil: none configured).
        public var consumer: String?
        /// The broker's counts at the last evaluation (nil: not read yet, or the read failed).
        public var messages: Int?
        public var consumers: Int?
        public var deadLetters: Int?
        public var oldestDeadLetterSeconds: Int?
        public var lastDeadLetterClass: String?
        /// From the workers' heartbeats: workers alive, circuits open or probing, the last heartbeat at which a
        /// delivery succeeded, and settled / failed deliveries over the error window.
        public var liveWorkers: Int
        public var openCircuits: Int
        public var lastSuccessAt: String?
        public var settled: Int
        public var failed: Int
    }

    public struct Reconciliation: Codable, Sendable, Equatable {
        public var domain: String
        public var shop: String
        public var lastRunAt: String?
        public var lastSuccessAt: String?
        public var error: String?
        public var differences: Int
        public var run: String?
    }

    public var at: String
    public var errorWindowSeconds: Int
    public var flows: [Flow]
    public var reconciliations: [Reconciliation]
    public var firing: [Alert]

    /// A duration for a human: `42s`, `3m 20s`, `2h 5m`, `3d 4h`.
    static func ago(_ seconds: Int) -> String {
        switch seconds {
        case ..<60: return "\(seconds)s"
        case ..<3600: return "\(seconds / 60)m \(seconds % 60)s"
        case ..<86400: return "\(seconds / 3600)h \(seconds % 3600 / 60)m"
        default: return "\(seconds / 86400)d \(seconds % 86400 / 3600)h"
        }
    }

    /// The report as text, ages relative to the report's own time.
    public func render() -> String {
        let now = Timestamp.parse(at) ?? Date()
        func since(_ iso: String?) -> String {
            guard let iso, let d = Timestamp.parse(iso) else { return "-" }
            return Self.ago(Int(max(0, now.timeIntervalSince(d)))) + " ago"
        }
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s + String(repeating: " ", count: n - s.count) }
        var out = [
            pad("FLOW", 22) + pad("WAITING", 9) + pad("CONSUMERS", 11) + pad("DLQ", 6) + pad("OLDEST DLQ", 12) + pad("CIRCUIT", 12)
                + pad("LAST SUCCESS", 15) + "FAILED/SETTLED (\(Self.ago(errorWindowSeconds)))"
        ]
        for f in flows {
            let circuit = f.liveWorkers == 0 ? "-" : (f.openCircuits == 0 ? "closed" : "OPEN \(f.openCircuits)/\(f.liveWorkers)")
            let dlq = f.deadLetters.map { $0 == 0 ? "0" : "\($0)!" } ?? "?"
            out.append(
                pad(f.queue, 22) + pad(f.messages.map(String.init) ?? "?", 9) + pad(f.consumers.map(String.init) ?? "?", 11) + pad(dlq, 6)
                    + pad(f.oldestDeadLetterSeconds.map(Self.ago) ?? "-", 12) + pad(circuit, 12) + pad(since(f.lastSuccessAt), 15)
                    + "\(f.failed)/\(f.settled)" + (f.lastDeadLetterClass.map { "  last dead letter: \($0)" } ?? ""))
        }
        out.append("")
        if reconciliations.isEmpty {
            out.append("RECONCILIATION: no run seen since the alerter started")
        } else {
            out.append(pad("RECONCILIATION", 22) + pad("SHOP", 14) + pad("LAST RUN", 15) + pad("LAST SUCCESS", 15) + "RESULT")
            for r in reconciliations {
                let result = r.error.map { "FAILED: \($0.prefix(80))" } ?? "\(r.differences) differences"
                out.append(pad(r.domain, 22) + pad(r.shop, 14) + pad(since(r.lastRunAt), 15) + pad(since(r.lastSuccessAt), 15) + result)
            }
        }
        out.append("")
        if firing.isEmpty {
            out.append("ALERTS: none firing")
        } else {
            out.append("ALERTS: \(firing.count) firing (bridgectl alerts for what to do)")
            for a in firing { out.append("  \(a.severity.rawValue.uppercased())  \(a.rule)  \(a.summary)") }
        }
        return out.joined(separator: "\n")
    }
}
