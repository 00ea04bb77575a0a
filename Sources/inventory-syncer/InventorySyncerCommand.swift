import ArgumentParser
import BridgeRuntime
import InventorySync

/// Makes Shopify reflect ERP stock: frequent deltas plus a periodic full sync.
@main
struct InventorySyncerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inventory-syncer", abstract: "Makes Shopify reflect ERP stock: frequent deltas plus a periodic full sync.")

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let runtime = try await BridgeRuntime.bootstrap(.inventorySyncer, options: options)
        let process = try InventorySyncerProcess.build(
            config: runtime.config, consumer: runtime.consumer!, publisher: runtime.publisher!, logger: runtime.logger)
        try await runtime.run(services: process.services)
    }
}
