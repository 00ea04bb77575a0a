import ArgumentParser
import BridgeRuntime

/// Compares both systems per domain on a schedule, reports and corrects drift.
@main
struct ReconcilerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reconciler", abstract: "Compares both systems per domain on a schedule, reports and corrects drift.")

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let runtime = try await BridgeRuntime.bootstrap(.reconciler, options: options)
        // The reconciler logic lands in its own library target; until then the process connects, declares the
        // topology, serves /healthz, /readyz and /metrics, and shuts down cleanly on SIGTERM.
        try await runtime.run(services: [IdleService()])
    }
}
