import CRabbitMQ
import Foundation
import Logging
import Metrics
import Synchronization

/// One AMQP connection to RabbitMQ, owned by one dedicated thread.
///
/// rabbitmq-c is blocking and not thread-safe, and services heartbeats only inside its calls. So every C call on a
/// connection happens on that connection's own thread (never on the Swift cooperative pool), which keeps polling with
/// a short timeout. Async callers talk to the thread through a command inbox and continuations.
///
/// The connection reconnects by itself with exponential backoff and full jitter, runs `onConnect` (topology
/// declaration) on every (re)connect, and resumes registered consumers. A publish that was in flight when the
/// connection dropped fails to its caller with `connectionLost`: nothing is reported as confirmed unless the broker
/// confirmed it.
///
/// Use separate connections for publishing and consuming: a resource alarm blocks publishing connections only.
public final class AMQPConnection: Sendable {
    /// Header stamped on every mandatory publish: its delivery tag on the publishing connection, so a `basic.return`
    /// is matched to the publish it belongs to. Consumers may ignore it.
    public static let publishTagHeader = "x-bridge-publish-tag"

    public let configuration: AMQPConnectionConfiguration
    let logger: Logger
    let inbox: Mutex<Inbox>
    let wake: WakeSignal
    let onConnect: (@Sendable (AMQPChannelOperations) throws -> Void)?
    let watchdog: PublishWatchdog
    private let status = Mutex(Status())

    public struct Status: Sendable, Equatable {
        public var connected = false
        public var blocked = false
        /// `onConnect` (topology) succeeded on the current connection.
        public var ready = false
        public var reconnects = 0
        public var lastError: String?
    }

    struct Inbox {
        var commands: [Command] = []
        var closed = false
        var started = false
        var stopped: [CheckedContinuation<Void, Never>] = []
        var exited = false
    }

