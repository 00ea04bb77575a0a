import Foundation

/// A value in an AMQP field table (message headers, queue arguments).
public indirect enum AMQPFieldValue: Sendable, Equatable, Hashable {
    case string(String)
    case int(Int64)
    case bool(Bool)
    case double(Double)
    case timestamp(UInt64)
    case bytes([UInt8])
    case table([String: AMQPFieldValue])
    case array([AMQPFieldValue])
    case void

    public var stringValue: String? {
        switch self {
        case .string(let s): return s
        case .bytes(let b): return String(decoding: b, as: UTF8.self)
        case .int(let i): return String(i)
        default: return nil
        }
    }

    public var intValue: Int64? {
        switch self {
        case .int(let i): return i
        case .timestamp(let t): return Int64(t)
        case .string(let s): return Int64(s)
        default: return nil
        }
    }

    /// A JSON-compatible representation (for definitions export and `bridgectl`).
    public var jsonObject: Any {
        switch self {
        case .string(let s): return s
        case .int(let i): return i
        case .bool(let b): return b
        case .double(let d): return d
        case .timestamp(let t): return t
        case .bytes(let b): return Data(b).base64EncodedString()
        case .table(let t): return t.mapValues { $0.jsonObject }
        case .array(let a): return a.map { $0.jsonObject }
        case .void: return NSNull()
        }
    }
}

extension AMQPFieldValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

public typealias AMQPTable = [String: AMQPFieldValue]
