import ServiceLifecycle

/// A process whose own logic is not written yet: it waits for shutdown while its connections and endpoints run.
public struct IdleService: Service {
    public init() {}
    public func run() async throws {
        try? await gracefulShutdown()
    }
}
