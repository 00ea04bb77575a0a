import BridgeCore
import Messaging
import Metrics

/// The order-forwarder's metrics (label values are bounded: outcomes, error classes, ERP operations).
public final class ForwarderMetrics: Sendable {
    private let cache = MetricCache()
    public let circuitState = Gauge(label: "forwarder_circuit_state")
    public let circuitTransitions = Counter(label: "forwarder_circuit_transitions_total")
    public let inFlight = Gauge(label: "forwarder_in_flight")

    public init() {}

    /// created | updated | unchanged (the ERP already had this version) | stale_skipped | ignored_topic
    public func order(_ outcome: String) { cache.counter("forwarder_orders_total", [("outcome", outcome)]).increment() }
    /// recorded | duplicate_skipped
    public func refund(_ outcome: String) { cache.counter("forwarder_refunds_total", [("outcome", outcome)]).increment() }
    public func retried(_ errorClass: String) {
        cache.counter("forwarder_retried_total", [("error_class", errorClass)]).increment()
    }
    public func deadLettered(_ errorClass: String) {
        cache.counter("forwarder_dead_lettered_total", [("reason", errorClass)]).increment()
    }
    /// Messages held (not settled) while the circuit was open.
    public func held() { cache.counter("forwarder_held_for_circuit_total").increment() }
    public func erpCall(_ operation: String, _ d: Duration, ok: Bool) {
        cache.timer("forwarder_erp_call_seconds", [("operation", operation), ("result", ok ? "ok" : "error")])
            .recordNanoseconds(d.wholeNanoseconds)
    }
    /// From `X-Shopify-Triggered-At` to the ERP commit.
    public func endToEnd(_ d: Duration) {
        cache.timer("forwarder_end_to_end_seconds").recordNanoseconds(max(0, d.wholeNanoseconds))
    }
}
