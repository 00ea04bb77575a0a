import Alerting
import BridgeDomain
import Foundation
import Reconciliation
import Testing

/// The reconciliation rules, fed with the reconciler's own reports (the event contract) and a real cron schedule.
@Suite("alerter: a failed, drifting or missed reconciliation")
struct ReconcileRulesTests {
    static let t0 = Date(timeIntervalSince1970: 1_796_371_200)  // 2026-12-04T08:00:00Z

    static func report(_ domain: ReconcilerSettings.Domain, shop: String, at seconds: Double, healed: Int = 0, reported: Int = 0,
        error: String? = nil, dryRun: Bool = false) throws -> Data
    {
        var r = ReconcileReport(
            runId: "run-\(domain.rawValue)-\(Int(seconds))", domain: domain, shop: shop, dryRun: dryRun, trigger: "schedule",
            startedAt: t0.addingTimeInterval(seconds - 30))
        r.finishedAt = t0.addingTimeInterval(seconds)
        r.healed = healed
        r.reported = reported
        r.mismatches = healed + reported > 0 ? ["missing_in_erp": healed, "orphan_in_erp": reported] : [:]
        r.error = error
        return try ReconcileReport.encoder.encode(r)
    }

    static func rules(_ state: AlerterState, at seconds: Double, schedules: [(String, CronSchedule)] = [], settings: AlerterSettings = .init())
        -> [Alert]
    {
        AlertRules.evaluate(
            reconciles: state.reconcileObservations, schedules: schedules.map { (domain: $0.0, schedule: $0.1) }, shops: ["acme", "beta"],
            watchingSince: t0, settings: settings, now: t0.addingTimeInterval(seconds))
    }

    @Test("reconcile_drift from a run's differences (healed and reported), resolved by a clean run; reconcile_failed from a run that stopped; dry runs change nothing")
    func driftAndFailure() throws {
        let state = AlerterState()
        try state.reconcileCompleted(json: Self.report(.orders, shop: "acme", at: 60, healed: 9, reported: 3))
        try state.reconcileCompleted(json: Self.report(.inventory, shop: "acme", at: 60, healed: 4))
        var alerts = Self.rules(state, at: 61)
        #expect(alerts.map(\.fingerprint) == ["reconcile_drift|orders|acme"], "\(alerts)")
        #expect(alerts.first?.figures["differences"] == "12" && alerts.first?.summary.contains("missing_in_erp=9") == true, "\(alerts)")
        // A dry run finding nothing is someone looking: the drift stays.
        try state.reconcileCompleted(json: Self.report(.orders, shop: "acme", at: 90, dryRun: true))
        #expect(Self.rules(state, at: 91).map(\.rule) == ["reconcile_drift"])
        // The next run is clean; the one after that fails.
        try state.reconcileCompleted(json: Self.report(.orders, shop: "acme", at: 3600))
        #expect(Self.rules(state, at: 3601).isEmpty)
        try state.reconcileCompleted(json: Self.report(.orders, shop: "acme", at: 7200, error: "Shopify answered 401"))
        alerts = Self.rules(state, at: 7201)
        #expect(alerts.map(\.fingerprint) == ["reconcile_failed|orders|acme"] && alerts.first?.summary.contains("401") == true, "\(alerts)")
        #expect(throws: (any Error).self) { try state.reconcileCompleted(json: Data(#"{"runId": 1}"#.utf8)) }
    }

    @Test("reconcile_missed: an hourly orders run due after the alerter started and unsuccessful past the grace, per shop; a success since clears it")
    func missed() throws {
        let hourly = try CronSchedule("0 * * * *", timeZone: TimeZone(identifier: "UTC")!)
        let settings = AlerterSettings(reconcileGrace: .seconds(1800))
        let state = AlerterState()
        // 08:00 is the start; the 09:00 run is due, and missed only from 09:30 on.
        #expect(Self.rules(state, at: 5300, schedules: [("orders", hourly)], settings: settings).isEmpty)
        try state.reconcileCompleted(json: Self.report(.orders, shop: "acme", at: 3660))
        let alerts = Self.rules(state, at: 5460, schedules: [("orders", hourly)], settings: settings)
        #expect(alerts.map(\.fingerprint) == ["reconcile_missed|orders|beta"], "\(alerts)")
        #expect(alerts.first?.figures["due"] == "2026-12-04T09:00:00.000Z")
        // 10:00 is due too by 10:30: acme's 09:01 success is before it.
        #expect(Set(Self.rules(state, at: 9060, schedules: [("orders", hourly)], settings: settings).map(\.fingerprint))
            == ["reconcile_missed|orders|acme", "reconcile_missed|orders|beta"])
        try state.reconcileCompleted(json: Self.report(.orders, shop: "acme", at: 7300))
        try state.reconcileCompleted(json: Self.report(.orders, shop: "beta", at: 7310))
        #expect(Self.rules(state, at: 9060, schedules: [("orders", hourly)], settings: settings).isEmpty)
    }
}
