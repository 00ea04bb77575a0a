import Foundation

/// Settings of the alerter (`alerter.*`): how often it looks, when a condition becomes an alert, and where alerts go.
public struct AlerterSettings: Sendable, Equatable {
    /// How often the rules are evaluated (queue state is read from the broker each time).
    public var interval: Duration
    /// A firing alert is notified again after this long while its condition holds.
    public var repeatInterval: Duration
    /// A dead-letter queue holding a message this old raises its alert from warning to critical.
    public var deadLetterAge: Duration
    /// A work queue whose consumer process is configured but which has had no consumer for this long.
    public var noConsumerGrace: Duration
    /// A Slack-compatible incoming webhook (`{"text": ...}`); nil: none.
    public var slackWebhookURL: String?
    /// A generic JSON webhook, each body signed with `webhookSecret` (`X-Bridge-Signature: sha256=<hex>`); nil: none.
    public var webhookURL: String?
    public var webhookSecret: String
    /// Where the runbook lives (each alert links its section, `<runbook_url>#alert-<rule>`): docs/operations.md by default.
    public var runbookURL: String
    /// `error_rate`: a flow (work queue) of a shop whose failed share of settled deliveries over `errorWindow` reaches
    /// `errorRate` (0.05 = 5%), once at least `errorMinMessages` were settled in the window.
    public var errorRate: Double
    public var errorWindow: Duration
    public var errorMinMessages: Int
    /// `circuit_open`: a worker's circuit (the ERP or Shopify unreachable) open or probing for this long.
    public var circuitOpenFor: Duration
    /// `silence`: no order settled for a shop for `quietFor` while the whole span lies inside `businessHours`; nil: off.
    public var businessHours: BusinessHours?
    public var quietFor: Duration
    /// `consumer_lag`: a work queue (with consumers) holding `lagMessages` or more, more than `lagFor` ago.
    public var lagMessages: Int
    public var lagFor: Duration
    /// `reconcile_drift`: a scheduled reconciliation run that found at least this many differences (healed or reported).
    public var reconcileDrift: Int
    /// `reconcile_missed`: a scheduled run with no successful run this long after it was due.
    public var reconcileGrace: Duration
    /// E-mail over SMTP (`alerter.smtp.*`); nil: no e-mail.
    public var smtp: SMTP?
    /// Which alerts each channel gets (`alerter.routes`); a channel with no route gets every alert, the log always does.
    public var routes: [Route]
    /// The trace journal (`alerter.trace_journal`): an SQLite file of every settled delivery's steps, what
    /// `bridgectl trace` reads; `:memory:` keeps it in memory only. Steps older than `traceRetention` are pruned.
    public var traceJournal: String
    public var traceRetention: Duration
    /// `process_not_ready`: each process's readiness URL (`alerter.probes`, `name=url`), polled every evaluation; a
    /// probe failing (not 200, or no answer) for `notReadyFor` fires.
    public var probes: [Probe]
    public var notReadyFor: Duration

    /// One entry of `alerter.probes`.
    public struct Probe: Sendable, Equatable {
        public var name: String
        public var url: String
        public init(name: String, url: String) {
            self.name = name
            self.url = url
        }
    }

    /// `alerter.smtp.*`.
    public struct SMTP: Sendable, Equatable {
        public var host: String
        public var port: Int
        /// Upgrade with STARTTLS before anything else (the server must offer it).
        public var startTLS: Bool
        public var username: String?
        public var password: String
        public var from: String
        public var to: [String]
        /// A CA bundle to trust instead of the system's (a private relay).
        public var caFile: String?
        public var timeout: Duration
        /// The name given in EHLO.
        public var heloName: String
        /// Send AUTH PLAIN without TLS (a relay on a trusted network only).
        public var allowPlainAuthWithoutTLS: Bool

        public init(
            host: String, port: Int = 587, startTLS: Bool = true, username: String? = nil, password: String = "", from: String, to: [String],
            caFile: String? = nil, timeout: Duration = .seconds(10), heloName: String = "shopify-erp-bridge.local",
            allowPlainAuthWithoutTLS: Bool = false
        ) {
            self.host = host
            self.port = port
            self.startTLS = startTLS
            self.username = username
            self.password = password
            self.from = from
            self.to = to
            self.caFile = caFile
            self.timeout = timeout
            self.heloName = heloName
            self.allowPlainAuthWithoutTLS = allowPlainAuthWithoutTLS
        }
    }

    /// One entry of `alerter.routes`: `<channel>[:shop=<domain>][:severity=<warning|critical>]`, e.g.
    /// `email:severity=critical` (e-mail only for critical alerts), `slack:shop=acme.myshopify.com`. A channel's
    /// entries are alternatives: an alert goes to it when one of them matches.
    public struct Route: Sendable, Equatable {
        public static let channels = ["log", "slack", "webhook", "email"]
        public var channel: String
        public var shop: String?
        /// `critical`: only critical alerts; `warning` or nil: every severity.
        public var criticalOnly: Bool

        public init(channel: String, shop: String? = nil, criticalOnly: Bool = false) {
            self.channel = channel
            self.shop = shop
            self.criticalOnly = criticalOnly
        }

