import Foundation

/// Where configuration values come from: the YAML file and the environment, behind swift-configuration's
/// `ConfigReader` in a running process (`BridgeConfig.load`), or a dictionary. Keeps this target free of the
/// configuration library; a secret key is read with `isSecret` so the provider never prints it.
public protocol ConfigValues {
    func string(forKey key: String, isSecret: Bool) -> String?
    func stringArray(forKey key: String, isSecret: Bool) -> [String]?
}

/// Keys from a dictionary, a comma-separated value read as a list: for tools and benchmarks that build a
/// configuration in code (processes read files and the environment through swift-configuration).
public struct KeyValues: ConfigValues, Sendable {
    public let values: [String: String]
    public init(_ values: [String: String]) { self.values = values }
    public func string(forKey key: String, isSecret: Bool) -> String? { values[key] }
    public func stringArray(forKey key: String, isSecret: Bool) -> [String]? {
        values[key].map { $0.split(separator: ",").map { String($0) } }
    }
}

/// Reads every value as a string and parses it here, so a wrong type is an error that names its key instead of a
/// silently applied default. Every problem is collected (not thrown) so one run reports them all.
public struct SettingsParser {
    let reader: any ConfigValues
    public private(set) var errors: [ConfigError] = []

    public init(_ values: any ConfigValues) { self.reader = values }

    public mutating func fail(_ key: String, _ problem: String, fix: String) {
        errors.append(ConfigError(key: key, problem: problem, fix: fix))
    }

    public mutating func optionalString(_ key: String, secret: Bool = false) -> String? {
        let v = secret ? secretValue(key) : reader.string(forKey: key, isSecret: false)
        return v?.isEmpty == true ? nil : v
    }

    public mutating func string(_ key: String, default d: String, secret: Bool = false) -> String {
        (secret ? secretValue(key) : reader.string(forKey: key, isSecret: false)) ?? d
    }

    /// A secret key's value: from `<key>`, or from the file named by `<key>_file` (Docker and Kubernetes secrets;
    /// the file's content with surrounding whitespace and the trailing newline dropped). Both set is an error, and so
    /// is a file that cannot be read; neither message repeats the value.
    mutating func secretValue(_ key: String) -> String? {
        let direct = reader.string(forKey: key, isSecret: true)
        return secretFile(key, alsoSetDirectly: direct?.isEmpty == false) ?? direct
    }

    /// The content of the file `<key>_file` names, nil when it names none; "" (and an error) when unreadable. A key
    /// also set directly is an error.
    mutating func secretFile(_ key: String, alsoSetDirectly: Bool) -> String? {
        guard let path = reader.string(forKey: "\(key)_file", isSecret: false), !path.isEmpty else { return nil }
        if alsoSetDirectly { fail(key, "is set both directly and through \(key)_file", fix: "keep one of them") }
        guard let data = FileManager.default.contents(atPath: path) else {
            fail("\(key)_file", "cannot read the file '\(path)'", fix: "mount the secret readable by the process's user, or set \(key) instead")
            return ""
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public mutating func requiredString(_ key: String, secret: Bool = false, fix: String) -> String {
        guard let v = optionalString(key, secret: secret), !v.trimmingCharacters(in: .whitespaces).isEmpty else {
            fail(key, "is required", fix: fix)
            return ""
        }
        return v
    }

    public mutating func stringList(_ key: String, default d: [String], secret: Bool = false) -> [String] {
        // A list of secrets from a file: one per line (or comma-separated).
        if secret,
            let text = secretFile(
                key, alsoSetDirectly: reader.string(forKey: key, isSecret: true) != nil || reader.stringArray(forKey: key, isSecret: true) != nil)
        {
            return text.split(whereSeparator: { $0 == "\n" || $0 == "," }).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let list = reader.stringArray(forKey: key, isSecret: secret) { return list }
        // A single scalar (or a comma-separated environment value) is accepted too.
        if let single = reader.string(forKey: key, isSecret: secret) {
            return single.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        }
        return d
    }

    public mutating func int(_ key: String, default d: Int, range: ClosedRange<Int>) -> Int {
        guard let raw = reader.string(forKey: key, isSecret: false) else { return d }
        guard let v = Int(raw.trimmingCharacters(in: .whitespaces)) else {
            fail(key, "'\(raw)' is not a whole number", fix: "use a number in \(range.lowerBound)...\(range.upperBound)")
            return d
        }
        guard range.contains(v) else {
            fail(key, "\(v) is out of range", fix: "use a number in \(range.lowerBound)...\(range.upperBound)")
            return d
        }
        return v
    }

    public mutating func bool(_ key: String, default d: Bool) -> Bool {
        guard let raw = reader.string(forKey: key, isSecret: false) else { return d }
        switch raw.lowercased().trimmingCharacters(in: .whitespaces) {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default:
            fail(key, "'\(raw)' is not a boolean", fix: "use true or false")
            return d
        }
    }

    public mutating func oneOf(_ key: String, default d: String, _ allowed: [String]) -> String {
        guard let raw = reader.string(forKey: key, isSecret: false) else { return d }
        guard allowed.contains(raw) else {
            fail(key, "'\(raw)' is not allowed", fix: "use one of: \(allowed.joined(separator: ", "))")
            return d
        }
        return raw
    }

    public mutating func choice<T: RawRepresentable & CaseIterable>(_ key: String, default d: T) -> T where T.RawValue == String {
        let raw = oneOf(key, default: d.rawValue, T.allCases.map(\.rawValue))
        return T(rawValue: raw) ?? d
    }

    public mutating func duration(_ key: String, default d: Duration, range: ClosedRange<Duration>) -> Duration {
        guard let raw = reader.string(forKey: key, isSecret: false) else { return d }
        guard let v = parseDuration(raw) else {
            fail(key, "'\(raw)' is not a duration", fix: "use a number with a unit: 250ms, 10s, 5m, 1h")
            return d
        }
        guard range.contains(v) else {
            fail(key, "\(raw) is out of range", fix: "use a duration between \(range.lowerBound) and \(range.upperBound)")
            return d
        }
        return v
    }

    public mutating func durationList(_ key: String, default d: [String]) -> [Duration] {
        var out: [Duration] = []
        for raw in stringList(key, default: d) {
            guard let v = parseDuration(raw), v > .zero else {
                fail(key, "'\(raw)' is not a positive duration", fix: "use values like 500ms, 5s, 5m")
                continue
            }
            out.append(v)
        }
        return out
    }

    public mutating func checkHTTPURL(_ key: String, _ value: String) {
        guard let u = URL(string: value), let scheme = u.scheme, ["http", "https"].contains(scheme), u.host != nil else {
            fail(key, "'\(value)' is not an http(s) URL", fix: "use e.g. https://host:port")
            return
        }
    }
}

/// Parses `250ms`, `10s`, `5m`, `1h`, or a bare number of seconds.
public func parseDuration(_ raw: String) -> Duration? {
    let s = raw.trimmingCharacters(in: .whitespaces).lowercased()
    let units: [(String, Int64)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)]
    for (suffix, ms) in units where s.hasSuffix(suffix) {
        guard let n = Int64(s.dropLast(suffix.count)), n >= 0 else { return nil }
        return .milliseconds(n * ms)
    }
    guard let n = Int64(s), n >= 0 else { return nil }
    return .seconds(n)
}

