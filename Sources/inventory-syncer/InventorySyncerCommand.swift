import ArgumentParser
import BridgeRuntime

/// Makes Shopify reflect ERP stock: frequent deltas plus a periodic full sync.
@main
struct InventorySyncerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "inventory-syncer", abstract: "Makes Shopify reflect ERP stock: frequent deltas plus a periodic full sync.")

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let runtime = try await BridgeRuntime.bootstrap(.inventorySyncer, options: options)
        // The inventory-syncer logic lands in its own library target; until then the process connects, declares the
        // topology, serves /healthz, /readyz and /metrics, and shuts down cleanly on SIGTERM.
        try await runtime.run(services: [IdleService()])
    }
}
