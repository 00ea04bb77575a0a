import Foundation

/// Money is `Decimal`, parsed strictly from the decimal strings Shopify and the ERP send ("12.50", "-3", "0.333").
/// Never `Double`: a binary float cannot hold 0.10 exactly and totals drift by cents.
public enum Money {
    private static let posix = Locale(identifier: "en_US_POSIX")

    /// Parses a plain decimal string. Refuses anything else (exponents, thousands separators, trailing garbage),
    /// which `Decimal(string:)` alone would half-accept ("12abc" -> 12).
    public static func parse(_ s: String) -> Decimal? {
        let t = s.trimmingCharacters(in: .whitespaces)
        guard !t.isEmpty, t.count <= 40 else { return nil }
        var digitsSeen = false
        var dotSeen = false
        for (i, c) in t.enumerated() {
            switch c {
            case "-" where i == 0, "+" where i == 0: continue
            case "0"..."9": digitsSeen = true
            case "." where !dotSeen: dotSeen = true
            default: return nil
            }
        }
        guard digitsSeen else { return nil }
        return Decimal(string: t, locale: posix)
    }

    /// The canonical string form for JSON bodies: plain digits, a dot, no exponent (`Decimal.description` is that
    /// for the magnitudes money takes).
    public static func string(_ d: Decimal) -> String {
        var v = d
        var rounded = Decimal()
        NSDecimalRound(&rounded, &v, 10, .plain)
        return rounded.description
    }

    /// Sum of a sequence of amounts.
    public static func sum<S: Sequence>(_ values: S) -> Decimal where S.Element == Decimal {
        values.reduce(Decimal(0), +)
    }
}

/// A money amount on the wire: a JSON string ("12.50") both ways, exact. A JSON number is refused when decoding
/// (it would pass through a binary float on the way).
public struct Amount: Codable, Sendable, Hashable, CustomStringConvertible, ExpressibleByIntegerLiteral {
    public var value: Decimal

    public init(_ value: Decimal) { self.value = value }
    public init(integerLiteral value: Int) { self.value = Decimal(value) }

    /// Parses a decimal string strictly (see `Money.parse`).
    public init?(_ string: String) {
        guard let v = Money.parse(string) else { return nil }
        value = v
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        let raw = try c.decode(String.self)
        guard let v = Money.parse(raw) else {
            throw DecodingError.dataCorruptedError(in: c, debugDescription: "'\(raw)' is not a decimal amount")
        }
        value = v
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(Money.string(value))
    }

    public var description: String { Money.string(value) }

    public static func + (a: Amount, b: Amount) -> Amount { Amount(a.value + b.value) }
    public static func - (a: Amount, b: Amount) -> Amount { Amount(a.value - b.value) }
}
