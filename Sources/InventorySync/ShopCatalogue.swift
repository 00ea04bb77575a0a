import Foundation
import Logging
import Metrics
import Shopify

/// One shop's inventory as the full sync reads it with a bulk query: SKU -> inventory item, and each level's
/// `available` and `committed` per location.
public struct ShopifyInventorySnapshot: Sendable {
    public var itemsBySKU: [String: String] = [:]
    public var levels: [LevelKey: LevelFigures] = [:]

    public init() {}

    /// Parses the JSONL of `ShopifyAdminDocuments.bulkInventoryQuery`: an item line (`id`, `sku`), then its levels
    /// (`location`, `quantities`, `__parentId` = the item).
    public init(jsonl lines: [Data]) throws {
        struct Line: Decodable {
            struct Location: Decodable { var id: String }
            struct Quantity: Decodable {
                var name: String
                var quantity: Int
            }
            var id: String?
            var sku: String?
            var location: Location?
            var quantities: [Quantity]?
            var __parentId: String?
        }
        let decoder = JSONDecoder()
        for data in lines {
            let line = try decoder.decode(Line.self, from: data)
            if let parent = line.__parentId, let location = line.location {
                if let a = line.quantities?.first(where: { $0.name == "available" }) {
                    levels[LevelKey(inventoryItemId: parent, locationId: location.id)] = LevelFigures(
                        available: a.quantity, committed: line.quantities?.first(where: { $0.name == "committed" })?.quantity ?? 0)
                }
            } else if let id = line.id, let sku = line.sku, !sku.isEmpty {
                itemsBySKU[sku] = id
            }
        }
    }
}

/// SKU -> Shopify inventory item, per shop: loaded by the full sync's bulk query at start, and asked of Shopify
/// for a SKU it does not know (a product added since). A SKU Shopify does not have either is remembered as unknown
/// for `unknownRetry`, so a stream of changes for it costs one lookup, not one per change.
public actor ShopCatalogue {
    let client: ShopifyAdminClient
    let shopId: String
    let unknownRetry: Duration
    let logger: Logger
    private var items: [String: String] = [:]
    private var skus: [String: String] = [:]
    private var unknown: [String: ContinuousClock.Instant] = [:]
    public private(set) var loaded = false

    public init(client: ShopifyAdminClient, logger: Logger, unknownRetry: Duration = .seconds(300)) {
        self.client = client
        self.shopId = client.configuration.shopId
        self.unknownRetry = unknownRetry
        self.logger = logger
    }

    /// Replaces the map with what a bulk read found.
    public func load(_ itemsBySKU: [String: String]) {
        items = itemsBySKU
        skus = Dictionary(itemsBySKU.map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        unknown = [:]
        loaded = true
    }

    public var count: Int { items.count }

    /// The SKU of an inventory item, if this shop's map has it.
    public func sku(ofItem id: String) -> String? { skus[id] }

    /// The inventory item of `sku`, asking Shopify when the map does not have it. Nil: Shopify has no variant with
    /// this SKU (counted: `inventory_unknown_sku_total`).
    public func item(forSKU sku: String) async throws(ShopifyAdminError) -> String? {
        if let id = items[sku] { return id }
        if let since = unknown[sku], ContinuousClock.now - since < unknownRetry { return nil }
        if let id = try await client.variant(sku: sku)?.inventoryItemId {
            items[sku] = id
            skus[id] = sku
            unknown[sku] = nil
            return id
        }
        unknown[sku] = .now
        Counter(label: "inventory_unknown_sku_total", dimensions: [("shop", shopId)]).increment()
        logger.warning("SKU unknown in Shopify: its ERP stock is not synced", metadata: ["sku": "\(sku)"])
        return nil
    }
}
