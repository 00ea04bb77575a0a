/// In-process mutual exclusion per key (an order, an inventory item), without polling: the second message for an order that a worker
/// of this process is already applying waits on a continuation until the first is done. The ledger's lease still
/// guards across processes; this keeps a process's own workers from polling the database for each other (an order's
/// orders/create and orders/paid usually arrive together).
public actor KeyedLock {
    public init() {}
    private var held: Set<String> = []
    private var waiters: [String: [CheckedContinuation<Void, Never>]] = [:]

    public func lock(_ key: String) async {
        if held.insert(key).inserted { return }
        await withCheckedContinuation { waiters[key, default: []].append($0) }
        // Ownership was handed over by `unlock`.
    }

    /// Takes `key` if nobody holds it.
    public func tryLock(_ key: String) -> Bool { held.insert(key).inserted }

    public func unlock(_ key: String) {
        if var queue = waiters[key], !queue.isEmpty {
            let next = queue.removeFirst()
            waiters[key] = queue.isEmpty ? nil : queue
            next.resume()  // `key` stays held: ownership passes to the next waiter
        } else {
            held.remove(key)
        }
    }

    /// Callers queued for `key` (tests).
    func waiting(_ key: String) -> Int { waiters[key]?.count ?? 0 }

    /// Runs `body` holding `key`.
    public func withLock<T: Sendable>(_ key: String, _ body: @Sendable () async throws -> T) async throws -> T {
        await lock(key)
        do {
            let v = try await body()
            unlock(key)
            return v
        } catch {
            unlock(key)
            throw error
        }
    }
}
