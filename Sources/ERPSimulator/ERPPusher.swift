import AsyncHTTPClient
import Crypto
import Foundation
import NIOCore

/// Push mode: POSTs each event to `{url}/{event}` (e.g. ingest's `/webhooks/erp/inventory.changed`), signed with
/// `X-ERP-Signature` = base64(HMAC-SHA256(secret, body)), with `X-ERP-Event-Id` and `X-ERP-Triggered-At`. A non-2xx
/// or no answer is retried with backoff (5 attempts), then logged as failed.
public actor ERPPusher {
    public struct Target: Sendable, Equatable {
        public var url: String
        public var secret: String
        public init(url: String, secret: String) {
            self.url = url.hasSuffix("/") ? String(url.dropLast()) : url
            self.secret = secret
        }
    }

    public private(set) var target: Target?
    public private(set) var delivered = 0
    public private(set) var failed = 0
    private let client: HTTPClient
    public let retryDelays: [Duration]

    public init(retryDelays: [Duration] = [.milliseconds(200), .seconds(1), .seconds(5), .seconds(30)]) {
        self.retryDelays = retryDelays
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: .seconds(1), read: .seconds(5))
        client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config)
    }

    public func setTarget(_ t: Target?) { target = t }
    public func shutdown() async { try? await client.shutdown() }

    public static func sign(_ body: Data, secret: String) -> String {
        Data(HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Data(secret.utf8)))).base64EncodedString()
    }

    /// Sends one event; returns whether it was accepted (2xx) within the retries.
    @discardableResult
    public func push(event: String, eventId: String, body: Data, triggeredAt: Date = Date()) async -> Bool {
        guard let target else { return false }
        var request = HTTPClientRequest(url: "\(target.url)/\(event)")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-ERP-Signature", value: Self.sign(body, secret: target.secret))
        request.headers.add(name: "X-ERP-Event-Id", value: eventId)
        request.headers.add(name: "X-ERP-Triggered-At", value: triggeredAt.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)))
        request.body = .bytes(ByteBuffer(bytes: body))
        for attempt in 0...retryDelays.count {
            if let r = try? await client.execute(request, timeout: .seconds(5)) {
                _ = try? await r.body.collect(upTo: 1 << 20)
                if (200..<300).contains(Int(r.status.code)) {
                    delivered += 1
                    return true
                }
            }
            if attempt < retryDelays.count { try? await Task.sleep(for: retryDelays[attempt]) }
        }
        failed += 1
        return false
    }

    /// The body of a `price.changed` event.
    public static func priceChanged(_ c: ERPInventory.PriceChange) -> Data {
        let o: [String: Any] = [
            "seq": c.seq, "price_list": c.priceList, "sku": c.sku, "unit_price": "\(c.unitPrice)", "currency": c.currency,
            "changed_at": c.changedAt.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
        ]
        return (try? JSONSerialization.data(withJSONObject: o)) ?? Data()
    }

    /// The body of an `inventory.changed` event.
    public static func inventoryChanged(_ c: ERPInventory.Change) -> Data {
        var o: [String: Any] = [
            "seq": c.seq, "sku": c.sku, "warehouse": c.warehouse, "available": c.available,
            "changed_at": c.changedAt.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true)),
        ]
        if let ref = c.orderRef { o["order_ref"] = ref }
        if let q = c.quantity { o["quantity"] = q }
        return (try? JSONSerialization.data(withJSONObject: o)) ?? Data()
    }
}
