import Foundation

/// A simulator's state on disk, so that a restart keeps what the system it stands for would keep (an ERP's documents
/// and stock, a shop's orders and levels, the cursors into both). JSON, written atomically: a temporary file beside
/// the target, renamed over it, so a crash mid-write leaves the previous state, never half a file.
///
/// Written by hand: a few lines over Foundation; no library in reach persists a value type this way.
public struct StateFile: Sendable {
    public let path: String

    public init(path: String) { self.path = path }

    /// The saved state, or nil when there is none yet (a first start). A file that cannot be read or decoded is an
    /// error naming the file: starting empty over it would silently throw the state away.
    public func load<S: Decodable>(_ type: S.Type) throws -> S? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: path))
            return try JSONDecoder().decode(S.self, from: data)
        } catch {
            throw StateFileError(message: "cannot restore the simulator's state from \(path): \(error) (delete the file to start empty)")
        }
    }

    /// Restores the saved state, if there is one, through `restore` (before serving), then keeps `snapshot()` saved
    /// until the returned task is cancelled; it saves once more then, so a stop that awaits it loses nothing.
    /// Returns whether a state was restored, and that task.
    public func attach<S: Codable & Sendable>(
        _ type: S.Type, restore: (S) async -> Void, snapshot: @escaping @Sendable () async -> S,
        report: @escaping @Sendable (String) -> Void
    ) async throws -> (restored: Bool, saver: Task<Void, Never>) {
        let saved = try load(S.self)
        if let saved { await restore(saved) }
        let saver = Task { await keepSaved(report: report) { try Self.encode(await snapshot()) } }
        return (saved != nil, saver)
    }

    /// Encodes a state the way `keepSaved` compares it: the same value gives the same bytes.
    static func encode<S: Encodable>(_ state: S) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return try encoder.encode(state)
    }

    public func save(_ data: Data) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        let temporary = URL(fileURLWithPath: path + ".tmp")
        try data.write(to: temporary)
        // rename(2) replaces the old file atomically (FileManager.replaceItemAt refuses a target that does not exist yet).
        guard rename(temporary.path, path) == 0 else {
            throw StateFileError(message: "cannot rename \(temporary.path) to \(path): errno \(errno)")
        }
    }

    /// Saves `snapshot()` every `interval` when it changed, until the task is cancelled, then once more: a stop
    /// (SIGTERM) loses nothing, a crash at most the last interval. Telling whether it changed means encoding it, so
    /// a large state waits ten times as long as its encoding took (the saving never takes more than a tenth of the
    /// simulator's time). Failures are reported through `report` and retried.
    func keepSaved(
        every interval: Duration = .milliseconds(500), report: @Sendable (String) -> Void,
        _ snapshot: @Sendable () async throws -> Data
    ) async {
        var last: Data?
        func saveIfChanged() async -> Duration {
            let started = ContinuousClock.now
            do {
                let data = try await snapshot()
                if data != last {
                    try save(data)
                    last = data
                }
            } catch {
                report("could not save the simulator's state to \(path): \(error)")
            }
            return ContinuousClock.now - started
        }
        while !Task.isCancelled {
            let took = await saveIfChanged()
            try? await Task.sleep(for: max(interval, took * 10))
        }
        _ = await saveIfChanged()
    }
}

public struct StateFileError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
