import BridgeDomain
import Foundation
import Logging
import Messaging
import ServiceLifecycle
import Worker

/// The schedules of `reconciler.<domain>.schedule` (cron in `reconciler.time_zone`): at each firing the active
/// reconciler queues one run per shop on `q.reconcile`, where runs execute one at a time. A standby schedules
/// nothing; a firing missed while no reconciler was active is not made up (the next one covers its window).
public final class ReconcileScheduler: Service, Sendable {
    let settings: ReconcilerSettings
    let shops: [String]
    let lease: ActiveLease?
    let publisher: AMQPConnection
    let logger: Logger

    public init(settings: ReconcilerSettings, shops: [String], lease: ActiveLease?, publisher: AMQPConnection, logger: Logger) {
        self.settings = settings
        self.shops = shops
        self.lease = lease
        self.publisher = publisher
        self.logger = logger
    }

    /// The next firing after `date`: the time and the domains due then.
    public func next(after date: Date) -> (at: Date, domains: [ReconcilerSettings.Domain])? {
        var best: (Date, [ReconcilerSettings.Domain])?
        for domain in Reconciler.supportedDomains {
            guard let at = settings.domains[domain]?.schedule?.next(after: date) else { continue }
            if let b = best, b.0 < at { continue }
            if let b = best, b.0 == at { best = (at, b.1 + [domain]) } else { best = (at, [domain]) }
        }
        return best
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            await self.lease?.waitUntilActive()
            while !Task.isCancelled {
                guard let (at, domains) = self.next(after: Date()) else {
                    self.logger.notice("no reconciliation is scheduled (every reconciler.<domain>.schedule is off): runs on demand only")
                    // A service that returns ends its ServiceGroup: wait for the process to stop instead.
                    try? await gracefulShutdown()
                    return
                }
                self.logger.info("next scheduled reconciliation", metadata: ["at": "\(at.formatted(Date.ISO8601FormatStyle()))", "domains": "\(domains.map(\.rawValue))"])
                let wait = at.timeIntervalSinceNow
                if wait > 0 {
                    do { try await Task.sleep(for: .milliseconds(Int64(wait * 1000))) } catch { return }
                }
                for domain in domains {
                    for shop in self.shops {
                        let request = ReconcileRequest(runId: ReportStore.newRunId(), domain: domain, shop: shop, trigger: "schedule")
                        do {
                            try await request.publish(on: self.publisher, appId: "shopify-erp-bridge/reconciler")
                        } catch {
                            self.logger.error(
                                "could not queue a scheduled reconciliation",
                                metadata: ["domain": "\(domain.rawValue)", "shop": "\(shop)", "error": "\(error)"])
                        }
                    }
                }
            }
        }
    }
}
