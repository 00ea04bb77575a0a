import ArgumentParser
import BridgeDomain
import BridgeMessaging
import BridgeRuntime
import Foundation
import InventorySync
import Messaging

struct InventoryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inventory", abstract: "Inventory: run a full sync now.", subcommands: [Sync.self])

    struct Sync: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask the active inventory-syncer for a full sync of one shop and print its report.",
            discussion: """
                The sync runs in the active inventory-syncer (it knows what the ERP holds for Shopify's orders), \
                through the same compare-and-set writer as every delta. --dry-run compares and reports without \
                writing. Needs a running inventory-syncer and a broker user that may publish to bridge.work and \
                declare a temporary queue (the admin user).
                """)
        @OptionGroup var options: ProcessOptions
        @Option(help: "Shop id (or myshopify domain).") var shop: String
        @Flag(help: "Compare and report only; write nothing.") var dryRun = false
        @Flag(help: "Print the report as JSON.") var json = false
        @Option(help: "Seconds to wait for the report.") var timeout = 600

        func run() async throws {
            let config = try await loadConfig(options)
            guard config.shops.contains(where: { $0.id == shop || $0.domain == shop }) else {
                FileHandle.standardError.write(Data("bridgectl: no shop '\(shop)' in the configuration (shops: \(config.shops.map(\.id)))\n".utf8))
                throw ExitCode(2)
            }
            let request = FullSyncRequest(shop: shop, dryRun: dryRun, runId: UUID().uuidString.lowercased())
            let replies = "bridgectl.inventory-sync.\(request.runId)"
            try await withConnection(config) { c in
                let consumers = try await c.queueCounts(BridgeTopology.erpInventory.name).consumers
                guard consumers > 0 else {
                    FileHandle.standardError.write(Data("bridgectl: no inventory-syncer consumes \(BridgeTopology.erpInventory.name): start one (a standby does not consume)\n".utf8))
                    throw ExitCode(1)
                }
                _ = try await c.withChannel { ops in
                    try ops.declareQueue(replies, durable: false, exclusive: true, autoDelete: true, arguments: ["x-queue-type": "classic"])
                    try ops.bindQueue(replies, exchange: BridgeTopology.events, routingKey: FullSyncRequest.completedTopic)
                }
                let envelope = InboundEnvelope(
                    source: .bridge, shopDomain: nil, topic: FullSyncRequest.topic, deliveryId: "inventory-sync-\(request.runId)")
                try await c.publish(
                    exchange: BridgeTopology.work, routingKey: BridgeTopology.erpInventory.name,
                    body: Array(try JSONEncoder().encode(request)), properties: envelope.properties())
                print("full sync of \(shop) requested (run \(request.runId)\(dryRun ? ", dry run" : "")); waiting for the report...")
                let consumer = try await c.consume(queue: replies, prefetch: 10)
                let deadline = ContinuousClock.now + .seconds(timeout)
                let found: FullSyncReport? = try await withThrowingTaskGroup(of: FullSyncReport?.self) { group in
                    group.addTask {
                        for try await d in consumer.deliveries {
                            try? await d.ack()
                            if let r = try? JSONDecoder().decode(FullSyncReport.self, from: Data(d.body)), r.runId == request.runId {
                                return r
                            }
                        }
                        return nil
                    }
                    group.addTask {
                        try? await Task.sleep(until: deadline)
                        return nil
                    }
                    let first = try await group.next() ?? nil
                    group.cancelAll()
                    consumer.cancel()
                    return first
                }
                guard let report = found else {
                    FileHandle.standardError.write(Data("bridgectl: no report within \(timeout) s; see the inventory-syncer's log (run_id \(request.runId))\n".utf8))
                    throw ExitCode(1)
                }
                if json {
                    let encoder = JSONEncoder()
                    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                    print(String(decoding: try encoder.encode(report), as: UTF8.self))
                } else {
                    print(Self.describe(report))
                }
            }
        }

        static func describe(_ r: FullSyncReport) -> String {
            var lines = [
                "shop \(r.shop)\(r.dryRun ? " (dry run: nothing written)" : ""), \(String(format: "%.1f", r.seconds)) s",
                "  compared \(r.compared) levels: \(r.inSync) in sync, \(r.drifted) drifted by \(r.driftUnits) units in all",
                "  corrected \(r.corrected), refused by Shopify \(r.rejected.count), not stocked at the location \(r.notStocked)",
                "  ERP SKUs unknown in Shopify: \(r.unknownSKUCount)\(r.unknownSKUs.isEmpty ? "" : " (\(r.unknownSKUs.joined(separator: ", "))\(r.unknownSKUCount > r.unknownSKUs.count ? ", ..." : ""))")",
            ]
            if !r.samples.isEmpty {
                lines.append("  drifted (first \(r.samples.count)): SKU@warehouse  shopify -> target")
                for s in r.samples { lines.append("    \(s.sku)@\(s.warehouse)  \(s.shopify) -> \(s.target)") }
            }
            for (level, code) in r.rejected.sorted(by: { $0.key < $1.key }).prefix(20) { lines.append("  refused: \(level): \(code)") }
            return lines.joined(separator: "\n")
        }
    }
}
