import Foundation
import Metrics
import BridgeTestSupport
import Worker
import Testing

@Suite("Circuit breaker: open after consecutive outages, one probe, close on success")
struct CircuitBreakerTests {
    @Test("threshold failures open it; callers wait; after the probe interval one probe goes; success closes")
    func lifecycle() async throws {
        let b = CircuitBreaker(threshold: 3, probeInterval: .milliseconds(300), gauge: Gauge(label: "test_circuit"))
        try await b.acquire()
        #expect(await b.recordOutage() == false)
        #expect(await b.recordOutage() == false)
        #expect(await b.recordOutage() == true)
        #expect(await b.state == .open)

        let start = ContinuousClock.now
        try await b.acquire()  // the probe, after the interval
        #expect(ContinuousClock.now - start >= .milliseconds(250))
        #expect(await b.state == .halfOpen)

        // A second caller waits while the probe is in flight, and goes once the probe succeeded.
        let passed = Shared<Bool>(false)
        let second = Task {
            try await b.acquire()
            passed.withLock { $0 = true }
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(passed.value == false, "the second caller must wait for the probe's outcome")
        await b.recordSuccess()
        try await second.value
        #expect(passed.value)
        #expect(await b.state == .closed)
    }

    @Test("a failed probe reopens at once; a 429 opens for its Retry-After even below the threshold")
    func reopenAndRetryAfter() async throws {
        let b = CircuitBreaker(threshold: 1, probeInterval: .milliseconds(100), gauge: Gauge(label: "test_circuit2"))
        #expect(await b.recordOutage())
        try await b.acquire()
        #expect(await b.state == .halfOpen)
        #expect(await b.recordOutage())
        #expect(await b.state == .open)

        let c = CircuitBreaker(threshold: 100, probeInterval: .seconds(60), gauge: Gauge(label: "test_circuit3"))
        #expect(await c.recordOutage(retryAfter: .milliseconds(200)))
        let start = ContinuousClock.now
        try await c.acquire()
        #expect(ContinuousClock.now - start >= .milliseconds(150))
        #expect(ContinuousClock.now - start < .seconds(30), "Retry-After, not the probe interval")
    }

    @Test("stop releases waiters with CancellationError (graceful shutdown never hangs on an open circuit)")
    func stopReleases() async throws {
        let b = CircuitBreaker(threshold: 1, probeInterval: .seconds(600), gauge: Gauge(label: "test_circuit4"))
        await b.recordOutage()
        let waiter = Task { try await b.acquire() }
        try await Task.sleep(for: .milliseconds(100))
        await b.stop()
        await #expect(throws: CancellationError.self) { try await waiter.value }
    }
}
