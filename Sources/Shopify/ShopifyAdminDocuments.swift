/// The GraphQL documents the bridge sends to Shopify's Admin API (2026-07), in one place so that tests can hold
/// every one of them to the contract: each validates against Shopify's real schema
/// (`GraphQLSubsetContractTests`) and runs against shopify-sim within the 1,000-point query limit
/// (`ShopifyAdminAPITests`). Page sizes are chosen for that limit.
public enum ShopifyAdminDocuments {
    /// Locations, 250 a page (cost 2 + 250).
    public static let locations = """
        query Locations($after: String) {
          locations(first: 250, after: $after) {
            nodes { id legacyResourceId name isActive }
            pageInfo { hasNextPage endCursor }
          }
        }
        """

    /// Inventory items matching a search (`sku:ABC`, `updated_at:>'...'`) with their levels' quantities, 25 items a
    /// page with up to 10 locations each (cost 2 + 25 x (1 + 2 + 10 x 3) = 827).
    public static let inventoryItems = """
        query InventoryItems($query: String, $after: String) {
          inventoryItems(first: 25, after: $after, query: $query) {
            nodes {
              id
              sku
              updatedAt
              inventoryLevels(first: 10) {
                nodes {
                  location { id }
                  quantities(names: ["available", "on_hand", "committed"]) { name quantity }
                }
              }
            }
            pageInfo { hasNextPage endCursor }
          }
        }
        """

    /// Variants by SKU, to resolve a SKU to its inventory item (cost 2 + 100 x 2).
    public static let variantsBySKU = """
        query VariantsBySKU($query: String!, $after: String) {
          productVariants(first: 100, after: $after, query: $query) {
            nodes { id sku inventoryItem { id } }
            pageInfo { hasNextPage endCursor }
          }
        }
        """

    /// Absolute stock levels, compare-and-set per row, idempotent per key (cost 10). At most 250 rows.
    public static let setQuantities = """
        mutation SetQuantities($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
          inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
            inventoryAdjustmentGroup {
              id
              changes { name delta quantityAfterChange item { id } location { id } }
            }
            userErrors { code field message }
          }
        }
        """

    /// `available` and `committed` of `count` inventory levels in one call, read before a compare-and-set write: `r<i>` is item
    /// `$i<i>` at location `$l<i>` (cost about 4 per level; the writer reads 50 a call).
    public static func levels(count: Int) -> String {
        let parameters = (0..<count).map { "$i\($0): ID!, $l\($0): ID!" }.joined(separator: ", ")
        let fields = (0..<count).map {
            "  r\($0): inventoryItem(id: $i\($0)) { inventoryLevel(locationId: $l\($0)) { quantities(names: [\"available\", \"committed\"]) { name quantity } } }"
        }
        return "query Levels(\(parameters)) {\n" + fields.joined(separator: "\n") + "\n}"
    }

    /// Orders changed in a window, oldest change first, with what the reconciler compares (cost 2 + 100 x 5).
    public static let ordersUpdatedSince = """
        query OrdersUpdatedSince($query: String!, $after: String) {
          orders(first: 100, after: $after, query: $query, sortKey: UPDATED_AT) {
            nodes {
              id
              legacyResourceId
              name
              createdAt
              updatedAt
              cancelledAt
              displayFinancialStatus
              totalPriceSet { shopMoney { amount currencyCode } }
              totalRefundedSet { shopMoney { amount currencyCode } }
            }
            pageInfo { hasNextPage endCursor }
          }
        }
        """

    /// What Shopify still commits per line of the orders a search names (`id:1 OR id:2 ...`), `orders` a page and
    /// `lines` lines an order (requested cost about `orders` x (`lines` + 1) + 2): the inventory-syncer reads the
    /// orders the ERP holds units for at start.
    public static func orderLines(orders: Int, lines: Int) -> String {
        """
        query OrderLines($query: String!) {
          orders(first: \(orders), query: $query) {
            nodes {
              legacyResourceId
              updatedAt
              cancelledAt
              lineItems(first: \(lines)) {
                nodes { sku currentQuantity unfulfilledQuantity }
                pageInfo { hasNextPage }
              }
            }
          }
        }
        """
    }

