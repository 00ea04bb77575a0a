import BridgeDomain
import Messaging
import Metrics
import Observability

/// The order-forwarder's own metrics (label values are bounded: outcomes, ERP operations). Consuming, retries, dead
/// letters, the circuit and in-flight are the worker's, the same for every queue (`QueueWorker`).
public final class ForwarderMetrics: Sendable {
    private let cache = MetricCache()

    public init() {}

    /// created | updated | unchanged (the ERP already had this version) | stale_skipped | ignored_topic
    public func order(_ outcome: String) { cache.counter("forwarder_orders_total", [("outcome", outcome)]).increment() }
    /// recorded | duplicate_skipped
    public func refund(_ outcome: String) { cache.counter("forwarder_refunds_total", [("outcome", outcome)]).increment() }
    /// The ERP answered `stale_ignored` to a version the ledger considered newer than anything applied.
    /// kind: same_version (a crash between the ERP write and the ledger record: already applied),
    /// erp_newer (the ERP holds a later version than the ledger knows), erp_disagrees (the ERP orders versions
    /// differently from the bridge: dead-lettered, never recorded as applied).
    public func erpStale(_ kind: String) { cache.counter("forwarder_erp_stale_total", [("kind", kind)]).increment() }
    /// Plain-profile ERPs: creates recovered after a crash by looking the reference up (kind: sales_order |
    /// credit_note, found: 0 = created again, 1 = found, 2+ = duplicates already in the ERP).
    public func createRecovered(_ kind: String, found: Int) {
        cache.counter("forwarder_create_recovered_total", [("kind", kind), ("found", found > 1 ? "2+" : String(found))]).increment()
    }
    /// Plain-profile ERPs: writes whose outcome was unknown (event: `sent` a create/overwrite/credit note failed
    /// after it may have reached the ERP; `fenced` a later delivery waited for it to settle; `resolved` the ERP was
    /// asked what it holds once it had).
    public func unknownOutcome(_ kind: String, _ event: String) {
        cache.counter("forwarder_unknown_outcome_total", [("kind", kind), ("event", event)]).increment()
    }
    /// An unknown outcome settled by a lookup: `forwarder_unknown_outcome_total{event="resolved"}` and what the lookup
    /// found (`forwarder_create_recovered_total`).
    public func unknownOutcomeResolved(_ kind: String, found: Int) {
        createRecovered(kind, found: found)
        unknownOutcome(kind, "resolved")
    }
    /// A worker's lease was taken over while it worked (renewal failed, or the record was fenced).
    public func leaseLost() { cache.counter("forwarder_lease_lost_total").increment() }
    public func erpCall(_ operation: String, _ d: Duration, ok: Bool) {
        cache.timer("forwarder_erp_call_seconds", [("operation", operation), ("result", ok ? "ok" : "error")])
            .recordNanoseconds(d.wholeNanoseconds)
    }
    /// From `X-Shopify-Triggered-At` to the ERP commit.
    public func endToEnd(_ d: Duration) {
        cache.timer("forwarder_end_to_end_seconds").recordNanoseconds(max(0, d.wholeNanoseconds))
    }
}
