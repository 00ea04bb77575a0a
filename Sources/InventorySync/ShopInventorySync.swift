import BridgeDomain
import Foundation
import Logging
import Metrics
import Shopify

/// One shop's side of the syncer: which Shopify level an ERP figure feeds (SKU -> inventory item, warehouse ->
/// location), what that level should show (`StockRule` over the ERP's figure and the units Shopify sold that the ERP has not allocated), and
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
    private let coalescer: LevelCoalescer
    private let moving = MovingLevels()
    /// What the syncer last wrote per level: an `inventory_levels/update` with that figure is its own echo.
    public let memory: LevelMemory
    /// Asked before every write: inventory flows from the ERP into Shopify only.
    let policy: SourceOfTruthPolicy

    public init(
        shop: BridgeConfig.Shop, client: ShopifyAdminClient, picture: StockPicture, settings: InventorySyncerSettings,
        policy: SourceOfTruthPolicy = .defaults, logger: Logger, mayWrite: (@Sendable () -> Bool)? = nil,
        afterRead: (@Sendable () async -> Void)? = nil
    ) {
        self.shop = shop
        self.policy = policy
        self.client = client
        var logger = logger
        logger[metadataKey: "shop"] = "\(shop.id)"
        self.logger = logger
        let catalogue = ShopCatalogue(client: client, logger: logger)
        self.catalogue = catalogue
        let memory = LevelMemory()
        self.memory = memory
        let writer = InventoryLevelWriter(client: client, logger: logger, memory: memory, afterRead: afterRead, fence: mayWrite)
        self.writer = writer
        let locations = shop.locations.mapValues { "gid://shopify/Location/\($0)" }
        let targets = LevelTargets(
            shopId: shop.id, catalogue: catalogue, picture: picture, rule: StockRule(safetyStock: settings.safetyStock),
            locations: locations, logger: logger)
        self.targets = targets
        coalescer = LevelCoalescer(window: settings.coalesceWindow) { keys, decision in
            try await writer.write(keys, decision: decision, reason: "correction", movingRounds: 1) { await targets.desired($0) }
        }
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

    /// Brings `keys` to their targets in the next coalesced write; returns once that write is done. A level that
    /// moved between its read and its write gets one more read and write of its own there; one that moved again is
    /// in `keptMoving` and is left to the paced retry (`MovingLevels`), outside the shop's write pipeline.
    public func sync(_ keys: Set<LevelKey>, decision: String) async throws -> LevelWriteReport {
        try policy.authorize(.inventory, into: .shopify)
        let report = try await coalescer.submit(keys, decision: decision)
        if !report.keptMoving.isEmpty { retryMoving(report.keptMoving, decision: decision) }
        return report
    }

    /// Whether `level` is waiting for its paced retry (another app keeps adjusting it); if so, the retry takes the
    /// caller's ask over: it writes the rule's latest figure, this ask included, in a pass after this one. An ERP
    /// change (`erpChange`) starts that pass at once; someone else's adjustment (a webhook) only tells the retry that
    /// the level is not quiet yet.
    public func handOverIfMoving(_ level: LevelKey, erpChange: Bool) async -> Bool {
        await moving.takeOver(level, erpChange: erpChange)
    }

    /// A level that kept moving while being written is retried outside the coalescer, alone, paced so that reverting
    /// a level another app keeps adjusting never starves the budget the other levels need. A try (a read and a write,
    /// then two more of its own at most: `movingRoundsPerTry`) starts once the level has been quiet for a second (no
    /// webhook of someone else's change), at once for an ERP change, or at the latest after a delay doubling from 1 s
    /// to 30 s while it keeps moving. One retry per level at a time; a level written in a try ends its retry unless
    /// something asked for it during that try (then it gets one more pass). While it keeps moving this costs at most
    /// three reads and writes (about 42 points) every 30 s plus one try per ERP change; once the adjustments stop the
    /// level is set within about a second and a try. A failing try (Shopify down, throttled) is tried again on the
    /// same schedule, ten times; then, as for a stopped syncer, the full sync brings the level back.
    private func retryMoving(_ keys: Set<LevelKey>, decision: String) {
        Task { [self] in
            var pending = await moving.begin(keys)
            guard !pending.isEmpty else { return }
            var delay = Duration.seconds(1)
            var failures = 0
            while !pending.isEmpty {
                await moving.waitQuietOrDelay(pending, delay: delay)
                delay = min(delay * 2, .seconds(30))
                await moving.startTry(pending)
                let targets = self.targets
                do {
                    try policy.authorize(.inventory, into: .shopify)
                    let report = try await writer.write(
                        pending, decision: "\(decision)#moving-\(UUID().uuidString.prefix(8))", reason: "correction",
                        movingRounds: Self.movingRoundsPerTry
                    ) { await targets.desired($0) }
                    failures = 0
                    pending = await moving.finishTry(done: pending.subtracting(report.keptMoving), still: report.keptMoving)
                } catch {
                    failures += 1
                    logger.warning(
                        "the retry of a level that kept moving failed; trying again",
                        metadata: ["levels": "\(pending.count)", "failures": "\(failures)", "error": "\(error)"])
                    if failures >= 10 {
                        logger.error(
                            "the retry of a level that kept moving gave up; the next full sync brings it back",
                            metadata: ["levels": "\(pending.count)"])
                        await moving.end(pending)
                        return
                    }
                }
            }
        }
    }

    static let movingRoundsPerTry = 2
    /// The full sync's corrections: `known` nil reads each level again right before its write (what the full sync
    /// does); given, its figures serve as the first read.
    public func correct(_ keys: Set<LevelKey>, known: [LevelKey: LevelFigures]?, decision: String) async throws -> LevelWriteReport {
        try policy.authorize(.inventory, into: .shopify)
        let targets = self.targets
        let report = try await writer.write(keys, decision: decision, reason: "correction", known: known, movingRounds: 1) {
            await targets.desired($0)
        }
        if !report.keptMoving.isEmpty { retryMoving(report.keptMoving, decision: decision) }
        return report
    }

    /// Writes coalesced so far (for tests and the benchmark).
    public var coalescedWrites: Int { get async { await coalescer.writes } }
}

