import BridgeDomain
import Foundation
import Logging
import Metrics
import ServiceLifecycle
import UnixSignals

/// SIGHUP: read the configuration again (the YAML file, the environment, and every secret `<key>_file`) and hand it
/// to `reload`, so a rotated secret takes effect without a restart. A configuration that no longer validates is
/// logged (its keys and problems, never a secret's value) and the running one is kept. A process with nothing to
/// reload says so instead of dying (SIGHUP's default action ends a process).
///
/// Metrics: `config_reloads_total{result}` (`applied`, `invalid`, `unsupported`).
struct ReloadOnHangup: Service {
    let kind: ProcessKind
    let configPath: String?
    let reload: (@Sendable (BridgeConfig) async -> Void)?
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                await self.hangup()
            }
        }
    }

    func hangup() async {
        guard let reload else {
            Counter(label: "config_reloads_total", dimensions: [("result", "unsupported")]).increment()
            logger.notice("SIGHUP: \(kind.name) has nothing to reload; restart it to apply configuration changes")
            return
        }
        do {
            let config = try await BridgeConfig.load(
                filePath: configPath, environment: ProcessInfo.processInfo.environment, defaultHTTPPort: kind.defaultPort)
            await reload(config)
            Counter(label: "config_reloads_total", dimensions: [("result", "applied")]).increment()
        } catch {
            Counter(label: "config_reloads_total", dimensions: [("result", "invalid")]).increment()
            logger.error("SIGHUP: the configuration does not validate; keeping the running one", metadata: ["error": "\(error)"])
        }
    }
}
