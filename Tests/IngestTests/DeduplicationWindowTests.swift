import Foundation
import Ingest
import Testing

@Suite("Deduplication window: bounded memory, time-limited")
struct DeduplicationWindowTests {
    @Test("an id is remembered within the window and forgotten after it")
    func window() {
        let d = DeduplicationWindow(window: .seconds(60), capacity: 100)
        let t0 = ContinuousClock.now
        d.record("a", now: t0)
        #expect(d.contains("a", now: t0 + .seconds(59)))
        #expect(!d.contains("a", now: t0 + .seconds(60)))
        #expect(!d.contains("b", now: t0))
    }

    @Test("memory stays bounded: past capacity the oldest ids are forgotten")
    func capacity() {
        let d = DeduplicationWindow(window: .seconds(3600), capacity: 1000)
        let t0 = ContinuousClock.now
        for i in 0..<50_000 { d.record("id-\(i)", now: t0) }
        #expect(d.count <= 1001)
        #expect(d.contains("id-49999", now: t0))
        #expect(!d.contains("id-0", now: t0))
    }

    @Test("expired ids are dropped as new ones arrive")
    func expiry() {
        let d = DeduplicationWindow(window: .seconds(1), capacity: 1_000_000)
        let t0 = ContinuousClock.now
        for i in 0..<1000 { d.record("old-\(i)", now: t0) }
        d.record("new", now: t0 + .seconds(2))
        #expect(d.count == 1)
    }
}
