import BridgeDomain
import BridgeMessaging
import BridgeRuntime
import BridgeTestSupport
import Compliance
import ERP
import ERPSimulator
import Foundation
import Hummingbird
import Ledger
import Logging
import Messaging
import OrderForwarding
import ServiceLifecycle
import ShopifySimulator
import Worker

/// One test's world: a private vhost with the bridge topology (short retry levels), an in-process erp-sim on a free
/// port, a temporary ledger directory, and a publisher that plays ingest.
final class ForwarderHarness: Sendable {
    static let shopDomain = "acme.myshopify.com"
    static let shopId = "acme"
    static let apiKey = "test-erp-key"
    static let settings = BridgeConfig.TopologySettings(retryDelays: [.seconds(1), .seconds(2)])

    let profile: ERPStore.Profile
    let broker: TestBroker
    let vhost: String
    let store: ERPStore
    let erpURL: String
    let erpTask: Task<Void, any Error>
    let publisher: AMQPConnection
    let dir: URL

    private init(
        profile: ERPStore.Profile, broker: TestBroker, vhost: String, store: ERPStore, erpURL: String, erpTask: Task<Void, any Error>,
        publisher: AMQPConnection, dir: URL
    ) {
        self.profile = profile
        self.broker = broker
        self.vhost = vhost
        self.store = store
        self.erpURL = erpURL
        self.erpTask = erpTask
        self.publisher = publisher
        self.dir = dir
    }

    /// - Parameter profile: the ERP contract erp-sim offers; `.plain` protects the bridge from nothing.
    static func make(
        _ prefix: String, profile: ERPStore.Profile = .upsert, broker: TestBroker? = nil, topology settings: BridgeConfig.TopologySettings = settings
    ) async throws -> ForwarderHarness {
        let broker = try broker ?? TestBroker.shared()
        let vhost = try await broker.makeVhost(prefix)
        let topology = BridgeTopology.topology(settings)
        let publisher = try await broker.connect(vhost: vhost, name: "\(prefix)-ingest", onConnect: { try topology.declare(using: $0) })
        let store = ERPStore(skus: Set((1...1000).map(OrderGenerator.sku)), profile: profile)
        let (port, task) = try await startERP(store)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fwd-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return ForwarderHarness(
            profile: profile, broker: broker, vhost: vhost, store: store, erpURL: "http://127.0.0.1:\(port)", erpTask: task, publisher: publisher,
            dir: dir)
    }

    static func startERP(_ store: ERPStore) async throws -> (Int, Task<Void, any Error>) {
        let router = Router()
        ERPSimulatorRoutes(store: store, apiKey: apiKey).addRoutes(to: router)
        return await TestHTTPServer.start(router, label: "erp-sim")
    }

    var ledgerPath: String { dir.appendingPathComponent("ledger.sqlite").path }

