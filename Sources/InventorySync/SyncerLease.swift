import BridgeMessaging
import Foundation
import Logging
import Messaging
import Metrics
import ServiceLifecycle
import Synchronization

/// One active inventory-syncer at a time (the Admin API's rate budget is per shop, and two writers would only fight
/// over it): the lease is an exclusive queue, `lease.inventory-syncer`, which RabbitMQ lets one connection hold and
/// deletes the moment that connection closes, so a standby takes over within `retryInterval` of the active one
/// dying, kill -9 included. Nothing but a broker is needed. While waiting the process is healthy and ready (a
/// standby), `inventory_syncer_active` is 0, and none of its consumers run.
///
/// An active syncer checks the lease every `retryInterval`; if it finds it held by another connection (its own was
/// dropped and a standby took over) it stops the process, so the supervisor restarts it as a standby, rather than
/// two syncers writing.
public final class SyncerLease: Service, Sendable {
    public let name: String
    let connection: AMQPConnection
    let retryInterval: Duration
    let logger: Logger
    private let active = Mutex<Bool>(false)
    private let waiters = Mutex<[CheckedContinuation<Void, Never>]>([])
    private let gauge = Gauge(label: "inventory_syncer_active")

    public init(name: String = "lease.inventory-syncer", connection: AMQPConnection, retryInterval: Duration = .seconds(1), logger: Logger) {
        self.name = name
        self.connection = connection
        self.retryInterval = retryInterval
        self.logger = logger
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
        public var description: String { "the inventory-syncer lease is held by another process; stopping so this one restarts as a standby" }
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
                logger.notice("inventory-syncer lease taken: this process is the active syncer", metadata: ["lease": "\(name)"])
                for c in resumed { c.resume() }
            } else if !held, isActive {
                gauge.record(0)
                logger.error("inventory-syncer lease lost to another process", metadata: ["lease": "\(name)"])
                throw LeaseLost()
            } else if !held, !announcedStandby {
                announcedStandby = true
                logger.notice("another inventory-syncer is active; standing by", metadata: ["lease": "\(name)"])
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
