import Synchronization

/// Remembers recently enqueued webhook ids for a time window, in bounded memory (oldest forgotten first).
///
/// An optimisation only: Shopify redelivers the same webhook id, and answering those from memory saves a publish.
/// Correctness never depends on it; downstream consumers are idempotent.
public final class DeduplicationWindow: Sendable {
    private struct State {
        var seen: [String: ContinuousClock.Instant] = [:]
        var order: [(String, ContinuousClock.Instant)] = []
        var head = 0
    }

    private let state = Mutex(State())
    public let window: Duration
    public let capacity: Int

    public init(window: Duration, capacity: Int) {
        self.window = window
        self.capacity = max(1, capacity)
    }

    /// Whether `id` was recorded within the window.
    public func contains(_ id: String, now: ContinuousClock.Instant = .now) -> Bool {
        state.withLock { s in
            guard let at = s.seen[id] else { return false }
            return now - at < window
        }
    }

    /// Records `id` as enqueued now.
    public func record(_ id: String, now: ContinuousClock.Instant = .now) {
        state.withLock { s in
            s.seen[id] = now
            s.order.append((id, now))
            // Forget what is too old, then what is over capacity.
            while s.head < s.order.count {
                let (oldId, at) = s.order[s.head]
                let expired = now - at >= window
                let over = s.seen.count > capacity
                guard expired || over else { break }
                if s.seen[oldId] == at { s.seen[oldId] = nil }
                s.head += 1
            }
            if s.head > 4096 && s.head * 2 > s.order.count {
                s.order.removeFirst(s.head)
                s.head = 0
            }
        }
    }

    public var count: Int { state.withLock { $0.seen.count } }
}
