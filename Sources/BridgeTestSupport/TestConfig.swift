import BridgeDomain
import BridgeRuntime
import Foundation

/// Builds a configuration the way processes do (`BridgeConfig.load`: YAML file, then environment on top), from YAML
/// text written to a temporary file. Every test target loads configuration through this one helper.
public func loadConfig(yaml: String, env: [String: String] = [:], defaultHTTPPort: Int = 9000) async throws -> BridgeConfig {
    let path = NSTemporaryDirectory() + "bridge-config-\(UUID().uuidString).yaml"
    try yaml.write(toFile: path, atomically: true, encoding: .utf8)
    defer { try? FileManager.default.removeItem(atPath: path) }
    return try await BridgeConfig.load(filePath: path, environment: env, defaultHTTPPort: defaultHTTPPort)
}
