import Foundation

/// One order's lines as Shopify has them: per line, the units the order holds (`currentQuantity`: less what was
/// removed or cancelled) and those not yet fulfilled (`unfulfilledQuantity`).
public struct ShopifyOrderLines: Sendable {
    public var orderId: Int64
    /// Shopify's `updatedAt` (whole seconds).
    public var updatedAt: String
    public var cancelled: Bool
    public var lines: [(sku: String?, current: Int, unfulfilled: Int)]
}

extension ShopifyAdminClient {
    /// The lines of the orders `ids` (those the shop still has): 50 orders a call with their first 10 lines
    /// (`ShopifyAdminDocuments.orderLines`, about 550 points requested, far less charged), then each order with more
    /// lines alone with up to 250. An order with more than 250 lines is left out (the caller counts it as unknown).
    public func orderLines(ids: [Int64]) async throws(ShopifyAdminError) -> [ShopifyOrderLines] {
        var out: [ShopifyOrderLines] = []
        var long: [Int64] = []
        var start = 0
        while start < ids.count {
            let chunk = Array(ids[start..<min(ids.count, start + 50)])
            start += chunk.count
            for (order, complete) in try await orderLinesPage(chunk, lines: 10) {
                if complete { out.append(order) } else { long.append(order.orderId) }
            }
        }
        for id in long {
            for (order, complete) in try await orderLinesPage([id], lines: 250) where complete { out.append(order) }
        }
        return out
    }

    private func orderLinesPage(_ ids: [Int64], lines: Int) async throws(ShopifyAdminError) -> [(ShopifyOrderLines, Bool)] {
        struct Page: Decodable, Sendable {
            struct Orders: Decodable, Sendable {
                struct Order: Decodable, Sendable {
                    struct Lines: Decodable, Sendable {
                        struct Line: Decodable, Sendable {
                            var sku: String?
                            var currentQuantity: Int
                            var unfulfilledQuantity: Int
                        }
                        struct PageInfo: Decodable, Sendable { var hasNextPage: Bool }
                        var nodes: [Line]
                        var pageInfo: PageInfo
                    }
                    var legacyResourceId: String
                    var updatedAt: String
                    var cancelledAt: String?
                    var lineItems: Lines
                }
                var nodes: [Order]
            }
            var orders: Orders
        }
        let query = ids.map { "id:\($0)" }.joined(separator: " OR ")
        let page = try await execute(
            ShopifyAdminDocuments.orderLines(orders: ids.count, lines: lines), variables: ["query": query],
            expectedCost: ids.count * (lines + 1) + 2, as: Page.self)
        return page.orders.nodes.compactMap { o in
            guard let id = Int64(o.legacyResourceId) else { return nil }
            let order = ShopifyOrderLines(
                orderId: id, updatedAt: o.updatedAt, cancelled: o.cancelledAt != nil,
                lines: o.lineItems.nodes.map { ($0.sku, $0.currentQuantity, $0.unfulfilledQuantity) })
            return (order, !o.lineItems.pageInfo.hasNextPage)
        }
    }
}
