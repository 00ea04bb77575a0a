import ArgumentParser
import BridgeRuntime

/// Receives Shopify and ERP webhooks, verifies them, and enqueues them durably before answering.
@main
struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ingest", abstract: "Receives Shopify and ERP webhooks, verifies them, and enqueues them durably before answering.")

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let runtime = try await BridgeRuntime.bootstrap(.ingest, options: options)
        // The ingest logic lands in its own library target; until then the process connects, declares the
        // topology, serves /healthz, /readyz and /metrics, and shuts down cleanly on SIGTERM.
        try await runtime.run(services: [IdleService()])
    }
}
