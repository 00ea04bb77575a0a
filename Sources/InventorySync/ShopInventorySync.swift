import BridgeDomain
import Foundation
import Logging
import Metrics
import Shopify

/// One shop's side of the syncer: which Shopify level an ERP figure feeds (SKU -> inventory item, warehouse ->
/// location), what that level should show (`StockRule` over the ERP's figure and the shop's pending orders), and
/// the coalesced compare-and-set writes that put it there.
public final class ShopInventorySync: Sendable {
    public let shop: BridgeConfig.Shop
    public let client: ShopifyAdminClient
    public let catalogue: ShopCatalogue
    public let writer: InventoryLevelWriter
    public let targets: LevelTargets
    /// warehouse -> location gid.
    public var locations: [String: String] { targets.locations }
    let logger: Logger
    /// First pass: lowers at once, holds raises. Second pass, `raiseDelay` later: settles the held raises.
    private let coalescer: LevelCoalescer
    private let settler: LevelCoalescer
    let raiseDelay: Duration

    public init(
        shop: BridgeConfig.Shop, client: ShopifyAdminClient, picture: StockPicture, settings: InventorySyncerSettings,
        logger: Logger, afterRead: (@Sendable () async -> Void)? = nil
    ) {
        self.shop = shop
        self.client = client
        var logger = logger
        logger[metadataKey: "shop"] = "\(shop.id)"
        self.logger = logger
        let catalogue = ShopCatalogue(client: client, logger: logger)
        self.catalogue = catalogue
        let writer = InventoryLevelWriter(client: client, logger: logger, afterRead: afterRead)
        self.writer = writer
        let locations = shop.locations.mapValues { "gid://shopify/Location/\($0)" }
        let targets = LevelTargets(
            shopId: shop.id, catalogue: catalogue, picture: picture, rule: StockRule(safetyStock: settings.safetyStock),
            locations: locations, orderWarehouse: settings.orderWarehouse ?? shop.locations.keys.sorted().first,
            logger: logger)
        self.targets = targets
        raiseDelay = settings.raiseDelay
        coalescer = LevelCoalescer(
            window: settings.coalesceWindow,
            desired: { keys in await targets.desired(keys) },
            write: { figures, decision, _ in
                try await writer.write(figures, decision: decision, reason: "correction", raises: .hold)
            })
        settler = LevelCoalescer(
            window: settings.coalesceWindow,
            desired: { keys in await targets.desired(keys) },
            write: { figures, decision, baselines in
                try await writer.write(figures, decision: decision, reason: "correction", raises: .settle(baselines: baselines))
            })
    }

    /// The Shopify level an ERP figure feeds; nil with the reason when it feeds none.
    public enum Resolution: Sendable, Equatable {
        case level(LevelKey)
        case unmappedWarehouse
        case unknownSKU
    }

    public func resolve(_ key: StockKey) async throws(ShopifyAdminError) -> Resolution {
        guard let location = targets.locations[key.warehouse] else { return .unmappedWarehouse }
        guard let item = try await catalogue.item(forSKU: key.sku) else { return .unknownSKU }
        return .level(LevelKey(inventoryItemId: item, locationId: location))
    }

    /// Brings `keys` to their targets in the next coalesced write; returns once that write is done.
    ///
    /// A level going down is written in the first pass; one going up waits `inventory_syncer.raise_delay` and is
    /// then written less what Shopify sold in between (`InventoryLevelWriter.Raises`).
    public func sync(_ keys: Set<LevelKey>, decision: String) async throws -> LevelWriteReport {
        var report = try await coalescer.submit(keys, decision: decision)
        if !report.heldRaises.isEmpty {
            try await Task.sleep(for: raiseDelay)
            report.merge(try await settler.submit(Set(report.heldRaises.keys), decision: "\(decision)/raise", baselines: report.heldRaises))
        }
        return report
    }

    /// The full sync's corrections: lowers written at once against the figures the bulk read gave, raises settled
    /// through the same two passes as deltas.
    public func correct(_ corrections: [LevelKey: Int], current: [LevelKey: Int], decision: String) async throws -> LevelWriteReport {
        var report = try await writer.write(
            corrections, decision: decision, reason: "correction", knownCurrent: current, raises: .hold)
        if !report.heldRaises.isEmpty {
            try await Task.sleep(for: raiseDelay)
            report.merge(try await settler.submit(Set(report.heldRaises.keys), decision: "\(decision)/raise", baselines: report.heldRaises))
        }
        return report
    }

    /// Writes coalesced so far (for tests and the benchmark).
    public var coalescedWrites: Int { get async { await coalescer.writes + settler.writes } }
}

/// What each Shopify level of a shop should show: `StockRule` over the ERP's figure for the SKU and warehouse it
/// reflects and the units of the shop's orders the ERP does not count yet (held back in the warehouse that
/// allocates them).
public struct LevelTargets: Sendable {
    public let shopId: String
    let catalogue: ShopCatalogue
    let picture: StockPicture
    public let rule: StockRule
    /// warehouse -> location gid, and back.
    public let locations: [String: String]
    let warehouses: [String: String]
    public let orderWarehouse: String?
    let logger: Logger
    let clamped: Counter

    init(
        shopId: String, catalogue: ShopCatalogue, picture: StockPicture, rule: StockRule, locations: [String: String],
        orderWarehouse: String?, logger: Logger
    ) {
        self.shopId = shopId
        self.catalogue = catalogue
        self.picture = picture
        self.rule = rule
        self.locations = locations
        self.warehouses = Dictionary(locations.map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        self.orderWarehouse = orderWarehouse
        self.logger = logger
        clamped = Counter(label: "inventory_clamped_total", dimensions: [("shop", shopId)])
    }

    /// The ERP stock a Shopify level reflects; nil when the item or the location is not mapped.
    public func stockKey(_ level: LevelKey) async -> StockKey? {
        guard let warehouse = warehouses[level.locationId], let sku = await catalogue.sku(ofItem: level.inventoryItemId) else {
            return nil
        }
        return StockKey(sku: sku, warehouse: warehouse)
    }

    /// What `level` should show now; nil before the ERP's figure is known.
    public func target(_ level: LevelKey) async -> StockRule.Target? {
        guard let key = await stockKey(level) else { return nil }
        return await target(key)
    }

    public func target(_ key: StockKey) async -> StockRule.Target? {
        guard let erp = await picture.available(key) else { return nil }
        let pending = key.warehouse == orderWarehouse ? await picture.pendingUnits(shop: shopId, key) : 0
        return rule.target(erpAvailable: erp, pendingUnits: pending)
    }

    /// The figures to write for `keys` (those with a known ERP figure); a rule below zero is pushed as 0 and counted.
    func desired(_ keys: Set<LevelKey>) async -> [LevelKey: Int] {
        var out: [LevelKey: Int] = [:]
        for key in keys {
            guard let t = await target(key) else { continue }
            if t.clamped {
                clamped.increment()
                logger.info("stock rule below zero; pushing 0", metadata: ["level": "\(key)"])
            }
            out[key] = t.quantity
        }
        return out
    }
}
