import BridgeMessaging
import BridgeTestSupport
import Foundation
import Ingest
import Messaging
import Testing

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Runs the real executables (built by `./dev test` before the tests; BRIDGE_TEST_BIN_DIR points at them).
@Suite("Processes start for real and stop cleanly")
struct ProcessTests {
    static func freePort() -> Int { TestProcesses.freePort() }

    /// The `Server` header of a GET, nil when there is none (or no answer).
    static func serverHeader(_ url: String) async -> String? {
        var request = URLRequest(url: URL(string: url)!)
        request.timeoutInterval = 2
        guard let (_, response) = try? await URLSession.shared.data(for: request) else { return "no answer" }
        return (response as? HTTPURLResponse)?.value(forHTTPHeaderField: "Server")
    }

    func launch(_ name: String, environment: [String: String]) throws -> (Process, Pipe) {
        try TestProcesses.launch(name, environment: environment)
    }

    @Test("each process connects, declares the topology, serves /healthz /readyz /metrics, survives SIGHUP, and exits 0 on SIGTERM",
          arguments: ["ingest", "order-forwarder", "inventory-syncer", "reconciler", "alerter"])
    func startsAndStops(process: String) async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("proc")
        defer { Task { await broker.deleteVhost(vhost) } }
        let port = Self.freePort()
        let ledger = FileManager.default.temporaryDirectory.appendingPathComponent("proc-\(UUID().uuidString)/ledger.sqlite").path
        // ingest's ops endpoints have their own listener; its public port serves webhooks only.
        let publicPort = Self.freePort()
        let (p, err) = try launch(process, environment: [
            "BROKER_URL": broker.url(vhost: vhost), "HTTP_PORT": "\(process == "ingest" ? publicPort : port)", "HTTP_HOST": "127.0.0.1",
            "INGEST_OPS_PORT": "\(port)", "LOG_LEVEL": "info", "ORDER_FORWARDER_LEDGER": "sqlite:\(ledger)",
        ])
        defer { if p.isRunning { p.interrupt(); kill(p.processIdentifier, SIGKILL) } }

        #expect(await eventually(timeout: .seconds(30)) { await TestProcesses.get("http://127.0.0.1:\(port)/readyz").0 == 200 })
        #expect(await TestProcesses.get("http://127.0.0.1:\(port)/healthz").0 == 200)
        let metrics = await TestProcesses.get("http://127.0.0.1:\(port)/metrics").1
        // Every connection of the process reports itself connected (each line `bridge_amqp_connected{...} 1`).
        let connected = metrics.split(separator: "\n").filter { $0.hasPrefix("bridge_amqp_connected{") }
        #expect(!connected.isEmpty)
        #expect(connected.allSatisfy { $0.split(separator: " ").last.flatMap { Double($0) } == 1 }, "\(connected)")
        if process == "ingest" {
            // The internet-facing port: no metrics, no probes, no server banner.
            for path in ["/metrics", "/healthz", "/readyz", "/"] {
                #expect(await TestProcesses.get("http://127.0.0.1:\(publicPort)\(path)").0 == 404, "\(path) on the public port")
            }
            #expect(await Self.serverHeader("http://127.0.0.1:\(publicPort)/metrics") == nil, "no Server header on the public port")
        }
        // The process declared the whole topology.
        let c = try await broker.connect(vhost: vhost)
        #expect(try await c.queueCounts(BridgeTopology.orders.name).messages == 0)
        #expect(try await c.queueCounts(BridgeTopology.deadLetterQueue(of: BridgeTopology.alerter.name)).messages == 0)
        await c.close()

        // SIGHUP (its default action ends a process): ingest reloads its secrets, the others say a restart applies
        // changes; every one keeps running and still serves.
        kill(p.processIdentifier, SIGHUP)
        #expect(await eventually(timeout: .seconds(10)) { await TestProcesses.get("http://127.0.0.1:\(port)/metrics").1.contains("config_reloads_total{") })
        #expect(p.isRunning, "SIGHUP must not end \(process)")

        kill(p.processIdentifier, SIGTERM)
        let exited = await eventually(timeout: .seconds(15)) { !p.isRunning }
        #expect(exited)
        if exited { #expect(p.terminationStatus == 0) }
        let log = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(log.contains(process == "ingest" ? "shops and secrets reloaded" : "has nothing to reload"), "\(process) says what SIGHUP did")
        #expect(log.contains("\"msg\":\"amqp connected\""))
        #expect(log.contains("\"msg\":\"stopped\""))
        #expect(!log.contains("guest:guest"), "the broker password must never be logged")
    }

