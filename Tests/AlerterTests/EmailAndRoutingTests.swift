import Alerting
import BridgeDomain
import BridgeTestSupport
import Foundation
import Logging
import Synchronization
import Testing

/// A local SMTP sink (scripts/smtp-sink.py on aiosmtpd) writing each accepted message to a directory.
final class SMTPSink: Sendable {
    let process: Process
    let dir: String
    let port: Int

    init(tls: (cert: String, key: String)? = nil, user: (String, String)? = nil) throws {
        try TestDependency.require(TestDependency.pythonModule("aiosmtpd"), "Python's aiosmtpd", install: "pip install aiosmtpd")
        dir = NSTemporaryDirectory() + "smtp-sink-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        port = TestProcesses.freePort()
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        var args = ["python3", TestBroker.repositoryRoot + "/scripts/smtp-sink.py", "--port", "\(port)", "--dir", dir]
        if let tls { args += ["--tls-cert", tls.cert, "--tls-key", tls.key] }
        if let user { args += ["--user", user.0, "--password", user.1] }
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        // "ready" once listening.
        _ = out.fileHandleForReading.availableData
    }

    /// The messages received so far, as text, oldest first.
    var messages: [String] {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".eml") }
        return names.sorted { Int($0.dropLast(4)) ?? 0 < Int($1.dropLast(4)) ?? 0 }
            .compactMap { try? String(contentsOfFile: dir + "/" + $0, encoding: .utf8) }
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

/// Records what it is sent, under a channel name.
final class RecordingChannel: AlertChannel, Sendable {
    let name: String
    let received = Mutex<[AlertNotice]>([])
    init(_ name: String) { self.name = name }
    func send(_ notice: AlertNotice) async throws { received.withLock { $0.append(notice) } }
    var rules: [String] { received.withLock { $0.map { "\($0.alert.rule)|\($0.alert.shop ?? "-")" } } }
}

@Suite("alerter: e-mail over SMTP (plain, STARTTLS with AUTH) against a real SMTP server; routing per shop and severity", .serialized)
struct EmailAndRoutingTests {
    static var logger: Logger {
        var l = Logger(label: "test.email")
        l.logLevel = .critical
        return l
    }

    static let notice = AlertNotice(
        state: .firing,
        alert: Alert(
            rule: "dead_letters", severity: .critical, subject: "q.orders.dlq", shop: "acme.myshopify.com",
            summary: "q.orders.dlq holds 1 message that could not be processed (last: erp_unknown_sku)",
            figures: ["dead_letters": "1", "last_error_class": "erp_unknown_sku"], action: "fix the SKU, then replay",
            command: "bridgectl dlq replay --queue q.orders --all", runbook: "docs/operations.md#alert-dead_letters"),
        since: "2026-12-04T10:00:00.000Z", at: "2026-12-04T10:00:00.000Z")

    @Test("a notice reaches a plain SMTP server as one message to every recipient: subject with severity and summary, the figures, the command and the runbook in the body")
    func plain() async throws {
        let sink = try SMTPSink()
        defer { sink.stop() }
        let channel = SMTPChannel(
            settings: .init(host: "127.0.0.1", port: sink.port, startTLS: false, from: "bridge@example.com", to: ["ops@example.com", "cto@example.com"]))
        try await channel.send(Self.notice)
        #expect(await eventually(timeout: .seconds(10)) { sink.messages.count == 1 })
        let mail = try #require(sink.messages.first)
        #expect(mail.contains("X-Sink-From: bridge@example.com") && mail.contains("X-Sink-To: ops@example.com,cto@example.com"), "\(mail)")
        #expect(mail.contains("X-Sink-TLS: no"))
        #expect(mail.contains("Subject: [CRITICAL] q.orders.dlq holds 1 message that could not be processed (last: erp_unknown_sku)"), "\(mail)")
        #expect(mail.contains("bridgectl dlq replay --queue q.orders --all") && mail.contains("docs/operations.md#alert-dead_letters"))
        #expect(mail.contains("last_error_class=erp_unknown_sku"))
    }

    @Test("STARTTLS then AUTH PLAIN with a private CA: the message travels encrypted and authenticated; a wrong password fails with the server's reply and never names the password; a server without STARTTLS is refused when TLS is required")
    func startTLSAndAuth() async throws {
        let dir = NSTemporaryDirectory() + "smtp-tls-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let openssl = Process()
        openssl.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        openssl.arguments = [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem",
        ]
        openssl.standardOutput = FileHandle.nullDevice
        openssl.standardError = FileHandle.nullDevice
        try openssl.run()
        openssl.waitUntilExit()
        try #require(openssl.terminationStatus == 0, "openssl could not make a certificate")

        let sink = try SMTPSink(tls: (dir + "/cert.pem", dir + "/key.pem"), user: ("alerts", "s3cret-smtp-pass"))
        defer { sink.stop() }
        func settings(password: String) -> AlerterSettings.SMTP {
            .init(
                host: "localhost", port: sink.port, startTLS: true, username: "alerts", password: password, from: "bridge@example.com",
                to: ["ops@example.com"], caFile: dir + "/cert.pem")
        }
        try await SMTPChannel(settings: settings(password: "s3cret-smtp-pass")).send(Self.notice)
        #expect(await eventually(timeout: .seconds(10)) { sink.messages.count == 1 })
        let mail = try #require(sink.messages.first)
        #expect(mail.contains("X-Sink-TLS: yes") && mail.contains("X-Sink-User: alerts"), "\(mail)")

        do {
            try await SMTPChannel(settings: settings(password: "wrong-password-123")).send(Self.notice)
            Issue.record("a wrong password was accepted")
        } catch {
            #expect("\(error)".contains("AUTH") && "\(error)".contains("535"), "\(error)")
            #expect(!"\(error)".contains("wrong-password-123"))
        }
        #expect(sink.messages.count == 1)

        // A server that offers no STARTTLS: refused before any password or message is sent.
        let plainSink = try SMTPSink()
        defer { plainSink.stop() }
        var noTLS = settings(password: "s3cret-smtp-pass")
        noTLS.host = "127.0.0.1"
        noTLS.port = plainSink.port
        await #expect(throws: SMTPError.self) { try await SMTPChannel(settings: noTLS).send(Self.notice) }
        #expect(plainSink.messages.isEmpty)
    }

