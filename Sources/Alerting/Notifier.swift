import AsyncHTTPClient
import BridgeDomain
import Crypto
import Foundation
import Logging
import Metrics
import NIOCore
import NIOHTTP1

/// Where notices go. A channel throws when its receiver did not take the notice; the notifier retries it and never
/// lets it hold up the other channels.
public protocol AlertChannel: Sendable {
    var name: String { get }
    func send(_ notice: AlertNotice) async throws
}

/// The log: every notice, always (critical as `error`, warning as `warning`, resolved as `notice`).
public struct LogChannel: AlertChannel {
    let logger: Logger
    public var name: String { "log" }
    public init(logger: Logger) { self.logger = logger }

    public func send(_ notice: AlertNotice) async throws {
        var metadata: Logger.Metadata = [
            "alert": "\(notice.alert.rule)", "state": "\(notice.state.rawValue)", "severity": "\(notice.alert.severity.rawValue)",
            "subject": "\(notice.alert.subject)", "since": "\(notice.since)", "command": "\(notice.alert.command)",
        ]
        if let shop = notice.alert.shop { metadata["shop"] = "\(shop)" }
        for (k, v) in notice.alert.figures { metadata[k] = "\(v)" }
        let level: Logger.Level = notice.state == .resolved ? .notice : (notice.alert.severity == .critical ? .error : .warning)
        logger.log(level: level, "\(notice.state == .resolved ? "alert resolved" : "alert firing"): \(notice.alert.summary)", metadata: metadata)
    }
}

/// A receiver's answer that is not 2xx.
public struct ChannelRefused: Error, CustomStringConvertible {
    public var channel: String
    public var status: UInt
    public var description: String { "\(channel) answered HTTP \(status)" }
}

/// POSTs JSON with AsyncHTTPClient, one shared client per process.
struct WebhookPoster: Sendable {
    let client: HTTPClient
    let timeout: Duration

    func post(_ url: String, body: [UInt8], headers: [(String, String)], channel: String) async throws {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "shopify-erp-bridge-alerter")
        for (k, v) in headers { request.headers.add(name: k, value: v) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await client.execute(request, timeout: .milliseconds(Int64(timeout / .milliseconds(1))))
        _ = try? await response.body.collect(upTo: 64 * 1024)
        guard (200..<300).contains(response.status.code) else { throw ChannelRefused(channel: channel, status: response.status.code) }
    }
}

/// A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat, Teams' Slack-compatible connectors):
/// `{"text": ...}` with the notice's lines.
public struct SlackChannel: AlertChannel {
    let url: String
    let poster: WebhookPoster
    public var name: String { "slack" }

    public init(url: String, client: HTTPClient, timeout: Duration = .seconds(5)) {
        self.url = url
        self.poster = WebhookPoster(client: client, timeout: timeout)
    }

    public func send(_ notice: AlertNotice) async throws {
        let body = try JSONSerialization.data(withJSONObject: ["text": notice.text], options: [.sortedKeys])
        try await poster.post(url, body: Array(body), headers: [], channel: name)
    }
}

/// A generic JSON webhook: the notice as JSON, signed so the receiver can trust it:
/// `X-Bridge-Timestamp: <unix seconds>` and `X-Bridge-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`
/// with `alerter.webhook_secret` (the timestamp inside the MAC lets a receiver refuse replays of old notices).
public struct SignedWebhookChannel: AlertChannel {
    let url: String
    let secret: String
    let poster: WebhookPoster
    public var name: String { "webhook" }

    public init(url: String, secret: String, client: HTTPClient, timeout: Duration = .seconds(5)) {
        self.url = url
        self.secret = secret
        self.poster = WebhookPoster(client: client, timeout: timeout)
    }

    public static func signature(timestamp: String, body: [UInt8], secret: String) -> String {
        var signed = Array(timestamp.utf8)
        signed.append(UInt8(ascii: "."))
        signed += body
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + mac.map { String(format: "%02x", $0) }.joined()
    }

    public func send(_ notice: AlertNotice) async throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let body = Array(try encoder.encode(notice))
        let timestamp = "\(Int(Date().timeIntervalSince1970))"
        try await poster.post(
            url, body: body,
            headers: [("X-Bridge-Timestamp", timestamp), ("X-Bridge-Signature", Self.signature(timestamp: timestamp, body: body, secret: secret))],
            channel: name)
    }
}

