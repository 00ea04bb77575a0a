import Foundation

/// Settings of the reconciler (`reconciler.*`).
public struct ReconcilerSettings: Sendable, Equatable {
    /// A domain the reconciler compares.
    public enum Domain: String, Sendable, CaseIterable, Codable {
        case orders, inventory, prices, catalogue
    }

    /// One domain's schedule and window.
    public struct DomainSchedule: Sendable, Equatable {
        /// Nil: on demand only (`bridgectl reconcile run`).
        public var schedule: CronSchedule?
        /// How far back a run looks (orders: updated in this window).
        public var window: Duration

        public init(schedule: CronSchedule?, window: Duration) {
            self.schedule = schedule
            self.window = window
        }
    }

    public var timeZone: TimeZone
    public var reportsDir: String
    public var domains: [Domain: DomainSchedule]
    /// Orders changed more recently than this are still on their way (webhooks in the queues): not compared.
    public var settle: Duration
    /// Differences itemised in a report, per domain and shop (the counts are always complete).
    public var itemised: Int
    /// Above this many orders in a window, a bulk operation reads them (cheaper than paging at about 3 points an order).
    public var bulkThreshold: Int
    /// Inventory: a level off by at most this many units is reported as within the allowance (changes in flight),
    /// not corrected.
    public var inventoryAllowance: Int
    /// Orders: how long a run waits, after re-sending, for the ERP to show each re-sent order as Shopify has it. Only
    /// an order the ERP then matches counts as healed; the rest are reported `heal_unconfirmed` (the next run looks
    /// again). Zero: nothing is confirmed (every re-sent order is reported unconfirmed). At most 15 minutes: the run
    /// holds its `q.reconcile` delivery meanwhile, and the broker's `consumer_timeout` (30 min) must not close it.
    public var verifyWait: Duration

    public init(
        timeZone: TimeZone = .gmt, reportsDir: String = "data/reconcile-reports", domains: [Domain: DomainSchedule] = Self.defaultDomains(.gmt),
        settle: Duration = .seconds(120), itemised: Int = 50, bulkThreshold: Int = 2500, inventoryAllowance: Int = 0,
        verifyWait: Duration = .seconds(120)
    ) {
        self.verifyWait = verifyWait
        self.inventoryAllowance = inventoryAllowance
        self.timeZone = timeZone
        self.reportsDir = reportsDir
        self.domains = domains
        self.settle = settle
        self.itemised = itemised
        self.bulkThreshold = bulkThreshold
    }

    static let defaultSchedules: [Domain: (cron: String, window: Duration)] = [
        .orders: ("0 * * * *", .seconds(48 * 3600)),
        .inventory: ("0 2 * * *", .seconds(86400)),
        .prices: ("0 2 * * *", .seconds(86400)),
        .catalogue: ("30 2 * * *", .seconds(86400)),
    ]

    public static func defaultDomains(_ zone: TimeZone) -> [Domain: DomainSchedule] {
        defaultSchedules.mapValues { .init(schedule: try? CronSchedule($0.cron, timeZone: zone), window: $0.window) }
    }

    /// Parses `reconciler.*`.
    public static func parse(_ p: inout SettingsParser) -> ReconcilerSettings {
        let zoneName = p.string("reconciler.time_zone", default: "UTC")
        var zone = TimeZone.gmt
        if let z = TimeZone(identifier: zoneName) {
            zone = z
        } else {
            p.fail("reconciler.time_zone", "'\(zoneName)' is not a time zone", fix: "use an IANA name such as UTC or Europe/Berlin")
        }
        var domains: [Domain: DomainSchedule] = [:]
        for domain in Domain.allCases {
            let d = defaultSchedules[domain]!
            let key = "reconciler.\(domain.rawValue)"
            let text = p.string("\(key).schedule", default: d.cron)
            var schedule: CronSchedule?
            if text != "off" {
                do {
                    schedule = try CronSchedule(text, timeZone: zone)
                } catch {
                    p.fail("\(key).schedule", error.description, fix: "a cron expression such as \"0 2 * * *\", or off")
                }
            }
            domains[domain] = DomainSchedule(
                schedule: schedule, window: p.duration("\(key).window", default: d.window, range: .seconds(60) ... .seconds(90 * 86400)))
        }
        return ReconcilerSettings(
            timeZone: zone, reportsDir: p.string("reconciler.reports_dir", default: "data/reconcile-reports"), domains: domains,
            settle: p.duration("reconciler.settle", default: .seconds(120), range: .zero ... .seconds(86400)),
            itemised: p.int("reconciler.itemised", default: 50, range: 0...10_000),
            bulkThreshold: p.int("reconciler.bulk_threshold", default: 2500, range: 1...10_000_000),
            inventoryAllowance: p.int("reconciler.inventory.allowance", default: 0, range: 0...1_000_000),
            verifyWait: p.duration("reconciler.verify_wait", default: .seconds(120), range: .zero ... .seconds(900)))
    }
}
