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

    public init(
        interval: Duration = .seconds(15), repeatInterval: Duration = .seconds(3600), deadLetterAge: Duration = .seconds(900),
        noConsumerGrace: Duration = .seconds(120), slackWebhookURL: String? = nil, webhookURL: String? = nil, webhookSecret: String = "",
        runbookURL: String = "README.md"
    ) {
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
        return AlerterSettings(
            interval: p.duration("alerter.interval", default: .seconds(15), range: .milliseconds(100) ... .seconds(3600)),
            repeatInterval: p.duration("alerter.repeat_interval", default: .seconds(3600), range: .seconds(1) ... .seconds(7 * 86400)),
            deadLetterAge: p.duration("alerter.dead_letter_age", default: .seconds(900), range: .zero ... .seconds(7 * 86400)),
            noConsumerGrace: p.duration("alerter.no_consumer_grace", default: .seconds(120), range: .zero ... .seconds(86400)),
            slackWebhookURL: slack, webhookURL: webhook, webhookSecret: secret,
            runbookURL: p.string("alerter.runbook_url", default: "README.md"))
    }
}
