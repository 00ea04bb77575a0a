import BridgeDomain
import BridgeMessaging
import ERP
import Shopify
import Worker

/// How a failed write into Shopify (a stock level, a price) leaves its message, for every handler that writes
/// there (`q.erp-inventory`, `q.inventory-sync`, `q.erp-prices`): Shopify unreachable or throttled is an outage
/// (retried, the worker pauses); an answer Shopify gave, a policy violation or a bad message is dead-lettered with
/// its class; an ERP read failing is retried when the ERP says it may pass.
public enum ShopifyWriteFailures {
    public static func classify(_ error: any Error) -> WorkFailure {
        switch error {
        case let f as ProcessingFailure:
            return .failed(f)
        case let e as PriceSyncError:
            return .failed(ProcessingFailure(errorClass: e.errorClass, message: "\(e)", retryable: false), dependencyAnswered: true)
        case let v as PolicyViolation:
            return .failed(ProcessingFailure(errorClass: "policy_violation", message: "\(v)", retryable: false))
        case let e as ShopifyAdminError where e.retryable:
            return .outage(ProcessingFailure(errorClass: "shopify_unavailable", message: "\(e)", retryable: true), retryAfter: nil)
        case let e as ShopifyAdminError:
            return .failed(ProcessingFailure(errorClass: "shopify_error", message: "\(e)", retryable: false), dependencyAnswered: true)
        case let e as ERPError:
            return .failed(ProcessingFailure(errorClass: e.code.rawValue, message: e.message, retryable: e.isRetryable))
        default:
            return .failed(ProcessingFailure(errorClass: "internal", message: "\(error)", retryable: true))
        }
    }
}
