import Foundation
import Shopify

/// Gathers the levels asked for over a short window into one write, per shop: every caller waits for the write
/// that includes its level and gets its outcome, so a queue message is acknowledged only once its change is in
/// Shopify. What is written is decided by the write from the figures it reads, so ten changes to one level within
/// the window make one row with the latest figure. Writes of a shop run one after another (each reads fresh figures
/// for its compare-and-set); a window closes early at 250 levels, one `inventorySetQuantities` call. Windows that
/// closed while a write ran go out together in the next write (up to 250 levels): under a backlog each call carries
/// as many changes as it can, so the write's 10 points are shared instead of paid once a window.
public actor LevelCoalescer {
    /// Brings the levels to their targets for a decision.
    public typealias Write = @Sendable (Set<LevelKey>, String) async throws -> LevelWriteReport

    struct Batch {
        var keys: Set<LevelKey> = []
        var decisions: [String] = []
        var waiters: [CheckedContinuation<LevelWriteReport, any Error>] = []
    }

    let window: Duration
    let maxRows: Int
    let write: Write
    private var open = Batch()
    private var scheduled = false
    private var writing = false
    /// Batches closed while a write was running, in order.
    private var closed: [Batch] = []
    public private(set) var writes = 0
    /// Windows closed and waiting for the write in progress to finish.
    public var queuedBatches: Int { closed.count }

    public init(window: Duration, maxRows: Int = 250, write: @escaping Write) {
        self.window = window
        self.maxRows = maxRows
        self.write = write
    }

    /// Asks for `keys` to be brought to their desired figures; returns the report of the write that did it.
    /// `decision` names what asked (an ERP change, an override check); the batch's idempotency key derives from
    /// every decision in it.
    public func submit(_ keys: Set<LevelKey>, decision: String) async throws -> LevelWriteReport {
        try await withCheckedThrowingContinuation { continuation in
            open.keys.formUnion(keys)
            open.decisions.append(decision)
            open.waiters.append(continuation)
            if open.keys.count >= maxRows {
                close()
            } else if !scheduled {
                scheduled = true
                let window = self.window
                Task {
                    try? await Task.sleep(for: window)
                    self.windowElapsed()
                }
            }
        }
    }

    private func windowElapsed() {
        scheduled = false
        if !open.waiters.isEmpty { close() }
    }

    private func close() {
        closed.append(open)
        open = Batch()
        if !writing { drain() }
    }

    private func drain() {
        guard !closed.isEmpty else { return }
        var batch = closed.removeFirst()
        while let next = closed.first, batch.keys.union(next.keys).count <= maxRows {
            closed.removeFirst()
            batch.keys.formUnion(next.keys)
            batch.decisions += next.decisions
            batch.waiters += next.waiters
        }
        writing = true
        writes += 1
        let write = self.write
        Task {
            let result: Result<LevelWriteReport, any Error>
            do {
                let decision = batch.decisions.count == 1 ? batch.decisions[0] : batch.decisions.sorted().joined(separator: ",")
                result = .success(try await write(batch.keys, decision))
            } catch {
                result = .failure(error)
            }
            for w in batch.waiters { w.resume(with: result) }
            self.finished()
        }
    }

    private func finished() {
        writing = false
        drain()
    }
}
