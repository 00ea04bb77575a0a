/// A set of exchanges, queues and bindings, declared identically by every process.
///
/// Quorum queues refuse a re-declaration with different `x-` arguments (406 PRECONDITION_FAILED), so there must be
/// exactly one definition: this value, built in one place (`BridgeTopology` in BridgeCore).
public struct Topology: Sendable, Equatable {
    public struct Exchange: Sendable, Equatable {
        public var name: String
        public var type: String
        public var isInternal: Bool
        public var arguments: AMQPTable
        public init(name: String, type: String, isInternal: Bool = false, arguments: AMQPTable = [:]) {
            self.name = name
            self.type = type
            self.isInternal = isInternal
            self.arguments = arguments
        }
    }

    public struct Queue: Sendable, Equatable {
        public var name: String
        public var arguments: AMQPTable
        public init(name: String, arguments: AMQPTable) {
            self.name = name
            self.arguments = arguments
        }
    }

    public struct Binding: Sendable, Equatable, Hashable {
        public var exchange: String
        public var queue: String
        public var routingKey: String
        public init(exchange: String, queue: String, routingKey: String) {
            self.exchange = exchange
            self.queue = queue
            self.routingKey = routingKey
        }
    }

    public var exchanges: [Exchange]
    public var queues: [Queue]
    public var bindings: [Binding]

    public init(exchanges: [Exchange] = [], queues: [Queue] = [], bindings: [Binding] = []) {
        self.exchanges = exchanges
        self.queues = queues
        self.bindings = bindings
    }

    /// Declares everything (durable). Idempotent while the definition is unchanged.
    public func declare(using ops: AMQPChannelOperations) throws {
        for e in exchanges {
            try ops.declareExchange(e.name, type: e.type, isInternal: e.isInternal, arguments: e.arguments)
        }
        for q in queues {
            try ops.declareQueue(q.name, arguments: q.arguments)
        }
        for b in bindings {
            try ops.bindQueue(b.queue, exchange: b.exchange, routingKey: b.routingKey)
        }
    }

    /// Checks that every exchange and queue exists, without creating anything (for least-privilege users that may
    /// not configure). A missing entity throws `channelClosed` with reply code 404.
    public func verify(using ops: AMQPChannelOperations) throws {
        for e in exchanges { try ops.passiveDeclareExchange(e.name) }
        for q in queues { _ = try ops.passiveDeclareQueue(q.name) }
    }
}
