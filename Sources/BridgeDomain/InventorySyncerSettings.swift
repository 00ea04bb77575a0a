/// Settings of the inventory-syncer (`inventory_syncer.*`). Which Shopify location an ERP warehouse feeds is per
/// shop: `shop.<id>.locations`.
public struct InventorySyncerSettings: Sendable, Equatable {
    /// The syncer writes inventory into Shopify; the source-of-truth policy must let it.
    public var enabled: Bool
    /// How often the full sync compares every item and location.
    public var fullSyncInterval: Duration
    /// Units held back from Shopify per item and location.
    public var safetyStock: Int
    /// How long stock changes are gathered before one write (per shop, item and location the last figure wins).
    public var coalesceWindow: Duration
    /// A Shopify level that differs from what the syncer wrote is checked again after this long (whatever changed
    /// it settles first), then set back if it still differs from the rule.
    public var overrideGrace: Duration
    /// Poll the ERP's change feed this often (for ERPs that cannot push); nil: off.
    public var feedPollInterval: Duration?
    /// Where the syncer keeps its feed cursor (a small JSON file).
    public var statePath: String
    /// Deliveries each queue hands the syncer at once (changes waiting in one coalescing window).
    public var prefetch: Int
    /// One writer at a time: an active syncer that could not confirm its lease for half this long stops writing to
    /// Shopify, and one that takes the lease writes only this long after (`ActiveLease`).
    public var leaseTTL: Duration

    public init(
        enabled: Bool = true, fullSyncInterval: Duration = .seconds(3600), safetyStock: Int = 0,
        coalesceWindow: Duration = .milliseconds(250), overrideGrace: Duration = .seconds(5),
        feedPollInterval: Duration? = nil, statePath: String = "inventory-syncer.state.json",
        prefetch: Int = 500, leaseTTL: Duration = .seconds(10)
    ) {
        self.leaseTTL = leaseTTL
        self.enabled = enabled
        self.fullSyncInterval = fullSyncInterval
        self.safetyStock = safetyStock
        self.coalesceWindow = coalesceWindow
        self.overrideGrace = overrideGrace
        self.feedPollInterval = feedPollInterval
        self.statePath = statePath
        self.prefetch = prefetch
    }

    /// Parses `inventory_syncer.*`.
    public static func parse(_ p: inout SettingsParser) -> InventorySyncerSettings {
        let feed = p.duration("inventory_syncer.erp_feed_poll", default: .zero, range: .zero ... .seconds(3600))
        return InventorySyncerSettings(
            enabled: p.bool("inventory_syncer.enabled", default: true),
            fullSyncInterval: p.duration(
                "inventory_syncer.full_sync_interval", default: .seconds(3600), range: .seconds(10) ... .seconds(7 * 86400)),
            safetyStock: p.int("inventory_syncer.safety_stock", default: 0, range: 0...1_000_000),
            coalesceWindow: p.duration(
                "inventory_syncer.coalesce_window", default: .milliseconds(250), range: .zero ... .seconds(60)),
            overrideGrace: p.duration("inventory_syncer.override_grace", default: .seconds(5), range: .zero ... .seconds(600)),
            feedPollInterval: feed == .zero ? nil : feed,
            statePath: p.string("inventory_syncer.state_path", default: "inventory-syncer.state.json"),
            prefetch: p.int("inventory_syncer.prefetch", default: 500, range: 1...10_000),
            leaseTTL: p.duration("inventory_syncer.lease_ttl", default: .seconds(10), range: .seconds(1) ... .seconds(600)))
    }
}
