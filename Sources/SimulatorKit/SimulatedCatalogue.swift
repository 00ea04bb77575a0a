import Foundation

/// The sandbox's shared catalogue conventions: both simulators name item n the same way, so erp-sim's stock and
/// shopify-sim's orders and inventory items line up without configuration.
public enum SimulatedCatalogue {
    /// `SKU-00042`.
    public static func sku(_ n: Int) -> String { "SKU-" + String(format: "%05d", n) }

    /// Item n's retail (DTC) price, 5.00 to 99.99: what shopify-sim sells it for and erp-sim's retail list records,
    /// so the two agree until a test changes one of them.
    public static func listPrice(_ n: Int) -> Decimal {
        var rng = SplitMix64(seed: 0x5EED_0000 &+ UInt64(max(0, n)))
        return Decimal(500 + Int(rng.next() % 9500)) / 100
    }
}

extension Decimal {
    /// Rounded half-up to two decimals.
    public var roundedToCents: Decimal {
        var v = self
        var r = Decimal()
        NSDecimalRound(&r, &v, 2, .plain)
        return r
    }
}
