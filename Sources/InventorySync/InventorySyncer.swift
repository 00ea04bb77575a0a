import BridgeDomain
import ERP
import Worker
import Foundation
import Logging
import Metrics
import Shopify
import Synchronization

/// The inventory-syncer's shared state: the ERP picture, each shop's side, the lease that makes this process the
/// active one, and whether the shops' catalogues are loaded (the deltas wait for it rather than look each SKU up).
public final class InventorySyncer: Sendable {
    public let settings: InventorySyncerSettings
    public let picture: StockPicture
    public let shops: [ShopInventorySync]
    public let lease: ActiveLease?
    /// Runs on-demand syncs (`bridgectl inventory sync`); nil in tests that build a syncer without one.
    public let fullSync: FullSync?
    let byDomain: [String: ShopInventorySync]
    private let catalogueReady = Mutex<(ready: Bool, waiters: [UUID: CheckedContinuation<Void, Never>])>((false, [:]))

    public init(
        settings: InventorySyncerSettings, picture: StockPicture, shops: [ShopInventorySync], lease: ActiveLease?,
        fullSync: FullSync? = nil
    ) {
        self.settings = settings
        self.fullSync = fullSync
        self.picture = picture
        self.shops = shops
        self.lease = lease
        byDomain = Dictionary(shops.map { ($0.shop.domain, $0) }, uniquingKeysWith: { a, _ in a })
    }

    public func shop(domain: String?) -> ShopInventorySync? { domain.flatMap { byDomain[$0] } }

    /// Returns once this process is the active syncer and the first full sync has loaded every shop's catalogue, or
    /// when the calling task is cancelled (a shutdown: the caller stops).
    public func waitUntilReady() async {
        await lease?.waitUntilActive()
        if Task.isCancelled { return }
        let id = UUID()
        await withTaskCancellationHandler {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let now = catalogueReady.withLock { s -> Bool in
                    if s.ready || Task.isCancelled { return true }
                    s.waiters[id] = c
                    return false
                }
                if now { c.resume() }
            }
        } onCancel: {
            catalogueReady.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// The catalogues are loaded: the queue consumers may start.
    public func markCatalogueReady() {
        let waiters = catalogueReady.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.ready = true
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume() }
    }
}
