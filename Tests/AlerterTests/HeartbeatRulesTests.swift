import Alerting
import BridgeDomain
import BridgeMessaging
import Foundation
import Testing

/// The heartbeat rules as pure functions: heartbeats in (with their own timestamps), alerts out.
@Suite("alerter: error rate, open circuits and silence from the workers' heartbeats")
struct HeartbeatRulesTests {
    static let t0 = Date(timeIntervalSince1970: 1_796_371_200)  // 2026-12-04T08:00:00Z, a Friday
    typealias Counts = BridgeEvents.WorkerHeartbeat.Counts

    static func beat(
        _ instance: String = "host:1:a", queue: String = BridgeTopology.orders.name, at seconds: Double, circuit: String? = nil,
        circuitSince: Double? = nil, _ shops: [String: Counts]
    ) -> BridgeEvents.WorkerHeartbeat {
        BridgeEvents.WorkerHeartbeat(
            queue: queue, instance: instance, at: t0.addingTimeInterval(seconds), intervalSeconds: 15, circuit: circuit,
            circuitSince: circuitSince.map { t0.addingTimeInterval($0) }, shops: shops)
    }

    static func rules(_ state: AlerterState, _ settings: AlerterSettings, at seconds: Double, shops: [String] = []) -> [Alert] {
        let now = t0.addingTimeInterval(seconds)
        return AlertRules.evaluate(
            errorFlows: state.flows(window: settings.errorWindow, now: now), quietFlows: state.flows(window: settings.quietFor, now: now),
            silentShops: shops, settings: settings, now: now)
    }

    @Test("error_rate: failures over the window per queue and shop, from cumulative counts of two workers; quiet below the rate or the minimum; gone once the window has moved past them")
    func errorRate() {
        let settings = AlerterSettings(errorRate: 0.05, errorWindow: .seconds(300), errorMinMessages: 20)
        let state = AlerterState(history: .seconds(300))
        // Worker a: 1,000 settled before the window (3 failed), then 40 more of which 2 failed (5%). Worker b: 60 more,
        // 1 failed. Together 100 settled, 3 failed within the window: 3% for acme. beta: 30 settled, 3 failed: 10%.
        state.heartbeat(Self.beat(at: 0, ["acme": Counts(handled: 1000, failed: 3), "beta": Counts(handled: 10, failed: 0)]))
        state.heartbeat(Self.beat("host:2:b", at: 10, ["acme": Counts(handled: 0, failed: 0)]))
        state.heartbeat(Self.beat(at: 400, ["acme": Counts(handled: 1040, failed: 5), "beta": Counts(handled: 40, failed: 3)]))
        state.heartbeat(Self.beat("host:2:b", at: 405, ["acme": Counts(handled: 60, failed: 1)]))
        var alerts = Self.rules(state, settings, at: 410)
        #expect(alerts.map(\.fingerprint) == ["error_rate|q.orders|beta"], "\(alerts)")
        #expect(alerts.first?.figures["failed"] == "3" && alerts.first?.figures["settled"] == "30" && alerts.first?.shop == "beta")
        #expect(alerts.first?.severity == .warning && alerts.first?.summary.hasPrefix("10.0% of beta deliveries on q.orders failed") == true)
        // acme reaches 5% with two more failures in the window: it fires too.
        state.heartbeat(Self.beat("host:2:b", at: 420, ["acme": Counts(handled: 62, failed: 4)]))
        alerts = Self.rules(state, settings, at: 421)
        #expect(Set(alerts.map(\.fingerprint)) == ["error_rate|q.orders|beta", "error_rate|q.orders|acme"], "\(alerts)")
        // Below the minimum of settled deliveries nothing fires, whatever the rate.
        let few = AlerterSettings(errorMinMessages: 200)
        #expect(Self.rules(state, few, at: 421).isEmpty)
        // The window moves on with no new failures (each worker's later heartbeats carry the same failed count).
        state.heartbeat(Self.beat(at: 800, ["acme": Counts(handled: 1140, failed: 5), "beta": Counts(handled: 140, failed: 3)]))
        state.heartbeat(Self.beat("host:2:b", at: 805, ["acme": Counts(handled: 162, failed: 4)]))
        state.heartbeat(Self.beat(at: 900, ["acme": Counts(handled: 1150, failed: 5), "beta": Counts(handled: 150, failed: 3)]))
        state.heartbeat(Self.beat("host:2:b", at: 905, ["acme": Counts(handled: 172, failed: 4)]))
        #expect(Self.rules(state, settings, at: 910).isEmpty)
        // Half or more failing is critical.
        state.heartbeat(Self.beat(at: 960, ["acme": Counts(handled: 1150, failed: 5), "beta": Counts(handled: 190, failed: 83)]))
        #expect(Self.rules(state, settings, at: 961).first { $0.shop == "beta" }?.severity == .critical)
    }

