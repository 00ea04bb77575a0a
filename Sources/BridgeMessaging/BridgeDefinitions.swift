import BridgeDomain
import Crypto
import Foundation
import Messaging

/// RabbitMQ users of the bridge: one least-privilege user per process, plus an administrator for operators.
public struct BrokerUser: Sendable, Equatable {
    public let name: String
    public let tags: [String]
    /// Permission regexes in the bridge vhost.
    public let configure: String
    public let write: String
    public let read: String
}

public enum BridgeDefinitions {
    public static let adminUser = "bridge-admin"

    /// One user per process; each may only touch what its process needs.
    public static func users() -> [BrokerUser] {
        func alt(_ names: [String]) -> String {
            names.isEmpty ? "^$" : "^(" + names.map { NSRegularExpression.escapedPattern(for: $0) }.joined(separator: "|") + ")$"
        }
        func consumed(by process: String) -> [String] {
            BridgeTopology.workQueues.filter { $0.consumer == process }.map(\.name)
        }
        let failurePaths = [BridgeTopology.retry, BridgeTopology.deadLetter, BridgeTopology.events]
        return [
            BrokerUser(name: adminUser, tags: ["administrator"], configure: ".*", write: ".*", read: ".*"),
            BrokerUser(
                name: "ingest", tags: [], configure: "^$",
                write: alt([BridgeTopology.shopifyInbound, BridgeTopology.erpInbound, BridgeTopology.unrouted]),
                read: "^$"),
            BrokerUser(
                name: "order-forwarder", tags: [], configure: "^$", write: alt(failurePaths),
                read: alt(consumed(by: "order-forwarder"))),
            BrokerUser(
                name: "inventory-syncer", tags: [], configure: alt([BridgeTopology.inventorySyncerLease]),
                write: alt(failurePaths + [BridgeTopology.work]),
                read: alt(consumed(by: "inventory-syncer"))),
            BrokerUser(
                name: "reconciler", tags: [], configure: alt([BridgeTopology.reconcilerLease]),
                write: alt(failurePaths + [BridgeTopology.work]),
                read: alt(consumed(by: "reconciler"))),
            BrokerUser(
                name: "alerter", tags: ["monitoring"], configure: "^$", write: alt(failurePaths), read: alt(consumed(by: "alerter"))),
        ]
    }

    /// The development password of a user (`<user>-dev-password`). Production: pass real passwords to the export.
    public static func developmentPassword(for user: String) -> String { "\(user)-dev-password" }

    /// RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt ++ sha256(salt ++ password)), 4-byte salt.
    /// The salt is derived from the user name when `deterministicSalt` is set, so a re-export does not churn the file.
    public static func passwordHash(_ password: String, user: String, deterministicSalt: Bool) -> String {
        let salt: [UInt8]
        if deterministicSalt {
            salt = Array(SHA256.hash(data: Array("salt:\(user)".utf8)).prefix(4))
        } else {
            salt = (0..<4).map { _ in UInt8.random(in: 0...255) }
        }
        let digest = SHA256.hash(data: salt + Array(password.utf8))
        return Data(salt + Array(digest)).base64EncodedString()
    }

    /// The full definitions document (users, vhost, permissions, exchanges, queues, bindings) as RabbitMQ imports it
    /// with `load_definitions` or `rabbitmqctl import_definitions`.
    public static func export(
        settings: BridgeConfig.TopologySettings,
        vhost: String = "bridge",
        passwords: [String: String] = [:]
    ) throws -> Data {
        let topology = BridgeTopology.topology(settings)
        let users = self.users()
        let doc: [String: Any] = [
            "rabbit_version": "3.10.8",
            "rabbitmq_version": "3.10.8",
            "product_name": "RabbitMQ",
            "product_version": "3.10.8",
            "users": users.map { u -> [String: Any] in
                let explicit = passwords[u.name]
                return [
                    "name": u.name,
                    "password_hash": passwordHash(
                        explicit ?? developmentPassword(for: u.name), user: u.name, deterministicSalt: explicit == nil),
                    "hashing_algorithm": "rabbit_password_hashing_sha256",
                    "tags": u.tags,
                    "limits": [String: Any](),
                ]
            },
            "vhosts": [["name": vhost]],
            "permissions": users.map { u -> [String: Any] in
                ["user": u.name, "vhost": vhost, "configure": u.configure, "write": u.write, "read": u.read]
            },
            "topic_permissions": [Any](),
            "parameters": [Any](),
            "global_parameters": [Any](),
            "policies": [Any](),
            "exchanges": topology.exchanges.map { e -> [String: Any] in
                [
                    "name": e.name, "vhost": vhost, "type": e.type, "durable": true, "auto_delete": false,
                    "internal": e.isInternal, "arguments": e.arguments.mapValues { $0.jsonObject },
                ]
            },
            "queues": topology.queues.map { q -> [String: Any] in
                [
                    "name": q.name, "vhost": vhost, "durable": true, "auto_delete": false,
                    "arguments": q.arguments.mapValues { $0.jsonObject },
                ]
            },
            "bindings": topology.bindings.map { b -> [String: Any] in
                [
                    "source": b.exchange, "vhost": vhost, "destination": b.queue, "destination_type": "queue",
                    "routing_key": b.routingKey, "arguments": [String: Any](),
                ]
            },
        ]
        var data = try JSONSerialization.data(withJSONObject: doc, options: [.prettyPrinted, .sortedKeys])
        data.append(0x0A)
        return data
    }
}
