import BridgeMessaging
import BridgeTestSupport
import Foundation
import Ingest
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Secrets from files (Docker and Kubernetes secrets), rotated with SIGHUP, never printed: the real executables.
@Suite("secrets: <key>_file, SIGHUP rotation without a restart, never in logs or bridgectl output", .serialized)
struct SecretFilesTests {
    static let old = "old-webhook-secret-AAAA1111"
    static let new = "new-webhook-secret-BBBB2222"
    static let token = "shpat_admin_token_CCCC3333"
    static let erp = "erp-webhook-secret-DDDD4444"

    func post(port: Int, secret: String) async -> Int {
        let body = Data("{\"id\":820982911946154508,\"total_price\":\"10.00\"}".utf8)
        var request = ProcessTests.webhookRequest(
            port: port, body: body, signature: WebhookSignature.sign(body, secret: secret), webhookId: UUID().uuidString)
        request.timeoutInterval = 10
        guard let (_, response) = try? await URLSession.shared.data(for: request) else { return 0 }
        return (response as? HTTPURLResponse)?.statusCode ?? 0
    }

    @Test("ingest reads its webhook secrets, the admin token and the ERP secret from files; SIGHUP applies a rotated file (both secrets during the overlap, then only the new one); an unreadable file keeps the running secrets; no secret appears in the log or in bridgectl config check")
    func rotateWithHangup() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("secret-files")
        defer { Task { await broker.deleteVhost(vhost) } }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("secrets-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let webhook = dir.appendingPathComponent("acme-webhook-secrets")
        try "\(Self.old)\n".write(to: webhook, atomically: true, encoding: .utf8)
        try Self.token.write(to: dir.appendingPathComponent("acme-admin-token"), atomically: true, encoding: .utf8)
        try "\(Self.erp)\n".write(to: dir.appendingPathComponent("erp-webhook-secret"), atomically: true, encoding: .utf8)
        let port = TestProcesses.freePort(), ops = TestProcesses.freePort()
        let environment = [
            "BROKER_URL": broker.url(vhost: vhost), "HTTP_PORT": "\(port)", "HTTP_HOST": "127.0.0.1", "INGEST_OPS_PORT": "\(ops)",
            "LOG_LEVEL": "info", "SHOPS": "acme", "SHOP_ACME_DOMAIN": "acme.myshopify.com",
            "SHOP_ACME_WEBHOOK_SECRETS_FILE": webhook.path, "SHOP_ACME_ADMIN_TOKEN_FILE": dir.appendingPathComponent("acme-admin-token").path,
            "ERP_WEBHOOK_SECRET_FILE": dir.appendingPathComponent("erp-webhook-secret").path,
        ]
        let (p, err) = try TestProcesses.launch("ingest", environment: environment)
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        #expect(await eventually(timeout: .seconds(30)) { await TestProcesses.get("http://127.0.0.1:\(ops)/readyz").0 == 200 })

        #expect(await post(port: port, secret: Self.old) == 200)
        #expect(await post(port: port, secret: Self.new) == 401)
        // Rotation: the new secret first, the old one kept while Shopify may still sign with it.
        try "\(Self.new)\n\(Self.old)\n".write(to: webhook, atomically: true, encoding: .utf8)
        kill(p.processIdentifier, SIGHUP)
        #expect(await eventually(timeout: .seconds(10)) { await post(port: port, secret: Self.new) == 200 })
        #expect(await post(port: port, secret: Self.old) == 200)
        // The overlap ends.
        try "\(Self.new)\n".write(to: webhook, atomically: true, encoding: .utf8)
        kill(p.processIdentifier, SIGHUP)
        #expect(await eventually(timeout: .seconds(10)) { await post(port: port, secret: Self.old) == 401 })
        // A file gone missing: the reload fails and the running secrets stay.
        try FileManager.default.removeItem(at: webhook)
        kill(p.processIdentifier, SIGHUP)
        try await Task.sleep(for: .milliseconds(500))
        #expect(await post(port: port, secret: Self.new) == 200)
        #expect(p.isRunning, "SIGHUP does not end the process")

        let metrics = await TestProcesses.get("http://127.0.0.1:\(ops)/metrics").1
        #expect(metrics.contains("config_reloads_total{result=\"applied\"} 2"), "\(metrics.split(separator: "\n").filter { $0.contains("config_reloads") })")
        #expect(metrics.contains("config_reloads_total{result=\"invalid\"} 1"))
        kill(p.processIdentifier, SIGTERM)
        #expect(await eventually(timeout: .seconds(15)) { !p.isRunning })
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains("shops and secrets reloaded") && log.contains("keeping the running one"), "\(log.suffix(2000))")
        #expect(log.contains("acme-webhook-secrets"), "the failed reload names the file it could not read")
        for secret in [Self.old, Self.new, Self.token, Self.erp] { #expect(!log.contains(secret), "a secret in the log") }

        // bridgectl config check with the same files: a summary, no secret.
        try "\(Self.new)\n".write(to: webhook, atomically: true, encoding: .utf8)
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let (status, text) = try TestProcesses.run("bridgectl", ["config", "check"], environment: env)
        #expect(status == 0 && text.contains("configuration ok") && text.contains("1 secret(s)"), "\(text)")
        for secret in [Self.old, Self.new, Self.token, Self.erp] { #expect(!text.contains(secret), "a secret in bridgectl's output") }
        // Set twice (directly and through a file) is refused, without the value.
        env["SHOP_ACME_WEBHOOK_SECRETS"] = Self.old
        let (refusedStatus, refused) = try TestProcesses.run("bridgectl", ["config", "check"], environment: env)
        #expect(refusedStatus == 78 && refused.contains("set both directly and through"), "\(refused)")
        #expect(!refused.contains(Self.old) && !refused.contains(Self.new))
    }
}
