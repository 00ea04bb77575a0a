import BridgeDomain
import BridgeMessaging
import Messaging
import Metrics
import Observability
import Synchronization

/// Ingest metrics, created once per label set (the label values are bounded: known topics, statuses, reasons).
final class IngestMetrics: Sendable {
    private let cache = MetricCache()
    private let inFlightCount = Atomic<Int>(0)
    private let inFlightGauge = Gauge(label: "ingest_in_flight")

    static let knownShopifyTopics: Set<String> = Set(TopicCatalogue.shopify.map(\.name))

    static func topicLabel(_ topic: String?) -> String {
        guard let topic else { return "none" }
        return knownShopifyTopics.contains(topic) ? topic : "other"
    }

    private func counter(_ label: String, _ dims: [(String, String)]) -> Counter { cache.counter(label, dims) }

    func request(source: String, topic: String, status: Int) {
        counter("ingest_requests_total", [("source", source), ("topic", topic), ("status", String(status))]).increment()
    }

    func rejection(source: String, reason: String) {
        counter("ingest_rejections_total", [("source", source), ("reason", reason)]).increment()
    }

    /// A verified delivery older than `ingest.max_delivery_age`: answered 200, not enqueued.
    func stale(source: String) {
        counter("ingest_stale_deliveries_total", [("source", source)]).increment()
    }

    func duplicate(source: String) {
        counter("ingest_duplicates_total", [("source", source)]).increment()
    }

    func confirmLatency(source: String, _ duration: Duration) {
        let timer = cache.timer("ingest_publish_confirm_seconds", [("source", source)])
        timer.recordNanoseconds(duration.wholeNanoseconds)
    }

    func enter() { inFlightGauge.record(inFlightCount.add(1, ordering: .relaxed).newValue) }
    func leave() { inFlightGauge.record(inFlightCount.subtract(1, ordering: .relaxed).newValue) }
}
