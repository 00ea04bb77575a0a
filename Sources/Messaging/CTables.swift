import CRabbitMQ
import Foundation

/// Owns every C allocation made while encoding one AMQP call's arguments, and frees them when it goes away.
/// Everything encoded through an arena stays valid for as long as the arena lives: keep it alive across the C call.
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    deinit {
        for p in allocations { free(p) }
    }

    func bytes(_ string: String) -> amqp_bytes_t {
        bytes(Array(string.utf8))
    }

    func bytes(_ raw: [UInt8]) -> amqp_bytes_t {
        if raw.isEmpty { return amqp_bytes_t(len: 0, bytes: nil) }
        let p = malloc(raw.count)!
        allocations.append(p)
        raw.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: raw.count) }
        return amqp_bytes_t(len: raw.count, bytes: p)
    }

    func table(_ table: AMQPTable) -> amqp_table_t {
        if table.isEmpty { return amqp_table_t(num_entries: 0, entries: nil) }
        let entries = allocate(amqp_table_entry_t.self, count: table.count)
        // Sorted keys: deterministic encoding.
        for (i, key) in table.keys.sorted().enumerated() {
            entries[i] = amqp_table_entry_t(key: bytes(key), value: field(table[key]!))
        }
        return amqp_table_t(num_entries: Int32(table.count), entries: entries)
    }

    func field(_ value: AMQPFieldValue) -> amqp_field_value_t {
        var f = amqp_field_value_t()
        switch value {
        case .string(let s):
            f.kind = UInt8(AMQP_FIELD_KIND_UTF8.rawValue)
            f.value.bytes = bytes(s)
        case .bytes(let b):
            f.kind = UInt8(AMQP_FIELD_KIND_BYTES.rawValue)
            f.value.bytes = bytes(b)
        case .int(let i):
            f.kind = UInt8(AMQP_FIELD_KIND_I64.rawValue)
            f.value.i64 = i
        case .bool(let b):
            f.kind = UInt8(AMQP_FIELD_KIND_BOOLEAN.rawValue)
            f.value.boolean = b ? 1 : 0
        case .double(let d):
            f.kind = UInt8(AMQP_FIELD_KIND_F64.rawValue)
            f.value.f64 = d
        case .timestamp(let t):
            f.kind = UInt8(AMQP_FIELD_KIND_TIMESTAMP.rawValue)
            f.value.u64 = t
        case .table(let t):
            f.kind = UInt8(AMQP_FIELD_KIND_TABLE.rawValue)
            f.value.table = table(t)
        case .array(let a):
            f.kind = UInt8(AMQP_FIELD_KIND_ARRAY.rawValue)
            let entries = allocate(amqp_field_value_t.self, count: max(a.count, 1))
            for (i, v) in a.enumerated() { entries[i] = field(v) }
            f.value.array = amqp_array_t(num_entries: Int32(a.count), entries: a.isEmpty ? nil : entries)
        case .void:
            f.kind = UInt8(AMQP_FIELD_KIND_VOID.rawValue)
        }
        return f
    }

    func properties(_ p: MessageProperties) -> amqp_basic_properties_t {
        var props = amqp_basic_properties_t()
        var flags: amqp_flags_t = BRIDGE_BASIC_DELIVERY_MODE_FLAG
        props.delivery_mode = p.persistent ? 2 : 1
        if let v = p.contentType {
            flags |= BRIDGE_BASIC_CONTENT_TYPE_FLAG
            props.content_type = bytes(v)
        }
        if let v = p.messageId {
            flags |= BRIDGE_BASIC_MESSAGE_ID_FLAG
            props.message_id = bytes(v)
        }
        if let v = p.correlationId {
            flags |= BRIDGE_BASIC_CORRELATION_ID_FLAG
            props.correlation_id = bytes(v)
        }
        if let v = p.type {
            flags |= BRIDGE_BASIC_TYPE_FLAG
            props.type = bytes(v)
        }
        if let v = p.appId {
            flags |= BRIDGE_BASIC_APP_ID_FLAG
            props.app_id = bytes(v)
        }
        if let v = p.expiration {
            flags |= BRIDGE_BASIC_EXPIRATION_FLAG
            props.expiration = bytes(v)
        }
        if let v = p.timestamp {
            flags |= BRIDGE_BASIC_TIMESTAMP_FLAG
            props.timestamp = UInt64(max(0, v.timeIntervalSince1970))
        }
        if !p.headers.isEmpty {
            flags |= BRIDGE_BASIC_HEADERS_FLAG
            props.headers = table(p.headers)
        }
        props._flags = flags
        return props
    }

    private func allocate<T>(_ type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        let raw = calloc(count, MemoryLayout<T>.stride)!
        allocations.append(raw)
        return raw.bindMemory(to: T.self, capacity: count)
    }
}

