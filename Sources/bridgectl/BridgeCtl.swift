import ArgumentParser
import BridgeCore
import BridgeRuntime
import Foundation
import Logging
import Messaging

/// The operator CLI.
@main
struct BridgeCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bridgectl",
        abstract: "Operate the Shopify-ERP bridge: topology, configuration, dead letters.",
        subcommands: [TopologyCommand.self, ConfigCommand.self])
}

struct TopologyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology", abstract: "Export, declare or verify the RabbitMQ topology.",
        subcommands: [Export.self, Declare.self, Verify.self])

    struct Export: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write RabbitMQ definitions (users, vhost, permissions, exchanges, queues, bindings).")
        @OptionGroup var options: ProcessOptions
        @Option(help: "Output file, or - for stdout.") var output = "deploy/rabbitmq/definitions.json"
        @Option(help: "Virtual host the definitions create.") var vhost = "bridge"
        @Option(
            help: "File of 'user=password' lines for real passwords (default: development passwords <user>-dev-password).")
        var passwordFile: String?

        func run() async throws {
            let config = try await loadConfig(options)
            var passwords: [String: String] = [:]
            if let passwordFile {
                let text = try String(contentsOfFile: passwordFile, encoding: .utf8)
                for line in text.split(separator: "\n") where line.contains("=") && !line.hasPrefix("#") {
                    let parts = line.split(separator: "=", maxSplits: 1)
                    passwords[String(parts[0]).trimmingCharacters(in: .whitespaces)] = String(parts[1])
                }
            }
            let data = try BridgeDefinitions.export(settings: config.topology, vhost: vhost, passwords: passwords)
            if output == "-" {
                FileHandle.standardOutput.write(data)
            } else {
                try data.write(to: URL(fileURLWithPath: output))
                FileHandle.standardError.write(Data("wrote \(output)\n".utf8))
            }
        }
    }

    struct Declare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Declare the topology on the configured broker.")
        @OptionGroup var options: ProcessOptions
        func run() async throws {
            let config = try await loadConfig(options)
            let topology = BridgeTopology.topology(config.topology)
            try await withConnection(config) { c in try await c.withChannel { try topology.declare(using: $0) } }
            print(
                "declared \(topology.exchanges.count) exchanges, \(topology.queues.count) queues, \(topology.bindings.count) bindings"
            )
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check that every exchange and queue exists.")
        @OptionGroup var options: ProcessOptions
        func run() async throws {
            let config = try await loadConfig(options)
            let topology = BridgeTopology.topology(config.topology)
            try await withConnection(config) { c in try await c.withChannel { try topology.verify(using: $0) } }
            print("ok: \(topology.exchanges.count) exchanges and \(topology.queues.count) queues exist")
        }
    }
}

struct ConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config", abstract: "Validate configuration.", subcommands: [Check.self])

    struct Check: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Validate the configuration and print a summary without secrets.")
        @OptionGroup var options: ProcessOptions
        func run() async throws {
            let config = try await loadConfig(options)
            print("configuration ok")
            print("  broker: \(try config.broker.connection(name: "check").redactedURL) (topology: \(config.broker.topologyMode.rawValue))")
            print("  shops: \(config.shops.map { "\($0.id) (\($0.domain), plan \($0.plan.rawValue), \($0.webhookSecrets.count) secret(s))" }.joined(separator: ", "))")
            for d in DataDomain.allCases { print("  source_of_truth.\(d.rawValue): \(config.policy.owner(of: d))") }
            for f in config.flows { print("  flow: \(f)") }
        }
    }
}

func loadConfig(_ options: ProcessOptions) async throws -> BridgeConfig {
    do {
        return try await BridgeConfig.load(filePath: options.config, defaultHTTPPort: 0)
    } catch let errors as ConfigErrors {
        FileHandle.standardError.write(Data("bridgectl: \(errors)\n".utf8))
        throw ExitCode(78)
    }
}

func withConnection(_ config: BridgeConfig, _ body: (AMQPConnection) async throws -> Void) async throws {
    var logger = Logger(label: "bridgectl")
    logger.logLevel = .error
    let connection = AMQPConnection(configuration: try config.broker.connection(name: "bridgectl"), logger: logger)
    connection.start()
    do {
        try await connection.waitUntilReady(timeout: .seconds(15))
        try await body(connection)
    } catch {
        await connection.close()
        throw error
    }
    await connection.close()
}
