import BridgeDomain
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// E-mail over SMTP: one message per notice to every recipient, STARTTLS when configured (or required by the
/// server's answer), AUTH PLAIN after TLS when a user is configured.
///
/// Written by hand on SwiftNIO (with swift-nio-ssl for STARTTLS): no maintained Swift SMTP library is among the
/// packages this project can depend on, and the part of the protocol a notification needs is small (RFC 5321
/// submission: greeting, EHLO, STARTTLS, AUTH PLAIN, MAIL/RCPT/DATA with dot-stuffing, QUIT).
public struct SMTPChannel: AlertChannel {
    let settings: AlerterSettings.SMTP
    public var name: String { "email" }

    public init(settings: AlerterSettings.SMTP) { self.settings = settings }

    /// The message as sent after DATA (headers, CRLF line ends, dot-stuffed, the final dot).
    public static func dataMessage(settings: AlerterSettings.SMTP, subject: String, body: String) -> String {
        SMTPClient.message(settings: settings, subject: subject, body: body)
    }

    public func send(_ notice: AlertNotice) async throws {
        let mark = notice.state == .resolved ? "RESOLVED" : notice.alert.severity.rawValue.uppercased()
        let subject = "[\(mark)] \(notice.alert.summary)"
        try await SMTPClient.send(settings: settings, subject: subject, body: notice.text + "\n")
    }
}

/// A failed SMTP exchange: the command that failed and the server's reply (never the password).
public struct SMTPError: Error, CustomStringConvertible {
    public var step: String
    public var reply: String
    public var description: String { "SMTP \(step) failed: \(reply)" }
}

struct SMTPReply: Sendable {
    var code: Int
    var text: String
}

enum SMTPClient {
    static func send(settings s: AlerterSettings.SMTP, subject: String, body: String) async throws {
        let handler = SMTPReplyHandler()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.milliseconds(Int64(s.timeout / .milliseconds(1))))
            .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(handler) } }
            .connect(host: s.host, port: s.port).get()
        // The whole exchange has one deadline: past it the connection is closed, which fails the step waiting.
        let deadline = channel.eventLoop.scheduleTask(in: .milliseconds(Int64(s.timeout / .milliseconds(1)))) { channel.close(promise: nil) }
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        func read(_ step: String, expect codes: Set<Int>) async throws -> SMTPReply {
            let reply = try await channel.eventLoop.flatSubmit { handler.next(on: channel.eventLoop) }.get()
            guard codes.contains(reply.code) else { throw SMTPError(step: step, reply: "\(reply.code) \(reply.text)") }
            return reply
        }
        func command(_ line: String, _ step: String, expect codes: Set<Int>) async throws -> SMTPReply {
            try await channel.writeAndFlush(ByteBuffer(string: line + "\r\n"))
            return try await read(step, expect: codes)
        }
        let me = s.heloName
        _ = try await read("greeting", expect: [220])
        var ehlo = try await command("EHLO \(me)", "EHLO", expect: [250])
        let offersTLS = ehlo.text.uppercased().split(separator: "\n").contains { $0.hasPrefix("STARTTLS") }
        if s.startTLS {
            guard offersTLS else { throw SMTPError(step: "STARTTLS", reply: "the server does not offer STARTTLS") }
            _ = try await command("STARTTLS", "STARTTLS", expect: [220])
            var tls = TLSConfiguration.makeClientConfiguration()
            if let ca = s.caFile { tls.trustRoots = .file(ca) }
            let context = try NIOSSLContext(configuration: tls)
            let isAddress = s.host.contains(":") || s.host.split(separator: ".").allSatisfy { Int($0) != nil }
            try await channel.eventLoop.submit {
                let ssl = try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : s.host)
                try channel.pipeline.syncOperations.addHandler(ssl, position: .first)
            }.get()
            ehlo = try await command("EHLO \(me)", "EHLO after STARTTLS", expect: [250])
        }
        if let user = s.username {
            // AUTH PLAIN: base64("\0user\0password"); sent only over TLS unless the operator allowed otherwise.
            guard s.startTLS || s.allowPlainAuthWithoutTLS else {
                throw SMTPError(step: "AUTH", reply: "refusing to send the password without STARTTLS (alerter.smtp.starttls)")
            }
            let token = Data(([0] + Array(user.utf8) + [0] + Array(s.password.utf8))).base64EncodedString()
            _ = try await command("AUTH PLAIN \(token)", "AUTH", expect: [235])
        }
        _ = try await command("MAIL FROM:<\(s.from)>", "MAIL FROM", expect: [250])
        for to in s.to { _ = try await command("RCPT TO:<\(to)>", "RCPT TO", expect: [250, 251]) }
        _ = try await command("DATA", "DATA", expect: [354])
        try await channel.writeAndFlush(ByteBuffer(string: message(settings: s, subject: subject, body: body)))
        _ = try await read("message", expect: [250])
        _ = try? await command("QUIT", "QUIT", expect: [221])
    }

    /// The message in SMTP's DATA form: headers, CRLF line ends, lines starting with a dot doubled, the final dot.
    static func message(settings s: AlerterSettings.SMTP, subject: String, body: String, date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        // RFC 2047 encoded word when the subject is not plain ASCII.
        let encodedSubject =
            subject.allSatisfy { $0.isASCII && $0 != "\r" && $0 != "\n" }
            ? subject : "=?UTF-8?B?\(Data(subject.utf8).base64EncodedString())?="
        var lines = [
            "From: \(s.from)", "To: \(s.to.joined(separator: ", "))", "Subject: \(encodedSubject)",
            "Date: \(formatter.string(from: date))", "Message-ID: <\(UUID().uuidString.lowercased())@\(s.heloName)>",
            "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit",
            "Auto-Submitted: auto-generated", "",
        ]
        for line in body.replacingOccurrences(of: "\r\n", with: "\n").split(separator: "\n", omittingEmptySubsequences: false) {
            lines.append(line.hasPrefix(".") ? "." + line : String(line))
        }
        return lines.joined(separator: "\r\n") + "\r\n.\r\n"
    }
}

