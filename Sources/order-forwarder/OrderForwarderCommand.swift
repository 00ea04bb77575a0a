import ArgumentParser
import BridgeRuntime
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
        let process = try OrderForwarderProcess.build(
            config: runtime.config, consumer: runtime.consumer!, publisher: runtime.publisher!, logger: runtime.logger)
        // Connections start first and stop last; the ledger, ERP client and forwarder are services of the same group
        // and are shut down by it on every path, also when a service throws.
        try await runtime.run(services: process.services)
    }
}
