import BridgeDomain
import Messaging

extension BridgeConfig.Broker {
    /// A connection configuration for one connection of a process.
    public func connection(name: String) throws -> AMQPConnectionConfiguration {
        try AMQPConnectionConfiguration(
            url: url, caFile: caFile, user: user, password: password, heartbeat: heartbeat, connectionName: name)
    }
}
