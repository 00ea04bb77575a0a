import BridgeDomain
import BridgeMessaging
import ERP
import Foundation
import Logging
import Metrics
import PriceSync
import Shopify
import Worker

/// How the inventory handlers route the errors they meet.
enum InventoryFailures {
    static func classify(_ error: any Error) -> WorkFailure { ShopifyWriteFailures.classify(error) }

    /// The message's body as `T`; a body that is not one is dead-lettered at once (`invalid_payload`, naming `what`).
    static func decode<T: Decodable>(_ type: T.Type, _ what: String, from message: InboundMessage) throws -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(message.body))
        } catch {
            throw ProcessingFailure(errorClass: "invalid_payload", message: "not \(what): \(error)", retryable: false)
        }
    }

    /// The configured shop named by a command (its id or myshopify domain); another is dead-lettered (`unknown_shop`).
    static func shop(_ name: String, of syncer: InventorySyncer) throws -> ShopInventorySync {
        guard let shop = syncer.shops.first(where: { $0.shop.id == name || $0.shop.domain == name }) else {
            throw ProcessingFailure(errorClass: "unknown_shop", message: "no configured shop '\(name)'", retryable: false)
        }
        return shop
    }
}

/// `q.erp-inventory`: the ERP's stock changes, pushed through ingest or polled from its feed by `ERPFeedPoller`
/// (both on at once: the change sequence makes the second copy a no-op). Each change is written to every shop whose
/// locations the warehouse feeds, through the shop's coalesced compare-and-set writes; the message is acknowledged
/// once Shopify has it. A row Shopify refuses is dead-lettered with Shopify's code; a SKU Shopify does not have or
/// a warehouse no shop maps is counted, logged and acknowledged (retrying cannot help).
public struct ERPStockHandler: QueueHandler {
    public let syncer: InventorySyncer
    public var subject: String { "ERP stock change" }

    public init(syncer: InventorySyncer) { self.syncer = syncer }

    public func prepare() async throws { await syncer.waitUntilReady() }

    public func handle(_ message: InboundMessage, context: inout WorkContext) async throws -> WorkOutcome {
        if message.envelope.topic == FullSyncRequest.topic { return try await runSync(message, context: context) }
        if message.envelope.topic == InventoryCorrection.topic { return try await correct(message, context: context) }
        guard message.envelope.topic == "inventory.changed" else { return WorkOutcome("ignored_topic") }
        let change = try InventoryFailures.decode(ERPStockChange.self, "an ERP stock change", from: message)
        context.logger[metadataKey: "sku"] = "\(change.sku)"
        context.logger[metadataKey: "warehouse"] = "\(change.warehouse)"
        context.logger[metadataKey: "erp_seq"] = "\(change.seq)"
        let picture = syncer.picture
        if await picture.apply(change) == .older { return WorkOutcome("older_skipped") }
        let key = StockKey(sku: change.sku, warehouse: change.warehouse)
        var labels: [String] = []
        var called = false
        for shop in syncer.shops {
            let id = shop.shop.id
            guard await picture.claim(change.seq, key, shop: id) else {
                labels.append("duplicate_skipped")
                continue
            }
            do {
                let label = try await write(change, key, to: shop, logger: context.logger)
                await picture.finish(change.seq, key, shop: id, written: label == "written" || label == "unchanged")
                if label == "written" || label == "unchanged" || label == "kept_moving" { called = true }
                labels.append(label)
            } catch {
                await picture.finish(change.seq, key, shop: id, written: false)
                throw error
            }
        }
        if labels.contains("unmapped_warehouse") {
            Counter(label: "inventory_unmapped_warehouse_total", dimensions: [("warehouse", change.warehouse)]).increment()
        }
        // The most telling outcome across shops.
        let label = ["written", "unchanged", "kept_moving", "duplicate_skipped", "unknown_sku", "unmapped_warehouse"].first(where: labels.contains)
        return WorkOutcome(label ?? "no_shop", calledDependency: called)
    }

