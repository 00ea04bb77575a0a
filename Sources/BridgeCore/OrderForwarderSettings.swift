import Foundation

/// Settings of the order-forwarder (`order_forwarder.*`).
public struct OrderForwarderSettings: Sendable, Equatable {
    /// Unacked deliveries per forwarder process: its parallelism.
    public var prefetch: Int
    /// Where the idempotency/version ledger lives.
    public var ledger: LedgerLocation
    /// How long a worker holds an order's lease before it expires on its own (a killed holder).
    public var lockTTL: Duration
    /// How long a worker waits for another worker's lease on the same order before retrying later.
    public var lockWait: Duration
    /// Consecutive ERP outage failures that open the circuit.
    public var breakerThreshold: Int
    /// How long the circuit stays open before one probe call.
    public var breakerProbeInterval: Duration
    public var mapping: OrderMappingSettings

    public init(
        prefetch: Int = 32, ledger: LedgerLocation = .sqlite(path: "data/order-ledger.sqlite"),
        lockTTL: Duration = .seconds(60), lockWait: Duration = .seconds(10), breakerThreshold: Int = 5,
        breakerProbeInterval: Duration = .seconds(5), mapping: OrderMappingSettings = .init()
    ) {
        self.prefetch = prefetch
        self.ledger = ledger
        self.lockTTL = lockTTL
        self.lockWait = lockWait
        self.breakerThreshold = breakerThreshold
        self.breakerProbeInterval = breakerProbeInterval
        self.mapping = mapping
    }
}

/// How Shopify line items become ERP items.
public struct OrderMappingSettings: Sendable, Equatable {
    public enum MissingSKU: String, Sendable, CaseIterable {
        /// A line without SKU (custom item, tip product) dead-letters the order with a clear reason.
        case deadLetter = "dead_letter"
        /// A line without SKU is booked on `catchAllItem`.
        case catchAll = "catch_all"
    }

    /// Shopify SKU -> ERP item number, where they differ. Unmapped SKUs pass through unchanged.
    public var skuMap: [String: String]
    /// Shopify variant id -> ERP item number; wins over the SKU (useful for lines without SKU).
    public var variantMap: [Int64: String]
    public var missingSKU: MissingSKU
    public var catchAllItem: String

    public init(
        skuMap: [String: String] = [:], variantMap: [Int64: String] = [:], missingSKU: MissingSKU = .deadLetter,
        catchAllItem: String = "MISC"
    ) {
        self.skuMap = skuMap
        self.variantMap = variantMap
        self.missingSKU = missingSKU
        self.catchAllItem = catchAllItem
    }
}

/// Where the ledger lives, from `order_forwarder.ledger`: `sqlite:PATH` or `postgres://user:pass@host:port/db`.
public enum LedgerLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(host: String, port: Int, user: String, password: String?, database: String)

    public init?(_ s: String) {
        if s.hasPrefix("sqlite:") {
            var path = String(s.dropFirst("sqlite:".count))
            if path.hasPrefix("//") { path = String(path.dropFirst(2)) }
            guard !path.isEmpty else { return nil }
            self = .sqlite(path: path)
            return
        }
        guard let u = URLComponents(string: s), u.scheme == "postgres" || u.scheme == "postgresql",
            let host = u.host, !host.isEmpty, let user = u.user
        else { return nil }
        let db = u.path.hasPrefix("/") ? String(u.path.dropFirst()) : u.path
        self = .postgres(host: host, port: u.port ?? 5432, user: user, password: u.password, database: db.isEmpty ? user : db)
    }

    /// For logs: never the password.
    public var redacted: String {
        switch self {
        case .sqlite(let path): return "sqlite:\(path)"
        case .postgres(let host, let port, let user, _, let db): return "postgres://\(user)@\(host):\(port)/\(db)"
        }
    }
}

extension LedgerLocation {
    /// A location string with any password replaced, for error messages.
    public static func redact(_ s: String) -> String {
        guard var u = URLComponents(string: s), u.password != nil else { return s }
        u.password = "***"
        return u.string ?? "(unparseable)"
    }
}