    /// How many orders match a search, without a limit (cost 1): the reconciler chooses paging or a bulk query by it.
    public static let ordersCount = """
        query OrdersCount($query: String!) {
          ordersCount(query: $query, limit: null) { count precision }
        }
        """

    /// Starts a bulk query (one of the `bulk...Query` texts below) (cost 10).
    public static let runBulkQuery = """
        mutation RunBulkQuery($query: String!) {
          bulkOperationRunQuery(query: $query, groupObjects: false) {
            bulkOperation { id status }
            userErrors { code field message }
          }
        }
        """

    /// Polls a bulk operation.
    public static let bulkOperation = """
        query BulkOperation($id: ID!) {
          bulkOperation(id: $id) { id status errorCode objectCount rootObjectCount fileSize url partialDataUrl }
        }
        """

    /// The whole catalogue's stock, for the full sync: items, then their levels (with `__parentId`) in the JSONL.
    public static let bulkInventoryQuery = """
        {
          inventoryItems {
            edges {
              node {
                id
                sku
                inventoryLevels {
                  edges { node { location { id } quantities(names: ["available", "committed"]) { name quantity } } }
                }
              }
            }
          }
        }
        """

    /// Orders changed in a window (`orders(query:)` is filled in: `bulkOrders(query:)`), for reconciliation over a
    /// window too large to page through.
    public static let bulkOrdersQuery = bulkOrders(query: "updated_at:>'2026-01-01T00:00:00Z'")

    /// The bulk orders query for a search (`updated_at:>'...'`): a bulk query takes no variables, so the search is
    /// part of the text (quotes escaped).
    public static func bulkOrders(query: String) -> String {
        let escaped = query.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        return """
            {
              orders(query: "\(escaped)", sortKey: UPDATED_AT) {
                edges {
                  node {
                    id legacyResourceId name createdAt updatedAt cancelledAt displayFinancialStatus
                    totalPriceSet { shopMoney { amount currencyCode } }
                    totalRefundedSet { shopMoney { amount currencyCode } }
                  }
                }
              }
            }
            """
    }

    /// A B2B price list's fixed prices, 250 a page, all or of the variants a search names (`variant_id:123`)
    /// (cost about 3 + 250 x 3).
    public static let priceListFixedPrices = """
        query PriceListFixedPrices($id: ID!, $after: String, $query: String) {
          priceList(id: $id) {
            id
            currency
            prices(originType: FIXED, first: 250, after: $after, query: $query) {
              nodes { price { amount currencyCode } variant { id } }
              pageInfo { hasNextPage endCursor }
            }
          }
        }
        """

    /// Sets fixed prices on a price list (at most 250; nothing deleted): a price that exists is replaced (cost 10).
    public static let setFixedPrices = """
        mutation SetFixedPrices($priceListId: ID!, $prices: [PriceListPriceInput!]!) {
          priceListFixedPricesUpdate(priceListId: $priceListId, pricesToAdd: $prices, variantIdsToDelete: []) {
            pricesAdded { variant { id } price { amount currencyCode } }
            userErrors { code field message }
          }
        }
        """

    /// Every variant's id, SKU and own (DTC) price, for the price reconciliation and the catalogue report.
    public static let bulkVariantsQuery = """
        {
          productVariants {
            edges { node { id sku price } }
          }
        }
        """

    /// Every document with a name (for the contract tests).
    public static let all: [(name: String, document: String)] = [
        ("locations", locations), ("inventoryItems", inventoryItems), ("variantsBySKU", variantsBySKU),
        ("setQuantities", setQuantities), ("ordersUpdatedSince", ordersUpdatedSince), ("ordersCount", ordersCount), ("runBulkQuery", runBulkQuery),
        ("bulkOperation", bulkOperation), ("bulkInventoryQuery", bulkInventoryQuery), ("bulkOrdersQuery", bulkOrdersQuery),
        ("levels-3", levels(count: 3)), ("priceListFixedPrices", priceListFixedPrices), ("setFixedPrices", setFixedPrices),
        ("bulkVariantsQuery", bulkVariantsQuery), ("orderLines", orderLines(orders: 50, lines: 10)),
    ]
}