    /// `bridgectl inventory sync`: a full sync of one shop, here in the active syncer (which knows what the ERP
    /// holds for Shopify's orders), its report published on `bridge.events` for the command to print.
    func runSync(_ message: InboundMessage, context: WorkContext) async throws -> WorkOutcome {
        let request = try InventoryFailures.decode(FullSyncRequest.self, "a sync request", from: message)
        let shop = try InventoryFailures.shop(request.shop, of: syncer)
        guard let fullSync = syncer.fullSync else {
            throw ProcessingFailure(errorClass: "no_full_sync", message: "this syncer was built without a full sync", retryable: false)
        }
        context.logger.notice("full sync requested", metadata: ["run_id": "\(request.runId)", "dry_run": "\(request.dryRun)"])
        // By sequence only when this run writes every level there is (one shop, not a dry run).
        let levels = try await fullSync.readERP(bySequence: !request.dryRun && syncer.shops.count == 1)
        _ = try await fullSync.run(shop, erpLevels: levels, dryRun: request.dryRun, runId: request.runId)
        return WorkOutcome(request.dryRun ? "sync_dry_run" : "sync_completed", calledDependency: true)
    }

    /// The reconciler's correction: each listed level brought to the rule's figure on fresh reads (written only where
    /// it still differs), counted in `inventory_reconcile_corrected_total`; ERP figures it missed are read first.
    func correct(_ message: InboundMessage, context: WorkContext) async throws -> WorkOutcome {
        let correction = try InventoryFailures.decode(InventoryCorrection.self, "an inventory correction", from: message)
        let shop = try InventoryFailures.shop(correction.shop, of: syncer)
        // The reconciler saw an ERP figure this syncer does not hold: a change it missed (a lost push, the feed off).
        // The snapshot is read again (a change that arrived since the reconciler's read stays: it is newer).
        var missed = 0
        for key in correction.keys {
            if let erp = key.erpAvailable, await syncer.picture.available(StockKey(sku: key.sku, warehouse: key.warehouse)) != erp {
                missed += 1
            }
        }
        if missed > 0, let fullSync = syncer.fullSync {
            Counter(label: "inventory_reconcile_erp_rereads_total", dimensions: [("shop", shop.shop.id)]).increment()
            context.logger.warning(
                "the reconciler saw ERP figures this syncer missed; reading the ERP's snapshot again",
                metadata: ["run_id": "\(correction.runId)", "levels": "\(missed)"])
            _ = try await fullSync.readERP()
        }
        var levels: Set<LevelKey> = []
        var unresolved = 0
        for key in correction.keys {
            if case .level(let level) = try await shop.resolve(StockKey(sku: key.sku, warehouse: key.warehouse)) {
                levels.insert(level)
            } else {
                unresolved += 1
            }
        }
        guard !levels.isEmpty else { return WorkOutcome("correction_unresolved") }
        let report = try await shop.sync(levels, decision: "reconcile-\(correction.runId)")
        Counter(label: "inventory_reconcile_corrected_total", dimensions: [("shop", shop.shop.id)]).increment(by: report.written.count)
        if !report.rejected.isEmpty {
            context.logger.warning(
                "Shopify refused levels of the reconciler's correction",
                metadata: ["run_id": "\(correction.runId)", "rejected": "\(report.rejected.map { "\($0.key): \($0.value)" }.sorted())"])
        }
        context.logger.notice(
            "reconciler's correction applied",
            metadata: [
                "run_id": "\(correction.runId)", "levels": "\(levels.count)", "written": "\(report.written.count)",
                "rejected": "\(report.rejected.count)", "unresolved": "\(unresolved)",
            ])
        return WorkOutcome(report.written.isEmpty ? "correction_unchanged" : "corrected", calledDependency: true)
    }

    /// One shop's side of a change: `written`, `unchanged`, `kept_moving` (left to the level's paced retry),
    /// `unmapped_warehouse` or `unknown_sku`.
    func write(_ change: ERPStockChange, _ key: StockKey, to shop: ShopInventorySync, logger: Logger) async throws -> String {
        switch try await shop.resolve(key) {
        case .unmappedWarehouse:
            return "unmapped_warehouse"
        case .unknownSKU:
            return "unknown_sku"
        case .level(let level):
            // Another app keeps adjusting this level: its paced retry writes the rule's latest figure, this change
            // included (the picture already holds it). Not confirmed: a full sync at start covers a stop before then.
            if await shop.handOverIfMoving(level, erpChange: true) { return "kept_moving" }
            let report = try await shop.sync([level], decision: "erp-\(change.seq)")
            if report.keptMoving.contains(level) { return "kept_moving" }
            if let code = report.rejected[level] {
                throw ProcessingFailure(
                    errorClass: "shopify_rejected", message: "Shopify refused \(level) for \(shop.shop.id): \(code)",
                    retryable: false)
            }
            guard let w = report.written[level] else { return "unchanged" }
            logger.debug("level written", metadata: ["from": "\(w.from)", "to": "\(w.to)", "shop": "\(shop.shop.id)"])
            return "written"
        }
    }

