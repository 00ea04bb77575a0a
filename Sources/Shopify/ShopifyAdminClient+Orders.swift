import AsyncHTTPClient
import Foundation
import Metrics
import NIOCore

extension ShopifyAdminClient {
    /// One order as Shopify's REST resource (`GET /admin/api/{version}/orders/{id}.json`), exactly the body an
    /// `orders/updated` webhook carries, or nil if the shop no longer has it. The reconciler re-sends it to
    /// `q.orders` to heal an order the ERP lacks, so the forwarder maps it with the code that maps webhooks.
    ///
    /// REST, not GraphQL, because the forwarder's input is the webhook shape and the REST resource is that shape;
    /// it is read only for the orders that need healing. Shopify limits REST calls per app and shop (a leaky bucket
    /// of 40 requests, 2 a second on standard plans): a 429 is waited out (`Retry-After`) up to `attempts` times.
    public func restOrder(id: Int64, attempts: Int = 10) async throws(ShopifyAdminError) -> [UInt8]? {
        try await restOrderRead(id: id, attempts: attempts)?.body
    }

    /// `restOrder` with Shopify's own clock at the read: the answer's `Date` header (whole seconds), nil if absent.
    public func restOrderRead(id: Int64, attempts: Int = 10) async throws(ShopifyAdminError) -> (body: [UInt8], shopifyDate: Date?)? {
        let url = "\(configuration.adminURL)/admin/api/\(configuration.apiVersion)/orders/\(id).json"
        for _ in 1...max(1, attempts) {
            var request = HTTPClientRequest(url: url)
            request.headers.add(name: "X-Shopify-Access-Token", value: configuration.accessToken)
            let status: UInt
            let bytes: ByteBuffer
            let retryAfter: String?
            let date: Date?
            do {
                let response = try await client.execute(request, timeout: .milliseconds(configuration.timeout.wholeMilliseconds))
                status = response.status.code
                retryAfter = response.headers.first(name: "Retry-After")
                date = response.headers.first(name: "Date").flatMap(Self.httpDate)
                bytes = try await response.body.collect(upTo: 16 << 20)
            } catch {
                restCount("unavailable")
                throw .unavailable("\(error)")
            }
            switch status {
            case 200:
                restCount("ok")
                guard let object = try? JSONSerialization.jsonObject(with: Data(bytes.readableBytesView)) as? [String: Any],
                    let order = object["order"], let data = try? JSONSerialization.data(withJSONObject: order)
                else { throw .invalidResponse("order \(id): the answer has no order object") }
                return (Array(data), date)
            case 404:
                restCount("not_found")
                return nil
            case 401, 403:
                restCount("unauthorized")
                throw .unauthorized(status: Int(status), message: String(buffer: bytes).prefix(200).description)
            case 429:
                restCount("throttled")
                let seconds = retryAfter.flatMap(Double.init) ?? 1
                try? await Task.sleep(for: .milliseconds(Int64(min(60, max(0.1, seconds)) * 1000)))
                continue
            case 500...599:
                restCount("unavailable")
                throw .unavailable("HTTP \(status)")
            default:
                restCount("invalid_response")
                throw .invalidResponse("HTTP \(status): \(String(buffer: bytes).prefix(200))")
            }
        }
        throw .throttled(attempts: attempts)
    }

    private func restCount(_ outcome: String) {
        Counter(label: "shopify_rest_requests_total", dimensions: [("shop", configuration.shopId), ("outcome", outcome)]).increment()
    }
}

extension ShopifyAdminClient {
    /// An HTTP `Date` header (IMF-fixdate, RFC 9110 5.6.7: `Sun, 06 Nov 1994 08:49:37 GMT`).
    static func httpDate(_ value: String) -> Date? {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "GMT")
        f.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        return f.date(from: value)
    }
}
