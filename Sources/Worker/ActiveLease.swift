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
public final class ActiveLease: Service, Sendable {
    public let name: String
    /// `inventory-syncer`, `reconciler`: log lines and the gauge's name.
    public let role: String
    let connection: AMQPConnection
    let retryInterval: Duration
    let logger: Logger
    private let active = Mutex<Bool>(false)
    private let waiters = Mutex<[CheckedContinuation<Void, Never>]>([])
    private let gauge: Gauge

    /// - Parameters:
    ///   - name: the exclusive queue (`BridgeTopology.inventorySyncerLease`, `BridgeTopology.reconcilerLease`).
    ///   - role: the process's name; the gauge is `<role with underscores>_active`.
    public init(name: String, role: String, connection: AMQPConnection, retryInterval: Duration = .seconds(1), logger: Logger) {
        self.name = name
        self.role = role
        self.connection = connection
        self.retryInterval = retryInterval
        self.logger = logger
        gauge = Gauge(label: role.replacingOccurrences(of: "-", with: "_") + "_active")
        gauge.record(0)
    }

    public var isActive: Bool { active.withLock { $0 } }

    /// Returns once this process holds the lease.
    public func waitUntilActive() async {
        if isActive { return }
        await withCheckedContinuation { c in
            let resumeNow = active.withLock { a -> Bool in
                if a { return true }
                waiters.withLock { $0.append(c) }
                return false
            }
            if resumeNow { c.resume() }
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
        while !Task.isCancelled {
            guard let held = await tryHold() else {
                // The broker is unreachable: nobody can take the lease over this connection; try again.
                try? await Task.sleep(for: retryInterval)
                continue
            }
            if held, !isActive {
                let resumed = active.withLock { a -> [CheckedContinuation<Void, Never>] in
                    a = true
                    return waiters.withLock { w in defer { w = [] }; return w }
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
