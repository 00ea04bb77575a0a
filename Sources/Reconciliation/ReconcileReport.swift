import BridgeDomain
import Foundation

/// One reconciliation run of one domain and shop: what was compared, what matched, what was healed (written into
/// the domain's non-owner) and what only reported, with the first differences itemised. Kept as JSON and Markdown
/// under `reconciler.reports_dir` (`ReportStore`), sent as a summary event to `bridge.events`.
public struct ReconcileReport: Codable, Sendable, Equatable {
    /// One difference between the two systems.
    public struct Difference: Codable, Sendable, Equatable {
        /// `missing_in_erp`, `version_behind`, `status`, `financial_status`, `total`, `refunded`, `orphan_in_erp`, `duplicate_in_erp`,
        /// `healed_before_resume` (re-sent by an interrupted delivery of the same run, matching now),
        /// `heal_unconfirmed` (re-sent, but the ERP did not match within `reconciler.verify_wait`); inventory:
        /// `drift_up`, `drift_down`, `within_allowance`, `unknown_sku`; prices: `b2b_price_missing`,
        /// `b2b_price_differs`, `unknown_sku`, `dtc_price_differs` (reported only: Shopify owns DTC prices); catalogue:
        /// `missing_in_shopify`, `missing_in_erp`, `duplicate_sku`, `variant_gone`.
        public var kind: String
        /// The Shopify order id, `SKU@warehouse`, or a SKU.
        public var id: String
        /// The ERP reference or document.
        public var ref: String?
        public var shopify: String?
        public var erp: String?
        /// `healed` (written into the non-owner), `resent` (orders: re-sent to the forwarder; healed once the ERP
        /// matches), `would_heal` (dry run), `reported` (the bridge cannot heal it).
        public var action: String

        public init(kind: String, id: String, ref: String? = nil, shopify: String? = nil, erp: String? = nil, action: String) {
            self.kind = kind
            self.id = id
            self.ref = ref
            self.shopify = shopify
            self.erp = erp
            self.action = action
        }
    }

    public var runId: String
    public var domain: ReconcilerSettings.Domain
    public var shop: String
    public var dryRun: Bool
    /// `schedule` or `bridgectl`.
    public var trigger: String
    public var startedAt: Date
    public var finishedAt: Date?
    public var windowStart: Date?
    /// How the owner's side was read (`paged`, `bulk`).
    public var readMode: String?
    /// Items compared (orders, levels, prices).
    public var checked = 0
    public var matched = 0
    /// Items that differed and were written into the non-owner (orders: re-sent, and the ERP matched on a re-read).
    public var healed = 0
    /// Items that differed and were only reported (the bridge may not or cannot write them, or a dry run).
    public var reported = 0
    /// Items too recent to compare (changes still on their way through the queues).
    public var inFlight = 0
    /// Differences by kind (an item may differ in several ways).
    public var mismatches: [String: Int] = [:]
    /// The first `reconciler.itemised` differences.
    public var differences: [Difference] = []
    /// Admin API points this run used.
    public var pointsUsed = 0
    /// Inventory: drifted levels by how many units they were off (`1`, `2-5`, `6-20`, `21-100`, `>100`).
    public var driftHistogram: [String: Int]?
    /// A run redelivered after it was interrupted: items it had healed before are not healed again.
    public var resumed = false
    /// Why the run stopped early (nil: it completed).
    public var error: String?

    public init(runId: String, domain: ReconcilerSettings.Domain, shop: String, dryRun: Bool, trigger: String, startedAt: Date) {
        self.runId = runId
        self.domain = domain
        self.shop = shop
        self.dryRun = dryRun
        self.trigger = trigger
        self.startedAt = startedAt
    }

    public var differed: Int { healed + reported }
    public var seconds: Double { (finishedAt ?? Date()).timeIntervalSince(startedAt) }

    mutating func record(_ difference: Difference, itemised limit: Int) {
        mismatches[difference.kind, default: 0] += 1
        if differences.count < limit { differences.append(difference) }
    }

    public static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.dateEncodingStrategy = .iso8601
        return e
    }()

    public static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .iso8601
        return d
    }()

    /// The report as a readable Markdown document.
    public var markdown: String {
        var lines = [
            "# Reconciliation \(runId): \(domain.rawValue), shop \(shop)",
            "",
            "| | |",
            "|---|---|",
            "| started | \(Self.iso(startedAt)) |",
            "| finished | \(finishedAt.map(Self.iso) ?? "not finished") (\(String(format: "%.1f", seconds)) s) |",
            "| trigger | \(trigger)\(dryRun ? ", dry run: nothing written" : "")\(resumed ? ", resumed after an interruption" : "") |",
        ]
        if let windowStart { lines.append("| window | changes since \(Self.iso(windowStart)) |") }
        if let readMode { lines.append("| read | \(readMode), \(pointsUsed) Admin API points |") }
        lines += [
            "| checked | \(checked) |", "| matched | \(matched) |", "| healed | \(healed) |", "| reported | \(reported) |",
            "| in flight (not compared) | \(inFlight) |",
        ]
        if let error { lines.append("| stopped early | \(error) |") }
        if !mismatches.isEmpty {
            lines += ["", "## Differences by kind", "", "| kind | count |", "|---|---|"]
            for (kind, n) in mismatches.sorted(by: { $0.key < $1.key }) { lines.append("| \(kind) | \(n) |") }
        }
        if let driftHistogram, !driftHistogram.isEmpty {
            lines += ["", "## Drift (levels by units off)", "", "| units off | levels |", "|---|---|"]
            for b in InventoryReconciler.buckets.map(\.label) where driftHistogram[b] != nil {
                lines.append("| \(b) | \(driftHistogram[b]!) |")
            }
        }
        if !differences.isEmpty {
            lines += [
                "", "## First \(differences.count) differences", "", "| kind | id | ERP reference | Shopify | ERP | action |",
                "|---|---|---|---|---|---|",
            ]
            for d in differences {
                lines.append("| \(d.kind) | \(d.id) | \(d.ref ?? "") | \(d.shopify ?? "") | \(d.erp ?? "") | \(d.action) |")
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One line for a terminal or a log.
    public var summary: String {
        let kinds = mismatches.sorted(by: { $0.key < $1.key }).map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        return "\(domain.rawValue) \(shop): checked \(checked), matched \(matched), healed \(healed), reported \(reported)"
            + (inFlight > 0 ? ", in flight \(inFlight)" : "") + (kinds.isEmpty ? "" : " (\(kinds))") + (dryRun ? " [dry run]" : "")
            + (error.map { " [stopped: \($0)]" } ?? "")
    }

    static func iso(_ d: Date) -> String { d.formatted(Date.ISO8601FormatStyle()) }
}
