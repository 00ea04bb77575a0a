import BridgeMessaging
import ERP
import Foundation
import Logging
import Metrics
import Shopify
import Worker

/// How the inventory handlers route the errors they meet.
enum InventoryFailures {
    static func classify(_ error: any Error) -> WorkFailure {
        switch error {
        case let f as ProcessingFailure:
            return .failed(f)
        case let e as ShopifyAdminError where e.retryable:
            return .outage(ProcessingFailure(errorClass: "shopify_unavailable", message: "\(e)", retryable: true), retryAfter: nil)
        case let e as ShopifyAdminError:
            return .failed(ProcessingFailure(errorClass: "shopify_error", message: "\(e)", retryable: false), dependencyAnswered: true)
        default:
            return .failed(ProcessingFailure(errorClass: "internal", message: "\(error)", retryable: true))
        }
    }

    static func invalid(_ what: String, _ error: any Error) -> ProcessingFailure {
        ProcessingFailure(errorClass: "invalid_payload", message: "not \(what): \(error)", retryable: false)
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
        guard message.envelope.topic == "inventory.changed" else { return WorkOutcome("ignored_topic") }
        let change: ERPStockChange
        do {
            change = try JSONDecoder().decode(ERPStockChange.self, from: Data(message.body))
        } catch {
            throw InventoryFailures.invalid("an ERP stock change", error)
        }
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
                if label == "written" || label == "unchanged" { called = true }
                labels.append(label)
            } catch {
                await picture.finish(change.seq, key, shop: id, written: false)
                throw error
            }
        }
        for label in ["unmapped_warehouse"] where labels.contains(label) {
            Counter(label: "inventory_unmapped_warehouse_total", dimensions: [("warehouse", change.warehouse)]).increment()
        }
        // The most telling outcome across shops.
        let label = ["written", "unchanged", "duplicate_skipped", "unknown_sku", "unmapped_warehouse"].first(where: labels.contains)
        return WorkOutcome(label ?? "no_shop", calledDependency: called)
    }

    /// `bridgectl inventory sync`: a full sync of one shop, here in the active syncer (which knows the pending
    /// orders a sync must hold back), its report published on `bridge.events` for the command to print.
    func runSync(_ message: InboundMessage, context: WorkContext) async throws -> WorkOutcome {
        let request: FullSyncRequest
        do {
            request = try JSONDecoder().decode(FullSyncRequest.self, from: Data(message.body))
        } catch {
            throw InventoryFailures.invalid("a sync request", error)
        }
        guard let shop = syncer.shops.first(where: { $0.shop.id == request.shop || $0.shop.domain == request.shop }),
            let fullSync = syncer.fullSync
        else {
            throw ProcessingFailure(errorClass: "unknown_shop", message: "no configured shop '\(request.shop)'", retryable: false)
        }
        context.logger.notice("full sync requested", metadata: ["run_id": "\(request.runId)", "dry_run": "\(request.dryRun)"])
        let levels = try await fullSync.readERP()
        _ = try await fullSync.run(shop, erpLevels: levels, dryRun: request.dryRun, runId: request.runId)
        return WorkOutcome(request.dryRun ? "sync_dry_run" : "sync_completed", calledDependency: true)
    }

    /// One shop's side of a change: `written`, `unchanged`, `unmapped_warehouse` or `unknown_sku`.
    func write(_ change: ERPStockChange, _ key: StockKey, to shop: ShopInventorySync, logger: Logger) async throws -> String {
        switch try await shop.resolve(key) {
        case .unmappedWarehouse:
            return "unmapped_warehouse"
        case .unknownSKU:
            return "unknown_sku"
        case .level(let level):
            let report = try await shop.sync([level], decision: "erp-\(change.seq)")
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

/// `q.shopify-inventory`: Shopify's `inventory_levels/update`. Most are the echo of the syncer's own writes or of a
/// sale (the level already equals what the ERP's figure and the pending orders give): ignored. A level that differs
/// is checked again after `override_grace` (a sale's level change can come before its order) and, if it still
/// differs, set back to the ERP's figure: the ERP owns inventory, a manual edit in Shopify's admin is reverted,
/// with `inventory_overrides_reverted_total` and a log line naming the item, the location and both values.
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
        let payload: Payload
        do {
            payload = try JSONDecoder().decode(Payload.self, from: Data(message.body))
        } catch {
            throw InventoryFailures.invalid("an inventory level", error)
        }
        let level = LevelKey(
            inventoryItemId: "gid://shopify/InventoryItem/\(payload.inventory_item_id)",
            locationId: "gid://shopify/Location/\(payload.location_id)")
        context.logger[metadataKey: "level"] = "\(level)"
        guard let shown = payload.available else { return WorkOutcome("ignored_untracked") }
        guard let stock = await shop.targets.stockKey(level) else { return WorkOutcome("ignored_unmapped") }
        guard let target = await shop.targets.target(stock) else { return WorkOutcome("ignored_no_erp_figure") }
        let echo = Counter(label: "inventory_echo_total", dimensions: [("shop", shop.shop.id)])
        if shown == target.quantity {
            echo.increment()
            return WorkOutcome("in_sync")
        }
        // It differs: give the order that may have caused it time to arrive, then decide on fresh figures.
        try await Task.sleep(for: syncer.settings.overrideGrace)
        let report = try await shop.sync([level], decision: "override-\(message.envelope.deliveryId)")
        if let code = report.rejected[level] {
            throw ProcessingFailure(errorClass: "shopify_rejected", message: "Shopify refused \(level): \(code)", retryable: false)
        }
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

/// `q.inventory-orders`: copies of Shopify's `orders/create` and `orders/cancelled`, so the syncer holds back the
/// units of orders Shopify accepted that the ERP does not count yet (the forwarder may be behind, or the ERP down).
/// Nothing is written here: Shopify already took the units off its own `available`; holding them back keeps the
/// syncer from putting them back until the ERP's figure shows the order.
public struct OrderActivityHandler: QueueHandler {
    public let syncer: InventorySyncer
    public var subject: String { "order for inventory" }

    public init(syncer: InventorySyncer) { self.syncer = syncer }

    public func prepare() async throws { await syncer.lease?.waitUntilActive() }

    struct Payload: Decodable {
        struct Line: Decodable {
            var sku: String?
            var quantity: Int
        }
        var id: Int64
        var line_items: [Line]?
    }

    public func handle(_ message: InboundMessage, context: inout WorkContext) async throws -> WorkOutcome {
        let topic = message.envelope.topic
        guard topic == "orders/create" || topic == "orders/cancelled" else { return WorkOutcome("ignored_topic") }
        guard let shop = syncer.shop(domain: message.envelope.shopDomain) else { return WorkOutcome("ignored_unknown_shop") }
        let order: Payload
        do {
            order = try JSONDecoder().decode(Payload.self, from: Data(message.body))
        } catch {
            throw InventoryFailures.invalid("a Shopify order", error)
        }
        let ref = ERPReference.salesOrder(shop: shop.shop.id, orderId: order.id)
        if topic == "orders/cancelled" {
            await syncer.picture.cancel(shop: shop.shop.id, orderRef: ref)
            return WorkOutcome("released")
        }
        guard let warehouse = shop.targets.orderWarehouse else { return WorkOutcome("ignored_no_warehouse") }
        var lines: [String: Int] = [:]
        for l in order.line_items ?? [] {
            guard let sku = l.sku, !sku.isEmpty, l.quantity > 0 else { continue }
            lines[sku, default: 0] += l.quantity
        }
        await syncer.picture.accept(shop: shop.shop.id, orderRef: ref, warehouse: warehouse, lines: lines)
        return WorkOutcome("held_back")
    }

    public func classify(_ error: any Error) -> WorkFailure { InventoryFailures.classify(error) }
}
