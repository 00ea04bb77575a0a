import Foundation
import Hummingbird
import NIOCore

/// The generic ERP HTTP contract (docs/erp-api.yaml) as the simulator serves it, plus `/_admin` (faults, SKUs) and
/// `/_inspect` (what tests count).
public struct ERPSimulatorRoutes: Sendable {
    public let store: ERPStore
    public let apiKey: String
    public let inventory: ERPInventory
    /// Push mode (signed events to a URL); nil: push endpoints answer 501.
    public let pusher: ERPPusher?

    public init(store: ERPStore, apiKey: String, inventory: ERPInventory = ERPInventory(), pusher: ERPPusher? = nil) {
        self.store = store
        self.apiKey = apiKey
        self.inventory = inventory
        self.pusher = pusher
    }

    static func iso(_ d: Date) -> String { d.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)) }

    /// Inventory snapshot and change feed, B2B price lists, and the admin side of stock movements, push and shipments.
    func addInventoryRoutes(to router: Router<BasicRequestContext>) {
        router.get("/api/v1/inventory") { request, _ in
            if let refusal = await self.gate(request) { return refusal }
            let size = min(1000, max(1, request.uri.queryParameters.get("page_size", as: Int.self) ?? 250))
            let offset = max(0, request.uri.queryParameters.get("page_token", as: Int.self) ?? 0)
            let page = await self.inventory.snapshot(offset: offset, limit: size)
            var body: [String: Any] = [
                "items": page.levels.map { ["sku": $0.sku, "warehouse": $0.warehouse, "available": $0.available, "updated_at": Self.iso($0.updatedAt)] }
            ]
            body["next_page_token"] = page.next.map { String($0) as Any } ?? NSNull()
            body["as_of_seq"] = page.asOf
            body["feed_cursor"] = String(page.asOf)
            return Self.json(.ok, body)
        }
        router.get("/api/v1/inventory/changes") { request, _ in
            if let refusal = await self.gate(request) { return refusal }
            let cursor = Int64(request.uri.queryParameters.get("cursor") ?? "0") ?? 0
            let limit = min(1000, max(1, request.uri.queryParameters.get("limit", as: Int.self) ?? 500))
            let changes = await self.inventory.changes(after: cursor, limit: limit)
            return Self.json(
                .ok,
                [
                    "changes": changes.map { c -> [String: Any] in
                        var o: [String: Any] = [
                            "seq": c.seq, "sku": c.sku, "warehouse": c.warehouse, "available": c.available, "changed_at": Self.iso(c.changedAt),
                        ]
                        if let ref = c.orderRef { o["order_ref"] = ref }
                        if let q = c.quantity { o["quantity"] = q }
                        return o
                    },
                    "cursor": String(changes.last?.seq ?? cursor),
                ])
        }
        router.get("/api/v1/inventory/allocations") { request, _ in
            if let refusal = await self.gate(request) { return refusal }
            let open = await self.inventory.openAllocations()
            return Self.json(
                .ok,
                [
                    "allocations": open.items.map {
                        ["order_ref": $0.orderRef, "sku": $0.sku, "warehouse": $0.warehouse, "quantity": $0.quantity] as [String: Any]
                    },
                    "as_of_seq": open.asOf,
                    "feed_cursor": String(open.asOf),
                ])
        }
        router.get("/api/v1/price-lists") { request, _ in
            if let refusal = await self.gate(request) { return refusal }
            let lists = await self.inventory.priceLists
            return Self.json(
                .ok,
                ["price_lists": lists.map { ["id": $0.id, "name": $0.name, "currency": $0.currency, "customer_group": $0.customerGroup, "prices": $0.prices.count] as [String: Any] }])
        }
        router.get("/api/v1/price-lists/{id}/prices") { request, context in
            if let refusal = await self.gate(request) { return refusal }
            guard let list = await self.inventory.priceLists.first(where: { $0.id == context.parameters.get("id") }) else {
                return Self.json(.notFound, ["error": "not_found"])
            }
            let size = min(1000, max(1, request.uri.queryParameters.get("page_size", as: Int.self) ?? 250))
            let offset = max(0, request.uri.queryParameters.get("page_token", as: Int.self) ?? 0)
            // `sku=A,B`: only those SKUs' prices (a delta's fresh read).
            var prices = list.prices
            if let skus = request.uri.queryParameters.get("sku").map({ Set($0.split(separator: ",").map(String.init)) }) {
                prices = prices.filter { skus.contains($0.sku) }
            }
            let page = prices.dropFirst(offset).prefix(size)
            var body: [String: Any] = [
                "price_list": list.id, "currency": list.currency,
                "prices": page.map { ["sku": $0.sku, "unit_price": "\($0.unitPrice)", "min_quantity": $0.minQuantity] as [String: Any] },
            ]
            body["next_page_token"] = offset + size < prices.count ? String(offset + size) as Any : NSNull()
            let jitter = await self.store.faults.answerJitterMs
            if jitter > 0 { try? await Task.sleep(for: .milliseconds(Int.random(in: 0...jitter))) }
            return Self.json(.ok, body)
        }
        router.put("/_admin/stock") { request, _ in
            struct Body: Decodable {
                var sku: String
                var warehouse: String
                var available: Int
            }
            let buffer = try await request.body.collect(upTo: 65536)
            guard let b = try? JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView)), b.available >= 0 else {
                return Self.json(.badRequest, ["error": "expected sku, warehouse, available >= 0"])
            }
            guard let c = await self.inventory.move(sku: b.sku, warehouse: b.warehouse, available: b.available) else {
                return Self.json(.notFound, ["error": "unknown sku or warehouse"])
            }
            return Self.json(.ok, ["seq": c.seq])
        }
        router.put("/_admin/prices") { request, _ in
            struct Body: Decodable {
                var priceList: String
                var sku: String
                var unitPrice: String
                enum CodingKeys: String, CodingKey {
                    case priceList = "price_list"
                    case sku
                    case unitPrice = "unit_price"
                }
            }
            let buffer = try await request.body.collect(upTo: 65536)
            guard let b = try? JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView)),
                let price = Decimal(string: b.unitPrice, locale: Locale(identifier: "en_US_POSIX")), price >= 0
            else {
                return Self.json(.badRequest, ["error": "expected price_list, sku, unit_price (a decimal string) >= 0"])
            }
            guard let c = await self.inventory.setPrice(list: b.priceList, sku: b.sku, unitPrice: price) else {
                return Self.json(.notFound, ["error": "unknown price list or sku"])
            }
            return Self.json(.ok, ["seq": c.seq])
        }
        router.post("/_admin/stock/movements") { request, _ in
            struct Body: Decodable { var count: Int }
            let buffer = try await request.body.collect(upTo: 65536)
            let count = (try? JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView)))?.count ?? 10
            let changes = await self.inventory.randomMovements(min(max(1, count), 100_000))
            return Self.json(.ok, ["movements": changes.count, "cursor": String(changes.last?.seq ?? 0)])
        }
        router.put("/_admin/push") { request, _ in
            struct Body: Decodable {
                var url: String
                var secret: String
            }
            let buffer = try await request.body.collect(upTo: 65536)
            guard let pusher = self.pusher else { return Self.json(.notImplemented, ["error": "push mode is off in this simulator"]) }
            guard let b = try? JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView)), URL(string: b.url) != nil, !b.secret.isEmpty else {
                return Self.json(.badRequest, ["error": "expected url (e.g. http://127.0.0.1:8080/webhooks/erp) and secret"])
            }
            await pusher.setTarget(.init(url: b.url, secret: b.secret))
            return Self.json(.ok, ["push": b.url])
        }
        router.delete("/_admin/push") { _, _ in
            await self.pusher?.setTarget(nil)
            return Self.json(.ok, ["push": "off"])
        }
        router.post("/_admin/shipments") { request, _ in
            struct Body: Decodable {
                var orderRef: String
                var carrier: String?
                var trackingNumber: String?
                enum CodingKeys: String, CodingKey {
                    case orderRef = "order_ref"
                    case carrier
                    case trackingNumber = "tracking_number"
                }
            }
            let buffer = try await request.body.collect(upTo: 65536)
            guard let pusher = self.pusher else { return Self.json(.notImplemented, ["error": "push mode is off in this simulator"]) }
            guard let b = try? JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView)), await self.store.order(ref: b.orderRef) != nil else {
                return Self.json(.badRequest, ["error": "expected order_ref of an existing sales order"])
            }
            let id = "erp-shipment-\(UUID().uuidString.lowercased())"
            let event: [String: Any] = [
                "shipment_id": id, "order_ref": b.orderRef, "carrier": b.carrier ?? "DHL", "tracking_number": b.trackingNumber ?? "000000",
                "shipped_at": Self.iso(Date()),
            ]
            let body = (try? JSONSerialization.data(withJSONObject: event)) ?? Data()
            let ok = await pusher.push(event: "shipment.created", eventId: id, body: body)
            return Self.json(ok ? .ok : .badGateway, ["shipment_id": id, "pushed": ok])
        }
        router.get("/_inspect/oversold") { _, _ in
            Self.json(
                .ok,
                [
                    "units": await self.inventory.oversoldUnits, "orders": await self.inventory.oversoldOrders.sorted(),
                    "allocation_warehouse": self.inventory.allocationWarehouse,
                ])
        }
        router.get("/_inspect/push") { _, _ in
            Self.json(.ok, ["delivered": await self.pusher?.delivered ?? 0, "failed": await self.pusher?.failed ?? 0])
        }
    }

    struct UpsertBody: Decodable {
        var externalRef: String?
        var version: String
        var status: String?
        var currency: String
        var total: String
        var lines: [LineBody]
        enum CodingKeys: String, CodingKey {
            case externalRef = "external_ref"
            case version, status, currency, total, lines
        }
    }

    struct OrderBody {
        var externalRef: String?
        var version: String
        var status: String
        var currency: String
        var total: Decimal
        var lines: [ERPStore.Line]
        var raw: Data
    }

    enum Parsed {
        case success(OrderBody)
        case failure(Response)
        var refusal: Response {
            if case .failure(let r) = self { return r }
            return ERPSimulatorRoutes.json(.internalServerError, [:])
        }
    }

    /// A sales-order body as both profiles take it (money as decimal strings, exact).
    static func orderBody(_ request: Request) async throws -> Parsed {
        let buffer = try await request.body.collect(upTo: 4 * 1024 * 1024)
        let raw = Data(buffer.readableBytesView)
        guard let body = try? JSONDecoder().decode(UpsertBody.self, from: raw) else {
            return .failure(json(.badRequest, ["error": "invalid_body", "message": "expected version, currency, total, lines"]))
        }
        guard let total = Decimal(string: body.total, locale: Locale(identifier: "en_US_POSIX")) else {
            return .failure(json(.unprocessableContent, ["error": "invalid_amount", "field": "total"]))
        }
        var lines: [ERPStore.Line] = []
        for l in body.lines {
            guard let price = Decimal(string: l.unitPrice, locale: Locale(identifier: "en_US_POSIX")), l.quantity > 0 else {
                return .failure(json(.unprocessableContent, ["error": "invalid_line", "sku": l.sku]))
            }
            lines.append(.init(sku: l.sku, quantity: l.quantity, unitPrice: price))
        }
        return .success(
            OrderBody(
                externalRef: body.externalRef, version: body.version, status: body.status ?? "open", currency: body.currency,
                total: total, lines: lines, raw: raw))
    }

    /// Commits the order's stock, as an ERP does when a sales order is confirmed (or gives it back when cancelled).
    func allocate(_ o: ERPStore.SalesOrder) async {
        await inventory.allocate(
            document: o.documentNumber, orderRef: o.externalRef, lines: o.lines.map { (sku: $0.sku, quantity: $0.quantity) },
            cancelled: o.status == "cancelled")
    }

    static func notInProfile(_ profile: ERPStore.Profile, _ operation: String) -> Response {
        json(.methodNotAllowed, ["error": "not_in_profile", "message": "this ERP (\(profile.rawValue) profile) offers no \(operation)"])
    }

    struct LineBody: Decodable {
        var sku: String
        var quantity: Int
        var unitPrice: String
        enum CodingKeys: String, CodingKey {
            case sku, quantity
            case unitPrice = "unit_price"
        }
    }

    public func addRoutes(to router: Router<BasicRequestContext>) {
        addInventoryRoutes(to: router)
        router.put("/api/v1/sales-orders/{ref}") { request, context in
            if let refusal = await self.gate(request) { return refusal }
            guard self.store.profile == .upsert else { return Self.notInProfile(self.store.profile, "upsert by external reference") }
            let ref = context.parameters.get("ref") ?? ""
            let parsed = try await Self.orderBody(request)
            guard case .success(let body) = parsed else { return parsed.refusal }
            switch await self.store.upsert(
                ref: ref, version: body.version, status: body.status, currency: body.currency, total: body.total,
                lines: body.lines, document: body.raw)
            {
            case .created(let o):
                await self.allocate(o)
                return Self.json(.created, Self.orderJSON(o, extra: ["result": "created"]))
            case .updated(let o):
                await self.allocate(o)
                return Self.json(.ok, Self.orderJSON(o, extra: ["result": "updated"]))
            case .stale(let o): return Self.json(.ok, Self.orderJSON(o, extra: ["result": "stale_ignored"]))
            case .unknownSKU(let sku): return Self.json(.unprocessableContent, ["error": "unknown_sku", "sku": sku])
            }
        }
        // Plain profile: create (always a new document), overwrite by document number, read by document number.
        router.post("/api/v1/sales-orders") { request, _ in
            if let refusal = await self.gate(request) { return refusal }
            guard self.store.profile == .plain else { return Self.notInProfile(self.store.profile, "create") }
            let parsed = try await Self.orderBody(request)
            guard case .success(let body) = parsed else { return parsed.refusal }
            guard let ref = body.externalRef, !ref.isEmpty else {
                return Self.json(.badRequest, ["error": "invalid_body", "message": "expected external_ref"])
            }
            switch await self.store.create(
                ref: ref, version: body.version, status: body.status, currency: body.currency, total: body.total,
                lines: body.lines, document: body.raw, idempotencyKey: request.headers[.init("Idempotency-Key")!])
            {
            case .written(let o):
                await self.allocate(o)
                return Self.json(.created, Self.orderJSON(o, extra: ["result": "created"]))
            case .unknownSKU(let sku): return Self.json(.unprocessableContent, ["error": "unknown_sku", "sku": sku])
            case .notFound: return Self.json(.notFound, ["error": "not_found"])
            }
        }
        router.put("/api/v1/sales-orders/by-number/{number}") { request, context in
            if let refusal = await self.gate(request) { return refusal }
            guard self.store.profile == .plain else { return Self.notInProfile(self.store.profile, "update by document number") }
            let parsed = try await Self.orderBody(request)
            guard case .success(let body) = parsed else { return parsed.refusal }
            switch await self.store.update(
                number: context.parameters.get("number") ?? "", version: body.version, status: body.status,
                currency: body.currency, total: body.total, lines: body.lines, document: body.raw)
            {
            case .written(let o):
                await self.allocate(o)
                return Self.json(.ok, Self.orderJSON(o, extra: ["result": "updated"]))
            case .unknownSKU(let sku): return Self.json(.unprocessableContent, ["error": "unknown_sku", "sku": sku])
            case .notFound: return Self.json(.notFound, ["error": "not_found"])
            }
        }
        router.get("/api/v1/sales-orders/by-number/{number}") { request, context in
            if let refusal = await self.gate(request) { return refusal }
            guard let o = await self.store.order(number: context.parameters.get("number") ?? "") else {
                return Self.json(.notFound, ["error": "not_found"])
            }
            return Self.json(.ok, Self.orderJSON(o))
        }
        router.get("/api/v1/sales-orders/{ref}") { request, context in
            if let refusal = await self.gate(request) { return refusal }
            guard let o = await self.store.order(ref: context.parameters.get("ref") ?? "") else {
                return Self.json(.notFound, ["error": "not_found"])
            }
            return Self.json(.ok, Self.orderJSON(o))
        }
        router.get("/api/v1/sales-orders") { request, _ in
            if let refusal = await self.gate(request) { return refusal }
            // A filter by reference (both profiles; several documents if duplicates were created), else changed since.
            if let ref = request.uri.queryParameters.get("external_ref") {
                return Self.json(.ok, ["orders": await self.store.find(ref: ref).map { Self.orderJSON($0) }])
            }
            let since = request.uri.queryParameters.get("changed_since").flatMap { try? Date($0, strategy: .iso8601) } ?? .distantPast
            let list = await self.store.orders(changedSince: since)
            return Self.json(.ok, ["orders": list.map { Self.orderJSON($0) }])
        }
        router.post("/api/v1/credit-notes") { request, _ in
            if let refusal = await self.gate(request) { return refusal }
            guard self.store.profile == .plain else { return Self.notInProfile(self.store.profile, "create credit note") }
            struct Body: Decodable {
                var orderNumber: String
                var refundRef: String
                var amount: String
                enum CodingKeys: String, CodingKey {
                    case orderNumber = "order_number"
                    case refundRef = "refund_ref"
                    case amount
                }
            }
            let buffer = try await request.body.collect(upTo: 1 << 20)
            guard let b = try? JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView)),
                let amount = Decimal(string: b.amount, locale: Locale(identifier: "en_US_POSIX"))
            else {
                return Self.json(.badRequest, ["error": "invalid_body", "message": "expected order_number, refund_ref, amount"])
            }
            switch await self.store.createCreditNote(
                orderNumber: b.orderNumber, refundRef: b.refundRef, amount: amount, idempotencyKey: request.headers[.init("Idempotency-Key")!])
            {
            case .created(let n), .existing(let n):
                return Self.json(.created, ["credit_note_number": n.number, "refund_ref": n.refundRef, "amount": "\(n.amount)"])
            case .orderNotFound:
                return Self.json(.notFound, ["error": "order_not_found", "message": "no sales order \(b.orderNumber)"])
            }
        }
        router.get("/api/v1/credit-notes") { request, _ in
            if let refusal = await self.gate(request) { return refusal }
            let ref = request.uri.queryParameters.get("refund_ref") ?? ""
            let notes = await self.store.findCreditNotes(refundRef: ref)
            return Self.json(
                .ok,
                ["credit_notes": notes.map { ["credit_note_number": $0.number, "refund_ref": $0.refundRef, "amount": "\($0.amount)"] }])
        }
        router.put("/api/v1/customers/{ref}") { request, context in
            if let refusal = await self.gate(request) { return refusal }
            let buffer = try await request.body.collect(upTo: 1 << 20)
            guard (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView))) is [String: Any] else {
                return Self.json(.badRequest, ["error": "invalid_body", "message": "expected a JSON object"])
            }
            let c = await self.store.upsertCustomer(ref: context.parameters.get("ref") ?? "", document: Data(buffer.readableBytesView))
            return Self.json(c.writes == 1 ? .created : .ok, ["external_ref": c.externalRef, "customer_number": c.customerNumber])
        }
        router.put("/api/v1/sales-orders/{ref}/refunds/{refundRef}") { request, context in
            if let refusal = await self.gate(request) { return refusal }
            guard self.store.profile == .upsert else { return Self.notInProfile(self.store.profile, "refund by reference") }
            let buffer = try await request.body.collect(upTo: 1 << 20)
            struct RefundBody: Decodable { var amount: String }
            guard let body = try? JSONDecoder().decode(RefundBody.self, from: Data(buffer.readableBytesView)),
                let amount = Decimal(string: body.amount, locale: Locale(identifier: "en_US_POSIX"))
            else {
                return Self.json(.badRequest, ["error": "invalid_body", "message": "expected amount"])
            }
            let orderRef = context.parameters.get("ref") ?? ""
            switch await self.store.recordRefund(orderRef: orderRef, refundRef: context.parameters.get("refundRef") ?? "", amount: amount) {
            case .created(let n):
                return Self.json(.created, ["credit_note_number": n.number, "amount": "\(n.amount)", "result": "created"])
            case .existing(let n):
                return Self.json(.ok, ["credit_note_number": n.number, "amount": "\(n.amount)", "result": "existing"])
            case .orderNotFound:
                return Self.json(.notFound, ["error": "order_not_found", "message": "no sales order \(orderRef)"])
            }
        }
        router.put("/_admin/faults") { request, _ in
            let buffer = try await request.body.collect(upTo: 65536)
            guard let f = try? JSONDecoder().decode(ERPStore.Faults.self, from: Data(buffer.readableBytesView)) else {
                return Self.json(.badRequest, ["error": "invalid_faults"])
            }
            await self.store.setFaults(f)
            return Self.json(.ok, ["faults": "set"])
        }
        router.put("/_admin/maintenance") { request, _ in
            struct Body: Decodable { var seconds: Double }
            let buffer = try await request.body.collect(upTo: 65536)
            guard let b = try? JSONDecoder().decode(Body.self, from: Data(buffer.readableBytesView)), b.seconds > 0, b.seconds <= 3600 else {
                return Self.json(.badRequest, ["error": "expected {\"seconds\": N} with 0 < N <= 3600"])
            }
            await self.store.requestMaintenance(.milliseconds(Int64(b.seconds * 1000)))
            return Self.json(.accepted, ["maintenance_seconds": b.seconds])
        }
        router.delete("/_admin/faults") { _, _ in
            await self.store.setFaults(.init())
            return Self.json(.ok, ["faults": "cleared"])
        }
        // Items added to the ERP (PUT) or withdrawn from it (DELETE: order lines with them are refused with 422
        // unknown_sku until added again); the body is a JSON array of SKUs.
        for (method, verb) in [(HTTPRequest.Method.put, "added"), (.delete, "removed")] {
            router.on("/_admin/skus", method: method) { request, _ in
                let buffer = try await request.body.collect(upTo: 1 << 20)
                guard let skus = try? JSONDecoder().decode([String].self, from: Data(buffer.readableBytesView)) else {
                    return Self.json(.badRequest, ["error": "expected a JSON array of SKUs"])
                }
                if method == .put { await self.store.addSKUs(skus) } else { await self.store.removeSKUs(skus) }
                return Self.json(.ok, [verb: skus.count])
            }
        }
        router.get("/_inspect/sales-orders/{ref}/writes") { _, context in
            let c = await self.store.writeCounts(ref: context.parameters.get("ref") ?? "")
            return Self.json(.ok, ["creates": c.creates, "updates": c.updates])
        }
        router.get("/_inspect/calls") { request, _ in
            let ref = request.uri.queryParameters.get("ref")
            let calls = await self.store.calls.filter { ref == nil || $0.ref == ref }
            let data = (try? JSONEncoder().encode(calls)) ?? Data("[]".utf8)
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        router.get("/_inspect/duplicates") { _, _ in
            Self.json(.ok, ["sales_orders": await self.store.duplicatedRefs().sorted(), "credit_notes": await self.store.duplicatedRefunds().sorted()])
        }
        router.get("/_inspect/created") { _, _ in
            Self.json(.ok, await self.store.creationTimes())
        }
        router.get("/_inspect/stats") { _, _ in
            Self.json(
                .ok,
                [
                    "orders": await self.store.orderCount, "customers": await self.store.customerCount,
                    "credit_notes": await self.store.creditNoteCount, "fault_hits": await self.store.faultHits,
                    "profile": self.store.profile.rawValue, "calls": await self.store.calls.count,
                    "duplicated_refs": await self.store.duplicatedRefs().count,
                ])
        }
    }

    /// API key check, then injected faults (latency, 429, error rate). Nil when the call may proceed.
    func gate(_ request: Request) async -> Response? {
        guard request.headers[.authorization] == "Bearer \(apiKey)" else {
            return Self.json(.unauthorized, ["error": "unauthorized"])
        }
        await store.recordArrival()
        let f = await store.faults
        var delay = f.latencyMs + (f.latencyJitterMs > 0 ? Int.random(in: 0...f.latencyJitterMs) : 0)
        if f.slowRate > 0, Double.random(in: 0..<1) < f.slowRate { delay += f.slowMs }
        if delay > 0 { try? await Task.sleep(for: .milliseconds(delay)) }
        if f.timeoutRate > 0, Double.random(in: 0..<1) < f.timeoutRate {
            await store.recordFaultHit()
            try? await Task.sleep(for: .milliseconds(f.hangMs))
            return Self.json(.gatewayTimeout, ["error": "timeout"])
        }
        if let retryAfter = f.rateLimitedRetryAfter {
            await store.recordFaultHit()
            var r = Self.json(.tooManyRequests, ["error": "rate_limited"])
            r.headers[.retryAfter] = String(retryAfter)
            return r
        }
        if f.errorRate > 0, Double.random(in: 0..<1) < f.errorRate {
            await store.recordFaultHit()
            return Self.json(HTTPResponse.Status(code: f.errorStatus), ["error": "injected_fault"])
        }
        return nil
    }

    /// The stored document with the ERP's own fields on top.
    static func orderJSON(_ o: ERPStore.SalesOrder, extra: [String: Any] = [:]) -> [String: Any] {
        var d = (try? JSONSerialization.jsonObject(with: o.document)) as? [String: Any] ?? [:]
        let own: [String: Any] = [
            "external_ref": o.externalRef, "document_number": o.documentNumber, "version": o.version,
            "status": o.status, "currency": o.currency, "total": "\(o.total)",
            "refunded_total": "\(o.refundedTotal)",
        ]
        for (k, v) in own { d[k] = v }
        if d["lines"] == nil {
            d["lines"] = o.lines.map { ["sku": $0.sku, "quantity": $0.quantity, "unit_price": "\($0.unitPrice)"] }
        }
        for (k, v) in extra { d[k] = v }
        return d
    }

    static func json(_ status: HTTPResponse.Status, _ object: [String: Any]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