    public func classify(_ error: any Error) -> WorkFailure { InventoryFailures.classify(error) }
}

/// `q.shopify-inventory`: Shopify's `inventory_levels/update`. One that carries the figure the syncer last wrote is
/// its own echo: ignored (`inventory_echo_total`). Any other (a sale, a cancellation's restock, a manual edit) is
/// checked after `override_grace` on fresh figures (`available` and `committed`, read together): a sale leaves the
/// level where the rule puts it (`settled`); a level that still differs is set back to the ERP's figure: the ERP
/// owns inventory, a manual edit in Shopify's admin is reverted, with `inventory_overrides_reverted_total` and a
/// log line naming the item, the location and both values.
public struct ShopifyLevelHandler: QueueHandler {
    public let syncer: InventorySyncer
    public var subject: String { "Shopify inventory level" }

    public init(syncer: InventorySyncer) { self.syncer = syncer }

    public func prepare() async throws { await syncer.waitUntilReady() }

    struct Payload: Decodable {
        var inventory_item_id: Int64
        var location_id: Int64
        var available: Int?
    }

    public func handle(_ message: InboundMessage, context: inout WorkContext) async throws -> WorkOutcome {
        guard message.envelope.topic == "inventory_levels/update" else { return WorkOutcome("ignored_topic") }
        guard let shop = syncer.shop(domain: message.envelope.shopDomain) else {
            throw ProcessingFailure(
                errorClass: "unknown_shop", message: "shop '\(message.envelope.shopDomain ?? "none")' is not configured",
                retryable: false)
        }
        let payload = try InventoryFailures.decode(Payload.self, "an inventory level", from: message)
        let level = LevelKey(
            inventoryItemId: "gid://shopify/InventoryItem/\(payload.inventory_item_id)",
            locationId: "gid://shopify/Location/\(payload.location_id)")
        context.logger[metadataKey: "inventory_level"] = "\(level)"
        guard let shown = payload.available else { return WorkOutcome("ignored_untracked") }
        guard let stock = await shop.targets.stockKey(level) else { return WorkOutcome("ignored_unmapped") }
        guard await syncer.picture.available(stock) != nil else { return WorkOutcome("ignored_no_erp_figure") }
        if await shop.memory.isOwnEcho(level, available: shown) {
            Counter(label: "inventory_echo_total", dimensions: [("shop", shop.shop.id)]).increment()
            return WorkOutcome("echo")
        }
        // Another app keeps adjusting this level: its paced retry sets it back once it is quiet (or at its next try);
        // a check of its own per adjustment would spend the budget the other levels need.
        if await shop.handOverIfMoving(level, erpChange: false) { return WorkOutcome("moving_retry_scheduled") }
        // Not ours: let whatever caused it settle, then decide on fresh figures.
        try await Task.sleep(for: syncer.settings.overrideGrace)
        let report = try await shop.sync([level], decision: "level-\(message.envelope.deliveryId)")
        if let code = report.rejected[level] {
            throw ProcessingFailure(errorClass: "shopify_rejected", message: "Shopify refused \(level): \(code)", retryable: false)
        }
        if report.keptMoving.contains(level) { return WorkOutcome("kept_moving", calledDependency: true) }
        guard let w = report.written[level] else { return WorkOutcome("settled", calledDependency: true) }
        Counter(label: "inventory_overrides_reverted_total", dimensions: [("shop", shop.shop.id)]).increment()
        context.logger.warning(
            "Shopify's level differed from the ERP's figure; set back (the ERP owns inventory)",
            metadata: [
                "sku": "\(stock.sku)", "warehouse": "\(stock.warehouse)", "shopify_available": "\(shown)",
                "found_available": "\(w.from)", "erp_target": "\(w.to)",
            ])
        return WorkOutcome("override_reverted", calledDependency: true)
    }

    public func classify(_ error: any Error) -> WorkFailure { InventoryFailures.classify(error) }
}

