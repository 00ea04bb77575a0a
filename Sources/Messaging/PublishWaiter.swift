import BridgeDomain
import Dispatch
import Foundation
import Logging
import Metrics
import Synchronization

/// One publish's caller, answered exactly once: by the connection thread (confirm, failure, its own deadline check)
/// or by the watchdog when the thread is stuck inside a blocking rabbitmq-c call past the publish's deadline.
final class PublishWaiter: Sendable {
    let id: UInt64
    let deadline: ContinuousClock.Instant

    private struct State {
        var continuation: CheckedContinuation<Void, Error>?
        /// The thread has started writing it to the socket: from then on the outcome of an early answer is unknown.
        var sent = false
    }
    private let state: Mutex<State>

    init(id: UInt64, deadline: ContinuousClock.Instant, continuation: CheckedContinuation<Void, Error>) {
        self.id = id
        self.deadline = deadline
        state = Mutex(State(continuation: continuation))
    }

    /// Called by the connection thread right before it writes the publish. False when the caller was answered already
    /// (the watchdog gave up on it): then nothing is sent, so the caller's "not sent" answer stays true.
    func markSent() -> Bool {
        state.withLock { s in
            guard s.continuation != nil else { return false }
            s.sent = true
            return true
        }
    }

    /// Answers the caller; false if it had been answered already.
    @discardableResult
    func resume(_ result: Result<Void, Error>) -> Bool {
        let c = state.withLock { s -> CheckedContinuation<Void, Error>? in
            defer { s.continuation = nil }
            return s.continuation
        }
        guard let c else { return false }
        c.resume(with: result)
        return true
    }

    var isAnswered: Bool { state.withLock { $0.continuation == nil } }
    var wasSent: Bool { state.withLock { $0.sent } }
}

/// The callers' side of publish deadlines. rabbitmq-c 0.11 blocks inside connect, login and synchronous calls (up to
/// their timeouts), and its sends wait for socket room without a deadline: while the connection thread sits in such
/// a call, it cannot answer anyone. The watchdog (its own thread, never the cooperative pool) notices a thread that
/// has not come round its loop for `stallThreshold` and answers the publishes whose deadline passed, so a publish
/// always answers by its deadline (plus the watchdog's tick), whatever the connection thread is doing.
/// Hand-written: no library offers this for rabbitmq-c.
final class PublishWatchdog: Sendable {
    static let tick: Duration = .milliseconds(50)
    static let stallThreshold: Duration = .milliseconds(250)

    private let waiters = Mutex<[UInt64: PublishWaiter]>([:])
    private let nextID = Atomic<UInt64>(0)
    /// Uptime nanoseconds when the connection thread last came round its loop (or finished a command); 0 = not running.
    let loopTick = Atomic<UInt64>(0)
    /// What the connection thread is doing (`Activity.rawValue`), for the stall log line.
    let activity = Atomic<UInt8>(0)
    private let stalls = Atomic<Int>(0)
    private let timeoutCounter: Counter
    private let notConnectedCounter: Counter
    private let stallCounter: Counter

    enum Activity: UInt8 {
        case idle, connecting, commands, reading, operation
        var name: String {
            switch self {
            case .idle: "waiting"
            case .connecting: "connecting or logging in"
            case .commands: "writing publishes and commands"
            case .reading: "reading frames"
            case .operation: "a synchronous broker call (declare, consume, cancel, get)"
            }
        }
    }

    init(connectionName: String) {
        timeoutCounter = Counter(
            label: "bridge_amqp_publish_failures_total", dimensions: [("connection", connectionName), ("code", "confirm_timeout")])
        notConnectedCounter = Counter(
            label: "bridge_amqp_publish_failures_total", dimensions: [("connection", connectionName), ("code", "not_connected")])
        stallCounter = Counter(label: "bridge_amqp_thread_stalls_total", dimensions: [("connection", connectionName)])
    }

    static var uptimeNanoseconds: UInt64 { DispatchTime.now().uptimeNanoseconds }

    func makeID() -> UInt64 { nextID.add(1, ordering: .relaxed).newValue }

    func register(_ w: PublishWaiter) { waiters.withLock { $0[w.id] = w } }
    func forget(_ w: PublishWaiter) { _ = waiters.withLock { $0.removeValue(forKey: w.id) } }

    /// Answers `w` (if nobody did) and forgets it. Returns whether this call answered it.
    @discardableResult
    func answer(_ w: PublishWaiter, _ result: Result<Void, Error>) -> Bool {
        forget(w)
        return w.resume(result)
    }

    /// Stalls detected so far on this connection.
    var stallCount: Int { stalls.load(ordering: .relaxed) }

    func markLoop(_ activity: Activity) {
        loopTick.store(Self.uptimeNanoseconds, ordering: .relaxed)
        self.activity.store(activity.rawValue, ordering: .relaxed)
    }

    func markActivity(_ activity: Activity) { self.activity.store(activity.rawValue, ordering: .relaxed) }

    /// Runs on the watchdog thread until `stopped()` says the connection thread exited.
    func run(connection: AMQPConnection, stopped: () -> Bool) {
        var stalledSince: UInt64 = 0
        while !stopped() {
            Thread.sleep(forTimeInterval: Self.tick.seconds)
            let tick = loopTick.load(ordering: .relaxed)
            let now = Self.uptimeNanoseconds
            guard tick != 0, now > tick, now - tick >= UInt64(Self.stallThreshold.wholeNanoseconds) else {
                stalledSince = 0
                continue
            }
            let what = Activity(rawValue: activity.load(ordering: .relaxed))?.name ?? "unknown"
            if stalledSince != tick {
                stalledSince = tick
                stalls.add(1, ordering: .relaxed)
                stallCounter.increment()
                connection.logger.warning(
                    "amqp connection thread stuck in a blocking call; publishes answer by their deadline",
                    metadata: ["doing": "\(what)", "stuck_ms": "\((now - tick) / 1_000_000)"])
            }
            expire(connected: connection.isConnected, doing: what)
        }
    }

    /// While the thread is stuck: publishes past their deadline are answered, and, when there is no connection,
    /// publishes it has not started sending fail at once (nothing was sent; the caller can answer 503 now).
    private func expire(connected: Bool, doing: String) {
        let now = ContinuousClock.now
        let candidates = waiters.withLock { w in w.values.filter { $0.deadline <= now || !connected } }
        for w in candidates {
            let sent = w.wasSent
            if !connected && !sent {
                if answer(w, .failure(AMQPError(.notConnected, "not connected to the broker (\(doing)); nothing was sent"))) {
                    notConnectedCounter.increment()
                }
            } else if w.deadline <= now {
                let error =
                    sent
                    ? AMQPError(.confirmTimeout, "no publish confirm before the deadline (connection thread busy \(doing)); outcome unknown")
                    : AMQPError(.confirmTimeout, "not sent before the deadline (connection thread busy \(doing)); nothing was sent")
                if answer(w, .failure(error)) { timeoutCounter.increment() }
            }
        }
    }
}
