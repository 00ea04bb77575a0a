import BridgeDomain
import ERP
import Foundation
import Logging
import Metrics
import Shopify

/// One shop's B2B prices: the ERP owns them (`source_of_truth.b2b_prices: erp`), and each ERP price list named in
/// `shop.<id>.price_lists` fills one Shopify price list with fixed prices. Writes go through
/// `priceListFixedPricesUpdate` for the prices that differ only (compare before write: Shopify, like shopify-sim,
/// writes whatever it is sent), each on the ERP's price read just before the write, so a price the ERP changed
/// meanwhile is not overwritten with the one read earlier. Setting a price is idempotent: replays are harmless.
///
/// One writer: only the active inventory-syncer writes B2B prices (`PriceChangedHandler` waits for its lease, and
/// `mayWrite` fences every call with it); the reconciler sends its corrections there as `price.changed` hints
/// instead of writing. With one SKU's events handled one after another, each on the ERP's price read just before
/// its write, an older ERP price is never written after a newer one.
///
/// Metrics (label `shop`): `prices_written_total`, `prices_unchanged_total`, `prices_refused_total{code}`,
/// `prices_unknown_sku_total`.
public struct B2BPriceSync: Sendable {
    public let shop: BridgeConfig.Shop
    public let client: ShopifyAdminClient
    public let erp: RESTERPClient
    public let policy: SourceOfTruthPolicy
    /// Asked right before every write leaves: false while this process cannot confirm it is the one writer.
    let mayWrite: (@Sendable () -> Bool)?
    let logger: Logger

    public init(
        shop: BridgeConfig.Shop, client: ShopifyAdminClient, erp: RESTERPClient, policy: SourceOfTruthPolicy,
        mayWrite: (@Sendable () -> Bool)? = nil, logger: Logger
    ) {
        self.mayWrite = mayWrite
        self.shop = shop
        self.client = client
        self.erp = erp
        self.policy = policy
        self.logger = logger
    }

    /// The Shopify price list (`gid://shopify/PriceList/...`) an ERP list fills in this shop, or nil.
    public func shopifyList(for erpList: String) -> String? {
        shop.priceLists[erpList].map { "gid://shopify/PriceList/\($0)" }
    }

    /// One price that differs: the ERP's, and Shopify's fixed price (nil: none yet).
    public struct Difference: Sendable, Equatable {
        public var sku: String
        public var variantId: String
        public var erp: Decimal
        public var shopify: Decimal?

        public init(sku: String, variantId: String, erp: Decimal, shopify: Decimal?) {
            self.sku = sku
            self.variantId = variantId
            self.erp = erp
            self.shopify = shopify
        }
    }

    /// One mapped list compared.
    public struct Comparison: Sendable {
        public var erpList: String
        public var shopifyList: String
        public var currency: String
        public var checked = 0
        public var matched = 0
        public var differences: [Difference] = []
        /// ERP SKUs with a price and no Shopify variant.
        public var unknownSKUs: [String] = []
    }

    /// Compares ERP list `erpList` with its Shopify list; `variants`: SKU -> variant id.
    public func compare(_ erpList: ERPPriceList, variants: [String: String]) async throws -> Comparison {
        guard let listId = shopifyList(for: erpList.id) else {
            throw PriceSyncError.unmappedList(erpList.id, shop: shop.id)
        }
        guard let shopify = try await client.fixedPrices(priceList: listId) else { throw PriceSyncError.missingShopifyList(listId, shop: shop.id) }
        guard shopify.currency == erpList.currency else {
            throw PriceSyncError.currencyMismatch(erp: erpList.id, erpList.currency, shopify: listId, shopify.currency)
        }
        var c = Comparison(erpList: erpList.id, shopifyList: listId, currency: erpList.currency)
        for (sku, price) in erpList.prices.sorted(by: { $0.key < $1.key }) {
            c.checked += 1
            guard let variant = variants[sku] else {
                c.unknownSKUs.append(sku)
                continue
            }
            let current = shopify.prices[variant]
            if current == price {
                c.matched += 1
            } else {
                c.differences.append(.init(sku: sku, variantId: variant, erp: price, shopify: current))
            }
        }
        return c
    }

    /// What a write did.
    public struct WriteResult: Sendable, Equatable {
        public var written = 0
        /// The ERP's price changed between the comparison and the write (the fresh one was written).
        public var changedSinceRead = 0
        /// Equal on the fresh read (another writer got there first).
        public var unchanged = 0
        public var refused: [ShopifyPriceRefusal] = []
    }

