/// Settings of the inventory-syncer (`inventory_syncer.*`).
public struct InventorySyncerSettings: Sendable, Equatable {
    /// The syncer writes inventory into Shopify; the source-of-truth policy must let it.
    public var enabled: Bool
    /// How often the full sync compares every item and location.
    public var fullSyncInterval: Duration

    public init(enabled: Bool = true, fullSyncInterval: Duration = .seconds(3600)) {
        self.enabled = enabled
        self.fullSyncInterval = fullSyncInterval
    }

    /// Parses `inventory_syncer.*`.
    public static func parse(_ p: inout SettingsParser) -> InventorySyncerSettings {
        InventorySyncerSettings(
            enabled: p.bool("inventory_syncer.enabled", default: true),
            fullSyncInterval: p.duration(
                "inventory_syncer.full_sync_interval", default: .seconds(3600), range: .seconds(60) ... .seconds(7 * 86400)))
    }
}
