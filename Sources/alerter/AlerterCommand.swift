import Alerting
import ArgumentParser
import BridgeRuntime
import Hummingbird

/// Watches dead letters and consumers, and tells a human (the log, a Slack-compatible webhook, a signed webhook).
@main
struct AlerterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "alerter", abstract: "Watches dead letters, error rates and silence, and tells a human.")

    @OptionGroup var options: ProcessOptions

    func run() async throws {
        let runtime = try await BridgeRuntime.bootstrap(.alerter, options: options)
        let process = try AlerterProcess.build(
            config: runtime.config, consumer: runtime.consumer!, publisher: runtime.publisher!,
            channels: AlerterProcess.channels(runtime.config.alerter, logger: runtime.logger), logger: runtime.logger)
        try await runtime.run(
            services: process.services,
            routes: { router in
                router.get("/alerts") { _, _ in
                    Response(
                        status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: await process.firingJSON())))
                }
                router.get("/trace") { request, _ in
                    let q = request.uri.queryParameters
                    let order = q["order"].map(String.init), webhook = q["webhook"].map(String.init)
                    guard order != nil || webhook != nil else {
                        return Response(
                            status: .badRequest, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: #"{"error":"give order=ID or webhook=ID"}"#)))
                    }
                    return Response(
                        status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: try process.traceJSON(order: order, webhook: webhook, shop: q["shop"].map(String.init)))))
                }
                router.get("/status") { _, _ in
                    Response(
                        status: .ok, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: await process.statusJSON())))
                }
            })
    }
}
