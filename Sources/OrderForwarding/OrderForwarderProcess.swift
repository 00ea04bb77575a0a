import BridgeDomain
import BridgeMessaging
import Compliance
import ERP
import Ledger
import Logging
import Messaging
import ServiceLifecycle
import Worker

/// The order-forwarder's wiring, from configuration to services, in one place: the executable runs it, and the
/// integration tests build the same thing from the same configuration keys.
public struct OrderForwarderProcess: Sendable {
    public let forwarder: OrderForwarder
    public let ledger: any OrderLedger
    public let erp: RESTERPClient
    /// The consumer of `q.compliance` (Shopify's privacy webhooks), hosted by this process as the topology says.
    public let compliance: QueueWorker<ComplianceHandler>

    /// In start order; the `ServiceGroup` stops them in reverse: the workers drain (in-flight deliveries finish,
    /// held ones return to the queue), then the ERP client and the ledger shut down.
    public var services: [any Service] {
        [LedgerService(ledger: ledger), ERPClientService(client: erp), forwarder, compliance]
    }

    /// Builds the ledger (SQLite or PostgreSQL, `order_forwarder.ledger`), the ERP client (`erp.*`) and the
    /// forwarder (a `QueueWorker` on `q.orders`) from the configuration. Nothing runs until `services` do.
    public static func build(
        config: BridgeConfig, consumer: AMQPConnection, publisher: AMQPConnection, logger: Logger
    ) throws -> OrderForwarderProcess {
        let ledger: any OrderLedger
        switch config.orderForwarder.ledger {
        case .sqlite(let path):
            ledger = try SQLiteOrderLedger(path: path)
        case .postgres(let host, let port, let user, let password, let database):
            ledger = PostgresOrderLedger(
                host: host, port: port, user: user, password: password, database: database, logger: logger)
        }
        let erp = RESTERPClient(
            configuration: .init(baseURL: config.erp.baseURL, apiKey: config.erp.apiKey, timeout: config.erp.timeout))
        let forwarder: OrderForwarder
        do {
            forwarder = try OrderForwarder(
                settings: .init(config: config),
                shops: Dictionary(uniqueKeysWithValues: config.shops.map { ($0.domain, $0.id) }),
                consumer: consumer, publisher: publisher, erp: erp, ledger: ledger, logger: logger)
        } catch {
            // Nothing will run the client's service: shut it down here (async-http-client requires it).
            Task { await erp.shutdown() }
            throw error
        }
        logger.info(
            "order-forwarder configured",
            metadata: [
                "ledger": "\(config.orderForwarder.ledger.redacted)", "erp": "\(config.erp.baseURL)",
                "erp_profile": "\(config.erp.profile.rawValue)",
                "write_customers": "\(forwarder.settings.writeCustomers)",
            ])
        let compliance = QueueWorker(
            settings: .init(queue: BridgeTopology.compliance.name, prefetch: 4, retryDelays: config.topology.retryDelays),
            handler: ComplianceHandler(), consumer: consumer, publisher: publisher, logger: logger)
        return OrderForwarderProcess(forwarder: forwarder, ledger: ledger, erp: erp, compliance: compliance)
    }
}
