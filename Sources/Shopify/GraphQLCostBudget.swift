import BridgeDomain

/// What Shopify reports about a shop's query-cost bucket in every GraphQL answer (`extensions.cost.throttleStatus`).
public struct ThrottleStatus: Decodable, Sendable, Equatable {
    public var maximumAvailable: Double
    public var currentlyAvailable: Double
    public var restoreRate: Double

    public init(maximumAvailable: Double, currentlyAvailable: Double, restoreRate: Double) {
        self.maximumAvailable = maximumAvailable
        self.currentlyAvailable = currentlyAvailable
        self.restoreRate = restoreRate
    }
}

/// The client's picture of one shop's leaky bucket, so requests wait for their points instead of being throttled.
///
/// Every request reserves its expected cost before it is sent; when the reservations have run the bucket dry, the
/// caller waits until the restore rate has refilled its share (so a drained bucket is used at exactly the restore
/// rate, and a full one in a burst). Each answer's `throttleStatus` replaces the estimate (minus what is still
/// reserved by requests in flight, which the shop may not have charged yet: a conservative, never optimistic,
/// view). Starts from the plan's figures until the first answer.
actor GraphQLCostBudget {
    private(set) var maximum: Double
    private(set) var available: Double
    private(set) var restoreRate: Double
    private var at: ContinuousClock.Instant
    /// Points reserved by requests sent and not yet answered.
    private var outstanding: Double = 0

    init(maximum: Double, restoreRate: Double) {
        self.maximum = maximum
        self.available = maximum
        self.restoreRate = restoreRate
        self.at = .now
    }

    private func refill() {
        let now = ContinuousClock.now
        available = min(maximum, available + (now - at).seconds * restoreRate)
        at = now
    }

    /// Reserves `cost` points and says how long to wait before sending (zero when the points are there now). A cost
    /// above the bucket's size is reserved as the whole bucket: waiting longer could never make it fit.
    func reserve(_ cost: Int) -> Duration {
        refill()
        let points = min(Double(cost), maximum)
        available -= points
        outstanding += points
        guard available < 0 else { return .zero }
        return .milliseconds(Int64((-available / restoreRate * 1000).rounded(.up)))
    }

    /// A request reserved `reserved` points and got an answer reporting `status` (nil: no answer, e.g. a network
    /// failure, and the points are given back). Returns the estimate afterwards.
    @discardableResult
    func settle(reserved: Int, status: ThrottleStatus?) -> Double {
        let points = min(Double(reserved), maximum)
        outstanding = max(0, outstanding - points)
        refill()
        if let status {
            maximum = status.maximumAvailable
            restoreRate = max(1, status.restoreRate)
            available = min(maximum, status.currentlyAvailable - outstanding)
        } else {
            available = min(maximum, available + points)
        }
        return available
    }

    /// The estimate now (for the `shopify_api_bucket_available` gauge and tests).
    var estimate: Double {
        refill()
        return available
    }
}