// MARK: - Decoding (copies everything out of rabbitmq-c's pools)

enum CDecode {
    static func bytes(_ b: amqp_bytes_t) -> [UInt8] {
        guard b.len > 0, let p = b.bytes else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: b.len))
    }

    static func string(_ b: amqp_bytes_t) -> String {
        String(decoding: bytes(b), as: UTF8.self)
    }

    static func table(_ t: amqp_table_t) -> AMQPTable {
        var out: AMQPTable = [:]
        guard t.num_entries > 0, let entries = t.entries else { return out }
        for i in 0..<Int(t.num_entries) {
            out[string(entries[i].key)] = field(entries[i].value)
        }
        return out
    }

    static func field(_ f: amqp_field_value_t) -> AMQPFieldValue {
        switch UInt32(f.kind) {
        case AMQP_FIELD_KIND_BOOLEAN.rawValue: return .bool(f.value.boolean != 0)
        case AMQP_FIELD_KIND_I8.rawValue: return .int(Int64(f.value.i8))
        case AMQP_FIELD_KIND_U8.rawValue: return .int(Int64(f.value.u8))
        case AMQP_FIELD_KIND_I16.rawValue: return .int(Int64(f.value.i16))
        case AMQP_FIELD_KIND_U16.rawValue: return .int(Int64(f.value.u16))
        case AMQP_FIELD_KIND_I32.rawValue: return .int(Int64(f.value.i32))
        case AMQP_FIELD_KIND_U32.rawValue: return .int(Int64(f.value.u32))
        case AMQP_FIELD_KIND_I64.rawValue: return .int(f.value.i64)
        case AMQP_FIELD_KIND_U64.rawValue: return .int(Int64(truncatingIfNeeded: f.value.u64))
        case AMQP_FIELD_KIND_F32.rawValue: return .double(Double(f.value.f32))
        case AMQP_FIELD_KIND_F64.rawValue: return .double(f.value.f64)
        case AMQP_FIELD_KIND_UTF8.rawValue: return .string(string(f.value.bytes))
        case AMQP_FIELD_KIND_BYTES.rawValue: return .bytes(bytes(f.value.bytes))
        case AMQP_FIELD_KIND_TIMESTAMP.rawValue: return .timestamp(f.value.u64)
        case AMQP_FIELD_KIND_TABLE.rawValue: return .table(table(f.value.table))
        case AMQP_FIELD_KIND_ARRAY.rawValue:
            var out: [AMQPFieldValue] = []
            if f.value.array.num_entries > 0, let e = f.value.array.entries {
                for i in 0..<Int(f.value.array.num_entries) { out.append(field(e[i])) }
            }
            return .array(out)
        case AMQP_FIELD_KIND_DECIMAL.rawValue:
            let d = f.value.decimal
            return .string("\(d.value)e-\(d.decimals)")
        default: return .void
        }
    }

    static func properties(_ p: amqp_basic_properties_t) -> MessageProperties {
        let flags = p._flags
        func has(_ flag: amqp_flags_t) -> Bool { flags & flag != 0 }
        return MessageProperties(
            messageId: has(BRIDGE_BASIC_MESSAGE_ID_FLAG) ? string(p.message_id) : nil,
            correlationId: has(BRIDGE_BASIC_CORRELATION_ID_FLAG) ? string(p.correlation_id) : nil,
            contentType: has(BRIDGE_BASIC_CONTENT_TYPE_FLAG) ? string(p.content_type) : nil,
            type: has(BRIDGE_BASIC_TYPE_FLAG) ? string(p.type) : nil,
            appId: has(BRIDGE_BASIC_APP_ID_FLAG) ? string(p.app_id) : nil,
            timestamp: has(BRIDGE_BASIC_TIMESTAMP_FLAG) ? Date(timeIntervalSince1970: TimeInterval(p.timestamp)) : nil,
            expiration: has(BRIDGE_BASIC_EXPIRATION_FLAG) ? string(p.expiration) : nil,
            persistent: has(BRIDGE_BASIC_DELIVERY_MODE_FLAG) ? p.delivery_mode == 2 : false,
            headers: has(BRIDGE_BASIC_HEADERS_FLAG) ? table(p.headers) : [:]
        )
    }
}
