import Foundation
import GraphQL
import Synchronization

/// Shopify's query cost rules, computed over a validated operation (written here: no library knows Shopify's rules).
/// Scalars and enums cost 0, an object 1, a connection 2 plus its page size (each node then costs its own
/// selection), a mutation field 10. The requested cost uses the page sizes asked for; the actual cost counts the
/// nodes that came back (Shopify refunds the difference).
struct QueryCost {
    struct FieldType {
        var named: String
        var leaf: Bool
    }

    /// type name -> field name -> the field's named type.
    let fields: [String: [String: FieldType]]
    let fragments: [String: FragmentDefinition]
    let variables: [String: Map]
    static let mutationType = "Mutation"

    /// Prices operations of `document` (its fragments spread in) with `variables`.
    init(fields: [String: [String: FieldType]], document: Document, variables: [String: Map]) {
        self.fields = fields
        self.variables = variables
        var fragments: [String: FragmentDefinition] = [:]
        for f in document.definitions.compactMap({ $0 as? FragmentDefinition }) { fragments[f.name.value] = f }
        self.fragments = fragments
    }

    static func fieldTable(_ schema: GraphQLSchema) -> [String: [String: FieldType]] {
        var table: [String: [String: FieldType]] = [:]
        for (name, type) in schema.typeMap {
            guard let object = type as? GraphQLObjectType, let map = try? object.fields() else { continue }
            var fields: [String: FieldType] = [:]
            for (fieldName, field) in map {
                var t: any GraphQLType = field.type
                while true {
                    if let n = t as? GraphQLNonNull { t = n.ofType } else if let l = t as? GraphQLList { t = l.ofType } else { break }
                }
                let named = (t as? GraphQLNamedType)?.name ?? ""
                fields[fieldName] = FieldType(named: named, leaf: t is GraphQLScalarType || t is GraphQLEnumType)
            }
            table[name] = fields
        }
        return table
    }

    /// What is priced: the page sizes asked for, or the data that came back. (Not an optional `Map`: GraphQLSwift's
    /// `Map` is expressible by `nil`, which makes `Map?` comparisons with nil ambiguous.)
    enum Basis {
        case requested
        case actual(Map)
    }

    func requested(_ operation: OperationDefinition, rootType: String) -> Int {
        cost(operation.selectionSet, type: rootType, .requested)
    }

    func actual(_ operation: OperationDefinition, rootType: String, data: Map) -> Int {
        cost(operation.selectionSet, type: rootType, .actual(data))
    }

    /// The fields of a selection set with fragments spread in (the subset has no interfaces or unions).
    func flatten(_ set: SelectionSet?) -> [Field] {
        guard let set else { return [] }
        var out: [Field] = []
        for selection in set.selections {
            if let f = selection as? Field {
                out.append(f)
            } else if let inline = selection as? InlineFragment {
                out += flatten(inline.selectionSet)
            } else if let spread = selection as? FragmentSpread, let fragment = fragments[spread.name.value] {
                out += flatten(fragment.selectionSet)
            }
        }
        return out
    }

    private func cost(_ set: SelectionSet?, type: String, _ basis: Basis) -> Int {
        var total = 0
        for field in flatten(set) {
            let name = field.name.value
            guard let ft = fields[type]?[name], !ft.leaf else { continue }
            if type == Self.mutationType {
                total += 10
                continue
            }
            let child: Basis
            switch basis {
            case .requested: child = .requested
            case .actual(let data): child = .actual(data[field.alias?.value ?? name])
            }
            if ft.named.hasSuffix("Connection") {
                total += connectionCost(field, connectionType: ft.named, child)
            } else if case .actual(let value) = child, let list = value.array {
                total += 1 + list.reduce(0) { $0 + cost(field.selectionSet, type: ft.named, .actual($1)) }
            } else {
                total += 1 + cost(field.selectionSet, type: ft.named, child)
            }
        }
        return total
    }