    /// - Parameters:
    ///   - onConnect: runs on the connection thread after every (re)connect, before any command; a throw counts as
    ///     a failed connect (logged, retried with backoff). Declare topology here.
    public init(
        configuration: AMQPConnectionConfiguration,
        logger: Logger,
        onConnect: (@Sendable (AMQPChannelOperations) throws -> Void)? = nil
    ) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "amqp_connection"] = .string(configuration.connectionName)
        self.logger = logger
        self.inbox = Mutex(Inbox())
        self.wake = WakeSignal()
        self.onConnect = onConnect
        self.watchdog = PublishWatchdog(connectionName: configuration.connectionName)
    }

    /// Starts the owning thread. Idempotent.
    public func start() {
        let shouldStart = inbox.withLock { inbox -> Bool in
            if inbox.started || inbox.closed { return false }
            inbox.started = true
            return true
        }
        guard shouldStart else { return }
        // The loop is handed to its thread and never touched from anywhere else.
        nonisolated(unsafe) let loop = ConnectionLoop(connection: self)
        let thread = Thread { loop.run() }
        thread.name = "amqp-\(configuration.connectionName)"
        thread.start()
        let watchdogThread = Thread { [self] in
            watchdog.run(connection: self) { inbox.withLock { $0.exited } }
        }
        watchdogThread.name = "amqp-watchdog-\(configuration.connectionName)"
        watchdogThread.start()
    }

    /// How often the connection thread was found stuck in a blocking call for longer than 250 ms
    /// (`bridge_amqp_thread_stalls_total`). Publishes still answer by their deadline when it is.
    public var threadStalls: Int { watchdog.stallCount }

    public var currentStatus: Status { status.withLock { $0 } }
    public var isConnected: Bool { status.withLock { $0.connected } }
    public var isReady: Bool { status.withLock { $0.connected && $0.ready } }
    public var isBlocked: Bool { status.withLock { $0.blocked } }

    func updateStatus(_ body: (inout Status) -> Void) {
        status.withLock { body(&$0) }
    }

    /// Waits until connected and `onConnect` succeeded, or throws after `timeout`.
    public func waitUntilReady(timeout: Duration = .seconds(30)) async throws {
        let deadline = ContinuousClock.now + timeout
        while !isReady {
            if ContinuousClock.now >= deadline {
                throw AMQPError(
                    .notConnected,
                    "not connected to \(configuration.redactedURL) after \(timeout): \(currentStatus.lastError ?? "no error recorded")")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    // MARK: Commands

    func submit(_ command: Command) {
        let (accepted, wasEmpty) = inbox.withLock { inbox -> (Bool, Bool) in
            if inbox.closed { return (false, false) }
            let wasEmpty = inbox.commands.isEmpty
            inbox.commands.append(command)
            return (true, wasEmpty)
        }
        if !accepted {
            if case .publish(_, let waiter) = command { watchdog.forget(waiter) }
            command.fail(AMQPError(.closed, "connection \(configuration.connectionName) is closed"))
        } else if wasEmpty {
            wake.signal()
        }
    }

    /// Publishes one message and returns when the broker confirmed it.
    ///
    /// Throws `unroutable` (mandatory and no queue bound), `nacked`, `blocked`, `notConnected`, `connectionLost`
    /// (outcome unknown) or `confirmTimeout` (outcome unknown). Many calls may be in flight at once on one connection:
    /// each returns when its own confirm (single or multiple) arrives. It always returns by its deadline (`timeout`,
    /// else the configuration's `confirmTimeout`, plus at most the watchdog's 50 ms tick), even while the connection
    /// thread is stuck in a blocking call (a partition, a connect attempt, a broker that stopped reading).
    public func publish(
        exchange: String,
        routingKey: String,
        body: [UInt8],
        properties: MessageProperties = MessageProperties(),
        mandatory: Bool = true,
        timeout: Duration? = nil
    ) async throws {
        let deadline = ContinuousClock.now + (timeout ?? configuration.confirmTimeout)
        let request = PublishRequest(
            exchange: exchange, routingKey: routingKey, body: body, properties: properties,
            mandatory: mandatory, deadline: deadline)
        let watchdog = self.watchdog
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, Error>) in
            let waiter = PublishWaiter(id: watchdog.makeID(), deadline: deadline, continuation: continuation)
            watchdog.register(waiter)
            submit(.publish(request, waiter))
        }
    }

    /// Runs `body` on the connection thread with a fresh channel (declare, bind, passive declare, purge, get...).
    /// A broker channel error (404, 406, 403) is thrown as `channelClosed`; the connection stays up.
    public func withChannel<T: Sendable>(
        _ body: @escaping @Sendable (AMQPChannelOperations) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
            submit(
                .run { ops in
                    do {
                        continuation.resume(returning: try body(ops))
                    } catch {
                        continuation.resume(throwing: error)
                    }
                } fail: { error in
                    continuation.resume(throwing: error)
                })
        }
    }

    /// Message and consumer counts of a queue, by passive declare (never creates it).
    public func queueCounts(_ queue: String) async throws -> (messages: Int, consumers: Int) {
        try await withChannel { try $0.passiveDeclareQueue(queue) }
    }

    /// Starts consuming `queue` with `prefetch` unacknowledged deliveries at most. The consumer resumes by itself
    /// after a reconnect. Throws if the broker refuses the consume (e.g. the queue does not exist).
    public func consume(queue: String, prefetch: UInt16 = 32, consumerTagPrefix: String? = nil) async throws
        -> AMQPConsumer
    {
        let id = ConsumerID.next()
        let (stream, continuation) = AsyncThrowingStream<AMQPDelivery, Error>.makeStream()
        let registration = ConsumerRegistration(
            id: id, queue: queue, prefetch: prefetch,
            tagPrefix: consumerTagPrefix ?? configuration.connectionName, continuation: continuation)
        continuation.onTermination = { [weak self] _ in
            self?.submit(.cancelConsumer(id))
        }
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
            submit(.consume(registration, c))
        }
        return AMQPConsumer(id: id, queue: queue, deliveries: stream, connection: self)
    }

    func settle(_ delivery: AMQPDelivery, _ kind: SettleKind) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, Error>) in
            submit(
                .settle(
                    generation: delivery.generation, channel: delivery.channel, consumer: delivery.consumer,
                    tag: delivery.deliveryTag, kind: kind, c))
        }
    }

    /// Closes the connection: new publishes fail at once, in-flight publishes get up to `drain` to be confirmed,
    /// consumers finish, and the thread exits. Unacknowledged deliveries go back to their queue (broker side).
    public func close(drain: Duration = .seconds(5)) async {
        let (started, alreadyExited) = inbox.withLock { inbox -> (Bool, Bool) in
            (inbox.started, inbox.exited)
        }
        if !started {
            // Never started: nothing will run the commands already queued, so fail them now instead of leaving their
            // callers waiting forever.
            let queued = inbox.withLock { inbox -> [Command] in
                inbox.closed = true
                defer { inbox.commands = [] }
                return inbox.commands
            }
            for command in queued { command.fail(AMQPError(.closed, "connection \(configuration.connectionName) closed before it started")) }
            return
        }
        if alreadyExited { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let resumeNow = inbox.withLock { inbox -> Bool in
                if inbox.exited { return true }
                inbox.stopped.append(c)
                if !inbox.closed {
                    inbox.closed = true
                    inbox.commands.append(.shutdown(drain: drain))
                }
                return false
            }
            if resumeNow { c.resume() } else { wake.signal() }
        }
    }
}

