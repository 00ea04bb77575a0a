import ArgumentParser
import BridgeRuntime
import Reconciliation

/// Compares both systems per domain on a schedule, reports and corrects drift.
@main
struct ReconcilerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "reconciler", abstract: "Compares both systems per domain on a schedule, reports and corrects drift.")

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let runtime = try await BridgeRuntime.bootstrap(.reconciler, options: options)
        let process = try ReconcilerProcess.build(
            config: runtime.config, consumer: runtime.consumer!, publisher: runtime.publisher!, logger: runtime.logger)
        try await runtime.run(services: process.services)
    }
}
