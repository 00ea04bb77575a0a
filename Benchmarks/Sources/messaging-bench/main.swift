import BridgeDomain
import ArgumentParser
import CRawAMQPBench
import Foundation
import Logging
import Messaging

/// Confirmed persistent publishes per second through `AMQPConnection`, next to a raw rabbitmq-c loop on the same
/// broker in the same run. Measures and prints; it does not pass or fail on time.
@main
struct MessagingBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "messaging-bench", abstract: "Confirmed-publish throughput: Swift publisher vs raw rabbitmq-c.")

    @Option(help: "Broker host.") var host = "127.0.0.1"
    @Option(help: "Broker AMQP port.") var port = 5672
    @Option(help: "User.") var user = "guest"
    @Option(help: "Password.") var password = "guest"
    @Option(help: "Body size in bytes.") var bodySize = 2048
    @Option(help: "In-flight levels to measure (comma-separated).") var inflight = "1,64,512"
    @Option(help: "Messages per measurement at 1 in flight (others use 20x).") var baseCount = 5000
    @Option(help: "Repetitions (best of).") var repeats = 2

    func run() async throws {
        var logger = Logger(label: "bench")
        logger.logLevel = .error
        let config = try AMQPConnectionConfiguration(
            url: "amqp://\(user):\(password)@\(host):\(port)/%2F", connectionName: "messaging-bench")
        let connection = AMQPConnection(configuration: config, logger: logger)
        connection.start()
        try await connection.waitUntilReady()
        let body = [UInt8](repeating: 0x61, count: bodySize)
        print("confirmed persistent publishes, \(bodySize)-byte bodies, one quorum queue, broker \(host):\(port)")
        print("in-flight  messages  swift msg/s  raw rabbitmq-c msg/s  swift/raw")
        for level in inflight.split(separator: ",").compactMap({ Int($0) }) {
            let count = level == 1 ? baseCount : baseCount * 20
            var bestSwift = 0.0
            var bestRaw = 0.0
            for r in 0..<repeats {
                let queue = "bench.\(level).\(r)"
                _ = try await connection.withChannel { ops in
                    try ops.declareQueue(queue, arguments: ["x-queue-type": "quorum"])
                }
                let started = ContinuousClock.now
                try await withThrowingTaskGroup(of: Void.self) { group in
                    let perWorker = count / level
                    for _ in 0..<level {
                        group.addTask {
                            for _ in 0..<perWorker {
                                try await connection.publish(exchange: "", routingKey: queue, body: body)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                let swiftSeconds = (ContinuousClock.now - started)
                let swiftRate = Double((count / level) * level) / swiftSeconds.seconds
                _ = try await connection.withChannel { try $0.purgeQueue(queue) }

                let rawSeconds = bridge_raw_publish_bench(host, Int32(port), user, password, "/", queue, Int32(count), Int32(level), Int32(bodySize))
                guard rawSeconds > 0 else { throw ValidationError("raw loop failed with code \(rawSeconds)") }
                let rawRate = Double(count) / rawSeconds
                _ = try await connection.withChannel { ops in
                    try ops.purgeQueue(queue)
                    try ops.deleteQueue(queue)
                }
                bestSwift = max(bestSwift, swiftRate)
                bestRaw = max(bestRaw, rawRate)
            }
            print(
                String(
                    format: "%9d  %8d  %11.0f  %20.0f  %8.0f%%", level, count, bestSwift, bestRaw,
                    bestSwift / bestRaw * 100))
        }
        await connection.close()
    }
}
