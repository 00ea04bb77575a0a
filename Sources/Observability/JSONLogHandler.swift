import Foundation
import Logging

/// A swift-log handler that writes one JSON object per line to stderr.
///
/// Written by hand: swift-log ships only a plain-text stream handler and no JSON handler is in the package mirror.
/// Metadata whose key looks like a secret or personal data is redacted as a safety net; call sites must still never
/// log secrets or personal data.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let process: String

    public init(label: String, process: String, level: Logger.Level) {
        self.label = label
        self.process = process
        self.logLevel = level
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    static let redactedKeyFragments = [
        "secret", "token", "password", "authorization", "email", "phone", "address", "first_name", "last_name",
        "hmac",
    ]

    static let reservedKeys: Set<String> = ["ts", "level", "logger", "msg", "source"]

    public static func isSensitive(_ key: String) -> Bool {
        let k = key.lowercased()
        return redactedKeyFragments.contains { k.contains($0) }
    }

    public func log(event: LogEvent) {
        var fields: [String: Any] = [
            "ts": Self.timestamp(),
            "level": event.level.rawValue,
            "process": process,
            "logger": label,
            "msg": event.message.description,
        ]
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let m = event.metadata { merged.merge(m) { _, new in new } }
        for (key, value) in merged {
            // Metadata never overwrites the line's own fields: a key `level` (an inventory level) would hide the
            // log level from every tool that filters on it. It is kept with a `meta_` prefix.
            let name = Self.reservedKeys.contains(key) ? "meta_\(key)" : key
            fields[name] = Self.isSensitive(key) ? "[redacted]" : Self.json(value)
        }
        if event.level >= .error {
            fields["source"] = "\(event.file.split(separator: "/").last ?? ""):\(event.line)"
        }
        guard var data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        FileHandle.standardError.write(data)
    }

    static func json(_ value: Logger.Metadata.Value) -> Any {
        switch value {
        case .string(let s): return s
        case .stringConvertible(let c): return c.description
        case .array(let a): return a.map { json($0) }
        case .dictionary(let d): return d.mapValues { json($0) }
        }
    }

    static func timestamp() -> String {
        var tv = timeval()
        gettimeofday(&tv, nil)
        var t = time_t(tv.tv_sec)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tmv.tm_year) + 1900, Int(tmv.tm_mon) + 1,
            Int(tmv.tm_mday), Int(tmv.tm_hour), Int(tmv.tm_min), Int(tmv.tm_sec), Int(tv.tv_usec / 1000))
    }
}
