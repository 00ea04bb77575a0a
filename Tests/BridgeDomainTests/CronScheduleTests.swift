import BridgeDomain
import Foundation
import Testing

/// `CronSchedule`, the reconciler's schedules: fixed cases worked out by hand (dates checked with Python's
/// `zoneinfo`), and an oracle that walks minute by minute and matches each field directly.
@Suite("cron schedules: the next firing, time zones and DST, Vixie's day rule, bad expressions refused")
struct CronScheduleTests {
    static func utc(_ text: String) -> Date { try! Date(text, strategy: .iso8601) }
    static let berlin = TimeZone(identifier: "Europe/Berlin")!

    @Test("fixed cases: hourly, a weekday window across a weekend, a step, a month's last day")
    func fixed() throws {
        #expect(try CronSchedule("0 * * * *").next(after: Self.utc("2026-12-04T10:17:30Z")) == Self.utc("2026-12-04T11:00:00Z"))
        // Strictly after: at 11:00:00 exactly, the next is 12:00.
        #expect(try CronSchedule("0 * * * *").next(after: Self.utc("2026-12-04T11:00:00Z")) == Self.utc("2026-12-04T12:00:00Z"))
        // 2026-12-04 is a Friday: after 17:50 the next quarter hour of a weekday 9-17 is Monday 09:00.
        let office = try CronSchedule("*/15 9-17 * * 1-5")
        #expect(office.next(after: Self.utc("2026-12-04T17:50:00Z")) == Self.utc("2026-12-07T09:00:00Z"))
        #expect(office.next(after: Self.utc("2026-12-07T09:00:00Z")) == Self.utc("2026-12-07T09:15:00Z"))
        #expect(try CronSchedule("0-30/10 3 * * *").next(after: Self.utc("2026-12-04T03:25:00Z")) == Self.utc("2026-12-04T03:30:00Z"))
        #expect(try CronSchedule("0 0 31 * *").next(after: Self.utc("2026-11-01T00:00:00Z")) == Self.utc("2026-12-31T00:00:00Z"))
        // Day of week 7 is Sunday too.
        #expect(try CronSchedule("0 6 * * 7").next(after: Self.utc("2026-12-04T00:00:00Z")) == Self.utc("2026-12-06T06:00:00Z"))
        #expect(try CronSchedule("0 0 30 2 *").next(after: Self.utc("2026-12-04T00:00:00Z")) == nil, "February 30th never comes")
    }

    @Test("both day fields restricted: a day matches if either does (Vixie cron)")
    func vixieDayRule() throws {
        // The 13th, or any Friday: after Saturday 2026-12-05 the next is Friday the 11th, then Sunday the 13th.
        let s = try CronSchedule("0 0 13 * 5")
        #expect(s.next(after: Self.utc("2026-12-05T00:00:00Z")) == Self.utc("2026-12-11T00:00:00Z"))
        #expect(s.next(after: Self.utc("2026-12-11T00:00:00Z")) == Self.utc("2026-12-13T00:00:00Z"))
    }

    @Test("read in the configured zone; a time skipped by DST is skipped, a repeated one fires once")
    func timeZones() throws {
        let nightly = try CronSchedule("0 2 * * *", timeZone: Self.berlin)
        // Winter: 02:00 CET is 01:00 UTC.
        #expect(nightly.next(after: Self.utc("2026-12-04T12:00:00Z")) == Self.utc("2026-12-05T01:00:00Z"))
        // 2026-03-29: Berlin goes from 02:00 to 03:00, so there is no 02:00; the next is 2026-03-30 02:00 CEST.
        #expect(nightly.next(after: Self.utc("2026-03-28T12:00:00Z")) == Self.utc("2026-03-30T00:00:00Z"))
        // 2026-10-25: 02:00-03:00 happens twice (CEST, then CET). One firing that day, then the next day's.
        let first = try #require(nightly.next(after: Self.utc("2026-10-24T12:00:00Z")))
        #expect([Self.utc("2026-10-25T00:00:00Z"), Self.utc("2026-10-25T01:00:00Z")].contains(first))
        #expect(nightly.next(after: first) == Self.utc("2026-10-26T01:00:00Z"))
    }

    @Test("every expression refused with a reason: field count, range, step, reversed range, junk")
    func invalid() {
        for bad in ["0 * * *", "0 * * * * *", "60 * * * *", "0 24 * * *", "0 0 0 * *", "0 0 * 13 *", "0 0 * * 8", "*/0 * * * *", "5-1 * * * *", "a * * * *", "1,,2 * * * *", ""] {
            #expect(throws: CronSchedule.Invalid.self, "'\(bad)'") { try CronSchedule(bad) }
        }
    }

    /// The oracle: each minute from `after` on, matched against the fields' values written out, not parsed.
    static func oracle(
        after: Date, minutes: Set<Int>, hours: Set<Int>, days: Set<Int>?, weekdays: Set<Int>?, zone: TimeZone
    ) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        var t = (after.timeIntervalSince1970 / 60).rounded(.down) * 60 + 60
        for _ in 0..<(60 * 24 * 40) {
            let d = Date(timeIntervalSince1970: t)
            let c = calendar.dateComponents([.minute, .hour, .day, .weekday], from: d)
            let dom = days.map { $0.contains(c.day!) }
            let dow = weekdays.map { $0.contains(c.weekday! - 1) }
            let dayOK: Bool =
                switch (dom, dow) {
                case let (a?, b?): a || b
                case let (a?, nil): a
                case let (nil, b?): b
                case (nil, nil): true
                }
            if minutes.contains(c.minute!), hours.contains(c.hour!), dayOK { return d }
            t += 60
        }
        return nil
    }

    @Test("against a minute-by-minute oracle at 200 random instants, in UTC and New York")
    func oracleAgreement() throws {
        let cases: [(String, Set<Int>, Set<Int>, Set<Int>?, Set<Int>?)] = [
            ("*/20 * * * *", [0, 20, 40], Set(0...23), nil, nil),
            ("5 3,15 * * *", [5], [3, 15], nil, nil),
            ("30 8-10 * * 1-5", [30], [8, 9, 10], nil, [1, 2, 3, 4, 5]),
            ("0 0 1,15 * *", [0], [0], [1, 15], nil),
            ("45 23 10 * 0", [45], [23], [10], [0]),
        ]
        var rng = SystemRandomNumberGenerator()
        let base = Self.utc("2026-01-01T00:00:00Z").timeIntervalSince1970
        for zone in [TimeZone.gmt, TimeZone(identifier: "America/New_York")!] {
            for (text, minutes, hours, days, weekdays) in cases {
                let schedule = try CronSchedule(text, timeZone: zone)
                for _ in 0..<20 {
                    let after = Date(timeIntervalSince1970: base + Double(Int.random(in: 0..<(365 * 86400), using: &rng)))
                    let expected = Self.oracle(after: after, minutes: minutes, hours: hours, days: days, weekdays: weekdays, zone: zone)
                    #expect(schedule.next(after: after) == expected, "\(text) in \(zone.identifier) after \(after)")
                }
            }
        }
    }
}