        public static func parse(_ raw: String) -> Route? {
            let parts = raw.split(separator: ":").map { $0.trimmingCharacters(in: .whitespaces) }
            guard let channel = parts.first, channels.contains(channel) else { return nil }
            var route = Route(channel: channel)
            for part in parts.dropFirst() {
                let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2 else { return nil }
                switch kv[0] {
                case "shop": route.shop = kv[1]
                case "severity":
                    guard ["warning", "critical"].contains(kv[1]) else { return nil }
                    route.criticalOnly = kv[1] == "critical"
                default: return nil
                }
            }
            return route
        }
    }

    /// Whether `channel` gets an alert of `shop` and severity (`critical` or not).
    public func routes(_ channel: String, shop: String?, critical: Bool) -> Bool {
        let mine = routes.filter { $0.channel == channel }
        if channel == "log" || mine.isEmpty { return true }
        return mine.contains { ($0.shop == nil || $0.shop == shop) && (!$0.criticalOnly || critical) }
    }

    public init(
        interval: Duration = .seconds(15), repeatInterval: Duration = .seconds(3600), deadLetterAge: Duration = .seconds(900),
        noConsumerGrace: Duration = .seconds(120), slackWebhookURL: String? = nil, webhookURL: String? = nil, webhookSecret: String = "",
        runbookURL: String = "docs/operations.md", errorRate: Double = 0.05, errorWindow: Duration = .seconds(300), errorMinMessages: Int = 20,
        circuitOpenFor: Duration = .seconds(120), businessHours: BusinessHours? = nil, quietFor: Duration = .seconds(1800),
        smtp: SMTP? = nil, routes: [Route] = [], reconcileDrift: Int = 10, reconcileGrace: Duration = .seconds(3600), lagMessages: Int = 1000,
        lagFor: Duration = .seconds(600), traceJournal: String = "data/trace-journal.sqlite", traceRetention: Duration = .seconds(7 * 86400),
        probes: [Probe] = [], notReadyFor: Duration = .seconds(60)
    ) {
        self.traceJournal = traceJournal
        self.traceRetention = traceRetention
        self.probes = probes
        self.notReadyFor = notReadyFor
        self.lagMessages = lagMessages
        self.lagFor = lagFor
        self.reconcileDrift = reconcileDrift
        self.reconcileGrace = reconcileGrace
        self.smtp = smtp
        self.routes = routes
        self.errorRate = errorRate
        self.errorWindow = errorWindow
        self.errorMinMessages = errorMinMessages
        self.circuitOpenFor = circuitOpenFor
        self.businessHours = businessHours
        self.quietFor = quietFor
        self.interval = interval
        self.repeatInterval = repeatInterval
        self.deadLetterAge = deadLetterAge
        self.noConsumerGrace = noConsumerGrace
        self.slackWebhookURL = slackWebhookURL
        self.webhookURL = webhookURL
        self.webhookSecret = webhookSecret
        self.runbookURL = runbookURL
    }

