import Foundation

/// The sandbox's shared catalogue conventions: both simulators name item n the same way, so erp-sim's stock and
/// shopify-sim's orders and inventory items line up without configuration.
public enum SimulatedCatalogue {
    /// `SKU-00042`.
    public static func sku(_ n: Int) -> String { "SKU-" + String(format: "%05d", n) }
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