/// What each Shopify level of a shop should show: `StockRule` over the ERP's figure for the SKU and warehouse it
/// reflects, less the units Shopify sold that the ERP does not count yet: from Shopify's `committed` at the level
/// (every unfulfilled order, read in the same call as `available`, so a sale is never half seen), order by order,
/// against the units the ERP holds for each (`StockPicture.pendingUnits`).
public struct LevelTargets: Sendable {
    public let shopId: String
    let catalogue: ShopCatalogue
    let picture: StockPicture
    public let rule: StockRule
    /// warehouse -> location gid, and back.
    public let locations: [String: String]
    let warehouses: [String: String]
    let logger: Logger
    let clamped: Counter

    init(
        shopId: String, catalogue: ShopCatalogue, picture: StockPicture, rule: StockRule, locations: [String: String],
        logger: Logger
    ) {
        self.shopId = shopId
        self.catalogue = catalogue
        self.picture = picture
        self.rule = rule
        self.locations = locations
        self.warehouses = Dictionary(locations.map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
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

    /// What a level should show, given Shopify's `committed` there; nil before the ERP's figure is known.
    public func target(_ key: StockKey, committed: Int) async -> StockRule.Target? {
        guard let erp = await picture.available(key) else { return nil }
        let pending = await picture.pendingUnits(shop: shopId, key, committed: committed)
        return rule.target(erpAvailable: erp, pendingUnits: pending)
    }

    /// The figures to write for levels just read (those with a known ERP figure); a rule below zero is pushed as 0
    /// and counted.
    public func desired(_ figures: [LevelKey: LevelFigures]) async -> [LevelKey: Int] {
        var out: [LevelKey: Int] = [:]
        for (level, f) in figures {
            guard let key = await stockKey(level), let t = await target(key, committed: f.committed) else { continue }
            if t.clamped {
                clamped.increment()
                logger.info("stock rule below zero; pushing 0", metadata: ["inventory_level": "\(level)"])
            }
            out[level] = t.quantity
        }
        return out
    }
}

/// The figures the syncer writes per level, for recognising its own echo (`inventory_levels/update` carrying one of
/// them). A figure is expected from the moment its call is sent, not when the answer is back: Shopify's webhook for
/// a write can reach the syncer before the write's own answer does, and an echo taken for a staff edit would be
/// checked and counted as one.
///
/// Each write is one echo: a figure is recognised once, then forgotten (and forgotten after `window` if its echo
/// never came: a sale between read and write changes the figure Shopify reports). A later webhook carrying the same
/// figure is someone else's change (a sale and an equal receipt bring a level back to what the syncer wrote while
/// the rule now says less): it is checked, never swallowed.
public actor LevelMemory {
    struct Expected {
        var available: Int
        var since: ContinuousClock.Instant
        /// The call is still in flight (its answer not back yet).
        var inFlight: Bool
    }

    private var expected: [LevelKey: [Expected]] = [:]
    let window: Duration

    public init(window: Duration = .seconds(120)) { self.window = window }

    /// Before a call: these figures may show up in webhooks from now on.
    func willSend(_ rows: [LevelKey: Int]) {
        let now = ContinuousClock.now
        for (k, q) in rows {
            var list = (expected[k] ?? []).filter { $0.inFlight || $0.since.duration(to: now) < window }
            list.append(Expected(available: q, since: now, inFlight: true))
            // Bounded: a level written over and over (a hot level) keeps its last few.
            expected[k] = Array(list.suffix(8))
        }
    }

    /// After a call: `applied` tells whether Shopify took the rows (any user error refuses the whole call: no echo
    /// comes; an unknown outcome, a timeout, counts as taken: its echo may still come).
    func sent(_ rows: [LevelKey: Int], applied: Bool) {
        let now = ContinuousClock.now
        for (k, q) in rows {
            guard var list = expected[k], let i = list.firstIndex(where: { $0.inFlight && $0.available == q }) else { continue }
            if applied {
                list[i].inFlight = false
                list[i].since = now
            } else {
                list.remove(at: i)
            }
            expected[k] = list.isEmpty ? nil : list
        }
    }

    /// Whether Shopify showing `available` at `level` is the syncer's own write coming back; a match is consumed.
    public func isOwnEcho(_ level: LevelKey, available: Int) -> Bool {
        let now = ContinuousClock.now
        guard var list = expected[level] else { return false }
        list.removeAll { !$0.inFlight && $0.since.duration(to: now) >= window }
        defer { expected[level] = list.isEmpty ? nil : list }
        guard let i = list.firstIndex(where: { $0.available == available }) else { return false }
        // Consumed (an echo that came before its call's answer leaves the answer nothing to mark).
        list.remove(at: i)
        return true
    }
}

/// Levels waiting for their paced retry (another app keeps adjusting them): when each last moved, and which were
/// asked for (an ERP change, a webhook) since their last try began.
actor MovingLevels {
    private var scheduled: Set<LevelKey> = []
    private var lastMoved: [LevelKey: ContinuousClock.Instant] = [:]
    private var asked: Set<LevelKey> = []
    private var urgent: Set<LevelKey> = []

    /// Takes the levels not already waiting; returns them (the caller retries those).
    func begin(_ levels: Set<LevelKey>) -> Set<LevelKey> {
        let mine = levels.subtracting(scheduled)
        scheduled.formUnion(mine)
        let now = ContinuousClock.now
        for l in mine { lastMoved[l] = now }
        return mine
    }

    /// A handler's ask for `level`: taken over (true) while the level waits for its retry.
    func takeOver(_ level: LevelKey, erpChange: Bool) -> Bool {
        guard scheduled.contains(level) else { return false }
        asked.insert(level)
        if erpChange { urgent.insert(level) } else { lastMoved[level] = .now }
        return true
    }

    /// A try begins: it covers every ask made so far (it decides on the picture as it is now).
    func startTry(_ levels: Set<LevelKey>) {
        asked.subtract(levels)
        urgent.subtract(levels)
    }

    /// A try ended: `done` levels leave the retry unless asked for during the try (they get one more pass).
    /// Returns the levels still pending.
    func finishTry(done: Set<LevelKey>, still: Set<LevelKey>) -> Set<LevelKey> {
        let again = done.intersection(asked)
        end(done.subtracting(again))
        return still.union(again)
    }

    func end(_ levels: Set<LevelKey>) {
        scheduled.subtract(levels)
        asked.subtract(levels)
        urgent.subtract(levels)
        for l in levels { lastMoved[l] = nil }
    }

    /// Returns once every level of `levels` has been quiet for a second, an ERP change asked for one of them, or
    /// after `delay`, whichever is first.
    func waitQuietOrDelay(_ levels: Set<LevelKey>, delay: Duration) async {
        let deadline = ContinuousClock.now.advanced(by: delay)
        while ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(250))
            if !urgent.isDisjoint(with: levels) { return }
            let now = ContinuousClock.now
            if levels.allSatisfy({ (lastMoved[$0] ?? now).duration(to: now) >= .seconds(1) }) { return }
        }
    }
}