    @Test("an unreachable SMTP server fails within its timeout; the notifier retries it and the other channels still get the notice")
    func unreachable() async throws {
        let dead = SMTPChannel(
            settings: .init(host: "127.0.0.1", port: TestProcesses.freePort(), startTLS: false, from: "b@example.com", to: ["o@example.com"], timeout: .seconds(2)))
        let start = ContinuousClock.now
        await #expect(throws: (any Error).self) { try await dead.send(Self.notice) }
        #expect(ContinuousClock.now - start < .seconds(5))
        let slack = RecordingChannel("slack")
        let notifier = Notifier(channels: [dead, slack], repeatInterval: .seconds(3600), retryDelays: [.milliseconds(50)], logger: Self.logger)
        await notifier.update([Self.notice.alert])
        #expect(slack.rules == ["dead_letters|acme.myshopify.com"])
    }

    @Test("alerter.routes: e-mail only for critical alerts, Slack only for one shop, the webhook for everything, the log always; bad routes refused")
    func routing() async throws {
        var p = SettingsParser(KeyValues(["alerter.routes": "email:severity=critical,slack:shop=acme.myshopify.com"]))
        let settings = AlerterSettings.parse(&p)
        #expect(p.errors.isEmpty, "\(p.errors)")
        let (log, email, slack, hook) = (RecordingChannel("log"), RecordingChannel("email"), RecordingChannel("slack"), RecordingChannel("webhook"))
        let notifier = Notifier(channels: [log, email, slack, hook], repeatInterval: .seconds(3600), routing: settings, logger: Self.logger)
        func alert(_ rule: String, _ severity: Alert.Severity, _ shop: String?) -> Alert {
            Alert(rule: rule, severity: severity, subject: rule, shop: shop, summary: rule, figures: [:], action: "", command: "", runbook: "")
        }
        await notifier.update([
            alert("dead_letters", .warning, "acme.myshopify.com"), alert("no_consumer", .critical, nil), alert("error_rate", .warning, "beta.myshopify.com"),
        ])
        #expect(Set(log.rules) == ["dead_letters|acme.myshopify.com", "no_consumer|-", "error_rate|beta.myshopify.com"])
        #expect(Set(hook.rules) == Set(log.rules))
        #expect(email.rules == ["no_consumer|-"])
        #expect(slack.rules == ["dead_letters|acme.myshopify.com"])

        var bad = SettingsParser(KeyValues(["alerter.routes": "pager:severity=critical,email:severity=urgent", "alerter.smtp.host": "smtp.example.com"]))
        _ = AlerterSettings.parse(&bad)
        #expect(Set(bad.errors.map(\.key)) == ["alerter.routes", "alerter.smtp.from", "alerter.smtp.to"], "\(bad.errors)")
        var smtp = SettingsParser(
            KeyValues([
                "alerter.smtp.host": "smtp.example.com", "alerter.smtp.from": "bridge@example.com", "alerter.smtp.to": "ops@example.com,cto@example.com",
                "alerter.smtp.password": "pw-not-logged",
            ]))
        let s = AlerterSettings.parse(&smtp)
        #expect(smtp.errors.isEmpty && s.smtp?.to == ["ops@example.com", "cto@example.com"] && s.smtp?.port == 587 && s.smtp?.startTLS == true)
        #expect(AlerterProcess.channels(s, logger: Self.logger).map(\.name) == ["log", "email"])
    }

    @Test("the DATA form: CRLF line ends, a line starting with a dot doubled, a non-ASCII subject encoded, the final dot")
    func dataForm() {
        let settings = AlerterSettings.SMTP(host: "h", from: "a@example.com", to: ["b@example.com"])
        let text = SMTPChannel.dataMessage(settings: settings, subject: "Überweisung fehlgeschlagen", body: "first\n.hidden\nlast\n")
        #expect(text.contains("\r\n\r\nfirst\r\n..hidden\r\nlast\r\n"), "\(text)")
        #expect(text.hasSuffix("\r\n.\r\n"))
        #expect(text.contains("Subject: =?UTF-8?B?\(Data("Überweisung fehlgeschlagen".utf8).base64EncodedString())?="))
        #expect(!text.replacingOccurrences(of: "\r\n", with: "").contains("\n"), "no bare LF")
    }
}