    @Test("bridgectl status and bridgectl alerts print what the running alerter sees: every flow with its queue and DLQ, and the alerts with what to do; bridgectl trace asks its journal")
    func bridgectlStatusAndAlerts() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("ctl-status")
        defer { Task { await broker.deleteVhost(vhost) } }
        let port = Self.freePort()
        // No consumer runs in this vhost: with no grace, no_consumer fires for every watched queue at once.
        let (p, _) = try launch("alerter", environment: [
            "BROKER_URL": broker.url(vhost: vhost), "HTTP_PORT": "\(port)", "HTTP_HOST": "127.0.0.1", "LOG_LEVEL": "warning",
            "ALERTER_INTERVAL": "200ms", "ALERTER_NO_CONSUMER_GRACE": "0s",
        ])
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        #expect(await eventually(timeout: .seconds(30)) { await TestProcesses.get("http://127.0.0.1:\(port)/readyz").0 == 200 })
        func bridgectl(_ args: [String]) throws -> (Int32, String) {
            try TestProcesses.run("bridgectl", args + ["--alerter", "http://127.0.0.1:\(port)"])
        }
        #expect(await eventually(timeout: .seconds(20)) { (try? bridgectl(["alerts"]).1.contains("no_consumer  q.orders")) == true })
        let (alertsStatus, alerts) = try bridgectl(["alerts"])
        #expect(alertsStatus == 0 && alerts.contains("CRITICAL  no_consumer  q.orders") && alerts.contains("what to do: start order-forwarder"), "\(alerts)")
        let (status, screen) = try bridgectl(["status"])
        #expect(status == 0, "\(screen)")
        for queue in ["q.orders", "q.erp-inventory", "q.compliance", "q.reconcile"] { #expect(screen.contains(queue), "\(screen)") }
        #expect(screen.contains("FLOW") && screen.contains("ALERTS: ") && screen.contains("no_consumer"), "\(screen)")
        // The trace route answers through bridgectl: nothing recorded for an order no worker saw (exit 1, and why).
        let (traced, journey) = try bridgectl(["trace", "--order", "424242", "--shop", "acme.myshopify.com"])
        #expect(traced == 1 && journey.contains("order 424242: no steps recorded"), "\(journey)")
        let (unasked, usage) = try bridgectl(["trace"])
        #expect(unasked != 0 && usage.contains("give --order ID or --webhook ID"), "\(usage)")
        // An alerter that is not there: a clear error, not a stack trace.
        kill(p.processIdentifier, SIGTERM)
        #expect(await eventually(timeout: .seconds(15)) { !p.isRunning })
        let (gone, message) = try bridgectl(["status"])
        #expect(gone != 0 && message.contains("could not reach the alerter"), "\(message)")
    }

    /// Starts the ingest executable on a free port for shop acme.myshopify.com signed with `secret`; waits until ready.
    /// Returns the public (webhook) port and the ops port.
    func launchIngest(broker: TestBroker, vhost: String, secret: String, environment: [String: String] = [:]) async throws -> (Process, Int, Int) {
        let port = Self.freePort()
        let ops = Self.freePort()
        let (p, _) = try launch("ingest", environment: environment.merging([
            "BROKER_URL": broker.url(vhost: vhost), "HTTP_PORT": "\(port)", "HTTP_HOST": "127.0.0.1", "INGEST_OPS_PORT": "\(ops)",
            "SHOPS": "acme", "SHOP_ACME_DOMAIN": "acme.myshopify.com", "SHOP_ACME_WEBHOOK_SECRETS": secret,
            "SHOP_ACME_ADMIN_TOKEN": "token",
        ]) { $1 })
        #expect(await eventually(timeout: .seconds(30)) { await TestProcesses.get("http://127.0.0.1:\(ops)/readyz").0 == 200 })
        return (p, port, ops)
    }

