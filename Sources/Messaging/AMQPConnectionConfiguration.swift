import BridgeDomain
import Foundation

/// How to reach the broker. Built from an `amqp://` or `amqps://` URL plus options.
public struct AMQPConnectionConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var vhost: String
    public var user: String
    public var password: String
    public var tls: Bool
    /// PEM CA bundle used to verify the broker (rabbitmq-c 0.11 does not load the system store).
    public var caFile: String?
    /// Verify the broker's hostname against its certificate (IP SANs are not checked by rabbitmq-c 0.11).
    public var verifyHostname: Bool
    /// Heartbeat interval negotiated with the broker; 0 disables heartbeats (not recommended).
    public var heartbeat: Duration
    /// Shown in the RabbitMQ console's connection list.
    public var connectionName: String
    public var connectTimeout: Duration
    /// Bound on every synchronous broker call (declare, qos, consume...).
    public var rpcTimeout: Duration
    /// First and maximum reconnect delay; each attempt doubles it, with full jitter.
    public var reconnectInitialDelay: Duration
    public var reconnectMaxDelay: Duration
    /// Bound on waiting for a publish confirm before the publish fails with `confirmTimeout`.
    public var confirmTimeout: Duration

    public init(
        url: String,
        caFile: String? = nil,
        user: String? = nil,
        password: String? = nil,
        heartbeat: Duration = .seconds(10),
        connectionName: String = "bridge"
    ) throws {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased() else {
            throw AMQPError(.invalidConfiguration, "broker URL is not a valid URL (expected amqp://user:pass@host:port/vhost)")
        }
        switch scheme {
        case "amqp": tls = false
        case "amqps": tls = true
        default:
            throw AMQPError(.invalidConfiguration, "broker URL scheme must be amqp or amqps, not '\(scheme)'")
        }
        guard let host = components.host, !host.isEmpty else {
            throw AMQPError(.invalidConfiguration, "broker URL has no host")
        }
        self.host = host
        self.port = components.port ?? (tls ? 5671 : 5672)
        // Path "/" or "" is the default vhost "/"; "/%2F" is "/" too; "/name" is "name".
        let rawPath = components.percentEncodedPath
        if rawPath.isEmpty || rawPath == "/" {
            vhost = "/"
        } else {
            vhost = String(rawPath.dropFirst()).removingPercentEncoding ?? String(rawPath.dropFirst())
        }
        self.user = user ?? components.user?.removingPercentEncoding ?? "guest"
        self.password = password ?? components.password?.removingPercentEncoding ?? "guest"
        var heartbeat = heartbeat
        var caFile = caFile
        for item in components.queryItems ?? [] {
            switch item.name {
            case "heartbeat":
                guard let v = item.value.flatMap(Int.init), v >= 0 else {
                    throw AMQPError(.invalidConfiguration, "broker URL query 'heartbeat' must be seconds >= 0")
                }
                heartbeat = .seconds(v)
            case "cacertfile", "ca_file":
                caFile = item.value
            default:
                break
            }
        }
        if tls, caFile == nil {
            throw AMQPError(
                .invalidConfiguration,
                "amqps:// needs a CA file (rabbitmq-c 0.11 has no system trust store): set broker.ca_file")
        }
        self.caFile = caFile
        self.verifyHostname = true
        self.heartbeat = heartbeat
        self.connectionName = connectionName
        self.connectTimeout = .seconds(5)
        self.rpcTimeout = .seconds(15)
        self.reconnectInitialDelay = .milliseconds(100)
        self.reconnectMaxDelay = .seconds(5)
        self.confirmTimeout = .seconds(10)
    }

    /// The URL without the password, for logs.
    public var redactedURL: String {
        let vh = vhost == "/" ? "%2F" : (vhost.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? vhost)
        return "\(tls ? "amqps" : "amqp")://\(user)@\(host):\(port)/\(vh)"
    }
}

extension Duration {
    var timeval: timeval {
        let c = components
        return Foundation.timeval(tv_sec: Int(c.seconds), tv_usec: Int(c.attoseconds / 1_000_000_000_000))
    }
}
