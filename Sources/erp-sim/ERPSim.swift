import ArgumentParser
import Hummingbird
import Logging
import Sandbox

/// A simulated ERP speaking the generic contract in docs/erp-api.yaml, with runtime fault injection.
@main
struct ERPSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "erp-sim", abstract: "A simulated ERP for demos and tests.")

    @Option(help: "Listen address.") var host = "127.0.0.1"
    @Option(help: "Listen port (0: any free port, printed at start).") var port = 8090
    @Option(help: "API key clients must send as 'Authorization: Bearer KEY'.") var apiKey = "demo-erp-key"
    @Option(help: "Seed SKUs SKU-00001 ... SKU-N.") var skus = 1000
    @Option(help: "Latency added to every API call, milliseconds (changeable at runtime: PUT /_admin/faults).") var latencyMs = 0

    func run() async throws {
        let store = ERPStore(skus: Set((1...max(1, skus)).map(OrderGenerator.sku)))
        var faults = ERPStore.Faults()
        faults.latencyMs = latencyMs
        await store.setFaults(faults)
        let router = Router()
        ERPSimulatorRoutes(store: store, apiKey: apiKey).addRoutes(to: router)
        var logger = Logger(label: "erp-sim")
        logger.logLevel = .info
        let app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "erp-sim"),
            onServerRunning: { channel in print("erp-sim listening on \(channel.localAddress?.port ?? -1)") },
            logger: logger)
        try await app.runService()
    }
}
