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
    /// Where the runbook lives (each alert links its section, `<runbook_url>#alert-<rule>`): the README by default.
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

    public init(
        interval: Duration = .seconds(15), repeatInterval: Duration = .seconds(3600), deadLetterAge: Duration = .seconds(900),
        noConsumerGrace: Duration = .seconds(120), slackWebhookURL: String? = nil, webhookURL: String? = nil, webhookSecret: String = "",
        runbookURL: String = "README.md", errorRate: Double = 0.05, errorWindow: Duration = .seconds(300), errorMinMessages: Int = 20,
        circuitOpenFor: Duration = .seconds(120), businessHours: BusinessHours? = nil, quietFor: Duration = .seconds(1800)
    ) {
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
        return AlerterSettings(
            interval: p.duration("alerter.interval", default: .seconds(15), range: .milliseconds(100) ... .seconds(3600)),
            repeatInterval: p.duration("alerter.repeat_interval", default: .seconds(3600), range: .seconds(1) ... .seconds(7 * 86400)),
            deadLetterAge: p.duration("alerter.dead_letter_age", default: .seconds(900), range: .zero ... .seconds(7 * 86400)),
            noConsumerGrace: p.duration("alerter.no_consumer_grace", default: .seconds(120), range: .zero ... .seconds(86400)),
            slackWebhookURL: slack, webhookURL: webhook, webhookSecret: secret,
            runbookURL: p.string("alerter.runbook_url", default: "README.md"), errorRate: errorRate,
            errorWindow: p.duration("alerter.error_window", default: .seconds(300), range: .seconds(1) ... .seconds(86400)),
            errorMinMessages: p.int("alerter.error_min_messages", default: 20, range: 1 ... 1_000_000),
            circuitOpenFor: p.duration("alerter.circuit_open_for", default: .seconds(120), range: .zero ... .seconds(86400)),
            businessHours: hours,
            quietFor: p.duration("alerter.quiet_for", default: .seconds(1800), range: .seconds(1) ... .seconds(86400)))
    }
}
