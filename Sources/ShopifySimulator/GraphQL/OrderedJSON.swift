import GraphQL

/// JSON text for a GraphQLSwift `Map` with object keys in the order the map holds them. GraphQL responses list fields
/// in the order the query selected them (as Shopify's do); Foundation's JSONEncoder on Linux does not keep key order,
/// so this small serializer is written here.
enum OrderedJSON {
    static func string(_ map: Map) -> String {
        var out = ""
        write(map, into: &out)
        return out
    }

    static func write(_ map: Map, into out: inout String) {
        switch map {
        case .undefined, .null:
            out += "null"
        case .bool(let b):
            out += b ? "true" : "false"
        case .number(let n):
            switch n.storageType {
            case .bool: out += n.boolValue ? "true" : "false"
            case .int: out += String(n.int64Value)
            case .double, .unknown:
                let d = n.doubleValue
                out += d.isFinite ? (d == d.rounded() && n.storageType == .unknown ? String(n.int64Value) : "\(d)") : "null"
            }
        case .string(let s):
            writeString(s, into: &out)
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                write(item, into: &out)
            }
            out += "]"
        case .dictionary(let fields):
            out += "{"
            var first = true
            for (key, value) in fields where !value.isUndefined {
                if !first { out += "," }
                first = false
                writeString(key, into: &out)
                out += ":"
                write(value, into: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ s: String, into out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default:
                out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
