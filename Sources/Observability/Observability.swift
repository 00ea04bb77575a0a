import Foundation
import Logging
import Metrics
import Prometheus
import Synchronization

/// Logging and metrics are bootstrapped once per process, in the executable (swift-log and swift-metrics allow only
/// one bootstrap). Tests call it too; later calls are ignored.
public enum Observability {
    private static let bootstrapped = Mutex<PrometheusCollectorRegistry?>(nil)

    /// Bootstraps JSON (or text) logging and the Prometheus metrics factory; returns the registry `/metrics` serves.
    @discardableResult
    public static func bootstrap(process: String, logLevel: String = "info", json: Bool = true)
        -> PrometheusCollectorRegistry
    {
        bootstrapped.withLock { existing in
            if let existing { return existing }
            let level = Logger.Level(rawValue: logLevel) ?? .info
            LoggingSystem.bootstrap { label in
                if json {
                    return JSONLogHandler(label: label, process: process, level: level)
                }
                var h = StreamLogHandler.standardError(label: label)
                h.logLevel = level
                return h
            }
            let registry = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.defaultDurationHistogramBuckets = [
                .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
                .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10), .seconds(30), .seconds(60),
            ]
            MetricsSystem.bootstrap(factory)
            existing = registry
            return registry
        }
    }
}
