import BridgeDomain
import BridgeMessaging
import ERP
import Foundation
import PriceSync
import Shopify
import Worker

/// `q.reconcile`: one reconciliation run per message, one at a time (prefetch 1), in the active reconciler only
/// (`prepare` waits for the lease). The message is acknowledged once the report is saved; a run that fails on a
/// transient error (Shopify or the ERP unavailable) walks the retry levels and resumes; a request the reconciler
/// cannot run (unknown shop or domain) is dead-lettered with the reason.
public struct ReconcileHandler: QueueHandler {
    public let reconciler: Reconciler
    let lease: ActiveLease?
    public var subject: String { "reconciliation run" }

    public init(reconciler: Reconciler, lease: ActiveLease?) {
        self.reconciler = reconciler
        self.lease = lease
    }

    public func prepare() async throws { await lease?.waitUntilActive() }

    public func handle(_ message: InboundMessage, context: inout WorkContext) async throws -> WorkOutcome {
        guard message.envelope.topic == ReconcileRequest.topic else { return WorkOutcome("ignored_topic") }
        let request: ReconcileRequest
        do {
            request = try JSONDecoder().decode(ReconcileRequest.self, from: Data(message.body))
        } catch {
            throw ProcessingFailure(errorClass: "invalid_payload", message: "not a reconciliation request: \(error)", retryable: false)
        }
        context.logger[metadataKey: "run_id"] = "\(request.runId)"
        let resumed = message.redelivered || message.envelope.attempt > 0 || !reconciler.reports.healed(runId: request.runId).isEmpty
        let report = try await reconciler.run(request, resumed: resumed)
        return WorkOutcome(report.differed == 0 ? "in_sync" : "differences")
    }

    public func classify(_ error: any Error) -> WorkFailure {
        switch error {
        case let f as ProcessingFailure:
            return .failed(f)
        case let r as Reconciler.Refused:
            return .failed(ProcessingFailure(errorClass: "refused", message: r.description, retryable: false))
        case let v as PolicyViolation:
            return .failed(ProcessingFailure(errorClass: "policy_violation", message: "\(v)", retryable: false))
        case let e as PriceSyncError:
            return .failed(ProcessingFailure(errorClass: e.errorClass, message: "\(e)", retryable: false))
        case let e as ShopifyAdminError:
            return .failed(ProcessingFailure(errorClass: e.retryable ? "shopify_unavailable" : "shopify_error", message: "\(e)", retryable: e.retryable))
        case let e as ERPError:
            return .failed(ProcessingFailure(errorClass: e.code.rawValue, message: e.message, retryable: e.isRetryable))
        default:
            return .failed(ProcessingFailure(errorClass: "internal", message: "\(error)", retryable: true))
        }
    }
}
