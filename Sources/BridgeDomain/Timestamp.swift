import Foundation

/// ISO-8601 timestamps as Shopify and the ERP send them (`2026-11-27T10:00:00-05:00`, `...Z`, with or without
/// fractional seconds), converted to milliseconds since the epoch: the comparable form versions are stored in.
///
/// Uses Foundation's `Date.ISO8601FormatStyle` (Sendable, cheap) rather than `ISO8601DateFormatter`, whose creation
/// costs ~100 µs in ICU and which is not Sendable.
public enum Timestamp {
    /// Parses with or without fractional seconds (the fractional style accepts both).
    private static let parser = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let seconds = Date.ISO8601FormatStyle()

    public static func parse(_ s: String) -> Date? {
        try? parser.parse(s)
    }

    public static func milliseconds(_ s: String) -> Int64? {
        parse(s).map { milliseconds($0) }
    }

    public static func milliseconds(_ d: Date) -> Int64 {
        Int64((d.timeIntervalSince1970 * 1000).rounded())
    }

    /// `2026-11-27T15:00:00.000Z`: UTC with exactly the given milliseconds, sortable as a string. (Formatting the
    /// fraction from a `Date` can be off by one millisecond through binary floating point; this cannot.)
    public static func string(milliseconds ms: Int64) -> String {
        let (secs, frac) = ms.quotientAndRemainder(dividingBy: 1000)
        let (s, f) = frac < 0 ? (secs - 1, frac + 1000) : (secs, frac)
        let base = seconds.format(Date(timeIntervalSince1970: Double(s)))
        let digits = String(f)
        return base.dropLast() + "." + String(repeating: "0", count: 3 - digits.count) + digits + "Z"
    }
}
