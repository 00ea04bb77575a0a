/// What a process is: its name, default ops port, and which broker connections it needs.
public struct ProcessKind: Sendable {
    public let name: String
    public let defaultPort: Int
    public let publishes: Bool
    public let consumes: Bool

    public static let ingest = ProcessKind(name: "ingest", defaultPort: 8080, publishes: true, consumes: false)
    public static let orderForwarder = ProcessKind(name: "order-forwarder", defaultPort: 9101, publishes: true, consumes: true)
    public static let inventorySyncer = ProcessKind(name: "inventory-syncer", defaultPort: 9102, publishes: true, consumes: true)
    public static let reconciler = ProcessKind(name: "reconciler", defaultPort: 9103, publishes: true, consumes: true)
    public static let alerter = ProcessKind(name: "alerter", defaultPort: 9104, publishes: true, consumes: true)
}
