import BridgeDomain
import BridgeMessaging
import ERP
import Foundation
import Logging
import Shopify
import Worker

/// `q.erp-prices`: the ERP's `price.changed` events. The event is a hint: the handler reads the SKU's current price on
/// the ERP list and writes it into every shop whose `price_lists` map that list, where Shopify's fixed price differs,
/// so events may arrive late, twice or out of order. One writer: only the active syncer consumes (`prepare` waits for
/// its lease; the writes are fenced by it), one SKU of a list at a time, so a price read earlier is never written
/// after one read later. The reconciler's corrections arrive here as hints too. A list no shop maps is acknowledged
/// (`unmapped_price_list`); a refusal by Shopify is dead-lettered with its code.
public struct PriceChangedHandler: QueueHandler {
    public let shops: [B2BPriceSync]
    let lease: ActiveLease?
    public var subject: String { "ERP price change" }

    public init(shops: [B2BPriceSync], lease: ActiveLease? = nil) {
        self.shops = shops
        self.lease = lease
    }

    public func prepare() async throws { await lease?.waitUntilActive() }

    /// The body of `price.changed` (docs/erp-api.yaml); only the list and the SKU are used.
    struct Event: Decodable {
        var priceList: String
        var sku: String
        var seq: Int64?
        enum CodingKeys: String, CodingKey {
            case priceList = "price_list"
            case sku, seq
        }
    }

    public func handle(_ message: InboundMessage, context: inout WorkContext) async throws -> WorkOutcome {
        guard message.envelope.topic == "price.changed" else { return WorkOutcome("ignored_topic") }
        let event: Event
        do {
            event = try JSONDecoder().decode(Event.self, from: Data(message.body))
        } catch {
            throw ProcessingFailure(errorClass: "invalid_payload", message: "not an ERP price change: \(error)", retryable: false)
        }
        context.logger[metadataKey: "price_list"] = "\(event.priceList)"
        context.logger[metadataKey: "sku"] = "\(event.sku)"
        if let seq = event.seq { context.logger[metadataKey: "erp_seq"] = "\(seq)" }
        var labels: [String] = []
        let logger = context.logger
        for shop in shops {
            // One SKU of one list at a time in this process: two events for it never race each other's writes.
            let label = try await context.serialized("\(shop.shop.id)|\(event.priceList)|\(event.sku)") {
                try await shop.apply(erpList: event.priceList, skus: [event.sku], logger: logger)
            }
            labels.append(label)
        }
        let label = ["written", "unchanged", "unknown_sku", "unmapped_price_list"].first(where: labels.contains) ?? "no_shop"
        return WorkOutcome(label, calledDependency: label != "unmapped_price_list" && label != "no_shop")
    }

    public func classify(_ error: any Error) -> WorkFailure { ShopifyWriteFailures.classify(error) }
}
