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
    /// The ops listener (`/metrics`, `/healthz`, `/readyz`): ingest's public port (`http.*`) serves webhooks only, so
    /// the figures and health of the bridge are not on the internet. Loopback by default; the pod or compose network
    /// where Prometheus and the probes need it (`0.0.0.0` behind a firewall).
    public var opsHost: String
    public var opsPort: Int
    /// The public listener's limits: a request head must arrive within `headerTimeout` of the connection opening, its
    /// body within `bodyTimeout` of the head, and a kept-alive connection's next head within `idleTimeout` of the
    /// last response; at most `maxConnections` connections are open (more wait in the kernel's backlog).
    public var headerTimeout: Duration
    public var bodyTimeout: Duration
    public var idleTimeout: Duration
    public var maxConnections: Int

    public init(
        maxBodyBytes: Int = 5 * 1024 * 1024, confirmTimeout: Duration = .seconds(2),
        dedupWindow: Duration = .seconds(600), dedupCapacity: Int = 100_000, maxDeliveryAge: Duration? = .seconds(48 * 3600),
        opsHost: String = "127.0.0.1", opsPort: Int = 9100, headerTimeout: Duration = .seconds(10), bodyTimeout: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(30), maxConnections: Int = 2000
    ) {
        self.opsHost = opsHost
        self.opsPort = opsPort
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.idleTimeout = idleTimeout
        self.maxConnections = maxConnections
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
            }(),
            opsHost: p.string("ingest.ops_host", default: "127.0.0.1"),
            opsPort: p.int("ingest.ops_port", default: 9100, range: 0...65535),
            headerTimeout: p.duration("ingest.header_timeout", default: .seconds(10), range: .milliseconds(100) ... .seconds(300)),
            bodyTimeout: p.duration("ingest.body_timeout", default: .seconds(10), range: .milliseconds(100) ... .seconds(600)),
            idleTimeout: p.duration("ingest.idle_timeout", default: .seconds(30), range: .milliseconds(100) ... .seconds(3600)),
            maxConnections: p.int("ingest.max_connections", default: 2000, range: 1...1_000_000))
    }
}
