import Foundation
import Hummingbird
import NIOCore
import Synchronization

/// shopify-sim's inspection and control API (`/_sim/...`): subscriptions, faults, traffic, orders, stock, deliveries.
/// The Admin GraphQL API is `ShopifyAdminAPI`.
public struct ShopifySimulatorRoutes: Sendable {
    public let store: ShopifyStore
    public let deliverer: WebhookDeliverer
    let traffic = TrafficState()

    public init(store: ShopifyStore, deliverer: WebhookDeliverer) {
        self.store = store
        self.deliverer = deliverer
    }

    final class TrafficState: Sendable {
        let state = Mutex<(running: Bool, last: TrafficResult?)>((false, nil))
    }

    public func addRoutes(to router: Router<BasicRequestContext>) {
        router.put("/_sim/subscriptions") { request, _ in
            struct Body: Decodable {
                var topic: String?
                var url: String
            }
            let buffer = try await request.body.collect(upTo: 65536)
            guard let b = try? JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView)), URL(string: b.url) != nil else {
                return Self.json(.badRequest, ["error": "expected {\"topic\": \"orders/create\" (optional: all topics), \"url\": \"http://...\"}"])
            }
            await self.deliverer.subscribe(topic: b.topic ?? "*", url: b.url)
            return Self.json(.ok, ["subscribed": b.topic ?? "*", "url": b.url])
        }
        router.put("/_sim/faults") { request, _ in
            let buffer = try await request.body.collect(upTo: 65536)
            guard let f = try? JSONDecoder().decode(WebhookDeliverer.Faults.self, from: Data(buffer.readableBytesView)) else {
                return Self.json(.badRequest, ["error": "expected duplicate_rate, drop_rate, max_delay_ms"])
            }
            await self.deliverer.setFaults(f)
            return Self.json(.ok, ["faults": "set"])
        }
        router.delete("/_sim/faults") { _, _ in
            await self.deliverer.setFaults(.init())
            return Self.json(.ok, ["faults": "cleared"])
        }
        router.post("/_sim/traffic") { request, _ in
            let buffer = try await request.body.collect(upTo: 65536)
            let data = Data(buffer.readableBytesView)
            guard let profile = data.isEmpty ? SaleProfile() : try? JSONDecoder().decode(SaleProfile.self, from: data),
                profile.orders > 0, profile.ordersPerSecond >= 0
            else {
                return Self.json(.badRequest, ["error": "expected a sale profile: orders, orders_per_second, max_lines, sku_skew, update_share, cancel_share, refund_share, seed"])
            }
            let started = self.traffic.state.withLock { s -> Bool in
                if s.running { return false }
                s.running = true
                return true
            }
            guard started else { return Self.json(.conflict, ["error": "a traffic run is in progress"]) }
            let generator = TrafficGenerator(store: self.store, deliverer: self.deliverer)
            // The simulator runs the sale in the background and reports through GET /_sim/traffic.
            Task {
                let result = await generator.run(profile)
                self.traffic.state.withLock { $0 = (false, result) }
            }
            return Self.json(.accepted, ["orders": profile.orders, "orders_per_second": profile.ordersPerSecond])
        }
        router.post("/_sim/events") { request, _ in
            struct Body: Decodable {
                var topic: String
                var customerId: Int64?
                enum CodingKeys: String, CodingKey {
                    case topic
                    case customerId = "customer_id"
                }
            }
            let buffer = try await request.body.collect(upTo: 65536)
            guard let b = try? JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView)),
                let event = await self.store.lifecycleEvent(b.topic, customerId: b.customerId)
            else {
                return Self.json(.badRequest, ["error": "expected {\"topic\": one of \(ShopifyStore.lifecycleTopics), \"customer_id\": optional}"])
            }
            let deliverer = self.deliverer
            Task { await deliverer.deliver([event]) }
            return Self.json(.accepted, ["topic": event.topic, "event_id": event.eventId])
        }
        router.get("/_sim/traffic") { _, _ in
            let (running, last) = self.traffic.state.withLock { ($0.running, $0.last) }
            var d: [String: Any] = ["running": running]
            if let last {
                d["last"] = ["placed": last.placed, "refused": last.refused, "updated": last.updated, "cancelled": last.cancelled, "refunded": last.refunded, "events": last.events]
            }
            return Self.json(.ok, d)
        }
        router.get("/_sim/orders") { _, _ in
            let orders = await self.store.orders
            return Self.json(
                .ok,
                [
                    "count": orders.count,
                    "orders": orders.values.sorted { $0.id < $1.id }.map {
                        [
                            "id": $0.id, "updated_at": ShopifyOrderFixture.iso($0.updatedAt), "total_price": "\($0.total)",
                            "cancelled": $0.cancelled, "refunded": "\($0.refunded)", "created_ms": Int64(($0.createdAt.timeIntervalSince1970 * 1000).rounded()),
                        ] as [String: Any]
                    },
                ])
        }
        router.get("/_sim/orders/{id}") { _, context in
            guard let id = context.parameters.get("id", as: Int64.self), let o = await self.store.orders[id] else {
                return Self.json(.notFound, ["error": "not_found"])
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: o.json())))
        }
        router.get("/_sim/stock") { _, _ in
            let snapshot = await self.store.snapshot()
            var out: [[String: Any]] = []
            for (item, levels) in snapshot.stock.sorted(by: { $0.key < $1.key }) {
                for (location, available) in levels.sorted(by: { $0.key < $1.key }) {
                    let committed = snapshot.committed[item]?[location] ?? 0
                    out.append([
                        "inventory_item_id": item, "sku": snapshot.variant(item: item)?.sku ?? "", "location_id": location,
                        "available": available, "committed": committed, "on_hand": available + committed,
                    ])
                }
            }
            return Self.json(
                .ok,
                [
                    "levels": out, "allow_overselling": await self.store.allowOverselling,
                    "refused_checkouts": await self.store.refusedCheckouts, "refused_lines": await self.store.refusedLines,
                ])
        }
        // Staff edit a level by hand (Shopify admin): the level changes and inventory_levels/update is sent.
        router.put("/_sim/stock") { request, _ in
            struct Body: Decodable {
                var inventoryItemId: Int64?
                var sku: String?
                var locationId: Int64?
                var available: Int
                enum CodingKeys: String, CodingKey {
                    case sku, available
                    case inventoryItemId = "inventory_item_id"
                    case locationId = "location_id"
                }
            }
            let buffer = try await request.body.collect(upTo: 65536)
            guard let b = try? JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView)) else {
                return Self.json(.badRequest, ["error": "expected {\"sku\" or \"inventory_item_id\", \"location_id\" (optional: the first), \"available\"}"])
            }
            var item = b.inventoryItemId
            if item == nil, let sku = b.sku { item = await self.store.inventoryItem(sku: sku) }
            let location = b.locationId ?? self.store.locations[0]
            guard let item, let event = await self.store.setAvailable(item: item, location: location, available: b.available) else {
                return Self.json(.notFound, ["error": "unknown item or location"])
            }
            let deliverer = self.deliverer
            Task { await deliverer.deliver([event]) }
            return Self.json(.ok, ["inventory_item_id": item, "location_id": location, "available": b.available])
        }
        router.put("/_sim/overselling") { request, _ in
            struct Body: Decodable { var allow: Bool }
            let buffer = try await request.body.collect(upTo: 65536)
            guard let b = try? JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView)) else {
                return Self.json(.badRequest, ["error": "expected {\"allow\": true|false}"])
            }
            await self.store.setAllowOverselling(b.allow)
            return Self.json(.ok, ["allow_overselling": b.allow])
        }
        router.get("/_sim/deliveries") { request, _ in
            let log = await self.deliverer.log
            let limit = request.uri.queryParameters.get("limit", as: Int.self) ?? 100
            var counts: [String: Int] = [:]
            for d in log { counts[d.outcome.rawValue, default: 0] += 1 }
            return Self.json(
                .ok,
                [
                    "total": log.count, "outcomes": counts, "duplicated": log.filter(\.duplicated).count,
                    "recent": log.suffix(limit).map {
                        [
                            "webhook_id": $0.webhookId, "topic": $0.topic, "order_id": $0.orderId.map { $0 as Any } ?? NSNull(),
                            "attempts": $0.attempts, "outcome": $0.outcome.rawValue,
                        ] as [String: Any]
                    },
                ])
        }
    }

    static func json(_ status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
