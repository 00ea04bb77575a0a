/// What Shopify should show for one item at one location, from the ERP's figure: the rule that keeps a sale from
/// overselling while the ERP lags.
///
/// `available in Shopify = ERP available-to-sell − safety stock − units of orders Shopify accepted that the ERP does
/// not count yet`, never below zero. The syncer sets Shopify's `available` (not `on_hand`): Shopify computes
/// `available = on_hand − committed`, and its `committed` holds every unfulfilled Shopify order, including those
/// the ERP has already allocated and subtracted from its own figure. Setting `on_hand` to the ERP's figure would
/// subtract those orders twice; setting `available` subtracts each order once, in the ERP or in `pending`.
///
/// Worked example: the ERP has 10 of SKU-1 in WH-1, safety stock is 2, and ingest has accepted 3 units of SKU-1
/// that the forwarder has not yet written to the ERP: Shopify's `available` is set to 10 − 2 − 3 = 5. Once those
/// orders reach the ERP, it reports 7 and nothing is pending: still 7 − 2 − 0 = 5.
public struct StockRule: Sendable, Equatable {
    /// Units held back from Shopify per item and location (`inventory_syncer.safety_stock`).
    public var safetyStock: Int

    public init(safetyStock: Int) { self.safetyStock = max(0, safetyStock) }

    public struct Target: Sendable, Equatable {
        /// What Shopify's `available` is set to.
        public var quantity: Int
        /// The rule gave a negative figure and zero is pushed instead (counted: `inventory_clamped_total`).
        public var clamped: Bool

        public init(quantity: Int, clamped: Bool) {
            self.quantity = quantity
            self.clamped = clamped
        }
    }

    public func target(erpAvailable: Int, pendingUnits: Int = 0) -> Target {
        let raw = erpAvailable - safetyStock - max(0, pendingUnits)
        return Target(quantity: max(0, raw), clamped: raw < 0)
    }
}
