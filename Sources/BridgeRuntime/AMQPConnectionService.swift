import Messaging
import ServiceLifecycle

/// Runs an `AMQPConnection` as a lifecycle service: starts its thread, and on graceful shutdown drains in-flight
/// confirms and closes it.
public struct AMQPConnectionService: Service {
    public let connection: AMQPConnection
    public let drain: Duration

    public init(connection: AMQPConnection, drain: Duration = .seconds(5)) {
        self.connection = connection
        self.drain = drain
    }

    public func run() async throws {
        connection.start()
        try? await gracefulShutdown()
        await connection.close(drain: drain)
    }
}
