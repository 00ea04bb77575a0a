import BridgeDomain
import BridgeMessaging
import Foundation
import Messaging

/// A reconciliation run to do: one domain of one shop. The active reconciler's schedule and `bridgectl reconcile
/// run` publish it to `q.reconcile` (envelope topic `reconcile.requested`); the reconciler answers with progress
/// and a summary on `bridge.events`.
public struct ReconcileRequest: Codable, Sendable, Equatable {
    public static let topic = "reconcile.requested"
    /// The summary event (body: the `ReconcileReport`), routing key on `bridge.events`.
    public static let completedTopic = BridgeEvents.reconcileCompleted
    /// Progress of a run (body: `ReconcileProgress`), routing key on `bridge.events`.
    public static let progressTopic = BridgeEvents.reconcileProgress

    public var runId: String
    public var domain: ReconcilerSettings.Domain
    /// The shop's id in config.
    public var shop: String
    /// Overrides the domain's `window` (seconds).
    public var windowSeconds: Int64?
    public var dryRun: Bool
    /// `schedule` or `bridgectl`.
    public var trigger: String

    public init(runId: String, domain: ReconcilerSettings.Domain, shop: String, window: Duration? = nil, dryRun: Bool = false, trigger: String) {
        self.runId = runId
        self.domain = domain
        self.shop = shop
        self.windowSeconds = window.map { $0.wholeMilliseconds / 1000 }
        self.dryRun = dryRun
        self.trigger = trigger
    }

    public var window: Duration? { windowSeconds.map { .seconds($0) } }
}

/// Where a run is, for a progress line on a terminal.
public struct ReconcileProgress: Codable, Sendable, Equatable {
    public typealias Sink = @Sendable (ReconcileProgress) async -> Void

    public var runId: String
    public var phase: String
    public var done: Int
    public var total: Int?

    public init(runId: String, phase: String, done: Int, total: Int?) {
        self.runId = runId
        self.phase = phase
        self.done = done
        self.total = total
    }

    public var line: String { total.map { "\(phase): \(done)/\($0)" } ?? (done > 0 ? "\(phase): \(done)" : phase) }
}

extension ReconcileRequest {
    /// Queues the run on `q.reconcile` through `bridge.work`, confirmed by the broker.
    public func publish(on connection: AMQPConnection, appId: String) async throws {
        let envelope = InboundEnvelope(source: .bridge, shopDomain: nil, topic: Self.topic, deliveryId: "reconcile-\(runId)")
        try await connection.publish(
            exchange: BridgeTopology.work, routingKey: BridgeTopology.reconcile.name, body: Array(try JSONEncoder().encode(self)),
            properties: envelope.properties(appId: appId))
    }
}
