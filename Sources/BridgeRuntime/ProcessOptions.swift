import ArgumentParser
import Foundation

/// The options every process takes.
public struct ProcessOptions: ParsableArguments, Sendable {
    @Option(name: .customLong("config"), help: "YAML configuration file (env BRIDGE_CONFIG). Environment variables override it.")
    var configOption: String?

    /// `--config`, else `BRIDGE_CONFIG`, else nil (built-in defaults plus environment).
    public var config: String? { configOption ?? ProcessInfo.processInfo.environment["BRIDGE_CONFIG"] }

    public init() {}
}
