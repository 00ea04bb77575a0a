import BridgeDomain
import Foundation

/// What the reconciler compares of a Shopify order (`ShopifyAdminDocuments.ordersUpdatedSince`, or a line of the
/// bulk orders query): its version, status and money.
public struct ShopifyOrderSummary: Decodable, Sendable, Equatable {
    public struct MoneyBag: Decodable, Sendable, Equatable {
        public struct Money: Decodable, Sendable, Equatable {
            public var amount: Amount
            public var currencyCode: String
        }
        public var shopMoney: Money
    }

    /// `gid://shopify/Order/<id>`.
    public var id: String
    /// The numeric id as a string (an UnsignedInt64).
    public var legacyResourceId: String
    public var name: String
    public var updatedAt: String
    public var cancelledAt: String?
    public var displayFinancialStatus: String?
    public var totalPriceSet: MoneyBag
    public var totalRefundedSet: MoneyBag?

    public var orderId: Int64? { Int64(legacyResourceId) }
    public var total: Amount { totalPriceSet.shopMoney.amount }
    public var refunded: Amount { totalRefundedSet?.shopMoney.amount ?? 0 }
    public var isCancelled: Bool { cancelledAt != nil }
}

extension ShopifyAdminClient {
    /// How the orders of a window were read.
    public enum OrderReadMode: String, Sendable, Codable {
        case paged, bulk
    }

    /// Every order updated at or after `since`, oldest change first: paged (`ordersUpdatedSince`, about 5 points an
    /// order) when `ordersCount` finds at most `bulkThreshold` of them, else one bulk operation (a few points in
    /// all, minutes of latency, one at a time per shop).
    public func orders(
        updatedSince since: Date, bulkThreshold: Int, progress: (@Sendable (Int) -> Void)? = nil
    ) async throws(ShopifyAdminError) -> (orders: [ShopifyOrderSummary], mode: OrderReadMode) {
        let at = Date(timeIntervalSince1970: since.timeIntervalSince1970.rounded(.down)).formatted(Date.ISO8601FormatStyle())
        let search = "updated_at:>='\(at)'"
        struct Count: Decodable, Sendable {
            struct Value: Decodable, Sendable { var count: Int }
            var ordersCount: Value?
        }
        let expected = try await execute(ShopifyAdminDocuments.ordersCount, variables: ["query": search], expectedCost: 1, as: Count.self)
            .ordersCount?.count ?? 0
        if expected > bulkThreshold {
            let lines = try await runBulkQuery(ShopifyAdminDocuments.bulkOrders(query: search))
            var orders: [ShopifyOrderSummary] = []
            orders.reserveCapacity(lines.count)
            for line in lines {
                do {
                    orders.append(try JSONDecoder().decode(ShopifyOrderSummary.self, from: line))
                } catch {
                    throw .invalidResponse("a bulk order line could not be read: \(error)")
                }
            }
            progress?(orders.count)
            return (orders, .bulk)
        }
        struct Page: Decodable, Sendable {
            struct Connection: Decodable, Sendable {
                struct PageInfo: Decodable, Sendable {
                    var hasNextPage: Bool
                    var endCursor: String?
                }
                var nodes: [ShopifyOrderSummary]
                var pageInfo: PageInfo
            }
            var orders: Connection
        }
        struct Variables: Encodable, Sendable {
            var query: String
            var after: String?
        }
        var orders: [ShopifyOrderSummary] = []
        var after: String?
        repeat {
            let page = try await execute(
                ShopifyAdminDocuments.ordersUpdatedSince, variables: Variables(query: search, after: after), expectedCost: 502, as: Page.self)
            orders += page.orders.nodes
            progress?(orders.count)
            after = page.orders.pageInfo.hasNextPage ? page.orders.pageInfo.endCursor : nil
        } while after != nil
        return (orders, .paged)
    }
}

extension ShopifyAdminClient {
    /// Whether the shop has an order with this id (`ordersCount(query: "id:N")`, 1 point).
    public func orderExists(id: Int64) async throws(ShopifyAdminError) -> Bool {
        struct Count: Decodable, Sendable {
            struct Value: Decodable, Sendable { var count: Int }
            var ordersCount: Value?
        }
        return try await execute(ShopifyAdminDocuments.ordersCount, variables: ["query": "id:\(id)"], expectedCost: 1, as: Count.self)
            .ordersCount?.count ?? 0 > 0
    }
}
