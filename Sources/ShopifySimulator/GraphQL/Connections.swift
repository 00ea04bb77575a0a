import Foundation
import GraphQL

/// Shopify's search syntax, the part the bridge uses: `sku:ABC`, `updated_at:>'2026-11-01T00:00:00Z'`,
/// `updated_at:>=2026-11-01`, `id:>123`, terms joined by spaces or `AND`. Unknown fields are ignored, as Shopify does.
struct SearchQuery: Sendable {
    enum Op: String, Sendable { case eq = "", gt = ">", ge = ">=", lt = "<", le = "<=" }
    struct Term: Sendable {
        var field: String
        var op: Op
        var value: String
    }
    var terms: [Term] = []

    init(_ text: String?) {
        guard let text else { return }
        var tokens: [String] = []
        var current = ""
        var quote: Character?
        for c in text {
            if let q = quote {
                if c == q { quote = nil } else { current.append(c) }
            } else if c == "'" || c == "\"" {
                quote = c
            } else if c == " " {
                if !current.isEmpty { tokens.append(current) }
                current = ""
            } else {
                current.append(c)
            }
        }
        if !current.isEmpty { tokens.append(current) }
        for token in tokens where token != "AND" && token != "OR" {
            guard let colon = token.firstIndex(of: ":") else { continue }
            let field = String(token[..<colon])
            var rest = token[token.index(after: colon)...]
            var op = Op.eq
            for candidate in [Op.ge, .le, .gt, .lt] where rest.hasPrefix(candidate.rawValue) {
                op = candidate
                rest = rest.dropFirst(candidate.rawValue.count)
                break
            }
            terms.append(Term(field: field, op: op, value: String(rest)))
        }
    }

    /// Whether a string field matches (sku: exact, or a prefix with a trailing `*`).
    func matches(_ field: String, string value: String?) -> Bool {
        for t in terms where t.field == field {
            guard let value else { return false }
            if t.value.hasSuffix("*") {
                if !value.hasPrefix(t.value.dropLast()) { return false }
            } else if value != t.value {
                return false
            }
        }
        return true
    }

    /// Whether a date field matches every comparison on it. Dates without a time mean midnight UTC.
    func matches(_ field: String, date: Date) -> Bool { matches(field, value: date, parse: Self.parseDate) }

    func matches(_ field: String, id: Int64) -> Bool { matches(field, value: id, parse: { Int64($0) }) }

    /// Every comparison on `field` holds; several plain `field:value` terms match any of them (Shopify's
    /// `id:1 OR id:2`: the simulator reads `OR` between terms of one field only).
    private func matches<T: Comparable>(_ field: String, value: T, parse: (String) -> T?) -> Bool {
        let anyOf = terms.filter { $0.field == field && $0.op == .eq }
        if anyOf.count > 1 {
            guard anyOf.contains(where: { parse($0.value) == value }) else { return false }
        }
        for t in terms where t.field == field && !(anyOf.count > 1 && t.op == .eq) {
            guard let bound = parse(t.value) else { return false }
            let ok: Bool =
                switch t.op {
                case .eq: value == bound
                case .gt: value > bound
                case .ge: value >= bound
                case .lt: value < bound
                case .le: value <= bound
                }
            if !ok { return false }
        }
        return true
    }

    static func parseDate(_ text: String) -> Date? {
        if let d = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: true)) { return d }
        if let d = try? Date(text, strategy: Date.ISO8601FormatStyle()) { return d }
        if let d = try? Date(text + "T00:00:00Z", strategy: Date.ISO8601FormatStyle()) { return d }
        return nil
    }
}

/// Cursor pagination as Shopify does it: `first`/`after` forwards, `last`/`before` backwards, `reverse`, at most
/// 250 per page, opaque cursors that carry the sort value and id (so a page boundary survives changes elsewhere).
/// In a bulk operation there is no page size: the whole connection is read.
struct Paginator {
    struct Key: Comparable, Sendable {
        var value: Double
        var id: Int64
        static func < (a: Key, b: Key) -> Bool { (a.value, a.id) < (b.value, b.id) }
    }

    static let maxPageSize = 250

    static func cursor(_ key: Key) -> String { Data("\(key.value)|\(key.id)".utf8).base64EncodedString() }

