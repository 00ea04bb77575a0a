@testable import Worker
import BridgeTestSupport
import Testing

@Suite("In-process per-order lock")
struct KeyedLockTests {
    @Test("one holder per key at a time, FIFO hand-over; other keys run concurrently")
    func exclusion() async throws {
        let lock = KeyedLock()
        let active = Shared<[String: Int]>([:])
        let maxActive = Shared<[String: Int]>([:])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<40 {
                let key = i % 2 == 0 ? "a" : "b"
                group.addTask {
                    try await lock.withLock(key) {
                        let now = active.withLock { a -> Int in
                            a[key, default: 0] += 1
                            return a[key]!
                        }
                        maxActive.withLock { $0[key] = max($0[key] ?? 0, now) }
                        try await Task.sleep(for: .milliseconds(2))
                        active.withLock { $0[key, default: 0] -= 1 }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(maxActive.value == ["a": 1, "b": 1])
        // Released after an error too.
        await #expect(throws: CancellationError.self) { try await lock.withLock("a") { throw CancellationError() } }
        try await lock.withLock("a") {}
    }

    @Test("waiters get the lock in the order they asked for it")
    func fifo() async throws {
        let lock = KeyedLock()
        let order = Shared<[Int]>([])
        await lock.lock("k")
        var tasks: [Task<Void, any Error>] = []
        for i in 1...6 {
            tasks.append(Task { try await lock.withLock("k") { order.withLock { $0.append(i) } } })
            // The next waiter queues only after this one did.
            #expect(await eventually { await lock.waiting("k") == i })
        }
        #expect(order.value.isEmpty, "nobody ran while the lock was held")
        await lock.unlock("k")
        for t in tasks { try await t.value }
        #expect(order.value == [1, 2, 3, 4, 5, 6])
    }
}
