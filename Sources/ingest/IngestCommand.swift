import ArgumentParser
import BridgeRuntime
import Ingest

/// Receives Shopify and ERP webhooks, verifies them, and enqueues them durably before answering.
@main
struct IngestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ingest",
        abstract: "Receives Shopify and ERP webhooks, verifies them, and enqueues them durably before answering.")

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let runtime = try await BridgeRuntime.bootstrap(.ingest, options: options)
        let service = IngestService(config: runtime.config, publisher: runtime.publisher!, logger: runtime.logger)
        // Webhooks on the public port, /metrics and the probes on the ops port (ingest.ops_host, ingest.ops_port).
        // SIGHUP reads the configuration again: rotated webhook secrets (and secret files) apply without a restart.
        try await runtime.run(
            publicListener: PublicListener(runtime.config.ingest, routes: { service.addRoutes(to: $0) }),
            reload: { service.reload($0) })
    }
}
