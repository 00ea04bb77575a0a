/// How many of a worker's deliveries run their handler at once, when that is fewer than the prefetch.
///
/// A delivery takes a slot before its handler runs and gives it back when the handler returns. While the handler
/// waits for something another delivery holds (the same order, in this process or another), it gives its slot back
/// (`WorkContext.waiting`), so the prefetched deliveries behind it use the slot instead of the wait idling it. A
/// delivery coming back from a wait goes ahead of the ones that have not started: it usually holds a key (an order's
/// lock or lease) that others are waiting for.
///
/// Written by hand: swift-async-algorithms has no semaphore, and this one needs the two-lane order above. Holders
/// always give their slot back (a cancelled handler returns too), so a waiter is never left behind.
actor HandlerSlots {
    private var free: Int
    private var fresh: [CheckedContinuation<Void, Never>] = []
    private var returning: [CheckedContinuation<Void, Never>] = []

    init(_ count: Int) { free = max(1, count) }

    /// Waits for a slot; `returning`: the caller gave one back to wait and goes ahead of those that have not started.
    func acquire(returning isReturning: Bool = false) async {
        if free > 0 {
            free -= 1
            return
        }
        await withCheckedContinuation { continuation in
            if isReturning { returning.append(continuation) } else { fresh.append(continuation) }
        }
        // The slot was handed over by `release`.
    }

    func release() {
        if !returning.isEmpty {
            returning.removeFirst().resume()
        } else if !fresh.isEmpty {
            fresh.removeFirst().resume()
        } else {
            free += 1
        }
    }

    /// Slots not taken (tests).
    var available: Int { free }
    /// Deliveries waiting for a slot (tests).
    var waiting: Int { fresh.count + returning.count }
}
