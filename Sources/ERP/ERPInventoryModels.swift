import Foundation

/// One stock figure of the ERP: what it can sell of a SKU in a warehouse (available-to-sell, after its own
/// allocations), at a point of its change sequence. The same shape arrives pushed (`inventory.changed`) and polled
/// (`GET /api/v1/inventory/changes`), so the syncer can apply either and recognise the other's copy by `seq`.
public struct ERPStockChange: Codable, Sendable, Equatable {
    /// The ERP's change sequence number: increases with every movement; the feed's cursor.
    public var seq: Int64
    public var sku: String
    public var warehouse: String
    public var available: Int
    /// When the ERP recorded it (ISO 8601), as the ERP's clock says.
    public var changedAt: String?
    /// The ERP document that moved the stock (a sales order's external reference), when the ERP says so.
    public var orderRef: String?
    /// With `orderRef`: the units the movement took for that order (negative) or gave back (positive).
    public var quantity: Int?

    public init(
        seq: Int64, sku: String, warehouse: String, available: Int, changedAt: String? = nil, orderRef: String? = nil,
        quantity: Int? = nil
    ) {
        self.quantity = quantity
        self.seq = seq
        self.sku = sku
        self.warehouse = warehouse
        self.available = available
        self.changedAt = changedAt
        self.orderRef = orderRef
    }

    enum CodingKeys: String, CodingKey {
        case seq, sku, warehouse, available
        case changedAt = "changed_at"
        case orderRef = "order_ref"
        case quantity
    }
}

/// One page of the ERP's stock snapshot (`GET /api/v1/inventory`), with its place in the change feed: every change
/// up to `asOfSeq` is in its figures, and `feedCursor` is the feed's cursor there (both optional in the contract:
/// without them a change older than the snapshot cannot be told from a newer one by its sequence alone).
public struct ERPStockPage: Decodable, Sendable {
    public struct Level: Decodable, Sendable, Equatable {
        public var sku: String
        public var warehouse: String
        public var available: Int
    }
    public var items: [Level]
    public var nextPageToken: String?
    public var asOfSeq: Int64?
    public var feedCursor: String?

    enum CodingKeys: String, CodingKey {
        case items
        case nextPageToken = "next_page_token"
        case asOfSeq = "as_of_seq"
        case feedCursor = "feed_cursor"
    }
}

/// The whole snapshot, read page by page: each level with the sequence its page reflects, and the feed cursor of
/// the first page (the earliest point of the read: polling from there misses no change made while it ran).
public struct ERPStockSnapshot: Sendable {
    public struct Level: Sendable, Equatable {
        public var sku: String
        public var warehouse: String
        public var available: Int
        public var asOfSeq: Int64?
    }
    public var levels: [Level]
    public var feedCursor: String?
}

/// Changes after a cursor (`GET /api/v1/inventory/changes`), oldest first, and the cursor to ask from next.
public struct ERPStockChanges: Decodable, Sendable {
    public var changes: [ERPStockChange]
    public var cursor: String
}

/// What the ERP holds for open sales orders (allocated, not shipped), per order reference, SKU and warehouse
/// (`GET /api/v1/inventory/allocations`), current at change sequence `asOfSeq`.
public struct ERPOpenAllocations: Decodable, Sendable {
    public struct Allocation: Decodable, Sendable, Equatable {
        public var orderRef: String
        public var sku: String
        public var warehouse: String
        /// Units held (positive).
        public var quantity: Int
        public init(orderRef: String, sku: String, warehouse: String, quantity: Int) {
            self.orderRef = orderRef
            self.sku = sku
            self.warehouse = warehouse
            self.quantity = quantity
        }
        enum CodingKeys: String, CodingKey {
            case orderRef = "order_ref"
            case sku, warehouse, quantity
        }
    }
    public var allocations: [Allocation]
    /// The change sequence the figures include: movements up to it are counted here, later ones are not.
    public var asOfSeq: Int64
    /// The change feed's cursor at `asOfSeq` (optional in the contract).
    public var feedCursor: String?
    public init(allocations: [Allocation], asOfSeq: Int64, feedCursor: String? = nil) {
        self.allocations = allocations
        self.asOfSeq = asOfSeq
        self.feedCursor = feedCursor
    }
    enum CodingKeys: String, CodingKey {
        case allocations
        case asOfSeq = "as_of_seq"
        case feedCursor = "feed_cursor"
    }
}

extension RESTERPClient {
    /// The units the ERP holds for open sales orders: what the inventory-syncer counts after a restart.
    public func openAllocations() async throws(ERPError) -> ERPOpenAllocations {
        try await get("/api/v1/inventory/allocations", ERPOpenAllocations.self, what: "open allocations")
    }

    /// One page of the stock snapshot, `pageSize` levels (the ERP caps it at 1,000).
    public func inventorySnapshot(pageToken: String?, pageSize: Int = 1000) async throws(ERPError) -> ERPStockPage {
        var path = "/api/v1/inventory?page_size=\(pageSize)"
        if let pageToken { path += "&page_token=\(Self.escapeQuery(pageToken))" }
        return try await get(path, ERPStockPage.self, what: "inventory snapshot")
    }

    /// The whole snapshot, page by page.
    public func inventorySnapshot() async throws(ERPError) -> ERPStockSnapshot {
        var all: [ERPStockSnapshot.Level] = []
        var cursor: String?
        var first = true
        var token: String?
        repeat {
            let page = try await inventorySnapshot(pageToken: token)
            all += page.items.map { .init(sku: $0.sku, warehouse: $0.warehouse, available: $0.available, asOfSeq: page.asOfSeq) }
            if first { cursor = page.feedCursor }
            first = false
            token = page.nextPageToken
        } while token != nil
        return ERPStockSnapshot(levels: all, feedCursor: cursor)
    }

    /// Stock changes after `cursor` (the feed, for ERPs that cannot push), at most `limit`.
    public func inventoryChanges(after cursor: String, limit: Int = 500) async throws(ERPError) -> ERPStockChanges {
        try await get(
            "/api/v1/inventory/changes?cursor=\(Self.escapeQuery(cursor))&limit=\(limit)", ERPStockChanges.self,
            what: "inventory change feed")
    }
}
