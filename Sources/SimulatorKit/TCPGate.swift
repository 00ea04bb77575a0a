import NIOCore
import NIOPosix
import Synchronization

/// A TCP front door that forwards every connection to a backend port and can be closed and reopened: while it is
/// closed, connecting gets "connection refused" and open connections are cut, as when a server is taken down for
/// maintenance, yet the server behind it keeps running with its state.
///
/// Written here with SwiftNIO's bootstraps (no available package forwards TCP). Stopping and restarting the
/// Hummingbird server itself for a window can crash the process when a client connects during shutdown (seen in
/// NIO's async channel writer), so the simulator's server stays up and only this gate opens and closes.
public final class TCPGate: Sendable {
    public let host: String
    public let backendPort: Int
    private let group: MultiThreadedEventLoopGroup = .singleton
    private let state = Mutex<(server: (any Channel)?, connections: [ObjectIdentifier: any Channel], port: Int)>((nil, [:], 0))

    public init(host: String, port: Int, backendPort: Int) {
        self.host = host
        self.backendPort = backendPort
        state.withLock { $0.port = port }
    }

    /// The port the gate listens on (after the first `open`, the actual one when 0 was asked for).
    public var port: Int { state.withLock { $0.port } }

    /// Starts accepting on the gate's port (the same one every time it reopens).
    public func open() async throws {
        let backendPort = self.backendPort
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 256)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [weak self] inbound in
                guard let self else { return inbound.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
                self.track(inbound)
                return ClientBootstrap(group: inbound.eventLoop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelInitializer { outbound in
                        outbound.eventLoop.makeCompletedFuture { try outbound.pipeline.syncOperations.addHandler(Relay(partner: inbound)) }
                    }
                    .connect(host: "127.0.0.1", port: backendPort)
                    .flatMapThrowing { outbound in
                        try inbound.pipeline.syncOperations.addHandler(Relay(partner: outbound))
                    }
            }
        let channel = try await bootstrap.bind(host: host, port: port).get()
        state.withLock {
            $0.server = channel
            $0.port = channel.localAddress?.port ?? $0.port
        }
    }

    /// Stops accepting (connection refused from now on) and cuts every open connection.
    public func close() async {
        let (server, connections) = state.withLock { s in
            defer {
                s.server = nil
                s.connections = [:]
            }
            return (s.server, Array(s.connections.values))
        }
        try? await server?.close()
        for c in connections { try? await c.close() }
    }

    private func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        state.withLock { $0.connections[id] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in self?.state.withLock { _ = $0.connections.removeValue(forKey: id) } }
    }
}

/// Copies bytes read on one channel to its partner and closes the partner when either side goes away.
private final class Relay: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let partner: any Channel

    init(partner: any Channel) { self.partner = partner }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        partner.writeAndFlush(Self.unwrapInboundIn(data), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
