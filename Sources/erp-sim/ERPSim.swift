import ArgumentParser
import ERPSimulator
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import ShopifySimulator
import SimulatorKit

/// A simulated ERP speaking the generic contract in docs/erp-api.yaml, with runtime fault injection.
extension ERPStore.Profile: ExpressibleByArgument {}

@main
struct ERPSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "erp-sim", abstract: "A simulated ERP for demos and tests.")

    @Option(help: "Listen address.") var host = "127.0.0.1"
    @Option(help: "Listen port (0: any free port, printed at start).") var port = 8090
    @Option(help: "API key clients must send as 'Authorization: Bearer KEY'.") var apiKey = "demo-erp-key"
    @Option(help: "Seed SKUs SKU-00001 ... SKU-N.") var skus = 1000
    @Option(
        name: .customLong("item"),
        help: "A further item the ERP knows (repeatable), e.g. MISC: the non-stock item order_forwarder.catch_all_item books lines without SKU on.")
    var items: [String] = []
    @Option(help: "Latency added to every API call, milliseconds (changeable at runtime: PUT /_admin/faults).") var latencyMs = 0
    @Option(help: "Warehouses (WH-1 ...).") var warehouses = 2
    @Option(help: "Push signed inventory.changed and shipment.created events to this base URL (e.g. http://127.0.0.1:8080/webhooks/erp).") var pushURL: String?
    @Option(
        help: """
            Contract profile: upsert (atomic, version-aware upsert by external reference) or plain (create always \
            creates, lookup is a filter, update overwrites: what most ERPs offer; nothing protects the bridge).
            """)
    var profile: ERPStore.Profile = .upsert
    @Flag(
        help: """
            Plain profile: honour the optional Idempotency-Key of creates (a repeated key answers the first sales order \
            or credit note). Off by default, so the default proves the bridge's own fence.
            """)
    var idempotencyKeys = false
    @Option(help: "Secret for the pushed events' X-ERP-Signature (ingest's erp.webhook_secret).") var pushSecret = "demo-erp-webhook-secret"
    @Option(
        help: """
            Keep the ERP's state in this file (JSON): restored at start, saved every half second when it changed and \
            at stop, so a restart keeps sales orders, credit notes, stock and the change feed (without it: in memory).
            """)
    var state: String?

    func run() async throws {
        let store = ERPStore(
            skus: Set((1...max(1, skus)).map(OrderGenerator.sku)).union(items), profile: profile, honoursIdempotencyKeys: idempotencyKeys)
        var faults = ERPStore.Faults()
        faults.latencyMs = latencyMs
        await store.setFaults(faults)
        let inventory = ERPInventory(skus: max(1, skus), warehouses: warehouses)
        let pusher = ERPPusher()
        if let pushURL { await pusher.setTarget(.init(url: pushURL, secret: pushSecret)) }
        // Every stock movement is pushed (when a target is set) without holding up the movement itself.
        await inventory.onChange { change in
            Task { await pusher.push(event: "inventory.changed", eventId: "erp-inventory-\(change.seq)", body: ERPPusher.inventoryChanged(change), triggeredAt: change.changedAt) }
        }
        await inventory.onPriceChange { change in
            Task { await pusher.push(event: "price.changed", eventId: "erp-price-\(change.seq)", body: ERPPusher.priceChanged(change), triggeredAt: change.changedAt) }
        }
        var logger = Logger(label: "erp-sim")
        logger.logLevel = .info
        var saver: Task<Void, Never>?
        if let state {
            let attached = try await StateFile(path: state).attach(
                SavedState.self,
                restore: {
                    await store.restore($0.store, alsoKnown: Set(items))
                    await inventory.restore($0.inventory)
                },
                snapshot: { SavedState(store: await store.state, inventory: await inventory.state) },
                report: { [logger] in logger.error("\($0)") })
            if attached.restored {
                let count = await store.orderCount
                logger.notice("state restored", metadata: ["file": "\(state)", "sales_orders": "\(count)"])
            }
            saver = attached.saver
        }
        defer { saver?.cancel() }
        let routes = ERPSimulatorRoutes(store: store, apiKey: apiKey, inventory: inventory, pusher: pusher)
        let server = ERPSimulatorServer(
            routes: routes, host: host, port: port, logger: logger,
            onListening: { port in
                // Unbuffered, so a supervisor reading the pipe sees the port at once.
                FileHandle.standardOutput.write(Data("erp-sim listening on \(port)\n".utf8))
            })
        let group = ServiceGroup(
            configuration: .init(services: [.init(service: server)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do {
            try await group.run()
        } catch {
            // The pusher's HTTP client must be shut down on every way out (e.g. the port is taken).
            await pusher.shutdown()
            throw error
        }
        await pusher.shutdown()
        saver?.cancel()
        await saver?.value
    }
}

/// What `--state` keeps: the sales side and the stock side.
struct SavedState: Codable, Sendable {
    var store: ERPStore.State
    var inventory: ERPInventory.State
}