    @Test("circuit_open: a live worker's circuit open or probing for circuit_open_for fires, once per queue; closed, or the worker gone silent, it does not")
    func circuitOpen() {
        let settings = AlerterSettings(circuitOpenFor: .seconds(120))
        let state = AlerterState(history: .seconds(300))
        state.heartbeat(Self.beat(at: 0, circuit: "closed", ["acme": Counts(handled: 5)]))
        state.heartbeat(Self.beat("host:2:b", at: 0, circuit: "closed", ["acme": Counts(handled: 5)]))
        for t in [15.0, 60, 90] {
            state.heartbeat(Self.beat(at: t, circuit: "open", circuitSince: 10, ["acme": Counts(handled: 5)]))
            state.heartbeat(Self.beat("host:2:b", at: t + 1, circuit: "open", circuitSince: 12, ["acme": Counts(handled: 5)]))
        }
        #expect(Self.rules(state, settings, at: 100).isEmpty, "open for 90 s: not yet")
        state.heartbeat(Self.beat(at: 125, circuit: "half_open", circuitSince: 125, ["acme": Counts(handled: 5)]))
        state.heartbeat(Self.beat("host:2:b", at: 126, circuit: "open", circuitSince: 12, ["acme": Counts(handled: 5)]))
        let alerts = Self.rules(state, settings, at: 135)
        #expect(alerts.map(\.fingerprint) == ["circuit_open|q.orders"], "\(alerts)")
        #expect(alerts.first?.severity == .critical && alerts.first?.figures["open_circuits"] == "2" && alerts.first?.figures["open_seconds"] == "123")
        // Worker b stops sending heartbeats (its process died: no_consumer's business); worker a closes.
        state.heartbeat(Self.beat(at: 140, circuit: "closed", circuitSince: 139, ["acme": Counts(handled: 9)]))
        #expect(Self.rules(state, settings, at: 200).isEmpty)
    }

    @Test("silence: inside business hours, no order from a shop for quiet_for while the forwarder's heartbeats cover the span; outside the hours, or with the span not covered, nothing")
    func silence() throws {
        let berlin = try #require(TimeZone(identifier: "Europe/Berlin"))
        // 08:00Z is 09:00 in Berlin on that Friday.
        let hours = try BusinessHours.parse("Mon-Fri 09:00-18:00", timeZone: berlin).get()
        let settings = AlerterSettings(businessHours: hours, quietFor: .seconds(1800))
        let state = AlerterState(history: .seconds(1800))
        state.heartbeat(Self.beat(at: 0, ["acme.myshopify.com": Counts(handled: 10), "beta.myshopify.com": Counts(handled: 4)]))
        state.heartbeat(Self.beat(at: 900, ["acme.myshopify.com": Counts(handled: 10), "beta.myshopify.com": Counts(handled: 9)]))
        let shops = ["acme.myshopify.com", "beta.myshopify.com"]
        #expect(Self.rules(state, settings, at: 1000, shops: shops).isEmpty, "the heartbeats do not cover 30 min yet")
        state.heartbeat(Self.beat(at: 1800, ["acme.myshopify.com": Counts(handled: 10), "beta.myshopify.com": Counts(handled: 12)]))
        state.heartbeat(Self.beat(at: 1815, ["acme.myshopify.com": Counts(handled: 10), "beta.myshopify.com": Counts(handled: 12)]))
        let alerts = Self.rules(state, settings, at: 1820, shops: shops)
        #expect(alerts.map(\.fingerprint) == ["silence|acme.myshopify.com"], "\(alerts)")
        #expect(alerts.first?.shop == "acme.myshopify.com" && alerts.first?.summary == "no order from acme.myshopify.com for 30 min during business hours")
        // Without a shop list: all shops together (beta sold, so nothing).
        #expect(Self.rules(state, settings, at: 1820).isEmpty)
        // The same silence starting before 09:00 Berlin time is not silence during business hours.
        let early = AlerterSettings(businessHours: hours, quietFor: .seconds(1800))
        let before = AlerterState(history: .seconds(1800))
        before.heartbeat(Self.beat(at: -1800, ["acme.myshopify.com": Counts(handled: 1)]))
        before.heartbeat(Self.beat(at: 0, ["acme.myshopify.com": Counts(handled: 1)]))
        #expect(Self.rules(before, early, at: 10, shops: ["acme.myshopify.com"]).isEmpty)
        // Off when business_hours is off.
        #expect(Self.rules(state, AlerterSettings(quietFor: .seconds(1800)), at: 1820, shops: shops).isEmpty)
    }