    private func connectionCost(_ field: Field, connectionType: String, _ basis: Basis) -> Int {
        guard let nodeType = fields[connectionType]?["nodes"]?.named else { return 2 }
        // The node selections: under edges { node { ... } } and under nodes { ... }.
        var paths: [(outer: String, inner: String?, set: SelectionSet?)] = []
        for f in flatten(field.selectionSet) {
            if f.name.value == "edges" {
                for g in flatten(f.selectionSet) where g.name.value == "node" {
                    paths.append((f.alias?.value ?? "edges", g.alias?.value ?? "node", g.selectionSet))
                }
            } else if f.name.value == "nodes" {
                paths.append((f.alias?.value ?? "nodes", nil, f.selectionSet))
            }
        }
        guard case .actual(let data) = basis else {
            let pageSize = intArgument(field, "first") ?? intArgument(field, "last") ?? 0
            let perNode = 1 + paths.reduce(0) { $0 + cost($1.set, type: nodeType, .requested) }
            return 2 + pageSize * perNode
        }
        var count = 0
        var children = 0
        for path in paths {
            let list = data[path.outer].array ?? []
            count = max(count, list.count)
            for item in list {
                children += cost(path.set, type: nodeType, .actual(path.inner.map { item[$0] } ?? item))
            }
        }
        return 2 + count + children
    }

    private func intArgument(_ field: Field, _ name: String) -> Int? {
        guard let argument = field.arguments.first(where: { $0.name.value == name }) else { return nil }
        if let literal = argument.value as? IntValue { return Int(literal.value) }
        if let variable = argument.value as? Variable { return variables[variable.name.value]?.int }
        return nil
    }
}

/// Shopify's plans and their restore rates (points per second); the bucket holds 20 seconds' worth.
public enum ShopifyPlan: String, Sendable, CaseIterable {
    case standard, advanced, plus, enterprise

    public var restoreRate: Double {
        switch self {
        case .standard: 100
        case .advanced: 200
        case .plus: 1000
        case .enterprise: 2000
        }
    }
}

/// The cost-based leaky bucket, per shop: requests take their requested cost up front (or are throttled when it is
/// not there), get the unused part back afterwards, and the bucket refills at the plan's restore rate.
public final class ThrottleBucket: Sendable {
    public struct Status: Sendable, Equatable {
        public var maximumAvailable: Double
        public var currentlyAvailable: Double
        public var restoreRate: Double
    }

    public let restoreRate: Double
    public let maximumAvailable: Double
    private let state: Mutex<(available: Double, at: ContinuousClock.Instant)>

    /// Shopify's bucket holds 20 seconds of its restore rate; `maximumAvailable` overrides that (tests).
    public init(restoreRate: Double, maximumAvailable: Double? = nil) {
        self.restoreRate = restoreRate
        self.maximumAvailable = maximumAvailable ?? restoreRate * 20
        state = Mutex((self.maximumAvailable, ContinuousClock.now))
    }

    private func refill(_ s: inout (available: Double, at: ContinuousClock.Instant)) {
        let now = ContinuousClock.now
        let elapsed = now - s.at
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        s.available = min(maximumAvailable, s.available + seconds * restoreRate)
        s.at = now
    }

    private func status(_ available: Double) -> Status {
        Status(maximumAvailable: maximumAvailable, currentlyAvailable: available.rounded(.down), restoreRate: restoreRate)
    }

    /// Takes `cost` points if they are there; `false` means throttled (nothing taken).
    public func take(_ cost: Int) -> (granted: Bool, status: Status) {
        state.withLock { s in
            refill(&s)
            guard Double(cost) <= s.available else { return (false, status(s.available)) }
            s.available -= Double(cost)
            return (true, status(s.available))
        }
    }

    /// Gives back what a request was charged but did not use.
    public func refund(_ points: Int) -> Status {
        state.withLock { s in
            refill(&s)
            s.available = min(maximumAvailable, s.available + Double(max(0, points)))
            return status(s.available)
        }
    }

    public var current: Status { state.withLock { s in refill(&s); return status(s.available) } }
}
