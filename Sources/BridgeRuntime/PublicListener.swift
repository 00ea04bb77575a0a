import BridgeDomain
import Hummingbird
import HummingbirdCore
import Metrics
import NIOCore
import NIOHTTPTypes

/// The internet-facing listener (ingest's webhooks): its routes and its limits.
public struct PublicListener: Sendable {
    public var routes: @Sendable (Router<BasicRequestContext>) -> Void
    /// The limits (`header_timeout`, `body_timeout`, `idle_timeout`, `max_connections`) and where the ops endpoints
    /// (`/metrics`, `/healthz`, `/readyz`) listen instead (`ops_host`, `ops_port`).
    public var settings: IngestSettings

    public init(_ settings: IngestSettings, routes: @escaping @Sendable (Router<BasicRequestContext>) -> Void) {
        self.settings = settings
        self.routes = routes
    }

    /// The server: HTTP/1 with a new `EdgeTimeoutHandler` on every connection (the autoclosure runs per connection).
    var server: HTTPServerBuilder {
        let header = TimeAmount(settings.headerTimeout), body = TimeAmount(settings.bodyTimeout), idle = TimeAmount(settings.idleTimeout)
        return .http1(configuration: .init(additionalChannelHandlers: [EdgeTimeoutHandler(header: header, body: body, idle: idle)]))
    }

    /// The connection cap.
    var connections: ConnectionCap { ConnectionCap(max: settings.maxConnections) }
}

/// Closes a connection whose client is too slow: the request head must arrive within `header` of the connection
/// opening, the body within `body` of the head, and on a kept-alive connection the next head within `idle` of the
/// last response. A client that opens connections and trickles bytes (on purpose, or a broken proxy) would otherwise
/// hold each one forever. Hummingbird's own idle timeout stops at the head: nothing in the libraries this project
/// uses bounds the body, so this handler is written here.
///
/// Metrics: `http_connections_timed_out_total{phase}` (`header`, `body`, `idle`).
final class EdgeTimeoutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let header: TimeAmount
    let body: TimeAmount
    let idle: TimeAmount
    private var timer: Scheduled<Void>?
    private var requestOpen = false

    init(header: TimeAmount, body: TimeAmount, idle: TimeAmount) {
        self.header = header
        self.body = body
        self.idle = idle
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context, header, phase: "header") }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context, header, phase: "header")
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            requestOpen = true
            arm(context, body, phase: "body")
        case .body:
            break
        case .end:
            requestOpen = false
            cancel()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        // The response is out and no request is half read: the connection idles until the next head.
        if case .end = unwrapOutboundIn(data), !requestOpen { arm(context, idle, phase: "idle") }
        context.write(data, promise: promise)
    }

    func channelInactive(context: ChannelHandlerContext) {
        cancel()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) { cancel() }

    private func arm(_ context: ChannelHandlerContext, _ after: TimeAmount, phase: String) {
        cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: after) {
            Counter(label: "http_connections_timed_out_total", dimensions: [("phase", phase)]).increment()
            bound.value.close(promise: nil)
        }
    }

    private func cancel() {
        timer?.cancel()
        timer = nil
    }
}

/// At most `max` open connections on the public listener; past that the server stops accepting (new connections
/// wait in the kernel's backlog) until one closes. Metrics: `http_open_connections`,
/// `http_connection_limit_reached_total` (each time accepting pauses).
struct ConnectionCap: AvailableConnectionsDelegate {
    let max: Int
    var open = 0
    var paused = false
    let gauge = Gauge(label: "http_open_connections")
    let reached = Counter(label: "http_connection_limit_reached_total")

    init(max: Int) { self.max = max }

    mutating func connectionOpened() {
        open += 1
        gauge.record(open)
    }

    mutating func connectionClosed() {
        open -= 1
        gauge.record(open)
    }

    func isAcceptingNewConnections() -> Bool {
        guard open >= max else { return true }
        reached.increment()
        return false
    }
}