    @Test("consumer_lag: a queue with consumers over lag_messages and deeper than lag_for ago; not while it drains, not before the alerter has watched that long, not without consumers (no_consumer's case)")
    func consumerLag() {
        let settings = AlerterSettings(lagMessages: 1000, lagFor: .seconds(600))
        let state = AlerterState()
        func at(_ seconds: Double, _ messages: Int, consumers: Int = 2) -> [Alert] {
            let now = Self.t0.addingTimeInterval(seconds)
            let o = state.observe(
                queue: "q.orders", expectedConsumer: "order-forwarder", messages: messages, consumers: consumers, deadLetters: 0, now: now,
                lagWindow: settings.lagFor)
            return AlertRules.evaluate([o], settings: settings, now: now).filter { $0.rule == "consumer_lag" }
        }
        #expect(at(0, 500).isEmpty)
        #expect(at(300, 1500).isEmpty, "not watched for 10 min yet")
        let alerts = at(600, 2500)
        #expect(alerts.map(\.fingerprint) == ["consumer_lag|q.orders"], "\(alerts)")
        #expect(alerts.first?.figures["messages_before"] == "500" && alerts.first?.figures["messages"] == "2500")
        #expect(at(900, 1400).isEmpty, "1,400 is less than the 1,500 of 10 min before: draining")
        #expect(at(1200, 900).isEmpty, "under lag_messages")
        #expect(at(1500, 5000, consumers: 0).isEmpty, "no consumer: no_consumer's business")
        #expect(at(1800, 6000).map(\.rule) == ["consumer_lag"])
    }

    @Test("business hours: day ranges (also across the week's end), lists, daily, 24:00; bad input is refused with the reason")
    func businessHours() throws {
        let utc = TimeZone(identifier: "UTC")!
        let weekdays = try BusinessHours.parse("Mon-Fri 09:00-18:00", timeZone: utc).get()
        #expect(weekdays.days == [2, 3, 4, 5, 6] && weekdays.start == 540 && weekdays.end == 1080)
        #expect(weekdays.contains(Self.t0.addingTimeInterval(3600)))  // Fri 09:00Z
        #expect(!weekdays.contains(Self.t0.addingTimeInterval(-3600)))  // Fri 07:00Z
        #expect(!weekdays.contains(Self.t0.addingTimeInterval(10 * 3600)))  // Fri 18:00Z (end exclusive)
        #expect(!weekdays.contains(Self.t0.addingTimeInterval(86400 + 3600)))  // Sat 09:00Z
        #expect(try BusinessHours.parse("Fri-Mon 10:00-16:30", timeZone: utc).get().days == [6, 7, 1, 2])
        #expect(try BusinessHours.parse("mon,wed,Sat 10:00-24:00", timeZone: utc).get().days == [2, 4, 7])
        #expect(try BusinessHours.parse("daily 00:00-24:00", timeZone: utc).get().covers(from: Self.t0, to: Self.t0.addingTimeInterval(7200)))
        #expect(!weekdays.covers(from: Self.t0.addingTimeInterval(-600), to: Self.t0.addingTimeInterval(3700)))
        for bad in ["Mon-Fri", "Mon-Fry 09:00-18:00", "Mon-Fri 18:00-09:00", "Mon-Fri 9-18", "Mon-Fri 09:00-25:00"] {
            #expect(throws: BusinessHours.ParseError.self, "\(bad)") { try BusinessHours.parse(bad, timeZone: utc).get() }
        }
        var p = SettingsParser(
            KeyValues(["alerter.business_hours": "Mon-Fri 09:00-18:00", "alerter.time_zone": "Europe/Berlin", "alerter.error_rate": "2.5%"]))
        let s = AlerterSettings.parse(&p)
        #expect(p.errors.isEmpty && s.errorRate == 0.025 && s.businessHours?.timeZone.identifier == "Europe/Berlin", "\(p.errors)")
        var bad = SettingsParser(KeyValues(["alerter.business_hours": "weekdays", "alerter.time_zone": "Mars/Olympus", "alerter.error_rate": "150%"]))
        _ = AlerterSettings.parse(&bad)
        #expect(Set(bad.errors.map(\.key)) == ["alerter.business_hours", "alerter.time_zone", "alerter.error_rate"], "\(bad.errors)")
    }
}
