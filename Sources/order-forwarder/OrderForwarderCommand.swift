import ArgumentParser
import BridgeCore
import BridgeRuntime
import ERP
import Ledger
import OrderForwarding

/// Pushes Shopify orders into the ERP, exactly once in effect, in version order.
@main
struct OrderForwarderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order-forwarder",
        abstract: "Pushes Shopify orders into the ERP, exactly once in effect, in version order.")

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let runtime = try await BridgeRuntime.bootstrap(.orderForwarder, options: options)
        let config = runtime.config
        let ledger = try makeLedger(config.orderForwarder.ledger, runtime: runtime)
        let erp = RESTERPClient(
            configuration: .init(baseURL: config.erp.baseURL, apiKey: config.erp.apiKey, timeout: config.erp.timeout))
        let forwarder = try OrderForwarder(
            settings: .init(config: config),
            shops: Dictionary(uniqueKeysWithValues: config.shops.map { ($0.domain, $0.id) }),
            consumer: runtime.consumer!, publisher: runtime.publisher!, erp: erp, ledger: ledger, logger: runtime.logger)
        runtime.logger.info(
            "order-forwarder configured",
            metadata: [
                "ledger": "\(config.orderForwarder.ledger.redacted)", "erp": "\(config.erp.baseURL)",
                "erp_profile": "\(config.erp.profile.rawValue)",
                "write_customers": "\(forwarder.settings.writeCustomers)",
            ])
        // The ledger runs first and stops last; the forwarder drains before the connections close. The ERP client is
        // shut down on every path (async-http-client requires it), also when the run throws.
        do {
            try await runtime.run(services: [LedgerService(ledger: ledger), forwarder])
        } catch {
            await erp.shutdown()
            throw error
        }
        await erp.shutdown()
    }

    func makeLedger(_ location: LedgerLocation, runtime: BridgeRuntime) throws -> any OrderLedger {
        switch location {
        case .sqlite(let path):
            return try SQLiteOrderLedger(path: path)
        case .postgres(let host, let port, let user, let password, let database):
            return PostgresOrderLedger(
                host: host, port: port, user: user, password: password, database: database, logger: runtime.logger)
        }
    }
}