enum SettleKind: Sendable {
    case ack
    case nack(requeue: Bool)
    case reject(requeue: Bool)
}

struct PublishRequest: Sendable {
    var exchange: String
    var routingKey: String
    var body: [UInt8]
    var properties: MessageProperties
    var mandatory: Bool
    var deadline: ContinuousClock.Instant
}

struct ConsumerID: Hashable, Sendable {
    let raw: UInt64
    private static let counter = Atomic<UInt64>(0)
    static func next() -> ConsumerID { ConsumerID(raw: counter.add(1, ordering: .relaxed).newValue) }
}

struct ConsumerRegistration: Sendable {
    let id: ConsumerID
    let queue: String
    let prefetch: UInt16
    let tagPrefix: String
    let continuation: AsyncThrowingStream<AMQPDelivery, Error>.Continuation
}

enum Command: Sendable {
    case publish(PublishRequest, PublishWaiter)
    case settle(
        generation: UInt64, channel: UInt16, consumer: ConsumerID, tag: UInt64, kind: SettleKind, CheckedContinuation<Void, Error>)
    case consume(ConsumerRegistration, CheckedContinuation<Void, Error>)
    case cancelConsumer(ConsumerID)
    case run(@Sendable (AMQPChannelOperations) -> Void, fail: @Sendable (Error) -> Void)
    case shutdown(drain: Duration)

    var isPublish: Bool {
        if case .publish = self { true } else { false }
    }

    /// About how many bytes the command writes to the socket (frames, method and property fields included).
    var estimatedBytes: Int {
        switch self {
        case .publish(let r, _):
            let headers = r.properties.headers.reduce(0) { $0 + $1.key.utf8.count + 32 }
            return r.body.count + r.exchange.utf8.count + r.routingKey.utf8.count + (r.properties.messageId?.utf8.count ?? 0)
                + headers + 256
        case .settle: return 32
        case .consume, .cancelConsumer, .run, .shutdown: return 256
        }
    }

    /// Sent without waiting for a reply from the broker (a publish's confirm comes later, asynchronously).
    var isOneWay: Bool {
        switch self {
        case .publish, .settle: true
        case .consume, .cancelConsumer, .run, .shutdown: false
        }
    }

    func fail(_ error: Error) {
        switch self {
        case .publish(_, let w): w.resume(.failure(error))
        case .settle(_, _, _, _, _, let c): c.resume(throwing: error)
        case .consume(let r, let c):
            r.continuation.finish(throwing: error)
            c.resume(throwing: error)
        case .run(_, let fail): fail(error)
        case .cancelConsumer, .shutdown: break
        }
    }
}

/// A consumer's deliveries. Iterate `deliveries`; settle each with `ack()`, `nack(requeue:)` or `reject(requeue:)`.
/// The stream throws `consumerCancelled` if the broker cancels the consumer (e.g. the queue was deleted).
public struct AMQPConsumer: Sendable {
    let id: ConsumerID
    public let queue: String
    public let deliveries: AsyncThrowingStream<AMQPDelivery, Error>
    let connection: AMQPConnection

    /// Stops this consumer: unacknowledged deliveries return to the queue when their channel closes.
    public func cancel() {
        connection.submit(.cancelConsumer(id))
    }
}

/// One delivered message.
public struct AMQPDelivery: Sendable {
    public let body: [UInt8]
    public let properties: MessageProperties
    public let exchange: String
    public let routingKey: String
    public let redelivered: Bool
    public let deliveryTag: UInt64
    public let queue: String
    let channel: UInt16
    let generation: UInt64
    /// The consumer that received it: a settle is refused once that consumer is gone, even if a new consumer got
    /// the same channel number (its delivery tags restart at 1, so the old tag would settle the new one's message).
    let consumer: ConsumerID
    let connection: AMQPConnection

    /// Quorum queues count redeliveries in `x-delivery-count` (absent on the first delivery).
    public var deliveryCount: Int64 { properties.headers["x-delivery-count"]?.intValue ?? 0 }

    public func ack() async throws { try await connection.settle(self, .ack) }
    public func nack(requeue: Bool) async throws { try await connection.settle(self, .nack(requeue: requeue)) }
    public func reject(requeue: Bool) async throws { try await connection.settle(self, .reject(requeue: requeue)) }
}

/// Wakes the connection thread out of `poll` (an eventfd).
final class WakeSignal: Sendable {
    let fd: Int32

    init() {
        fd = bridge_eventfd()
        precondition(fd >= 0, "eventfd failed: \(errno)")
    }

    deinit { Foundation.close(fd) }

    func signal() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { Foundation.write(fd, $0.baseAddress, 8) }
    }

    func drain() {
        var value: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &value) { Foundation.read(fd, $0.baseAddress, 8) }
    }
}
