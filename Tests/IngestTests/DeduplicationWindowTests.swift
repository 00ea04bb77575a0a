import Foundation
import Ingest
import Testing

@Suite("Deduplication window: bounded memory, time-limited")
struct DeduplicationWindowTests {
    @Test("an id is remembered within the window and forgotten after it")
    func window() {
        let d = DeduplicationWindow(window: .seconds(60), capacity: 100)
        let t0 = ContinuousClock.now
        d.record("a", now: t0)
        #expect(d.contains("a", now: t0 + .seconds(59)))
        #expect(!d.contains("a", now: t0 + .seconds(60)))
        #expect(!d.contains("b", now: t0))
    }

    @Test("memory stays bounded: past capacity the oldest ids are forgotten")
    func capacity() {
        let d = DeduplicationWindow(window: .seconds(3600), capacity: 1000)
        let t0 = ContinuousClock.now
        for i in 0..<50_000 { d.record("id-\(i)", now: t0) }
        #expect(d.count <= 1001)
        #expect(d.contains("id-49999", now: t0))
        #expect(!d.contains("id-0", now: t0))
    }

    @Test("expired ids are dropped as new ones arrive")
    func expiry() {
        let d = DeduplicationWindow(window: .seconds(1), capacity: 1_000_000)
        let t0 = ContinuousClock.now
        for i in 0..<1000 { d.record("old-\(i)", now: t0) }
        d.record("new", now: t0 + .seconds(2))
        #expect(d.count == 1)
    }
}

@Suite("Webhook signatures")
struct WebhookSignatureTests {
    @Test("matches an independent HMAC-SHA256 (Python's hmac), and any listed secret verifies")
    func knownVector() throws {
        // python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(b"hush", b"{\"id\":1}", hashlib.sha256).digest()).decode())'
        let body = Array("{\"id\":1}".utf8)
        let expected = try Self.python(secret: "hush", body: "{\"id\":1}")
        #expect(WebhookSignature.sign(body, secret: "hush") == expected)
        #expect(WebhookSignature.isValid(expected, body: body, secrets: ["other", "hush"]))
        #expect(!WebhookSignature.isValid(expected, body: body, secrets: ["other"]))
        #expect(!WebhookSignature.isValid(expected, body: body, secrets: []))
        #expect(!WebhookSignature.isValid("", body: body, secrets: ["hush"]))
        #expect(!WebhookSignature.isValid(String(expected.dropLast(4)), body: body, secrets: ["hush"]))
    }

    static func python(secret: String, body: String) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = [
            "python3", "-c",
            "import hmac,hashlib,base64,sys; print(base64.b64encode(hmac.new(sys.argv[1].encode(), sys.argv[2].encode(), hashlib.sha256).digest()).decode())",
            secret, body,
        ]
        let out = Pipe()
        p.standardOutput = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
