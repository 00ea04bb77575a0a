import ERP
import InventorySync
import Testing

/// The per-order count of pending units, without a broker: the cases a review found the first version got wrong.
@Suite("pending units, order by order (StockPicture)")
struct StockPictureTests {
    let key = StockKey(sku: "SKU-1", warehouse: "WH-1")
    static func ref(_ id: Int64) -> String { ERPReference.salesOrder(shop: "acme", orderId: id) }

    /// The ERP allocates `units` for order `id` (a stock change naming it).
    func allocate(_ p: StockPicture, _ id: Int64, _ units: Int, seq: Int64) async {
        _ = await p.apply(ERPStockChange(seq: seq, sku: "SKU-1", warehouse: "WH-1", available: 10, orderRef: Self.ref(id), quantity: -units))
    }

    @Test("an order Shopify fulfilled before the ERP has it, plus an order not known yet: both count")
    func fulfilledBeforeERPAndUnknown() async {
        let p = StockPicture()
        // K took 3, all fulfilled in Shopify (out of `committed`), not in the ERP.
        await p.observe(shop: "acme", orderRef: Self.ref(1), .init(version: 1000, units: [:], taken: ["SKU-1": 3], cancelled: false))
        // U (2 units) is in Shopify's committed, its webhook not in yet.
        #expect(await p.pendingUnits(shop: "acme", key, committed: 2) == 5)
        // The ERP allocates K: only U is left.
        await allocate(p, 1, 3, seq: 1)
        #expect(await p.pendingUnits(shop: "acme", key, committed: 2) == 2)
        #expect(await p.keptPending == 0, "K is done once the ERP holds its units")
    }

    @Test("two versions of one second that cannot be ordered: the smaller commitment is matched, never the larger")
    func sameSecondMergeKeepsTheLess() async {
        let p = StockPicture()
        await allocate(p, 1, 5, seq: 1)
        // A read at start (one-second version: 5 still committed) and a webhook of the same second without a trigger
        // time (3 fulfilled, 2 committed).
        await p.observe(shop: "acme", orderRef: Self.ref(1), .init(version: 7000, units: ["SKU-1": 5], cancelled: false, exact: false))
        await p.observe(shop: "acme", orderRef: Self.ref(1), .init(version: 7000, units: ["SKU-1": 2], taken: ["SKU-1": 5], cancelled: false, exact: false))
        // Shopify commits 2 for it and 3 for an order not known yet: the 3 are pending.
        #expect(await p.pendingUnits(shop: "acme", key, committed: 5) == 3)
    }

    @Test("a cancellation stands against any later version; an allocation matches its own order only")
    func cancellationFinalAndNoNetting() async {
        let p = StockPicture()
        await allocate(p, 1, 3, seq: 1)
        await p.observe(shop: "acme", orderRef: Self.ref(1), .init(version: 1000, units: ["SKU-1": 3], cancelled: false))
        await p.observe(shop: "acme", orderRef: Self.ref(1), .init(version: 2000, units: [:], cancelled: true))
        // A late copy of an older version does not bring it back.
        await p.observe(shop: "acme", orderRef: Self.ref(1), .init(version: 1500, units: ["SKU-1": 3], cancelled: false))
        // Order 2 (2 units) is known, not in the ERP: all of it is pending, the ERP's 3 for order 1 cover nothing.
        await p.observe(shop: "acme", orderRef: Self.ref(2), .init(version: 3000, units: ["SKU-1": 2], cancelled: false))
        #expect(await p.pendingUnits(shop: "acme", key, committed: 2) == 2)
    }
}
