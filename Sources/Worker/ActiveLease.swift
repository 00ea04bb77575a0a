import BridgeMessaging
import Foundation
import Logging
import Messaging
import Metrics
import ServiceLifecycle
import Synchronization

/// One active process of a role at a time, for the processes where two would fight (the inventory-syncer: the
/// Admin API's rate budget is per shop; the reconciler: one run of a domain at a time). The lease is an exclusive
/// queue (`lease.<role>`), which RabbitMQ lets one connection hold and deletes the moment that connection closes,
/// so a standby takes over within `retryInterval` of the active one dying, kill -9 included. Nothing but a broker
/// is needed. While waiting the process is healthy and ready (a standby), its gauge (`<role>_active`) is 0, and
/// none of its consumers run.
///
/// An active process checks the lease every `retryInterval`; if it finds it held by another connection (its own was
/// dropped and a standby took over) it stops the process, so the supervisor restarts it as a standby, rather than
/// two of them writing.
///
/// With a `ttl` the lease also fences writes when the broker connection is cut rather than closed (a partition, a
/// frozen peer: no FIN reaches either side, so the broker keeps the old holder's queue until heartbeats time out,
/// and the old holder cannot hear that it was replaced). `mayWrite` is true only while the lease was confirmed
/// within `ttl / 2`; a process that takes the lease becomes active (its consumers and writes start) only `ttl` after
/// it took it. The old holder's last confirmation came before the broker dropped its queue, so it stopped writing
/// at least `ttl / 2` before the new one starts, whatever the broker's heartbeat: one writer at a time.
public final class ActiveLease: Service, Sendable {
    public let name: String
    /// `inventory-syncer`, `reconciler`: log lines and the gauge's name.
    public let role: String
    let connection: AMQPConnection
    let retryInterval: Duration
    /// Nil: no fencing (active as soon as held; `mayWrite` = `isActive`).
    public let ttl: Duration?
    let logger: Logger
    private let active = Mutex<Bool>(false)
    private let lastConfirmed = Mutex<ContinuousClock.Instant?>(nil)
    /// No write before this (set a TTL after a confirmation that came more than half a TTL after the one before).
    private let writableFrom = Mutex<ContinuousClock.Instant?>(nil)
    private let waiters = Mutex<[UUID: CheckedContinuation<Void, Never>]>([:])
    private let gauge: Gauge

    /// - Parameters:
    ///   - name: the exclusive queue (`BridgeTopology.inventorySyncerLease`, `BridgeTopology.reconcilerLease`).
    ///   - role: the process's name; the gauge is `<role with underscores>_active`.
    ///   - ttl: see the type; at least 4 × `retryInterval` (a shorter one is raised to that: the lease is only
    ///     confirmed every `retryInterval`).
    public init(
        name: String, role: String, connection: AMQPConnection, retryInterval: Duration = .seconds(1), ttl: Duration? = nil,
        logger: Logger
    ) {
        self.name = name
        self.role = role
        self.connection = connection
        self.retryInterval = retryInterval
        self.ttl = ttl.map { max($0, retryInterval * 4) }
        self.logger = logger
        gauge = Gauge(label: role.replacingOccurrences(of: "-", with: "_") + "_active")
        gauge.record(0)
    }

    public var isActive: Bool { active.withLock { $0 } }

    /// Whether this process may write now: active and, with a `ttl`, its lease confirmed within `ttl / 2`.
    public var mayWrite: Bool {
        guard isActive else { return false }
        guard let ttl else { return true }
        guard let last = lastConfirmed.withLock({ $0 }) else { return false }
        let now = ContinuousClock.now
        if let from = writableFrom.withLock({ $0 }), now < from { return false }
        return last.duration(to: now) < ttl / 2
    }

