import Hummingbird
import Logging
import ServiceLifecycle

/// A Hummingbird server for a test (a simulator, ingest, a webhook receiver) on a free port of 127.0.0.1.
public enum TestHTTPServer {
    /// Starts serving `router`; returns the port once it listens, and the task to cancel when done.
    ///
    /// Cancelling the returned task shuts the server down *gracefully*: the server itself runs in a task of its own
    /// that the cancellation does not reach. Cancelling Hummingbird's serving task directly drops connections that
    /// were accepted but not yet handed to it, and NIO traps on them ("Deinited NIOAsyncWriter without calling
    /// finish()", apple/swift-nio#2813): a test that stopped its server while a client connected crashed the whole
    /// test process on CI. If the graceful shutdown has not finished within `shutdownGrace` the server is cancelled.
    public static func start(
        _ router: Router<BasicRequestContext>, label: String = "test-http", shutdownGrace: Duration = .seconds(10)
    ) async -> (port: Int, task: Task<Void, any Error>) {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: label)
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? -1) }, logger: logger)
        let group = ServiceGroup(configuration: .init(services: [.init(service: app)], gracefulShutdownSignals: [], logger: logger))
        let serving = Task {
            defer { continuation.finish() }
            try await group.run()
        }
        let task = Task {
            try await withTaskCancellationHandler {
                try await serving.value
            } onCancel: {
                Task {
                    await group.triggerGracefulShutdown()
                    try? await Task.sleep(for: shutdownGrace)
                    serving.cancel()
                }
            }
        }
        var iterator = ports.makeAsyncIterator()
        return (await iterator.next() ?? -1, task)
    }
}