    /// An in-process forwarder wired exactly as the executable wires it: configuration from environment keys
    /// (`BridgeConfig.load`), `BridgeRuntime` (its own broker connections, topology, ops listener) and
    /// `OrderForwarderProcess.build` (ledger, ERP client, forwarder) in one `ServiceGroup`. Forwarders of one harness
    /// share the SQLite ledger file, as processes on one host do.
    func startForwarder(
        mapping: OrderMappingSettings = .init(), prefetch: Int = 32, writeCustomers: Bool = false,
        breakerThreshold: Int = 3, probeInterval: Duration = .milliseconds(500), erpURL: String? = nil,
        environment extra: [String: String] = [:]
    ) async throws -> RunningForwarder {
        var env = [
            "BROKER_URL": broker.url(vhost: vhost), "HTTP_HOST": "127.0.0.1", "HTTP_PORT": "0",
            "TOPOLOGY_RETRY_DELAYS": Self.settings.retryDelays.map(BridgeTopology.label).joined(separator: ","),
            "SHOPS": Self.shopId, "SHOP_ACME_DOMAIN": Self.shopDomain,
            "SHOP_ACME_WEBHOOK_SECRETS": "unused-in-forwarder-tests-0123", "SHOP_ACME_ADMIN_TOKEN": "t",
            "ERP_BASE_URL": erpURL ?? self.erpURL, "ERP_API_KEY": Self.apiKey,
            "ERP_PROFILE": profile == .plain ? "plain" : "upsert",
            // A patient client: on a loaded machine a 5 s timeout made the forwarder repeat writes the ERP had
            // committed (legitimate, but it hides what the strict call-log checks look for). Timeouts are tested on
            // their own.
            "ERP_TIMEOUT": "30s",
            // erp-sim commits a request as soon as it takes it (unless a test slows it down): an unknown outcome (a
            // connection cut mid-request) is settled right after the client's deadline.
            "ORDER_FORWARDER_UNKNOWN_OUTCOME_WAIT": "2s",
            "ORDER_FORWARDER_LEDGER": "sqlite:\(ledgerPath)", "ORDER_FORWARDER_PREFETCH": "\(prefetch)",
            "ORDER_FORWARDER_LOCK_TTL": "10s", "ORDER_FORWARDER_LOCK_WAIT": "5s",
            "ORDER_FORWARDER_BREAKER_THRESHOLD": "\(breakerThreshold)",
            "ORDER_FORWARDER_BREAKER_PROBE_INTERVAL": "\(probeInterval.wholeMilliseconds)ms",
            "ORDER_FORWARDER_MISSING_SKU": mapping.missingSKU.rawValue,
            "ORDER_FORWARDER_CATCH_ALL_ITEM": mapping.catchAllItem,
            "INVENTORY_SYNCER_ENABLED": "false",
        ]
        if !mapping.skuMap.isEmpty {
            env["ORDER_FORWARDER_SKU_MAP"] = mapping.skuMap.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
        if !mapping.variantMap.isEmpty {
            env["ORDER_FORWARDER_VARIANT_MAP"] = mapping.variantMap.map { "\($0.key)=\($0.value)" }.joined(separator: ",")
        }
        if writeCustomers {
            env["ORDER_FORWARDER_SYNC_CUSTOMERS"] = "true"
            env["SOURCE_OF_TRUTH_CUSTOMERS"] = "shopify"
        }
        env.merge(extra) { $1 }
        let config = try await BridgeConfig.load(filePath: nil, environment: env, defaultHTTPPort: 0)
        var logger = Logger(label: "order-forwarder")
        logger.logLevel = .warning
        let runtime = try BridgeRuntime.make(.orderForwarder, config: config, logger: logger)
        let process = try OrderForwarderProcess.build(
            config: config, consumer: runtime.consumer!, publisher: runtime.publisher!, logger: logger)
        let group = runtime.serviceGroup(services: process.services, handlesSignals: false)
        let task = Task { try await group.run() }
        // Started when its consumer is up (the executable's readiness), as a test expects of a running forwarder.
        _ = await eventually(timeout: .seconds(30)) { runtime.consumer!.isReady && runtime.publisher!.isReady }
        return RunningForwarder(
            forwarder: process.forwarder, compliance: process.compliance, group: group, task: task, consumer: runtime.consumer!)
    }

    /// Publishes like ingest does: untouched body, envelope headers, persistent, confirmed.
    func publish(
        _ body: Data, topic: String, webhookId: String = UUID().uuidString, triggeredAt: Date = Date(),
        shop: String = ForwarderHarness.shopDomain
    ) async throws {
        let headers: AMQPTable = [
            EnvelopeHeader.source: "shopify", EnvelopeHeader.shop: .string(shop), EnvelopeHeader.topic: .string(topic),
            EnvelopeHeader.webhookId: .string(webhookId), EnvelopeHeader.apiVersion: "2026-07",
            EnvelopeHeader.triggeredAt: .string(Timestamp.string(milliseconds: Timestamp.milliseconds(triggeredAt))),
            EnvelopeHeader.receivedAt: .string(Timestamp.string(milliseconds: Timestamp.milliseconds(Date()))),
        ]
        try await publisher.publish(
            exchange: BridgeTopology.shopifyInbound, routingKey: BridgeTopology.routingKey(forShopifyTopic: topic),
            body: Array(body),
            properties: MessageProperties(
                messageId: webhookId, correlationId: webhookId, contentType: "application/json", type: topic, headers: headers))
    }

    func ref(_ orderId: Int64) -> String { OrderMapper.externalRef(shop: Self.shopId, orderId: orderId) }

    /// The environment that points a spawned order-forwarder process at this harness's broker, ERP and ledger.
    var erpProfileEnvironment: [String: String] { ["ERP_PROFILE": profile == .plain ? "plain" : "upsert"] }

    /// Problems in what the ERP recorded for these orders, from its call log (not only its final state): not exactly
    /// one document, a version written after a newer one (a stale overwrite), and with `strict` a version written
    /// twice (allowed only where a crash or a cut connection can repeat a write).
    func callLogProblems(_ orderIds: [Int64], strict: Bool) async -> [String] {
        var problems: [String] = []
        for id in orderIds {
            let ref = ref(id)
            let writes = await store.writes(ref: ref).filter { $0.outcome != "unknown_sku" }
            let documents = Set(writes.compactMap(\.document))
            if documents.count != 1 { problems.append("\(ref): \(documents.count) documents \(documents.sorted())") }
            // An upsert the ERP ignored as stale changed nothing: it cannot undo a newer version (strict still counts it
            // as a version sent twice).
            let applied = writes.filter { $0.outcome != "stale_ignored" }.compactMap(\.version)
            for (a, b) in zip(applied, applied.dropFirst()) where b < a {
                problems.append("\(ref): version \(b) written after \(a)")
            }
            let versions = writes.compactMap(\.version)
            for (a, b) in zip(versions, versions.dropFirst()) where strict && b == a {
                problems.append("\(ref): version \(a) written twice")
            }
        }
        return problems
    }

    /// Differences between shopify-sim's orders and what erp-sim holds, from both simulators' memory: missing, status,
    /// financial status, total, refunded amount.
    func mismatches(_ orders: [Int64: ShopifyOrderFixture]) async -> [String] {
        var bad: [String] = []
        for (id, o) in orders {
            guard let erp = await store.order(ref: ref(id)) else {
                bad.append("\(id): missing")
                continue
            }
            if erp.status != (o.cancelled ? "cancelled" : "open") { bad.append("\(id): status \(erp.status)") }
            let written = (try? JSONSerialization.jsonObject(with: erp.document)) as? [String: Any]
            if written?["financial_status"] as? String != o.financialStatus {
                bad.append("\(id): financial_status \(written?["financial_status"] ?? "none") != \(o.financialStatus)")
            }
            if erp.total != o.total { bad.append("\(id): total \(erp.total) != \(o.total)") }
            let refunded = o.refunds.reduce(Decimal(0)) { $0 + $1.amount }
            if erp.refundedTotal != refunded { bad.append("\(id): refunded \(erp.refundedTotal) != \(refunded)") }
        }
        return bad
    }

    /// Credit notes per refund reference, from the call log: exactly one each.
    func refundProblems() async -> [String] {
        await store.duplicatedRefunds().map { "refund \($0): several credit notes" }
    }

    func close() async {
        erpTask.cancel()
        await publisher.close()
        await broker.deleteVhost(vhost)
        try? FileManager.default.removeItem(at: dir)
    }
}

final class RunningForwarder: Sendable {
    let forwarder: OrderForwarder
    let compliance: QueueWorker<ComplianceHandler>
    let group: ServiceGroup
    let task: Task<Void, any Error>
    /// Its consuming connection (reconnects, for tests that must not see one).
    let consumer: AMQPConnection

    init(
        forwarder: OrderForwarder, compliance: QueueWorker<ComplianceHandler>, group: ServiceGroup, task: Task<Void, any Error>,
        consumer: AMQPConnection
    ) {
        self.forwarder = forwarder
        self.compliance = compliance
        self.group = group
        self.task = task
        self.consumer = consumer
    }

    /// Stops it as SIGTERM does: the forwarder drains, then the ERP client, ledger and connections shut down.
    func stop() async {
        await group.triggerGracefulShutdown()
        _ = await task.result
    }
}