/// Turns each evaluation's alerts into notices: `firing` for a new alert (or one whose severity rose), `repeating`
/// once per repeat interval while it holds, `resolved` when it is gone; deduplicated by fingerprint. Each notice
/// goes to every channel at once; a channel that fails is retried (`retryDelays`) and counted, never blocking the
/// others or the next evaluation for longer than its retries.
///
/// Metrics: `alerts_firing{rule,severity}`, `alerts_notifications_total{channel,state}`,
/// `alerts_notification_failures_total{channel}`.
public actor Notifier {
    struct Firing {
        var alert: Alert
        var since: Date
        var lastNotified: Date
    }

    let channels: [any AlertChannel]
    /// Which channel gets which alert (`alerter.routes`); nil: every channel gets every alert.
    let routing: AlerterSettings?
    let repeatInterval: Duration
    let retryDelays: [Duration]
    let logger: Logger
    var firing: [String: Firing] = [:]
    /// Every notice sent, oldest first (the last 500).
    public private(set) var sent: [AlertNotice] = []

    public init(
        channels: [any AlertChannel], repeatInterval: Duration, retryDelays: [Duration] = [.milliseconds(500), .seconds(2)],
        routing: AlerterSettings? = nil, logger: Logger
    ) {
        self.channels = channels
        self.routing = routing
        self.repeatInterval = repeatInterval
        self.retryDelays = retryDelays
        self.logger = logger
    }

    /// The alerts firing now, most severe first.
    public var current: [Alert] { firing.values.map(\.alert).sorted { ($0.severity, $0.fingerprint) > ($1.severity, $1.fingerprint) } }

    /// One evaluation's alerts; returns the notices it sent.
    @discardableResult
    public func update(_ alerts: [Alert], now: Date = Date()) async -> [AlertNotice] {
        var notices: [AlertNotice] = []
        let stamp = { (d: Date) in Timestamp.string(milliseconds: Timestamp.milliseconds(d)) }
        var seen = Set<String>()
        for alert in alerts {
            let key = alert.fingerprint
            guard seen.insert(key).inserted else { continue }
            if var f = firing[key] {
                let rose = alert.severity > f.alert.severity
                f.alert = alert
                if rose || now.timeIntervalSince(f.lastNotified) >= Double(repeatInterval.components.seconds) {
                    f.lastNotified = now
                    notices.append(.init(state: rose ? .firing : .repeating, alert: alert, since: stamp(f.since), at: stamp(now)))
                }
                firing[key] = f
            } else {
                firing[key] = Firing(alert: alert, since: now, lastNotified: now)
                notices.append(.init(state: .firing, alert: alert, since: stamp(now), at: stamp(now)))
            }
        }
        for (key, f) in firing where !seen.contains(key) {
            firing[key] = nil
            notices.append(.init(state: .resolved, alert: f.alert, since: stamp(f.since), at: stamp(now)))
        }
        var bySeverity: [String: Int] = [:]
        for f in firing.values { bySeverity["\(f.alert.rule)|\(f.alert.severity.rawValue)", default: 0] += 1 }
        for rule in AlertRules.names {
            for severity in [Alert.Severity.warning, .critical] {
                Gauge(label: "alerts_firing", dimensions: [("rule", rule), ("severity", severity.rawValue)])
                    .record(bySeverity["\(rule)|\(severity.rawValue)"] ?? 0)
            }
        }
        for notice in notices { await deliver(notice) }
        sent += notices
        if sent.count > 500 { sent.removeFirst(sent.count - 500) }
        return notices
    }

    func deliver(_ notice: AlertNotice) async {
        let retryDelays = self.retryDelays
        let logger = self.logger
        await withTaskGroup(of: Void.self) { group in
            for channel in channels
            where routing?.routes(channel.name, shop: notice.alert.shop, critical: notice.alert.severity == .critical) ?? true {
                group.addTask {
                    for attempt in 0...retryDelays.count {
                        do {
                            try await channel.send(notice)
                            Counter(label: "alerts_notifications_total", dimensions: [("channel", channel.name), ("state", notice.state.rawValue)])
                                .increment()
                            return
                        } catch {
                            Counter(label: "alerts_notification_failures_total", dimensions: [("channel", channel.name)]).increment()
                            let last = attempt == retryDelays.count
                            logger.log(
                                level: last ? .error : .warning, last ? "alert channel failed, notice not delivered there" : "alert channel failed, retrying",
                                metadata: ["channel": "\(channel.name)", "alert": "\(notice.alert.fingerprint)", "state": "\(notice.state.rawValue)", "error": "\(error)"])
                            if last { return }
                            try? await Task.sleep(for: retryDelays[attempt])
                        }
                    }
                }
            }
        }
    }
}