    /// Returns once this process holds the lease, or when the calling task is cancelled (a standby shutting down:
    /// the caller checks `Task.isCancelled`).
    public func waitUntilActive() async {
        if isActive { return }
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                // The cancellation check and the insert under one lock: a cancel in between finds the waiter.
                let resumeNow = active.withLock { a -> Bool in
                    if a { return true }
                    return waiters.withLock { w -> Bool in
                        if Task.isCancelled { return true }
                        w[id] = c
                        return false
                    }
                }
                if resumeNow { c.resume() }
            }
        } onCancel: {
            waiters.withLock { $0.removeValue(forKey: id) }?.resume()
        }
    }

    public struct LeaseLost: Error, CustomStringConvertible {
        public var role: String
        public var description: String { "the \(role) lease is held by another process; stopping so this one restarts as a standby" }
    }

    public func run() async throws {
        try await cancelWhenGracefulShutdown { try await self.hold() }
    }

    private func hold() async throws {
        var announcedStandby = false
        var takenAt: ContinuousClock.Instant?
        while !Task.isCancelled {
            // A confirmation counts from when it was asked, not from when the answer came.
            let asked = ContinuousClock.now
            guard let held = await tryHold() else {
                // The broker is unreachable: nobody can take the lease over this connection; try again.
                try? await Task.sleep(for: retryInterval)
                continue
            }
            if held {
                let previous = lastConfirmed.withLock { last in defer { last = asked }; return last }
                if isActive, let ttl, let previous, previous.duration(to: asked) >= ttl / 2 {
                    // Unconfirmed for half a TTL or more (the connection was cut and came back, the queue re-declared
                    // on the new one): another process may have held the lease and written meanwhile. Wait a TTL, as
                    // a new holder does.
                    writableFrom.withLock { $0 = asked.advanced(by: ttl) }
                    logger.warning(
                        "\(role) lease confirmed again after a gap; not writing for lease_ttl",
                        metadata: ["lease": "\(name)", "gap": "\(previous.duration(to: asked))", "ttl": "\(ttl)"])
                }
            }
            if held, !isActive, let ttl {
                // Taken, not yet active: a previous holder cut off from the broker may still write until its own
                // confirmation is `ttl / 2` old; waiting `ttl` from here is longer than that.
                if takenAt == nil {
                    takenAt = .now
                    logger.notice(
                        "\(role) lease taken; active once it has been held for lease_ttl (a previous holder cut off from the broker stops writing by then)",
                        metadata: ["lease": "\(name)", "ttl": "\(ttl)"])
                }
                if let t = takenAt, t.duration(to: .now) < ttl {
                    try? await Task.sleep(for: retryInterval)
                    continue
                }
            }
            if !held { takenAt = nil }
            if held, !isActive {
                let resumed = active.withLock { a -> [CheckedContinuation<Void, Never>] in
                    a = true
                    return waiters.withLock { w in defer { w = [:] }; return Array(w.values) }
                }
                gauge.record(1)
                logger.notice("\(role) lease taken: this process is the active \(role)", metadata: ["lease": "\(name)"])
                for c in resumed { c.resume() }
            } else if !held, isActive {
                gauge.record(0)
                logger.error("\(role) lease lost to another process", metadata: ["lease": "\(name)"])
                throw LeaseLost(role: role)
            } else if !held, !announcedStandby {
                announcedStandby = true
                logger.notice("another \(role) is active; standing by", metadata: ["lease": "\(name)"])
            }
            try? await Task.sleep(for: retryInterval)
        }
    }

    /// Declares the exclusive queue: true if it is free or already ours, false if another connection holds it
    /// (RESOURCE_LOCKED, 405), nil if the broker could not be asked (reconnecting).
    private func tryHold() async -> Bool? {
        let name = self.name
        do {
            _ = try await connection.withChannel { ops in
                try ops.declareQueue(
                    name, durable: false, exclusive: true, autoDelete: false, arguments: ["x-queue-type": "classic"])
            }
            return true
        } catch let e as AMQPError where e.replyCode == 405 {
            return false
        } catch {
            logger.debug("lease check failed", metadata: ["error": "\(error)"])
            return nil
        }
    }
}