/// `q.inventory-orders`: copies of Shopify's order webhooks. Each says per line what Shopify still commits for the
/// order (`fulfillable_quantity`: less what was fulfilled, nothing once cancelled), so the syncer matches every order
/// against what the ERP holds for it, order by order (`StockPicture.observe`, `pendingUnits`): a partial fulfilment,
/// a cancellation or an edit the ERP has not seen yet never lets another order's units through.
///
/// When an order becomes known while the ERP already holds units for it (its webhook came after the ERP's
/// allocation), those units were counted as pending meanwhile: the levels are checked again at once so Shopify shows
/// them (a failed check is logged and counted, `inventory_order_recheck_failed_total`, and left to the next change
/// or full sync: Shopify shows less meanwhile, never more).
public struct OrderActivityHandler: QueueHandler {
    public let syncer: InventorySyncer
    public var subject: String { "order for inventory" }

    public init(syncer: InventorySyncer) { self.syncer = syncer }

    public func prepare() async throws { await syncer.lease?.waitUntilActive() }

    /// The part of an order webhook the stock rule needs.
    struct Payload: Decodable {
        struct Line: Decodable {
            var sku: String?
            var quantity: Int
            var current_quantity: Int?
            var fulfillable_quantity: Int?
        }
        var id: Int64
        var updated_at: String?
        var cancelled_at: String?
        var line_items: [Line]

        /// What Shopify still commits per SKU. A line without `fulfillable_quantity` (an older payload) counts whole.
        var units: [String: Int] {
            StockPicture.Commitment.perSKU(line_items.map { ($0.sku, $0.fulfillable_quantity ?? $0.current_quantity ?? $0.quantity) })
        }
        /// What the order took from stock per SKU, fulfilled or not (less what was removed or refunded with restock).
        var taken: [String: Int] { StockPicture.Commitment.perSKU(line_items.map { ($0.sku, $0.current_quantity ?? $0.quantity) }) }
    }

    public func handle(_ message: InboundMessage, context: inout WorkContext) async throws -> WorkOutcome {
        let topic = message.envelope.topic
        guard BridgeTopology.inventoryOrderTopics.contains(topic) else { return WorkOutcome("ignored_topic") }
        guard let shop = syncer.shop(domain: message.envelope.shopDomain) else { return WorkOutcome("ignored_unknown_shop") }
        let order = try InventoryFailures.decode(Payload.self, "a Shopify order", from: message)
        context.logger[metadataKey: "order_id"] = "\(order.id)"
        // The order's version: Shopify's trigger time (milliseconds) where it says, else its one-second `updated_at`.
        let exact = message.envelope.triggeredAtMs
        guard let version = exact ?? order.updated_at.flatMap(Timestamp.milliseconds) else {
            throw ProcessingFailure(
                errorClass: "invalid_payload", message: "order \(order.id) has neither a trigger time nor updated_at", retryable: false)
        }
        let ref = ERPReference.salesOrder(shop: shop.shop.id, orderId: order.id)
        // The levels are resolved before the picture changes: a failure here is retried with nothing taken yet.
        var resolved: [StockKey: LevelKey] = [:]
        for key in await syncer.picture.allocationKeys(shop: shop.shop.id, orderRef: ref) {
            if case .level(let level) = try await shop.resolve(key) { resolved[key] = level }
        }
        let commitment = StockPicture.Commitment(
            version: version, units: order.units, taken: order.taken, cancelled: order.cancelled_at != nil, exact: exact != nil)
        let covered = await syncer.picture.observe(shop: shop.shop.id, orderRef: ref, commitment)
        guard !covered.isEmpty else { return WorkOutcome(commitment.closed ? "order_closed" : "order_counted") }
        let levels = Set(covered.compactMap { resolved[$0] })
        guard !levels.isEmpty else { return WorkOutcome("order_counted") }
        do {
            _ = try await shop.sync(levels, decision: "order-\(order.id)")
            return WorkOutcome("order_levels_rechecked", calledDependency: true)
        } catch {
            Counter(label: "inventory_order_recheck_failed_total", dimensions: [("shop", shop.shop.id)]).increment()
            context.logger.warning(
                "could not check the levels of an order the ERP already holds units for; Shopify shows less of them until the next change or full sync",
                metadata: ["levels": "\(levels.count)", "error": "\(error)"])
            return WorkOutcome("order_recheck_failed", calledDependency: true)
        }
    }

    public func classify(_ error: any Error) -> WorkFailure { InventoryFailures.classify(error) }
}
