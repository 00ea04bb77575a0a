import Hummingbird
import Logging
import ServiceLifecycle

/// erp-sim's HTTP server with maintenance windows: `PUT /_admin/maintenance {"seconds": N}` closes the listening
/// socket for N seconds (clients get "connection refused", as from an ERP taken down for maintenance), then serves
/// again on the same port with the same state.
public struct ERPSimulatorServer: Service {
    public let routes: ERPSimulatorRoutes
    public let host: String
    public let port: Int
    public let logger: Logger
    let onListening: @Sendable (Int) async -> Void

    public init(routes: ERPSimulatorRoutes, host: String, port: Int, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void = { _ in }) {
        self.routes = routes
        self.host = host
        self.port = port
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { try await serve() }
    }

    /// Serves until cancelled, closing the port for each maintenance window.
    func serve() async throws {
        let store = routes.store
        while !Task.isCancelled {
            let router = Router()
            routes.addRoutes(to: router)
            let onListening = self.onListening
            let app = Application(
                router: router, configuration: .init(address: .hostname(host, port: port), serverName: "erp-sim"),
                onServerRunning: { channel in await onListening(channel.localAddress?.port ?? -1) }, logger: logger)
            let window: Duration? = await withTaskGroup(of: Duration?.self) { group in
                group.addTask {
                    try? await app.run()
                    return nil
                }
                group.addTask {
                    while !Task.isCancelled {
                        if let d = await store.takeMaintenanceRequest() {
                            // Let the answer to the maintenance request itself go out first.
                            try? await Task.sleep(for: .milliseconds(250))
                            return d
                        }
                        try? await Task.sleep(for: .milliseconds(50))
                    }
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            if Task.isCancelled { return }
            guard let window else {
                // The server stopped by itself (e.g. the port was not free yet after a window): try again shortly.
                logger.warning("server stopped; starting again", metadata: ["port": "\(port)"])
                try await Task.sleep(for: .milliseconds(200))
                continue
            }
            logger.notice("maintenance window: refusing connections", metadata: ["seconds": "\(window)"])
            try await Task.sleep(for: window)
            logger.notice("maintenance over")
        }
    }
}
