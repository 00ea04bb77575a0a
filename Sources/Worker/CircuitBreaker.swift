import Foundation
import Metrics

/// Pauses calls to a dependency (the ERP, Shopify) while it is down, so messages wait (unsettled, in the work queue) instead of cycling
/// through the retry levels.
///
/// closed --`threshold` consecutive outage failures--> open --`probeInterval`--> half-open (one probe call)
/// half-open --success--> closed;  half-open --failure--> open.  A 429 opens at once for its Retry-After.
///
/// Waiting is polling with a short sleep (bounded, cancellable); `stop()` releases every waiter with
/// `CancellationError` so a graceful shutdown never hangs on an open circuit.
public actor CircuitBreaker {
    public enum State: String, Sendable {
        case closed, open
        case halfOpen = "half_open"

        /// For the `worker_circuit_state{queue}` gauge: 0 closed, 1 half-open, 2 open.
        var gaugeValue: Int {
            switch self {
            case .closed: return 0
            case .halfOpen: return 1
            case .open: return 2
            }
        }
    }

    public let threshold: Int
    public let probeInterval: Duration
    private let clock = ContinuousClock()
    private let gauge: Gauge
    private let transitions: Counter?

    public private(set) var state: State = .closed
    /// When the circuit last closed, or last left closed (wall clock, for the heartbeat the alerter reads): an outage
    /// that keeps failing its probes (open, half-open, open...) is one span, not a new one every probe.
    public private(set) var since = Date()
    private var consecutiveFailures = 0
    private var openUntil: ContinuousClock.Instant?
    private var probeInFlight = false
    private var stopped = false

    public init(threshold: Int, probeInterval: Duration, gauge: Gauge, transitions: Counter? = nil) {
        self.threshold = max(1, threshold)
        self.probeInterval = probeInterval
        self.gauge = gauge
        self.transitions = transitions
        gauge.record(0)
    }

    /// Returns when a call may be made: at once when closed; after the open period as the single probe when open.
    public func acquire() async throws {
        _ = try await acquire(until: nil)
    }

    /// `acquire`, giving up at `deadline`: returns false if the circuit still refused calls then (the caller parks
    /// what it was holding).
    public func acquire(until deadline: ContinuousClock.Instant?) async throws -> Bool {
        while true {
            if stopped { throw CancellationError() }
            if let deadline, state != .closed, clock.now >= deadline { return false }
            switch state {
            case .closed:
                return true
            case .open:
                if let until = openUntil, clock.now >= until {
                    move(to: .halfOpen)
                    probeInFlight = true
                    return true
                }
            case .halfOpen:
                if !probeInFlight {
                    probeInFlight = true
                    return true
                }
            }
            try await Task.sleep(for: .milliseconds(25))
        }
    }

    /// The ERP answered (even with a validation error): it is up.
    public func recordSuccess() {
        consecutiveFailures = 0
        probeInFlight = false
        openUntil = nil
        if state != .closed { move(to: .closed) }
    }

    /// The ERP is down, slow or limiting us. Returns whether the circuit is open now.
    @discardableResult
    public func recordOutage(retryAfter: Duration? = nil) -> Bool {
        consecutiveFailures += 1
        probeInFlight = false
        if let retryAfter {
            open(for: max(retryAfter, .milliseconds(100)))
        } else if state == .halfOpen || consecutiveFailures >= threshold {
            open(for: probeInterval)
        }
        return state == .open
    }

    /// Releases every waiter (graceful shutdown).
    public func stop() { stopped = true }

    private func open(for d: Duration) {
        let until = clock.now.advanced(by: d)
        if let current = openUntil, current > until, state == .open { return }
        openUntil = until
        if state != .open { move(to: .open) }
    }

    private func move(to s: State) {
        if s == .closed || state == .closed { since = Date() }
        state = s
        gauge.record(s.gaugeValue)
        transitions?.increment()
    }
}

extension CircuitBreaker {
    /// The caller got permission but made no ERP call (a stale skip): let another caller probe.
    public func releaseProbe() {
        if state == .halfOpen { probeInFlight = false }
    }
}
