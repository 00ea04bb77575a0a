import ServiceLifecycle

/// Runs the ERP client as a lifecycle service: it lives as long as the process's `ServiceGroup`, and is shut down by
/// it on every path (graceful shutdown, another service failing, cancellation), as async-http-client requires.
/// Place it before the services that call the ERP: the group stops services in reverse order, so they finish their
/// calls first.
public struct ERPClientService: Service {
    public let client: RESTERPClient

    public init(client: RESTERPClient) { self.client = client }

    public func run() async throws {
        try? await gracefulShutdown()
        await client.shutdown()
    }
}
