@testable import BridgeMessaging
import Testing

@Suite("Dead-letter summaries name the order")
struct DeadLetterSummaryTests {
    @Test("the top-level order id is found even when nested ids come first, exactly beyond 2^53")
    func orderIdFromBody() {
        let order = #"{"customer":{"id":7000000022773},"line_items":[{"id":2547410530}],"id":9007199254740993,"name":"A1"}"#
        #expect(DeadLetterSummary.orderId(topic: "orders/create", body: Array(order.utf8)) == "9007199254740993")
        let refund = #"{"id":55,"transactions":[{"id":1}],"order_id":9007199254740995}"#
        #expect(DeadLetterSummary.orderId(topic: "refunds/create", body: Array(refund.utf8)) == "9007199254740995")
        #expect(DeadLetterSummary.orderId(topic: "inventory_levels/update", body: Array(order.utf8)) == nil)
        #expect(DeadLetterSummary.orderId(topic: "orders/create", body: Array("{not json".utf8)) == nil)
    }
}
