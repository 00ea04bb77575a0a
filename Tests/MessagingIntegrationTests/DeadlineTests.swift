import BridgeTestSupport
import Foundation
import Messaging
import Synchronization
import Testing

/// Publishers that keep publishing until stopped, recording how long every answer took and what it was: the
/// callers' view of a partition or a blocked broker ("every answer by its deadline, nothing confirmed that is lost").
final class LoadRecorder: Sendable {
    struct Answer: Sendable {
        let id: String
        let took: Duration
        let error: AMQPError.Code?
        let at: ContinuousClock.Instant
    }
    let answers = Mutex<[Answer]>([])
    let stopFlag = Atomic<Bool>(false)

    var confirmed: Set<String> { answers.withLock { Set($0.filter { $0.error == nil }.map(\.id)) } }
    var slowest: Answer? { answers.withLock { $0.max { $0.took < $1.took } } }
    func confirmed(after instant: ContinuousClock.Instant) -> Int {
        answers.withLock { $0.filter { $0.error == nil && $0.at > instant }.count }
    }
    func failures() -> [AMQPError.Code: Int] {
        answers.withLock { a in a.compactMap(\.error).reduce(into: [:]) { $0[$1, default: 0] += 1 } }
    }

    /// Starts `workers` publishers; `await` the returned task after `stop()`.
    func start(
        _ c: AMQPConnection, queue: String, workers: Int, bodySize: Int, timeout: Duration, pause: Duration = .milliseconds(20)
    ) -> Task<Void, Never> {
        let body = [UInt8](repeating: 0x62, count: bodySize)
        return Task {
            await withTaskGroup(of: Void.self) { group in
                for worker in 0..<workers {
                    group.addTask {
                        var i = 0
                        while !self.stopFlag.load(ordering: .relaxed) {
                            let id = "w\(worker)-\(i)"
                            i += 1
                            let started = ContinuousClock.now
                            var code: AMQPError.Code?
                            do {
                                try await c.publish(
                                    exchange: "", routingKey: queue, body: body, properties: MessageProperties(messageId: id),
                                    timeout: timeout)
                            } catch {
                                code = (error as? AMQPError)?.code ?? .closed
                            }
                            let now = ContinuousClock.now
                            self.answers.withLock { $0.append(Answer(id: id, took: now - started, error: code, at: now)) }
                            if code != nil { try? await Task.sleep(for: pause) }
                        }
                    }
                }
            }
        }
    }

    func stop() { stopFlag.store(true, ordering: .relaxed) }
}

/// Deadlines the connection thread cannot keep by itself: it sits inside a blocking rabbitmq-c call.
@Suite("Publish deadlines while the connection thread is busy")
struct PublishDeadlineTests {
    @Test("a publish answers by its deadline while the connection thread is stuck in a long call, and is then not sent")
    func stuckThread() async throws {
        let broker = try TestBroker.shared()
        let vhost = try await broker.makeVhost("stuck")
        defer { Task { await broker.deleteVhost(vhost) } }
        let c = try await broker.connect(vhost: vhost, name: "stuck")
        defer { Task { await c.close() } }
        try await declareTestQueue(c, "q.s")

        // Occupy the connection thread for 8 s, as a connect attempt in a partition or a send to a broker that
        // stopped reading would.
        let inside = Atomic<Bool>(false)
        let stall = Task {
            try await c.withChannel { _ in
                inside.store(true, ordering: .relaxed)
                Thread.sleep(forTimeInterval: 8)
            }
        }
        #expect(await eventually(timeout: .seconds(10)) { inside.load(ordering: .relaxed) })
        let started = ContinuousClock.now
        var answer: AMQPError?
        do {
            try await c.publish(
                exchange: "", routingKey: "q.s", body: [1], properties: MessageProperties(messageId: "late"),
                timeout: .milliseconds(300))
        } catch let e as AMQPError {
            answer = e
        }
        let took = ContinuousClock.now - started
        // Answered by the watchdog (its message says so), long before the thread came back. Before the watchdog this
        // waited for the whole stall. The bound is loose: on a loaded machine the awaiting task itself resumes late.
        #expect(answer?.code == .confirmTimeout)
        #expect(answer?.message.contains("connection thread busy") == true, "\(answer.map { "\($0)" } ?? "no error")")
        #expect(took < .seconds(4), "answered after \(took), deadline 300 ms, the thread stalled for 8 s")
        try await stall.value
        #expect(c.threadStalls >= 1)
        // The caller was told "not sent": the thread, free again, must not send it after all.
        try await c.publish(exchange: "", routingKey: "q.s", body: [2], properties: MessageProperties(messageId: "marker"))
        #expect(try await drainIds(c, "q.s") == ["marker"])
    }
}
