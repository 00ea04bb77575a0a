import Foundation
import InventorySync
import Synchronization
import Testing

/// The coalescer alone (no broker, no Shopify): what goes into each write.
@Suite("level coalescer: one write per window, and windows that closed during a write go out together")
struct LevelCoalescerTests {
    static func key(_ n: Int) -> LevelKey {
        LevelKey(inventoryItemId: "gid://shopify/InventoryItem/\(n)", locationId: "gid://shopify/Location/1")
    }

    @Test("while a write runs, three windows close; the next write carries all their levels and decisions, and every caller gets its report")
    func queuedWindowsMerge() async throws {
        let writes = Mutex<[(keys: Set<LevelKey>, decision: String)]>([])
        let (gate, opener) = AsyncStream<Void>.makeStream()
        let coalescer = LevelCoalescer(window: .milliseconds(10)) { keys, decision in
            let first = writes.withLock { w in
                w.append((keys, decision))
                return w.count == 1
            }
            if first { for await _ in gate { break } }  // the first write hangs until the test lets it finish
            var report = LevelWriteReport()
            for k in keys { report.unchanged.insert(k) }
            return report
        }
        let first = Task { try await coalescer.submit([Self.key(1)], decision: "erp-1") }
        // Wait until the first write is running (bounded), then let three more windows close behind it.
        for _ in 0..<500 where writes.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(writes.withLock { $0.count } == 1)
        var later: [Task<LevelWriteReport, any Error>] = []
        for n in 2...4 {
            later.append(Task { try await coalescer.submit([Self.key(n)], decision: "erp-\(n)") })
            // Its window closes (bounded wait on the coalescer's own count, not on the clock): each is its own batch.
            for _ in 0..<500 where await coalescer.queuedBatches < n - 1 { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(await coalescer.queuedBatches == 3)
        opener.yield()
        _ = try await first.value
        for (i, task) in later.enumerated() {
            let report = try await task.value
            #expect(report.unchanged.contains(Self.key(i + 2)), "the caller got the report of the write that had its level")
        }
        let seen = writes.withLock { $0 }
        #expect(seen.count == 2, "one write for the first window, one for the three that closed behind it: \(seen.map(\.decision))")
        #expect(seen.last?.keys == Set((2...4).map(Self.key)))
        #expect(seen.last?.decision == "erp-2,erp-3,erp-4")
        #expect(await coalescer.writes == 2)
    }
}
