import ArgumentParser
import BridgeRuntime

/// Pushes Shopify orders into the ERP, exactly once in effect, in version order.
@main
struct OrderForwarderCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "order-forwarder", abstract: "Pushes Shopify orders into the ERP, exactly once in effect, in version order.")

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let runtime = try await BridgeRuntime.bootstrap(.orderForwarder, options: options)
        // The order-forwarder logic lands in its own library target; until then the process connects, declares the
        // topology, serves /healthz, /readyz and /metrics, and shuts down cleanly on SIGTERM.
        try await runtime.run(services: [IdleService()])
    }
}
