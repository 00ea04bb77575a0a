import ServiceLifecycle

/// Runs a shop's Admin API client as a lifecycle service: shut down by the process's `ServiceGroup` on every path,
/// after the services listed behind it (the ones that call Shopify) have stopped.
public struct ShopifyAdminClientService: Service {
    public let client: ShopifyAdminClient

    public init(client: ShopifyAdminClient) { self.client = client }

    public func run() async throws {
        try? await gracefulShutdown()
        await client.shutdown()
    }
}
