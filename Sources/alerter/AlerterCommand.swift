import ArgumentParser
import BridgeRuntime

/// Watches dead letters, error rates and silence, and tells a human.
@main
struct AlerterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "alerter", abstract: "Watches dead letters, error rates and silence, and tells a human.")

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let runtime = try await BridgeRuntime.bootstrap(.alerter, options: options)
        // The alerter logic lands in its own library target; until then the process connects, declares the
        // topology, serves /healthz, /readyz and /metrics, and shuts down cleanly on SIGTERM.
        try await runtime.run(services: [IdleService()])
    }
}
