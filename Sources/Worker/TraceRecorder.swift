import BridgeMessaging
import Metrics
import Synchronization

/// The trace steps a worker settled since its last `message.traced` batch. Bounded: while the broker cannot take
/// them (or the alerter is gone and they pile up here) the newest are dropped and counted
/// (`worker_trace_dropped_total{queue}`); a trace is an operator's aid, never a reason to slow or stop the work.
final class TraceRecorder: Sendable {
    private let buffer = Mutex<[BridgeEvents.TraceStep]>([])
    let capacity: Int
    let dropped: Counter

    init(capacity: Int = 20_000, dropped: Counter) {
        self.capacity = capacity
        self.dropped = dropped
    }

    func record(_ step: BridgeEvents.TraceStep) {
        let kept = buffer.withLock { steps -> Bool in
            guard steps.count < capacity else { return false }
            steps.append(step)
            return true
        }
        if !kept { dropped.increment() }
    }

    func take() -> [BridgeEvents.TraceStep] {
        buffer.withLock { steps in
            defer { steps = [] }
            return steps
        }
    }
}
