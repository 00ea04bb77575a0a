/// Settings of the reconciler (`reconciler.*`).
public struct ReconcilerSettings: Sendable, Equatable {
    /// How often a reconciliation runs.
    public var interval: Duration

    public init(interval: Duration = .seconds(900)) { self.interval = interval }

    /// Parses `reconciler.*`.
    public static func parse(_ p: inout SettingsParser) -> ReconcilerSettings {
        ReconcilerSettings(
            interval: p.duration("reconciler.interval", default: .seconds(900), range: .seconds(10) ... .seconds(7 * 86400)))
    }
}
