import CRabbitMQ
import Foundation

/// Synchronous channel operations, usable only inside `AMQPConnection.withChannel` or `onConnect`
/// (they run on the connection's own thread). Each throws `AMQPError` with the broker's reply code.
public final class AMQPChannelOperations {
    let state: amqp_connection_state_t
    let channel: amqp_channel_t
    /// Set when the broker closed the connection during an operation: the loop must reconnect.
    var connectionBroken: AMQPError?
    /// Set when the broker closed this channel (404, 406, 403...): it must not be closed again.
    var channelClosedByBroker = false

    init(state: amqp_connection_state_t, channel: amqp_channel_t) {
        self.state = state
        self.channel = channel
    }

    public func declareExchange(
        _ name: String, type: String, durable: Bool = true, autoDelete: Bool = false, isInternal: Bool = false,
        arguments: AMQPTable = [:]
    ) throws {
        let arena = CArena()
        amqp_exchange_declare(
            state, channel, arena.bytes(name), arena.bytes(type), 0, durable ? 1 : 0, autoDelete ? 1 : 0,
            isInternal ? 1 : 0, arena.table(arguments))
        try check("exchange.declare \(name)")
    }

    /// Declares a queue; returns its message and consumer counts.
    @discardableResult
    public func declareQueue(
        _ name: String, durable: Bool = true, exclusive: Bool = false, autoDelete: Bool = false,
        arguments: AMQPTable = [:]
    ) throws -> (messages: Int, consumers: Int) {
        let arena = CArena()
        let ok = amqp_queue_declare(
            state, channel, arena.bytes(name), 0, durable ? 1 : 0, exclusive ? 1 : 0, autoDelete ? 1 : 0,
            arena.table(arguments))
        try check("queue.declare \(name)")
        guard let ok else { return (0, 0) }
        return (Int(ok.pointee.message_count), Int(ok.pointee.consumer_count))
    }

    /// Checks that a queue exists without creating it; returns its message and consumer counts. A missing queue
    /// throws `channelClosed` with reply code 404.
    public func passiveDeclareQueue(_ name: String) throws -> (messages: Int, consumers: Int) {
        let arena = CArena()
        let ok = amqp_queue_declare(state, channel, arena.bytes(name), 1, 0, 0, 0, amqp_empty_table)
        try check("queue.declare(passive) \(name)")
        guard let ok else { return (0, 0) }
        return (Int(ok.pointee.message_count), Int(ok.pointee.consumer_count))
    }

    /// Checks that an exchange exists without creating it.
    public func passiveDeclareExchange(_ name: String) throws {
        let arena = CArena()
        amqp_exchange_declare(state, channel, arena.bytes(name), arena.bytes("direct"), 1, 0, 0, 0, amqp_empty_table)
        try check("exchange.declare(passive) \(name)")
    }

    public func bindQueue(_ queue: String, exchange: String, routingKey: String, arguments: AMQPTable = [:]) throws {
        let arena = CArena()
        amqp_queue_bind(
            state, channel, arena.bytes(queue), arena.bytes(exchange), arena.bytes(routingKey), arena.table(arguments))
        try check("queue.bind \(queue) <- \(exchange) [\(routingKey)]")
    }

    @discardableResult
    public func purgeQueue(_ name: String) throws -> Int {
        let arena = CArena()
        let ok = amqp_queue_purge(state, channel, arena.bytes(name))
        try check("queue.purge \(name)")
        return Int(ok?.pointee.message_count ?? 0)
    }

    public func deleteQueue(_ name: String) throws {
        let arena = CArena()
        amqp_queue_delete(state, channel, arena.bytes(name), 0, 0)
        try check("queue.delete \(name)")
    }

    public func deleteExchange(_ name: String) throws {
        let arena = CArena()
        amqp_exchange_delete(state, channel, arena.bytes(name), 0)
        try check("exchange.delete \(name)")
    }

