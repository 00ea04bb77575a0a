import ArgumentParser
import BridgeDomain
import BridgeMessaging
import BridgeRuntime
import Foundation
import Logging
import Messaging

/// The operator CLI.
@main
struct BridgeCtl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bridgectl",
        abstract: "Operate the Shopify-ERP bridge: topology, configuration, dead letters, inventory sync, reconciliation, alerts.",
        subcommands: [
            TopologyCommand.self, ConfigCommand.self, DLQCommand.self, InventoryCommand.self, ReconcileCommand.self, AlertsCommand.self, StatusCommand.self, TraceCommand.self,
            DemoCommand.self,
        ])
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

struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq", abstract: "Inspect, replay and purge dead letters.",
        subcommands: [List.self, Show.self, Replay.self, Purge.self])

    struct QueueOption: ParsableArguments {
        @Option(help: "Work queue whose dead letters to use: orders, shopify-inventory, erp-inventory, compliance, erp-shipments, alerter.")
        var queue: String
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Why each dead letter failed (nothing is removed).")
        @OptionGroup var options: ProcessOptions
        @OptionGroup var q: QueueOption
        @Option(help: "At most this many.") var limit = 50
        func run() async throws {
            let config = try await loadConfig(options)
            let queue = try DeadLetters.workQueue(named: q.queue)
            try await withConnection(config) { c in
                let (total, letters) = try await DeadLetters.list(c, workQueue: queue, limit: limit)
                print("\(BridgeTopology.deadLetterQueue(of: queue)): \(total) dead letter(s)\(total > letters.count ? ", showing \(letters.count)" : "")")
                for l in letters {
                    print(
                        "- id=\(l.messageId ?? "-") shop=\(l.shop ?? "-") topic=\(l.topic ?? "-") order=\(l.orderId ?? "-") attempts=\(l.attempts) first_failure=\(l.firstFailureAt ?? "-")"
                    )
                    print("  reason: \(l.errorClass ?? l.brokerReason ?? "-"): \(l.errorMessage ?? "(dead-lettered by the broker)")")
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One dead letter with every header and its body.")
        @OptionGroup var options: ProcessOptions
        @OptionGroup var q: QueueOption
        @Option(help: "Message id (the webhook id for Shopify events).") var id: String
        func run() async throws {
            let config = try await loadConfig(options)
            let queue = try DeadLetters.workQueue(named: q.queue)
            try await withConnection(config) { c in
                guard let m = try await DeadLetters.show(c, workQueue: queue, messageId: id) else {
                    throw ValidationError("no dead letter with id \(id) in \(BridgeTopology.deadLetterQueue(of: queue))")
                }
                print("message id: \(m.properties.messageId ?? "-")  routing key: \(m.routingKey)  bytes: \(m.body.count)")
                for (k, v) in m.properties.headers.sorted(by: { $0.key < $1.key }) { print("  \(k): \(v.jsonObject)") }
                print(String(decoding: m.body, as: UTF8.self))
            }
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move dead letters back to their work queue after a fix (confirmed publish, then removal).")
        @OptionGroup var options: ProcessOptions
        @OptionGroup var q: QueueOption
        @Option(name: .customLong("id"), help: "Replay only these message ids (repeatable).") var ids: [String] = []
        @Flag(help: "Replay every dead letter of the queue.") var all = false
        func validate() throws {
            if ids.isEmpty == !all { throw ValidationError("pass --all or one or more --id") }
        }
        func run() async throws {
            let config = try await loadConfig(options)
            let queue = try DeadLetters.workQueue(named: q.queue)
            try await withConnection(config) { c in
                let n = try await DeadLetters.replay(c, workQueue: queue, ids: all ? nil : Set(ids))
                print("replayed \(n) dead letter(s) to \(queue)")
            }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete every dead letter of a queue.")
        @OptionGroup var options: ProcessOptions
        @OptionGroup var q: QueueOption
        @Flag(help: "Confirm: the messages are gone for good.") var yes = false
        func run() async throws {
            guard yes else { throw ValidationError("purging deletes messages for good: add --yes") }
            let config = try await loadConfig(options)
            let queue = try DeadLetters.workQueue(named: q.queue)
            try await withConnection(config) { c in
                print("purged \(try await DeadLetters.purge(c, workQueue: queue)) dead letter(s) from \(BridgeTopology.deadLetterQueue(of: queue))")
            }
        }
    }
}