    /// Parses `alerter.*`.
    public static func parse(_ p: inout SettingsParser) -> AlerterSettings {
        let slack = p.optionalString("alerter.slack_webhook_url", secret: true).flatMap { $0.isEmpty ? nil : $0 }
        let webhook = p.optionalString("alerter.webhook_url").flatMap { $0.isEmpty ? nil : $0 }
        let secret = p.string("alerter.webhook_secret", default: "", secret: true)
        // Not `checkHTTPURL`: its message repeats the value, and a Slack webhook URL is a secret.
        if let slack, URL(string: slack)?.scheme.map({ ["http", "https"].contains($0) }) != true || URL(string: slack)?.host == nil {
            p.fail("alerter.slack_webhook_url", "is not an http(s) URL", fix: "paste the incoming webhook's URL, https://hooks.slack.com/services/...")
        }
        if let webhook {
            p.checkHTTPURL("alerter.webhook_url", webhook)
            if secret.count < 16 {
                p.fail("alerter.webhook_secret", "the signed webhook needs a secret of 16 characters or more", fix: "set alerter.webhook_secret (ALERTER_WEBHOOK_SECRET)")
            }
        }
        let rateText = p.string("alerter.error_rate", default: "5%")
        var errorRate = 0.05
        if let v = rateText.hasSuffix("%") ? Double(rateText.dropLast()).map({ $0 / 100 }) : Double(rateText), v > 0, v <= 1 {
            errorRate = v
        } else {
            p.fail("alerter.error_rate", "'\(rateText)' is not a share between 0 and 100%", fix: "write it as 5% or 0.05")
        }
        let zoneName = p.string("alerter.time_zone", default: "UTC")
        var zone = TimeZone(identifier: "UTC")!
        if let z = TimeZone(identifier: zoneName) {
            zone = z
        } else {
            p.fail("alerter.time_zone", "unknown time zone '\(zoneName)'", fix: "use an IANA name such as Europe/Berlin or America/New_York")
        }
        var hours: BusinessHours?
        if let raw = p.optionalString("alerter.business_hours"), !raw.isEmpty, raw != "off" {
            switch BusinessHours.parse(raw, timeZone: zone) {
            case .success(let h): hours = h
            case .failure(let e): p.fail("alerter.business_hours", "'\(raw)': \(e)", fix: "e.g. 'Mon-Fri 09:00-18:00', or off")
            }
        }
        var smtp: SMTP?
        if let host = p.optionalString("alerter.smtp.host"), !host.isEmpty {
            let from = p.string("alerter.smtp.from", default: "")
            let to = p.stringList("alerter.smtp.to", default: [])
            if !from.contains("@") { p.fail("alerter.smtp.from", "needs a sender address", fix: "set alerter.smtp.from: alerts@example.com") }
            if to.isEmpty || !to.allSatisfy({ $0.contains("@") }) {
                p.fail("alerter.smtp.to", "needs one or more recipient addresses", fix: "set alerter.smtp.to: [ops@example.com]")
            }
            let user = p.optionalString("alerter.smtp.username").flatMap { $0.isEmpty ? nil : $0 }
            smtp = SMTP(
                host: host, port: p.int("alerter.smtp.port", default: 587, range: 1 ... 65535), startTLS: p.bool("alerter.smtp.starttls", default: true),
                username: user, password: p.string("alerter.smtp.password", default: "", secret: true), from: from, to: to,
                caFile: p.optionalString("alerter.smtp.ca_file").flatMap { $0.isEmpty ? nil : $0 },
                timeout: p.duration("alerter.smtp.timeout", default: .seconds(10), range: .seconds(1) ... .seconds(120)),
                heloName: p.string("alerter.smtp.helo", default: "shopify-erp-bridge.local"),
                allowPlainAuthWithoutTLS: p.bool("alerter.smtp.allow_plain_auth", default: false))
        }
        var routes: [Route] = []
        for raw in p.stringList("alerter.routes", default: []) {
            if let r = Route.parse(raw) {
                routes.append(r)
            } else {
                p.fail(
                    "alerter.routes", "'\(raw)' is not <channel>[:shop=<domain>][:severity=warning|critical] with a channel of \(Route.channels)",
                    fix: "e.g. email:severity=critical or slack:shop=acme.myshopify.com")
            }
        }
        var probes: [Probe] = []
        for raw in p.stringList("alerter.probes", default: []) {
            let parts = raw.split(separator: "=", maxSplits: 1).map { String($0).trimmingCharacters(in: .whitespaces) }
            if parts.count == 2, !parts[0].isEmpty, let u = URL(string: parts[1]), ["http", "https"].contains(u.scheme ?? ""), u.host != nil {
                probes.append(Probe(name: parts[0], url: parts[1]))
            } else {
                p.fail("alerter.probes", "'\(raw)' is not <name>=<http url>", fix: "e.g. order-forwarder=http://order-forwarder:9090/readyz")
            }
        }
        return AlerterSettings(
            interval: p.duration("alerter.interval", default: .seconds(15), range: .milliseconds(100) ... .seconds(3600)),
            repeatInterval: p.duration("alerter.repeat_interval", default: .seconds(3600), range: .seconds(1) ... .seconds(7 * 86400)),
            deadLetterAge: p.duration("alerter.dead_letter_age", default: .seconds(900), range: .zero ... .seconds(7 * 86400)),
            noConsumerGrace: p.duration("alerter.no_consumer_grace", default: .seconds(120), range: .zero ... .seconds(86400)),
            slackWebhookURL: slack, webhookURL: webhook, webhookSecret: secret,
            runbookURL: p.string("alerter.runbook_url", default: "docs/operations.md"), errorRate: errorRate,
            errorWindow: p.duration("alerter.error_window", default: .seconds(300), range: .seconds(1) ... .seconds(86400)),
            errorMinMessages: p.int("alerter.error_min_messages", default: 20, range: 1 ... 1_000_000),
            circuitOpenFor: p.duration("alerter.circuit_open_for", default: .seconds(120), range: .zero ... .seconds(86400)),
            businessHours: hours,
            quietFor: p.duration("alerter.quiet_for", default: .seconds(1800), range: .seconds(1) ... .seconds(86400)),
            smtp: smtp, routes: routes,
            reconcileDrift: p.int("alerter.reconcile_drift", default: 10, range: 1 ... 10_000_000),
            reconcileGrace: p.duration("alerter.reconcile_grace", default: .seconds(3600), range: .seconds(1) ... .seconds(7 * 86400)),
            lagMessages: p.int("alerter.lag_messages", default: 1000, range: 1 ... 100_000_000),
            lagFor: p.duration("alerter.lag_for", default: .seconds(600), range: .seconds(1) ... .seconds(86400)),
            traceJournal: p.string("alerter.trace_journal", default: "data/trace-journal.sqlite"),
            traceRetention: p.duration("alerter.trace_retention", default: .seconds(7 * 86400), range: .seconds(60) ... .seconds(365 * 86400)),
            probes: probes,
            notReadyFor: p.duration("alerter.not_ready_for", default: .seconds(60), range: .zero ... .seconds(86400)))
    }
}
