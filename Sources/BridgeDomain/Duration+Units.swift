extension Duration {
    /// The duration in seconds, fractional.
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) / 1e18
    }

    /// Whole milliseconds (truncated): queue TTLs, per-message expirations, queue-name labels.
    public var wholeMilliseconds: Int64 {
        let c = components
        return c.seconds * 1000 + c.attoseconds / 1_000_000_000_000_000
    }

    /// Whole nanoseconds (truncated): timer metrics.
    public var wholeNanoseconds: Int64 {
        let c = components
        return c.seconds * 1_000_000_000 + c.attoseconds / 1_000_000_000
    }
}