    /// Writes the differences of a comparison into Shopify, on the ERP's prices read again now for those SKUs (and
    /// Shopify's read again for those variants), changed ones only. `justRead`: the ERP's list as the caller read it
    /// a moment ago for exactly these SKUs (a pushed change), used instead of reading it a second time.
    public func write(_ differences: [Difference], erpList: String, justRead: ERPPriceList? = nil, logger: Logger) async throws -> WriteResult {
        try policy.authorize(.b2bPrices, into: .shopify)
        guard let listId = shopifyList(for: erpList) else { throw PriceSyncError.unmappedList(erpList, shop: shop.id) }
        var result = WriteResult()
        for start in stride(from: 0, to: differences.count, by: 250) {
            let chunk = Array(differences[start..<min(differences.count, start + 250)])
            let fresh: ERPPriceList
            if let justRead { fresh = justRead } else { fresh = try await erp.priceList(erpList, skus: chunk.map(\.sku)) }
            var rows: [(variantId: String, amount: Decimal)] = []
            for d in chunk {
                guard let now = fresh.prices[d.sku] else { continue }  // no longer on the ERP's list: nothing to set
                if now != d.erp { result.changedSinceRead += 1 }
                if now == d.shopify {
                    result.unchanged += 1
                    continue
                }
                rows.append((d.variantId, now))
            }
            // Shopify refuses the whole call for one bad price: the prices it named are taken out and the others sent
            // again, so one refusal never holds back the rest of its call.
            while !rows.isEmpty {
                let refused = try await client.setFixedPrices(priceList: listId, rows, currency: fresh.currency, mayProceed: mayWrite)
                if refused.isEmpty {
                    result.written += rows.count
                    break
                }
                result.refused += refused
                let named = Set(refused.compactMap(\.variantId))
                let rest = rows.filter { !named.contains($0.variantId) }
                // A refusal that names no price (or only prices not sent): nothing to take out.
                if rest.count == rows.count { break }
                rows = rest
            }
        }
        record(result)
        for r in result.refused {
            logger.error(
                "Shopify refused a B2B price",
                metadata: ["price_list": "\(listId)", "variant": "\(r.variantId ?? "?")", "code": "\(r.code)", "message": "\(r.message)"])
        }
        return result
    }

    /// A pushed change (`price.changed`): the SKUs' current prices on the ERP list, read now, written where
    /// Shopify's fixed price differs. Returns the outcome label.
    public func apply(erpList: String, skus: [String], logger: Logger) async throws -> String {
        guard let listId = shopifyList(for: erpList) else { return "unmapped_price_list" }
        try policy.authorize(.b2bPrices, into: .shopify)
        let fresh = try await erp.priceList(erpList, skus: skus)
        var differences: [Difference] = []
        var unknown = 0
        var unchanged = 0
        for sku in skus {
            guard let price = fresh.prices[sku] else { continue }
            guard let variant = try await variantId(sku: sku) else {
                unknown += 1
                continue
            }
            let numeric = variant.split(separator: "/").last.map(String.init) ?? variant
            guard let current = try await client.fixedPrices(priceList: listId, query: "variant_id:\(numeric)") else {
                throw PriceSyncError.missingShopifyList(listId, shop: shop.id)
            }
            guard current.currency == fresh.currency else {
                throw PriceSyncError.currencyMismatch(erp: erpList, fresh.currency, shopify: listId, current.currency)
            }
            if current.prices[variant] == price {
                unchanged += 1
                continue
            }
            differences.append(.init(sku: sku, variantId: variant, erp: price, shopify: current.prices[variant]))
        }
        if unknown > 0 {
            Counter(label: "prices_unknown_sku_total", dimensions: [("shop", shop.id)]).increment(by: unknown)
            logger.warning("B2B price for a SKU Shopify does not have: not written", metadata: ["price_list": "\(erpList)", "skus": "\(skus)"])
        }
        if unchanged > 0 { Counter(label: "prices_unchanged_total", dimensions: [("shop", shop.id)]).increment(by: unchanged) }
        if differences.isEmpty { return unknown > 0 ? "unknown_sku" : "unchanged" }
        let written = try await write(differences, erpList: erpList, justRead: fresh, logger: logger)
        if let refusal = written.refused.first {
            throw PriceSyncError.refused(refusal)
        }
        logger.info("B2B price written", metadata: ["price_list": "\(erpList)", "skus": "\(differences.map(\.sku))"])
        return written.written > 0 ? "written" : "unchanged"
    }

    /// The variant of a SKU, asked of Shopify.
    func variantId(sku: String) async throws -> String? { try await client.variant(sku: sku)?.variantId }

    func record(_ r: WriteResult) {
        let dims = [("shop", shop.id)]
        if r.written > 0 { Counter(label: "prices_written_total", dimensions: dims).increment(by: r.written) }
        if r.unchanged > 0 { Counter(label: "prices_unchanged_total", dimensions: dims).increment(by: r.unchanged) }
        for e in r.refused { Counter(label: "prices_refused_total", dimensions: dims + [("code", e.code)]).increment() }
    }
}

/// Why a price write cannot go ahead; each names its fix.
public enum PriceSyncError: Error, Sendable, CustomStringConvertible {
    case unmappedList(String, shop: String)
    case missingShopifyList(String, shop: String)
    case currencyMismatch(erp: String, String, shopify: String, String)
    case refused(ShopifyPriceRefusal)

    public var description: String {
        switch self {
        case .unmappedList(let l, let shop):
            "ERP price list \(l) is not mapped for shop \(shop) (shop.\(shop).price_lists: [\"\(l)=<Shopify price list id>\"])"
        case .missingShopifyList(let l, let shop): "shop \(shop) has no price list \(l): check shop.\(shop).price_lists"
        case .currencyMismatch(let e, let ec, let s, let sc):
            "ERP price list \(e) is in \(ec) but Shopify price list \(s) is in \(sc): map lists of one currency"
        case .refused(let r): "Shopify refused the price of \(r.variantId ?? "a variant"): \(r.code): \(r.message)"
        }
    }

    /// The error class on a dead letter.
    public var errorClass: String {
        switch self {
        case .unmappedList: "unmapped_price_list"
        case .missingShopifyList: "unknown_price_list"
        case .currencyMismatch: "price_list_currency_mismatch"
        case .refused(let r): "shopify_refused_\(r.code.lowercased())"
        }
    }
}
