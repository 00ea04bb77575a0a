import Foundation

/// Settings of the order-forwarder (`order_forwarder.*`).
public struct OrderForwarderSettings: Sendable, Equatable {
    /// The forwarder writes orders into the ERP; the source-of-truth policy must let it.
    public var enabled: Bool
    /// Shopify's customers are written into the ERP too; allowed only when `source_of_truth.customers` is shopify.
    public var syncCustomers: Bool
    /// Unacked deliveries per forwarder process.
    public var prefetch: Int
    /// Orders applied at once per forwarder process (ERP writes in flight), at most `prefetch`. The rest of the
    /// prefetch waits: a delivery whose order another delivery holds (the orders/paid behind its orders/create, in
    /// this process or another) waits without a slot, and a prefetched delivery of another order uses it.
    public var concurrency: Int
    /// Where the idempotency/version ledger lives.
    public var ledger: LedgerLocation
    /// How long a worker holds an order's lease before it expires on its own (a killed holder).
    public var lockTTL: Duration
    /// How long a worker waits for another worker's lease on the same order before retrying later.
    public var lockWait: Duration
    /// Plain ERP profile: the longest the ERP may take to commit a request it received (its own request timeout, a
    /// proxy's, a queue in front of it). After a create, overwrite or credit note whose outcome is unknown (a timeout,
    /// a 5xx, a connection lost after the request was sent, a worker that died or lost its lease mid-call) the order
    /// stays fenced for `erp.timeout` (the latest the request can have reached the ERP) plus this, then the ERP is asked
    /// what it holds. Shorter than the ERP's real commit time, a late commit can still duplicate a document.
    public var unknownOutcomeWait: Duration
    /// Consecutive ERP outage failures that open the circuit.
    public var breakerThreshold: Int
    /// How long the circuit stays open before one probe call.
    public var breakerProbeInterval: Duration
    public var mapping: OrderMappingSettings

    public init(
        enabled: Bool = true, syncCustomers: Bool = false, prefetch: Int = 64, concurrency: Int? = nil, ledger: LedgerLocation = .sqlite(path: "data/order-ledger.sqlite"),
        lockTTL: Duration = .seconds(60), lockWait: Duration = .seconds(10), unknownOutcomeWait: Duration = .seconds(60),
        breakerThreshold: Int = 5, breakerProbeInterval: Duration = .seconds(5), mapping: OrderMappingSettings = .init()
    ) {
        self.enabled = enabled
        self.syncCustomers = syncCustomers
        self.prefetch = prefetch
        self.concurrency = min(concurrency ?? Self.defaultConcurrency(prefetch: prefetch), prefetch)
        self.ledger = ledger
        self.lockTTL = lockTTL
        self.lockWait = lockWait
        self.unknownOutcomeWait = unknownOutcomeWait
        self.breakerThreshold = breakerThreshold
        self.breakerProbeInterval = breakerProbeInterval
        self.mapping = mapping
    }
}

extension OrderForwarderSettings {
    /// Half the prefetch: as many deliveries again can wait for their order as are being applied.
    public static func defaultConcurrency(prefetch: Int) -> Int { max(1, (prefetch + 1) / 2) }

    /// Parses `order_forwarder.*`.
    public static func parse(_ p: inout SettingsParser) -> OrderForwarderSettings {
        let prefetch = p.int("order_forwarder.prefetch", default: 64, range: 1...1000)
        let concurrency = p.int(
            "order_forwarder.concurrency", default: defaultConcurrency(prefetch: prefetch), range: 1...1000)
        if concurrency > prefetch {
            p.fail(
                "order_forwarder.concurrency", "\(concurrency) orders at once with only \(prefetch) prefetched",
                fix: "set order_forwarder.concurrency at most order_forwarder.prefetch (\(prefetch)), or raise the prefetch")
        }
        let ledgerRaw = p.string("order_forwarder.ledger", default: "sqlite:data/order-ledger.sqlite", secret: true)
        let ledger = LedgerLocation(ledgerRaw)
        if ledger == nil {
            p.fail(
                "order_forwarder.ledger", "'\(LedgerLocation.redact(ledgerRaw))' is not a ledger location",
                fix: "use sqlite:PATH (one host) or postgres://USER:PASSWORD@HOST:PORT/DATABASE (several hosts)")
        }
        var skuMap: [String: String] = [:]
        for pair in p.stringList("order_forwarder.sku_map", default: []) {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                p.fail("order_forwarder.sku_map", "'\(pair)' is not SHOPIFY_SKU=ERP_ITEM", fix: "list entries like \"TSHIRT-RED-M=100234\"")
                continue
            }
            skuMap[parts[0]] = parts[1]
        }
        var variantMap: [Int64: String] = [:]
        for pair in p.stringList("order_forwarder.variant_map", default: []) {
            let parts = pair.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let id = Int64(parts[0]), !parts[1].isEmpty else {
                p.fail("order_forwarder.variant_map", "'\(pair)' is not VARIANT_ID=ERP_ITEM", fix: "list entries like \"40123456789=100234\"")
                continue
            }
            variantMap[id] = parts[1]
        }
        return OrderForwarderSettings(
            enabled: p.bool("order_forwarder.enabled", default: true),
            syncCustomers: p.bool("order_forwarder.sync_customers", default: false),
            prefetch: prefetch, concurrency: concurrency,
            ledger: ledger ?? .sqlite(path: "data/order-ledger.sqlite"),
            lockTTL: p.duration("order_forwarder.lock_ttl", default: .seconds(60), range: .seconds(1) ... .seconds(3600)),
            lockWait: p.duration("order_forwarder.lock_wait", default: .seconds(10), range: .zero ... .seconds(600)),
            unknownOutcomeWait: p.duration(
                "order_forwarder.unknown_outcome_wait", default: .seconds(60), range: .milliseconds(100) ... .seconds(3600)),
            breakerThreshold: p.int("order_forwarder.breaker_threshold", default: 5, range: 1...1000),
            breakerProbeInterval: p.duration(
                "order_forwarder.breaker_probe_interval", default: .seconds(5), range: .milliseconds(100) ... .seconds(600)),
            mapping: OrderMappingSettings(
                skuMap: skuMap, variantMap: variantMap,
                missingSKU: p.choice("order_forwarder.missing_sku", default: .deadLetter),
                catchAllItem: p.string("order_forwarder.catch_all_item", default: "MISC")))
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
