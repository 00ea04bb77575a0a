import BridgeDomain
import BridgeMessaging
import Configuration
import Foundation
import Messaging
import SystemPackage

extension BridgeConfig {
    /// Loads configuration from an optional YAML file with environment variables on top (swift-configuration's
    /// providers), and validates it.
    ///
    /// - Parameters:
    ///   - filePath: the YAML file, or nil for built-in defaults plus environment.
    ///   - environment: the environment (injectable for tests).
    ///   - defaultHTTPPort: the process's own default for `http.port`.
    /// - Throws: `ConfigErrors` listing every problem with its key and fix.
    public static func load(
        filePath: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        defaultHTTPPort: Int
    ) async throws -> BridgeConfig {
        var providers: [any ConfigProvider] = [EnvironmentVariablesProvider(environmentVariables: environment)]
        if let filePath {
            guard FileManager.default.fileExists(atPath: filePath) else {
                throw ConfigErrors(errors: [
                    ConfigError(
                        key: "--config", problem: "file '\(filePath)' does not exist",
                        fix: "pass the path of a YAML file (see config/bridge.example.yaml) or leave --config out")
                ])
            }
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(filePath)))
            } catch {
                throw ConfigErrors(errors: [
                    ConfigError(
                        key: "--config", problem: "'\(filePath)' is not valid YAML for this bridge: \(error)",
                        fix: "the top level must be a mapping; lists may only hold scalars (see config/bridge.example.yaml)")
                ])
            }
        }
        return try parse(ReaderValues(reader: ConfigReader(providers: providers)), defaultHTTPPort: defaultHTTPPort) {
            config, p in
            do {
                _ = try config.broker.connection(name: "config-check")
            } catch {
                p.fail(
                    "broker.url", (error as? AMQPError)?.message ?? "\(error)",
                    fix: "use amqp://USER:PASSWORD@HOST:PORT/VHOST (amqps:// with broker.ca_file)")
            }
        }
    }
}

/// swift-configuration's reader as the values `BridgeConfig.parse` reads.
struct ReaderValues: ConfigValues {
    let reader: ConfigReader

    func string(forKey key: String, isSecret: Bool) -> String? {
        reader.string(forKey: ConfigKey(key), isSecret: isSecret)
    }

    func stringArray(forKey key: String, isSecret: Bool) -> [String]? {
        reader.stringArray(forKey: ConfigKey(key), isSecret: isSecret)
    }
}