    /// `basic.get`: fetches one message (or nil when the queue is empty). With `ack: false` the message must be
    /// settled with `ackGot`/`rejectGot` on this same channel before the operation ends, otherwise it is requeued.
    public func get(_ queue: String, autoAck: Bool) throws -> GotMessage? {
        let arena = CArena()
        let reply = amqp_basic_get(state, channel, arena.bytes(queue), autoAck ? 1 : 0)
        try throwIfFailed(reply, "basic.get \(queue)")
        if reply.reply.id == BRIDGE_BASIC_GET_EMPTY_METHOD { return nil }
        guard reply.reply.id == BRIDGE_BASIC_GET_OK_METHOD, let decoded = reply.reply.decoded else { return nil }
        let getOk = decoded.assumingMemoryBound(to: amqp_basic_get_ok_t.self).pointee
        let tag = getOk.delivery_tag
        let exchange = CDecode.string(getOk.exchange)
        let routingKey = CDecode.string(getOk.routing_key)
        let redelivered = getOk.redelivered != 0
        let remaining = Int(getOk.message_count)
        var message = amqp_message_t()
        let readReply = amqp_read_message(state, channel, &message, 0)
        try throwIfFailed(readReply, "basic.get read \(queue)")
        defer { amqp_destroy_message(&message) }
        return GotMessage(
            deliveryTag: tag, exchange: exchange, routingKey: routingKey, redelivered: redelivered,
            remaining: remaining, properties: CDecode.properties(message.properties),
            body: CDecode.bytes(message.body))
    }

    public func ackGot(_ tag: UInt64) throws {
        let status = amqp_basic_ack(state, channel, tag, 0)
        if status != 0 { throw statusError(status, "basic.ack") }
    }

    public func rejectGot(_ tag: UInt64, requeue: Bool) throws {
        let status = amqp_basic_reject(state, channel, tag, requeue ? 1 : 0)
        if status != 0 { throw statusError(status, "basic.reject") }
    }

    // MARK: - Errors

    func check(_ what: String) throws {
        try throwIfFailed(amqp_get_rpc_reply(state), what)
    }

    func throwIfFailed(_ reply: amqp_rpc_reply_t, _ what: String) throws {
        if let error = AMQPChannelOperations.error(from: reply, what: what, state: state, channel: channel) {
            if error.code == .channelClosed { channelClosedByBroker = true }
            if error.code == .connectionLost || error.code == .connectFailed
                || (error.code == .channelClosed && error.replyCode.map { $0 >= 500 } == true)
            {
                connectionBroken = error
            }
            throw error
        }
    }

    func statusError(_ status: Int32, _ what: String) -> AMQPError {
        let e = AMQPError(.connectionLost, "\(what): \(String(cString: amqp_error_string2(status)))", replyCode: Int(status))
        connectionBroken = e
        return e
    }

    /// Converts an RPC reply to an error (nil when normal). Answers a broker `channel.close` with `close-ok` and a
    /// `connection.close` with `close-ok`, so the protocol stays in step.
    static func error(
        from reply: amqp_rpc_reply_t, what: String, state: amqp_connection_state_t, channel: amqp_channel_t
    ) -> AMQPError? {
        switch reply.reply_type {
        case AMQP_RESPONSE_NORMAL:
            return nil
        case AMQP_RESPONSE_NONE:
            return AMQPError(.connectionLost, "\(what): no reply (missing RPC reply type)")
        case AMQP_RESPONSE_LIBRARY_EXCEPTION:
            let text = String(cString: amqp_error_string2(reply.library_error))
            return AMQPError(.connectionLost, "\(what): \(text)", replyCode: Int(reply.library_error))
        case AMQP_RESPONSE_SERVER_EXCEPTION:
            if reply.reply.id == BRIDGE_CHANNEL_CLOSE_METHOD, let decoded = reply.reply.decoded {
                let close = decoded.assumingMemoryBound(to: amqp_channel_close_t.self).pointee
                var ok = amqp_channel_close_ok_t()
                amqp_send_method(state, channel, BRIDGE_CHANNEL_CLOSE_OK_METHOD, &ok)
                return AMQPError(
                    .channelClosed, "\(what): \(CDecode.string(close.reply_text))", replyCode: Int(close.reply_code))
            }
            if reply.reply.id == BRIDGE_CONNECTION_CLOSE_METHOD, let decoded = reply.reply.decoded {
                let close = decoded.assumingMemoryBound(to: amqp_connection_close_t.self).pointee
                var ok = amqp_connection_close_ok_t()
                amqp_send_method(state, 0, BRIDGE_CONNECTION_CLOSE_OK_METHOD, &ok)
                return AMQPError(
                    .connectionLost, "\(what): connection closed by broker: \(CDecode.string(close.reply_text))",
                    replyCode: Int(close.reply_code))
            }
            return AMQPError(.connectionLost, "\(what): unexpected server method \(reply.reply.id)")
        default:
            return AMQPError(.connectionLost, "\(what): unknown reply type")
        }
    }
}

/// A message fetched with `basic.get`.
public struct GotMessage: Sendable {
    public let deliveryTag: UInt64
    public let exchange: String
    public let routingKey: String
    public let redelivered: Bool
    /// Messages left in the queue after this one.
    public let remaining: Int
    public let properties: MessageProperties
    public let body: [UInt8]
}
