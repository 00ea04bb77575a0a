import Hummingbird
import Logging
import ServiceLifecycle
import SimulatorKit

/// erp-sim's HTTP server with maintenance windows: `PUT /_admin/maintenance {"seconds": N}` refuses connections on
/// the port for N seconds (clients get "connection refused" and open connections are cut, as from an ERP taken
/// down for maintenance), then serves again on the same port with the same state.
///
/// The Hummingbird server listens on a private loopback port and never stops; the public port is a `TCPGate` in
/// front of it that closes and reopens.
public struct ERPSimulatorServer: Service {
    public let routes: ERPSimulatorRoutes
    public let host: String
    public let port: Int
    public let logger: Logger
    let onListening: @Sendable (Int) async -> Void

    public init(
        routes: ERPSimulatorRoutes, host: String, port: Int, logger: Logger, onListening: @escaping @Sendable (Int) async -> Void = { _ in }
    ) {
        self.routes = routes
        self.host = host
        self.port = port
        self.logger = logger
        self.onListening = onListening
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { try await serve() }
    }

    /// Starts a server on a free port (chosen by the system, so no race with other processes for it) and returns
    /// that port once it accepts connections, with the task serving it (cancel it to stop).
    public static func start(
        routes: ERPSimulatorRoutes, host: String = "127.0.0.1", logger: Logger, timeout: Duration = .seconds(60)
    ) async throws -> (port: Int, task: Task<Void, any Error>) {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        let server = ERPSimulatorServer(routes: routes, host: host, port: 0, logger: logger, onListening: { continuation.yield($0) })
        let task = Task {
            defer { continuation.finish() }
            try await server.run()
        }
        let port = await withTaskGroup(of: Int?.self) { group in
            group.addTask {
                var it = ports.makeAsyncIterator()
                return await it.next()
            }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
        guard let port else {
            task.cancel()
            if case .failure(let error) = await task.result { throw error }
            throw CancellationError()
        }
        return (port, task)
    }

    /// Serves until cancelled.
    func serve() async throws {
        let router = Router()
        routes.addRoutes(to: router)
        let (backendPorts, continuation) = AsyncStream<Int>.makeStream()
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0), serverName: "erp-sim"),
            onServerRunning: { channel in continuation.yield(channel.localAddress?.port ?? -1) }, logger: logger)
        // Not a child task: when we are cancelled the gate closes first, then the server shuts down gracefully with
        // nobody able to reach it.
        let serverGroup = ServiceGroup(configuration: .init(services: [.init(service: app)], logger: logger))
        let server = Task { try await serverGroup.run() }
        var ports = backendPorts.makeAsyncIterator()
        guard let backendPort = await ports.next(), backendPort > 0 else {
            await serverGroup.triggerGracefulShutdown()
            _ = await server.result
            throw CancellationError()
        }
        let gate = TCPGate(host: host, port: port, backendPort: backendPort)
        do {
            try await gate.open()
        } catch {
            // The port is taken (or not ours to bind): stop the server behind it and say so.
            logger.error("cannot listen", metadata: ["host": "\(host)", "port": "\(port)", "error": "\(error)"])
            await serverGroup.triggerGracefulShutdown()
            _ = await server.result
            throw error
        }
        await onListening(gate.port)
        let store = routes.store
        while !Task.isCancelled {
            guard let window = await store.takeMaintenanceRequest() else {
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            // Let the answer to the maintenance request itself go out first.
            try? await Task.sleep(for: .milliseconds(250))
            await gate.close()
            logger.notice("maintenance window: refusing connections", metadata: ["seconds": "\(window)", "port": "\(gate.port)"])
            try? await Task.sleep(for: window)
            // Reopen on the same port; retry briefly if the system has not released it yet.
            var reopened = false
            for _ in 0..<100 where !Task.isCancelled {
                if (try? await gate.open()) != nil {
                    reopened = true
                    break
                }
                try? await Task.sleep(for: .milliseconds(100))
            }
            if reopened {
                logger.notice("maintenance over", metadata: ["port": "\(gate.port)"])
            } else if !Task.isCancelled {
                logger.error("could not reopen the port after maintenance", metadata: ["port": "\(gate.port)"])
            }
        }
        await gate.close()
        await serverGroup.triggerGracefulShutdown()
        _ = await server.result
    }
}