    /// A Shopify-shaped orders/create delivery to ingest on `port`.
    static func webhookRequest(port: Int, body: Data, signature: String, webhookId: String) -> URLRequest {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)/webhooks/shopify")!)
        request.httpMethod = "POST"
        request.httpBody = body
        request.timeoutInterval = 10
        for (k, v) in [
            ("X-Shopify-Topic", "orders/create"), ("X-Shopify-Hmac-Sha256", signature),
            ("X-Shopify-Shop-Domain", "acme.myshopify.com"), ("X-Shopify-API-Version", "2026-07"),
            ("X-Shopify-Webhook-Id", webhookId), ("Content-Type", "application/json"),
        ] { request.setValue(v, forHTTPHeaderField: k) }
        return request
    }

    @Test("the ingest process accepts a signed webhook over HTTP and enqueues it; a forged one gets 401")
    func ingestEndToEnd() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("e2e")
        defer { Task { await broker.deleteVhost(vhost) } }
        let secret = "e2e-secret-0123456789abcdef"
        let (p, port, ops) = try await launchIngest(broker: broker, vhost: vhost, secret: secret)
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let body = Data("{\"id\":820982911946154508,\"total_price\":\"10.00\"}".utf8)
        func post(signature: String) async throws -> Int {
            let request = Self.webhookRequest(port: port, body: body, signature: signature, webhookId: UUID().uuidString)
            let (_, response) = try await URLSession.shared.data(for: request)
            return (response as? HTTPURLResponse)?.statusCode ?? 0
        }
        #expect(try await post(signature: WebhookSignature.sign(body, secret: secret)) == 200)
        #expect(try await post(signature: WebhookSignature.sign(body, secret: "forged")) == 401)
        let c = try await broker.connect(vhost: vhost)
        #expect(try await c.queueCounts(BridgeTopology.orders.name).messages == 1)
        await c.close()
        let metrics = await TestProcesses.get("http://127.0.0.1:\(ops)/metrics").1
        #expect(metrics.contains("ingest_requests_total{"))
        #expect(metrics.contains("reason=\"invalid_signature\""))
        #expect(metrics.contains("topic=\"orders/create\""))
        #expect(metrics.contains("status=\"200\"") && metrics.contains("status=\"401\""))
        #expect(metrics.contains("ingest_publish_confirm_seconds"), "the confirm latency histogram")
        #expect(metrics.contains("ingest_in_flight"))
        kill(p.processIdentifier, SIGTERM)
        #expect(await eventually(timeout: .seconds(15)) { !p.isRunning })
    }

    @Test("ingest stopped with SIGTERM under load: it exits 0 and every request it answered 200 is in the queue")
    func ingestGracefulShutdown() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("drain")
        defer { Task { await broker.deleteVhost(vhost) } }
        let secret = "drain-secret-0123456789abcdef"
        let (p, port, _) = try await launchIngest(broker: broker, vhost: vhost, secret: secret)
        defer { if p.isRunning { kill(p.processIdentifier, SIGKILL) } }
        let body = Data("{\"id\":1,\"total_price\":\"10.00\"}".utf8)
        let signature = WebhookSignature.sign(body, secret: secret)
        let accepted = Shared<Set<String>>([])
        let statuses = Shared<[Int: Int]>([:])
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                try? await Task.sleep(for: .milliseconds(600))
                kill(p.processIdentifier, SIGTERM)
            }
            for worker in 0..<16 {
                group.addTask {
                    for i in 0..<400 {
                        let id = "drain-\(worker)-\(i)"
                        let request = Self.webhookRequest(port: port, body: body, signature: signature, webhookId: id)
                        guard let (_, response) = try? await URLSession.shared.data(for: request) else { break }
                        let code = (response as? HTTPURLResponse)?.statusCode ?? 0
                        statuses.withLock { $0[code, default: 0] += 1 }
                        if code == 200 { accepted.withLock { _ = $0.insert(id) } }
                    }
                }
            }
        }
        #expect(await eventually(timeout: .seconds(20)) { !p.isRunning })
        #expect(p.terminationStatus == 0)
        #expect(Set(statuses.value.keys).isSubset(of: [200, 503]), "\(statuses.value)")
        let ok = accepted.value
        #expect(ok.count > 0)
        let c = try await broker.connect(vhost: vhost)
        let present = Set(try await consumeAllIds(c, BridgeTopology.orders.name))
        await c.close()
        #expect(ok.subtracting(present).count == 0, "\(ok.subtracting(present).count) of \(ok.count) answered 200 are missing")
    }

    @Test("a contradictory source-of-truth configuration refuses to start and names the key")
    func contradictoryConfigRefusesToStart() async throws {
        let (p, err) = try launch("inventory-syncer", environment: [
            "SOURCE_OF_TRUTH_INVENTORY": "shopify", "INVENTORY_SYNCER_ENABLED": "true",
        ])
        p.waitUntilExit()
        #expect(p.terminationStatus == 78)
        let text = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.contains("source_of_truth.inventory"))
        #expect(text.contains("inventory_syncer.enabled"))
    }
}
