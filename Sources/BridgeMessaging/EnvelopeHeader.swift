/// Header names of the message envelope (body = the untouched source payload).
public enum EnvelopeHeader {
    public static let source = "x-bridge-source"
    public static let shop = "x-bridge-shop"
    public static let topic = "x-bridge-topic"
    public static let eventId = "x-bridge-event-id"
    public static let webhookId = "x-bridge-webhook-id"
    public static let triggeredAt = "x-bridge-triggered-at"
    public static let apiVersion = "x-bridge-api-version"
    public static let receivedAt = "x-bridge-received-at"
    /// Our own attempt counter (RabbitMQ 4 ignores a republished `x-death`).
    public static let attempt = "x-bridge-attempt"
    public static let firstFailureAt = "x-bridge-first-failure-at"
    public static let errorClass = "x-bridge-error-class"
    public static let errorMessage = "x-bridge-error-message"
    /// The work queue a dead letter or retry came from.
    public static let originQueue = "x-bridge-origin-queue"
    /// How often the message was parked (deferred without counting an attempt: an earlier write's outcome unknown,
    /// a delivery held past its limit while the circuit was open).
    public static let parked = "x-bridge-parked"
    /// Why it was parked last (`outcome_unknown`, `circuit_open`) and the detail; the error headers keep the last
    /// failure's.
    public static let parkedReason = "x-bridge-parked-reason"
    /// How often it was parked because it could not be decided yet (`WorkFailure.deferred`), as opposed to held for
    /// an open circuit: bounded, then it is routed as a failure. Restarts at 0 on a DLQ replay.
    public static let deferrals = "x-bridge-deferrals"
    /// How often the message was replayed from its dead-letter queue, and when last.
    public static let replays = "x-bridge-replays"
    public static let replayedAt = "x-bridge-replayed-at"
    /// The reconciliation run that re-sent the owner's current state (source `reconciler`).
    public static let reconcileRun = "x-bridge-reconcile-run"

    /// Headers the broker adds on dead-lettering and redelivery: not ours to carry into a republished message.
    public static let brokerBookkeeping = [
        "x-death", "x-first-death-reason", "x-first-death-queue", "x-first-death-exchange", "x-delivery-count",
    ]
}
