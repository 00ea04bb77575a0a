import Foundation

/// ISO-8601 timestamps as Shopify and the ERP send them (`2026-11-27T10:00:00-05:00`, `...Z`, with or without
/// fractional seconds), converted to milliseconds since the epoch: the comparable form versions are stored in.
public enum Timestamp {
    public static func parse(_ s: String) -> Date? {
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        if let d = plain.date(from: s) { return d }
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return fractional.date(from: s)
    }

    public static func milliseconds(_ s: String) -> Int64? {
        parse(s).map { milliseconds($0) }
    }

    public static func milliseconds(_ d: Date) -> Int64 {
        Int64((d.timeIntervalSince1970 * 1000).rounded())
    }

    /// `2026-11-27T15:00:00.000Z`: UTC with milliseconds, sortable as a string.
    public static func string(milliseconds ms: Int64) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}