    static func decodeCursor(_ cursor: String) throws -> Key {
        guard let data = Data(base64Encoded: cursor), let text = String(data: data, encoding: .utf8) else {
            throw AdminAPIError.invalidCursor
        }
        let parts = text.split(separator: "|")
        guard parts.count == 2, let value = Double(parts[0]), let id = Int64(parts[1]) else { throw AdminAPIError.invalidCursor }
        return Key(value: value, id: id)
    }

    /// A connection (`edges`, `nodes`, `pageInfo`) over `items`, each with its sort key, from the field's arguments.
    static func connection<T>(
        _ items: [T], key: (T) -> Key, node: (T) -> [String: any Sendable], args: Map, bulk: Bool, window: Range<Int>? = nil
    ) throws -> [String: any Sendable] {
        let reverse = args["reverse"].bool ?? false
        var sorted = items.map { (key($0), $0) }.sorted { reverse ? $0.0 > $1.0 : $0.0 < $1.0 }
        func before(_ a: Key, _ b: Key) -> Bool { reverse ? a > b : a < b }
        if let after = args["after"].string {
            let k = try decodeCursor(after)
            sorted = sorted.filter { before(k, $0.0) }
        }
        if let beforeCursor = args["before"].string {
            let k = try decodeCursor(beforeCursor)
            sorted = sorted.filter { before($0.0, k) }
        }
        var hasNext = false
        var hasPrevious = false
        if !bulk {
            let first = args["first"].int
            let last = args["last"].int
            guard first != nil || last != nil else { throw AdminAPIError.pageSizeRequired }
            for n in [first, last].compactMap({ $0 }) where n > maxPageSize || n < 0 { throw AdminAPIError.pageSizeTooLarge(n) }
            if let first, sorted.count > first {
                sorted = Array(sorted.prefix(first))
                hasNext = true
            }
            if let last, sorted.count > last {
                sorted = Array(sorted.suffix(last))
                hasPrevious = true
            }
            if args["after"].string != nil { hasPrevious = true }
            if args["before"].string != nil { hasNext = true }
        } else if let window {
            sorted = Array(sorted[min(window.lowerBound, sorted.count)..<min(window.upperBound, sorted.count)])
        }
        let nodes = sorted.map { node($0.1) }
        let cursors = sorted.map { cursor($0.0) }
        return [
            "nodes": nodes,
            "edges": zip(cursors, nodes).map { ["cursor": $0, "node": $1] as [String: any Sendable] },
            "pageInfo": [
                "hasNextPage": hasNext, "hasPreviousPage": hasPrevious, "startCursor": cursors.first as (any Sendable)?,
                "endCursor": cursors.last as (any Sendable)?,
            ] as [String: (any Sendable)?],
        ]
    }
}

/// Errors that Shopify answers as top-level GraphQL errors (HTTP 200) with a code in `extensions`.
enum AdminAPIError: Error {
    case pageSizeRequired
    case pageSizeTooLarge(Int)
    case invalidCursor
    case idempotencyRequired
    case changeFromQuantityRequired(index: Int)
    case inputTooLarge(Int)
    case invalidId(String)

    var graphQLError: GraphQLError {
        switch self {
        case .pageSizeRequired:
            return GraphQLError(message: "you must provide one of first or last", extensions: ["code": "BAD_REQUEST"])
        case .pageSizeTooLarge(let n):
            return GraphQLError(message: "The page size \(n) must be between 0 and \(Paginator.maxPageSize).", extensions: ["code": "BAD_REQUEST"])
        case .invalidCursor:
            return GraphQLError(message: "Invalid cursor for current pagination sort.", extensions: ["code": "BAD_REQUEST"])
        case .idempotencyRequired:
            return GraphQLError(
                message: "The @idempotent directive is required for this mutation but was not provided.", extensions: ["code": "BAD_REQUEST"])
        case .changeFromQuantityRequired(let i):
            return GraphQLError(
                message: "Variable $input of type InventorySetQuantitiesInput! was provided invalid value for quantities.\(i).changeFromQuantity (Expected value to not be undefined: pass an Int to compare-and-set, or null to skip the check)",
                extensions: ["code": "INVALID_FIELD_ARGUMENTS"])
        case .inputTooLarge(let n):
            return GraphQLError(
                message: "The input array size of \(n) is greater than the maximum allowed of 250.", extensions: ["code": "MAX_INPUT_SIZE_EXCEEDED"])
        case .invalidId(let id):
            return GraphQLError(message: "Invalid global id '\(id)'", extensions: ["code": "argumentLiteralsIncompatible"])
        }
    }
}
