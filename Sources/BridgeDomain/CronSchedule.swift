import Foundation

/// A five-field cron expression (`minute hour day-of-month month day-of-week`) read in a time zone: `*`, lists
/// (`1,15`), ranges (`1-5`), steps (`*/15`, `0-30/10`); day of week 0-7 with 0 and 7 Sunday. When both day fields
/// are restricted a day matches if either does (as in Vixie cron). Written here because no cron package is among
/// the ecosystem's libraries this project may use; it is small and tested (`CronScheduleTests`).
public struct CronSchedule: Sendable, Equatable, CustomStringConvertible {
    public let expression: String
    public let timeZone: TimeZone
    let minutes: Set<Int>
    let hours: Set<Int>
    let days: Set<Int>
    let months: Set<Int>
    let weekdays: Set<Int>
    let daysRestricted: Bool
    let weekdaysRestricted: Bool

    public struct Invalid: Error, CustomStringConvertible {
        public var description: String
    }

    public init(_ expression: String, timeZone: TimeZone = .gmt) throws(Invalid) {
        let fields = expression.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
        guard fields.count == 5 else {
            throw Invalid(description: "'\(expression)' has \(fields.count) fields; expected 5 (minute hour day month weekday)")
        }
        self.expression = expression
        self.timeZone = timeZone
        minutes = try Self.field(fields[0], 0...59, "minute")
        hours = try Self.field(fields[1], 0...23, "hour")
        days = try Self.field(fields[2], 1...31, "day of month")
        months = try Self.field(fields[3], 1...12, "month")
        weekdays = Set(try Self.field(fields[4], 0...7, "day of week").map { $0 % 7 })
        daysRestricted = fields[2] != "*"
        weekdaysRestricted = fields[4] != "*"
    }

    public var description: String { "\(expression) (\(timeZone.identifier))" }

    static func field(_ text: String, _ range: ClosedRange<Int>, _ name: String) throws(Invalid) -> Set<Int> {
        var values: Set<Int> = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false)
            guard (1...2).contains(pieces.count) else { throw Invalid(description: "\(name) '\(part)' is not a value, range or step") }
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s > 0 else { throw Invalid(description: "\(name) step '\(pieces[1])' is not a positive number") }
                step = s
            }
            let base = pieces[0]
            var lower = range.lowerBound
            var upper = range.upperBound
            if base != "*" {
                let bounds = base.split(separator: "-", omittingEmptySubsequences: false)
                guard (1...2).contains(bounds.count), let a = Int(bounds[0]), let b = Int(bounds.last!) else {
                    throw Invalid(description: "\(name) '\(base)' is not a number or range")
                }
                lower = a
                upper = bounds.count == 2 ? b : (pieces.count == 2 ? range.upperBound : a)
            }
            guard range.contains(lower), range.contains(upper), lower <= upper else {
                throw Invalid(description: "\(name) '\(part)' is outside \(range.lowerBound)-\(range.upperBound)")
            }
            values.formUnion(stride(from: lower, through: upper, by: step))
        }
        return values
    }

    /// The first matching minute strictly after `date`, or nil if none within about five years (`0 0 30 2 *`).
    public func next(after date: Date) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let start = Date(timeIntervalSince1970: (date.timeIntervalSince1970 / 60).rounded(.down) * 60 + 60)
        var day = calendar.startOfDay(for: start)
        for _ in 0..<(366 * 5) {
            let c = calendar.dateComponents([.year, .month, .day, .weekday], from: day)
            let dayMatches: Bool
            let dom = days.contains(c.day!)
            let dow = weekdays.contains(c.weekday! - 1)
            switch (daysRestricted, weekdaysRestricted) {
            case (true, true): dayMatches = dom || dow
            case (true, false): dayMatches = dom
            case (false, true): dayMatches = dow
            case (false, false): dayMatches = true
            }
            if months.contains(c.month!), dayMatches {
                for hour in hours.sorted() {
                    for minute in minutes.sorted() {
                        // A wall-clock time skipped by a DST change yields nil (or the next valid time): skipped.
                        guard let candidate = calendar.date(bySettingHour: hour, minute: minute, second: 0, of: day),
                            calendar.component(.hour, from: candidate) == hour
                        else { continue }
                        if candidate >= start { return candidate }
                    }
                }
            }
            guard let following = calendar.date(byAdding: .day, value: 1, to: day) else { return nil }
            day = following
        }
        return nil
    }
}
