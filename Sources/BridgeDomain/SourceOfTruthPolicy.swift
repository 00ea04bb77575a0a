/// A system that can own a data domain.
public enum SystemOfRecord: String, Sendable, CaseIterable, CustomStringConvertible {
    case shopify
    case erp
    public var description: String { rawValue }
    public var other: SystemOfRecord { self == .shopify ? .erp : .shopify }
}

/// The data domains the bridge moves, each owned by exactly one system.
public enum DataDomain: String, Sendable, CaseIterable, CustomStringConvertible {
    case inventory
    case orders
    case b2bPrices = "b2b_prices"
    case dtcPrices = "dtc_prices"
    case customers
    case products
    public var description: String { rawValue }

    /// The documented default owner of each domain.
    public var defaultOwner: SystemOfRecord {
        switch self {
        case .inventory: return .erp
        case .orders: return .shopify
        case .b2bPrices: return .erp
        case .dtcPrices: return .shopify
        case .customers: return .erp
        case .products: return .erp
        }
    }
}

/// A write the policy refused: it would make the non-owning system override the owner.
public struct PolicyViolation: Error, Sendable, CustomStringConvertible {
    public let domain: DataDomain
    public let owner: SystemOfRecord
    public let attemptedTarget: SystemOfRecord
    public var description: String {
        "source-of-truth policy: \(domain) is owned by \(owner); writing \(domain) into \(attemptedTarget) would override the owner (source_of_truth.\(domain.rawValue))"
    }
}

/// One source of truth per domain. Every writer asks the policy before writing in a direction: data flows only
/// from the owner to the other system, never back.
public struct SourceOfTruthPolicy: Sendable, Equatable {
    private var owners: [DataDomain: SystemOfRecord]

    public init(owners: [DataDomain: SystemOfRecord] = [:]) {
        var all: [DataDomain: SystemOfRecord] = [:]
        for d in DataDomain.allCases { all[d] = owners[d] ?? d.defaultOwner }
        self.owners = all
    }

    public static let defaults = SourceOfTruthPolicy()

    public func owner(of domain: DataDomain) -> SystemOfRecord { owners[domain]! }

    /// Whether `domain` may be written into `target` (true only when `target` is not the owner).
    public func mayWrite(_ domain: DataDomain, into target: SystemOfRecord) -> Bool {
        owner(of: domain) != target
    }

    /// Throws `PolicyViolation` unless `domain` may be written into `target`. Call before every write.
    public func authorize(_ domain: DataDomain, into target: SystemOfRecord) throws {
        guard mayWrite(domain, into: target) else {
            throw PolicyViolation(domain: domain, owner: owner(of: domain), attemptedTarget: target)
        }
    }
}

/// A data flow a process performs when it runs with its current configuration.
public struct DataFlow: Sendable, Equatable, CustomStringConvertible {
    public let domain: DataDomain
    public let into: SystemOfRecord
    /// Who performs it, and the config key that switches it on (named in errors).
    public let process: String
    public let enabledBy: String

    public init(domain: DataDomain, into: SystemOfRecord, process: String, enabledBy: String) {
        self.domain = domain
        self.into = into
        self.process = process
        self.enabledBy = enabledBy
    }

    public var description: String { "\(process) writes \(domain) into \(into)" }
}
