import Hummingbird
import Logging

/// A Hummingbird server for a test (a simulator, ingest, a webhook receiver) on a free port of 127.0.0.1.
public enum TestHTTPServer {
    /// Starts serving `router`; returns the port once it listens, and the task to cancel when done.
    public static func start(_ router: Router<BasicRequestContext>, label: String = "test-http") async -> (port: Int, task: Task<Void, any Error>) {
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        var logger = Logger(label: label)
        logger.logLevel = .critical
        let app = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { continuation.yield($0.localAddress?.port ?? -1) }, logger: logger)
        let task = Task { try await app.run() }
        var iterator = ports.makeAsyncIterator()
        return (await iterator.next() ?? -1, task)
    }
}
