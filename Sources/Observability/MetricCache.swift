import Metrics
import Synchronization

/// Creates each labelled metric once and hands the same instance back afterwards (swift-metrics handlers are meant
/// to be created once per label set, not per event). Label values must be bounded (topics, outcomes, reasons).
public final class MetricCache: Sendable {
    private let counters = Mutex<[String: Counter]>([:])
    private let timers = Mutex<[String: Metrics.Timer]>([:])

    public init() {}

    private static func key(_ label: String, _ dims: [(String, String)]) -> String {
        label + dims.map { "|\($0.0)=\($0.1)" }.joined()
    }

    public func counter(_ label: String, _ dims: [(String, String)] = []) -> Counter {
        let key = Self.key(label, dims)
        return counters.withLock { c in
            if let existing = c[key] { return existing }
            let made = Counter(label: label, dimensions: dims)
            c[key] = made
            return made
        }
    }

    /// A duration histogram, in seconds.
    public func timer(_ label: String, _ dims: [(String, String)] = []) -> Metrics.Timer {
        let key = Self.key(label, dims)
        return timers.withLock { t in
            if let existing = t[key] { return existing }
            let made = Metrics.Timer(label: label, dimensions: dims, preferredDisplayUnit: .seconds)
            t[key] = made
            return made
        }
    }
}
