import Foundation

/// When a shop is expected to take orders (`alerter.business_hours`, e.g. `Mon-Fri 09:00-18:00`, `Mon,Wed,Sat
/// 10:00-16:30`, `daily 08:00-22:00`), in a time zone. Outside these hours silence is normal; inside them the
/// alerter's `silence` rule expects orders. Hours end exclusive; `24:00` is the end of the day. Hours that cross
/// midnight are written as two days' worth (`daily 18:00-24:00` and the next morning are not one range).
public struct BusinessHours: Sendable, Equatable {
    /// Weekdays as `Calendar` numbers them: 1 Sunday ... 7 Saturday.
    public var days: Set<Int>
    /// Minutes after midnight, start inclusive, end exclusive.
    public var start: Int
    public var end: Int
    public var timeZone: TimeZone

    static let dayNames = ["sun": 1, "mon": 2, "tue": 3, "wed": 4, "thu": 5, "fri": 6, "sat": 7]

    /// Parses `<days> <HH:MM>-<HH:MM>`; nil with the reason otherwise.
    public static func parse(_ raw: String, timeZone: TimeZone) -> Result<BusinessHours, ParseError> {
        let parts = raw.trimmingCharacters(in: .whitespaces).split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 2 else { return .failure(ParseError("expected '<days> <HH:MM>-<HH:MM>', e.g. 'Mon-Fri 09:00-18:00'")) }
        var days = Set<Int>()
        let dayText = parts[0].lowercased()
        if dayText == "daily" || dayText == "*" {
            days = Set(1...7)
        } else {
            for item in dayText.split(separator: ",") {
                let range = item.split(separator: "-")
                guard (1...2).contains(range.count), let a = dayNames[String(range[0].prefix(3))],
                    let b = dayNames[String(range.last!.prefix(3))]
                else { return .failure(ParseError("unknown day in '\(item)' (Mon, Tue, Wed, Thu, Fri, Sat, Sun, daily)")) }
                // Mon-Fri, and also Fri-Mon across the week's end.
                var d = a
                while true {
                    days.insert(d)
                    if d == b { break }
                    d = d % 7 + 1
                }
            }
        }
        let times = parts[1].split(separator: "-")
        guard times.count == 2, let start = minutes(times[0]), let end = minutes(times[1]), start < end else {
            return .failure(ParseError("expected hours as HH:MM-HH:MM with the start before the end, e.g. 09:00-18:00"))
        }
        return .success(BusinessHours(days: days, start: start, end: end, timeZone: timeZone))
    }

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        init(_ d: String) { description = d }
    }

    static func minutes(_ s: Substring) -> Int? {
        let hm = s.split(separator: ":")
        guard hm.count == 2, let h = Int(hm[0]), let m = Int(hm[1]), (0...24).contains(h), (0..<60).contains(m), h * 60 + m <= 1440 else {
            return nil
        }
        return h * 60 + m
    }

    public init(days: Set<Int>, start: Int, end: Int, timeZone: TimeZone) {
        self.days = days
        self.start = start
        self.end = end
        self.timeZone = timeZone
    }

    /// Whether `date` falls inside the hours.
    public func contains(_ date: Date) -> Bool {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        guard let weekday = c.weekday, days.contains(weekday) else { return false }
        let minute = (c.hour ?? 0) * 60 + (c.minute ?? 0)
        return minute >= start && minute < end
    }

    /// Whether the whole span from `from` to `to` lies inside the hours (checked minute by minute: spans here are
    /// minutes to hours long, and this stays right across DST changes and day boundaries).
    public func covers(from: Date, to: Date) -> Bool {
        guard from <= to else { return false }
        var t = from
        var steps = 0
        while t < to, steps < 7 * 1440 {
            if !contains(t) { return false }
            t = t.addingTimeInterval(60)
            steps += 1
        }
        return contains(max(from, to.addingTimeInterval(-1)))
    }
}
