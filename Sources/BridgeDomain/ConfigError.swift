/// A configuration error: the key, what is wrong, and how to fix it.
public struct ConfigError: Error, Sendable, CustomStringConvertible, Equatable {
    public let key: String
    public let problem: String
    public let fix: String
    public init(key: String, problem: String, fix: String) {
        self.key = key
        self.problem = problem
        self.fix = fix
    }
    public var description: String { "\(key): \(problem). Fix: \(fix)" }
}

/// All errors found in one configuration, reported together.
public struct ConfigErrors: Error, Sendable, CustomStringConvertible {
    public let errors: [ConfigError]
    public init(errors: [ConfigError]) { self.errors = errors }
    public var description: String {
        "invalid configuration (\(errors.count) error\(errors.count == 1 ? "" : "s")):\n"
            + errors.map { "  - \($0)" }.joined(separator: "\n")
    }
    public func error(forKey key: String) -> ConfigError? { errors.first { $0.key == key } }
}