/// Splits the server's bytes into SMTP replies (a multi-line reply is `250-...` lines ending with `250 ...`) and
/// hands them to the one step waiting. Touched only on its channel's event loop (`next` is called through
/// `flatSubmit`), which is why it is `@unchecked Sendable`.
final class SMTPReplyHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private var bytes: [UInt8] = []
    private var lines: [String] = []
    private var ready: [SMTPReply] = []
    private var waiting: EventLoopPromise<SMTPReply>?
    private var failure: (any Error)?

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        bytes += buffer.readBytes(length: buffer.readableBytes) ?? []
        while let end = bytes.firstIndex(of: 10) {
            var line = bytes[..<end]
            if line.last == 13 { line = line.dropLast() }
            bytes.removeSubrange(...end)
            let text = String(decoding: line, as: UTF8.self)
            lines.append(text)
            let chars = Array(text)
            if chars.count < 4 || chars[3] != "-" {
                let code = Int(String(chars.prefix(3))) ?? 0
                let reply = SMTPReply(code: code, text: lines.map { String($0.dropFirst(4)) }.joined(separator: "\n"))
                lines = []
                if let w = waiting {
                    waiting = nil
                    w.succeed(reply)
                } else {
                    ready.append(reply)
                }
            }
        }
    }

    func next(on loop: any EventLoop) -> EventLoopFuture<SMTPReply> {
        if !ready.isEmpty { return loop.makeSucceededFuture(ready.removeFirst()) }
        if let failure { return loop.makeFailedFuture(failure) }
        let promise = loop.makePromise(of: SMTPReply.self)
        waiting = promise
        return promise.futureResult
    }

    private func fail(_ error: any Error) {
        if failure == nil { failure = error }
        waiting?.fail(error)
        waiting = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        fail(SMTPError(step: "connection", reply: "closed by the server or past alerter.smtp.timeout"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(error)
        context.close(promise: nil)
    }
}
