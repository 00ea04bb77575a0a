/// Settings of the ingest process (`ingest.*`).
public struct IngestSettings: Sendable, Equatable {
    /// Larger bodies are refused with 413 (Shopify bodies can exceed 1 MB).
    public var maxBodyBytes: Int
    /// How long to wait for the broker's confirm before answering 503 (well under Shopify's 5 s deadline).
    public var confirmTimeout: Duration
    /// Deliveries with a webhook id seen within this window are answered 200 without a second publish.
    public var dedupWindow: Duration
    /// At most this many ids are remembered (oldest forgotten first).
    public var dedupCapacity: Int
    /// A verified Shopify delivery whose `X-Shopify-Triggered-At` is older than this is answered 200 and not
    /// enqueued (a captured request replayed later). Shopify retries a failed delivery 8 times over about 4 hours,
    /// so a genuine delivery is never this old; the default (48 h) leaves room for clock skew and a delayed retry.
    /// Nil: off.
    public var maxDeliveryAge: Duration?

    public init(
        maxBodyBytes: Int = 5 * 1024 * 1024, confirmTimeout: Duration = .seconds(2),
        dedupWindow: Duration = .seconds(600), dedupCapacity: Int = 100_000, maxDeliveryAge: Duration? = .seconds(48 * 3600)
    ) {
        self.maxDeliveryAge = maxDeliveryAge
        self.maxBodyBytes = maxBodyBytes
        self.confirmTimeout = confirmTimeout
        self.dedupWindow = dedupWindow
        self.dedupCapacity = dedupCapacity
    }

    /// Parses `ingest.*`.
    public static func parse(_ p: inout SettingsParser) -> IngestSettings {
        IngestSettings(
            maxBodyBytes: p.int("ingest.max_body_bytes", default: 5 * 1024 * 1024, range: 1024...100 * 1024 * 1024),
            confirmTimeout: p.duration(
                "ingest.confirm_timeout", default: .seconds(2), range: .milliseconds(50) ... .milliseconds(4500)),
            dedupWindow: p.duration("ingest.dedup_window", default: .seconds(600), range: .zero ... .seconds(86400)),
            dedupCapacity: p.int("ingest.dedup_capacity", default: 100_000, range: 1...10_000_000),
            maxDeliveryAge: {
                let age = p.duration("ingest.max_delivery_age", default: .seconds(48 * 3600), range: .zero ... .seconds(30 * 86400))
                return age == .zero ? nil : age
            }())
    }
}
