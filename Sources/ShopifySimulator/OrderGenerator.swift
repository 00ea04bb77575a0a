import Foundation
import SimulatorKit

/// A deterministic stream of orders for tests and benchmarks: `count` orders with 1-`maxLines` lines over
/// `skuCount` SKUs (skewed: a few SKUs sell most, as in a sale), from `seed`. One order in six carries import duties.
public struct OrderGenerator: Sendable {
    public var seed: UInt64
    public var skuCount: Int
    public var maxLines: Int
    public var firstOrderId: Int64

    public init(seed: UInt64 = 42, skuCount: Int = 1000, maxLines: Int = 4, firstOrderId: Int64 = 9_007_199_254_740_993) {
        self.seed = seed
        self.skuCount = skuCount
        self.maxLines = maxLines
        self.firstOrderId = firstOrderId
    }

    public static func sku(_ n: Int) -> String { SimulatedCatalogue.sku(n) }

    public func orders(_ count: Int, at date: Date = Date()) -> [ShopifyOrderFixture] {
        var rng = SplitMix64(seed: seed)
        var out: [ShopifyOrderFixture] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            let id = firstOrderId + Int64(i)
            let lineCount = 1 + Int(rng.next() % UInt64(max(1, maxLines)))
            var lines: [ShopifyOrderFixture.Line] = []
            for j in 0..<lineCount {
                // Skew: square a uniform draw so low SKU numbers are picked far more often.
                let u = Double(rng.next() % 10_000) / 10_000
                let skuNumber = 1 + Int(u * u * Double(skuCount - 1))
                let cents = 500 + Int(rng.next() % 9500)
                let price = Decimal(cents) / 100
                let qty = 1 + Int(rng.next() % 3)
                let discount = (rng.next() % 4 == 0) ? Decimal(cents / 10) / 100 : 0
                let tax = ((price * Decimal(qty) - discount) * Decimal(19) / 100).roundedToCents
                lines.append(
                    .init(id: id * 100 + Int64(j), sku: Self.sku(skuNumber), variantId: 40_000_000_000 + Int64(skuNumber),
                        quantity: qty, price: price, discount: discount, tax: tax))
            }
            var o = ShopifyOrderFixture(id: id, updatedAt: date, lines: lines)
            o.collectDutiesIfAbroad()
            o.shipping = [.init(price: Decimal(495) / 100, tax: Decimal(94) / 100)]
            o.customerId = (rng.next() % 5 == 0) ? nil : 7_000_000_000_000 + Int64(rng.next() % 100_000)
            out.append(o)
        }
        return out
    }
}
