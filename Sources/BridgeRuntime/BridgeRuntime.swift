import ArgumentParser
import BridgeDomain
import BridgeMessaging
import Foundation
import Hummingbird
import Logging
import Messaging
import Observability
import Prometheus
import ServiceLifecycle

/// Everything a running process shares: configuration, logger, metrics registry and broker connections.
public struct BridgeRuntime: Sendable {
    public let kind: ProcessKind
    public let config: BridgeConfig
    public let logger: Logger
    public let registry: PrometheusCollectorRegistry
    public let topology: Topology
    /// Confirm-mode publishing connection (nil if the process never publishes).
    public let publisher: AMQPConnection?
    /// Consuming connection, separate so a resource alarm that blocks publishers does not stop consumption.
    public let consumer: AMQPConnection?
    /// The YAML file the configuration came from (read again on SIGHUP); nil: environment only.
    public var configPath: String?

    /// Loads and validates configuration, bootstraps logging and metrics, and builds (not yet starts) connections.
    /// Configuration errors are printed to stderr with their keys and the process exits with status 78 (EX_CONFIG).
    public static func bootstrap(
        _ kind: ProcessKind, options: ProcessOptions, environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws -> BridgeRuntime {
        let config: BridgeConfig
        do {
            config = try await BridgeConfig.load(
                filePath: options.config, environment: environment, defaultHTTPPort: kind.defaultPort)
        } catch let errors as ConfigErrors {
            FileHandle.standardError.write(Data("\(kind.name): \(errors)\n".utf8))
            throw ExitCode(78)
        }
        let registry = Observability.bootstrap(
            process: kind.name, logLevel: config.log.level, json: config.log.format == .json)
        var logger = Logger(label: "bridge.\(kind.name)")
        logger[metadataKey: "process"] = .string(kind.name)
        var runtime = try make(kind, config: config, logger: logger, registry: registry)
        runtime.configPath = options.config
        return runtime
    }

    /// Builds a runtime from an already-loaded configuration (tests use this).
    public static func make(
        _ kind: ProcessKind, config: BridgeConfig, logger: Logger, registry: PrometheusCollectorRegistry = .init()
    ) throws -> BridgeRuntime {
        let topology = BridgeTopology.topology(config.topology)
        let mode = config.broker.topologyMode
        let setup: @Sendable (AMQPChannelOperations) throws -> Void = { ops in
            switch mode {
            case .declare: try topology.declare(using: ops)
            case .verify: try topology.verify(using: ops)
            }
        }
        let host = ProcessInfo.processInfo.hostName
        let pid = ProcessInfo.processInfo.processIdentifier
        func connection(_ role: String) throws -> AMQPConnection {
            AMQPConnection(
                configuration: try config.broker.connection(name: "\(kind.name).\(role)@\(host)#\(pid)"),
                logger: logger, onConnect: setup)
        }
        return BridgeRuntime(
            kind: kind, config: config, logger: logger, registry: registry, topology: topology,
            publisher: kind.publishes ? try connection("publish") : nil,
            consumer: kind.consumes ? try connection("consume") : nil, configPath: nil)
    }

    public var connections: [AMQPConnection] { [publisher, consumer].compactMap { $0 } }

    /// Ready when every broker connection is up and has declared (or verified) the topology.
    public var readinessChecks: [ReadinessCheck] {
        var checks: [ReadinessCheck] = []
        if let publisher {
            checks.append(ReadinessCheck("broker_publish") { publisher.isReady })
        }
        if let consumer {
            checks.append(ReadinessCheck("broker_consume") { consumer.isReady })
        }
        return checks
    }

    /// Runs the process until SIGTERM/SIGINT: broker connections first, then `services` (the process's own work),
    /// then the HTTP server (ops endpoints plus whatever `routes` adds). Graceful shutdown runs in reverse: the
    /// HTTP server stops accepting, the work finishes in flight, then connections drain their confirms and close.
    public func run(
        services: [any Service] = [],
        routes: (Router<BasicRequestContext>) -> Void = { _ in },
        publicListener: PublicListener? = nil,
        onListening: (@Sendable (Int) async -> Void)? = nil,
        reload: (@Sendable (BridgeConfig) async -> Void)? = nil
    ) async throws {
        let hangup = ReloadOnHangup(kind: kind, configPath: configPath, reload: reload, logger: logger)
        let group = serviceGroup(
            services: [hangup] + services, routes: routes, publicListener: publicListener, onListening: onListening)
        let brokerURL = try config.broker.connection(name: "log").redactedURL
        logger.info(
            "starting",
            metadata: [
                "broker": "\(brokerURL)",
                "topology_mode": "\(config.broker.topologyMode.rawValue)",
                "shops": "\(config.shops.map(\.id).joined(separator: ","))",
            ])
        try await group.run()
        logger.info("stopped")
    }

    /// The process's `ServiceGroup`, not yet running: broker connections, then `services`, then the HTTP server(s).
    /// `run` runs it until SIGTERM/SIGINT; tests run the same group and stop it with `triggerGracefulShutdown()`.
    ///
    /// One ops listener on `http.*` (`/metrics`, `/healthz`, `/readyz` and `routes`), or, with a `publicListener`
    /// (ingest), two: the public one on `http.*` serving only the public routes with its timeouts and connection cap
    /// (anything else 404, no `Server` header), and the ops one on the listener's own address.
    public func serviceGroup(
        services: [any Service] = [],
        routes: (Router<BasicRequestContext>) -> Void = { _ in },
        publicListener: PublicListener? = nil,
        onListening: (@Sendable (Int) async -> Void)? = nil,
        handlesSignals: Bool = true
    ) -> ServiceGroup {
        let router = Router()
        OpsRoutes.add(to: router, process: kind.name, readiness: readinessChecks, registry: registry)
        routes(router)
        let logger = self.logger
        let opsHost = publicListener?.settings.opsHost ?? config.http.host
        let opsPort = publicListener?.settings.opsPort ?? config.http.port
        let ops = Application(
            router: router,
            configuration: .init(address: .hostname(opsHost, port: opsPort), serverName: kind.name),
            onServerRunning: { channel in
                let port = channel.localAddress?.port ?? -1
                logger.info(publicListener == nil ? "http listening" : "ops http listening", metadata: ["port": "\(port)", "host": "\(opsHost)"])
                if publicListener == nil { await onListening?(port) }
            },
            logger: logger)
        var all: [any Service] = connections.map { AMQPConnectionService(connection: $0) }
        all.append(contentsOf: services)
        all.append(ops)
        if let publicListener {
            let publicRouter = Router()
            publicListener.routes(publicRouter)
            all.append(
                Application(
                    router: publicRouter, server: publicListener.server,
                    configuration: .init(
                        address: .hostname(config.http.host, port: config.http.port), serverName: nil,
                        availableConnectionsDelegate: publicListener.connections),
                    onServerRunning: { channel in
                        let port = channel.localAddress?.port ?? -1
                        logger.info("public http listening", metadata: ["port": "\(port)", "host": "\(config.http.host)"])
                        await onListening?(port)
                    },
                    logger: logger))
        }
        return ServiceGroup(
            configuration: .init(
                // An explicit name: the default `"\(service)"` reflects the service's stored values, which
                // crashes on a service holding a noncopyable `Mutex`/`Atomic` and would print its config.
                services: all.map { .init(service: $0, serviceName: String(describing: type(of: $0))) },
                gracefulShutdownSignals: handlesSignals ? [.sigterm, .sigint] : [],
                logger: logger))
    }
}
