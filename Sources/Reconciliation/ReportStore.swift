import Foundation

/// Reports on disk, under `reconciler.reports_dir`: `<run id>.json` and `<run id>.md` per run (run ids begin with
/// their UTC start time, so names sort by time), plus `<run id>.progress` while a run heals: the ids it has
/// healed, so that a run interrupted and redelivered does not heal them a second time. Files are written to a
/// temporary name and renamed (a reader never sees half a report).
public struct ReportStore: Sendable {
    public let directory: URL

    public init(directory: String) {
        self.directory = URL(fileURLWithPath: directory, isDirectory: true)
    }

    /// A new run id: `20261202T020000Z-3f9a1c`.
    public static func newRunId(at date: Date = Date()) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = .gmt
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let stamp = String(format: "%04d%02d%02dT%02d%02d%02dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!)
        return stamp + "-" + String(UUID().uuidString.lowercased().prefix(6))
    }

    /// Run ids are file names: letters, digits, `-`, `_`, `.` only.
    public static func isValidRunId(_ id: String) -> Bool {
        !id.isEmpty && id.count <= 100 && !id.hasPrefix(".")
            && id.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_.".unicodeScalars.contains($0) }
    }

    func url(_ runId: String, _ suffix: String) -> URL { directory.appendingPathComponent(runId + suffix) }

    public func save(_ report: ReconcileReport) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try write(try ReconcileReport.encoder.encode(report), to: url(report.runId, ".json"))
        try write(Data(report.markdown.utf8), to: url(report.runId, ".md"))
        try? FileManager.default.removeItem(at: url(report.runId, ".progress"))
    }

    public func report(runId: String) throws -> ReconcileReport? {
        guard Self.isValidRunId(runId), let data = try? Data(contentsOf: url(runId, ".json")) else { return nil }
        return try ReconcileReport.decoder.decode(ReconcileReport.self, from: data)
    }

    /// Run ids with a report, newest first.
    public func runIds() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }.map { String($0.dropLast(5)) }
            .sorted(by: >)
    }

    public func last() throws -> ReconcileReport? {
        guard let id = runIds().first else { return nil }
        return try report(runId: id)
    }

    // MARK: Progress of a healing run

    /// What an interrupted run with this id had healed (the references in its healing log).
    public func healed(runId: String) -> Set<String> {
        guard let data = try? Data(contentsOf: url(runId, ".progress")) else { return [] }
        return Set(String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init))
    }

    /// An append-only log of the references a run re-sent, one a line: an interruption loses at most the line of
    /// the order being re-sent (which is then re-sent once more, a write the forwarder makes idempotent).
    public final class HealingLog {
        let handle: FileHandle?

        init(_ url: URL) throws {
            if !FileManager.default.fileExists(atPath: url.path) {
                _ = FileManager.default.createFile(atPath: url.path, contents: nil)
            }
            handle = try FileHandle(forWritingTo: url)
            _ = try handle?.seekToEnd()
        }

        public func append(_ ref: String) {
            try? handle?.write(contentsOf: Data((ref + "\n").utf8))
        }

        public func close() {
            try? handle?.close()
        }
    }

    public func healingLog(runId: String) throws -> HealingLog {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try HealingLog(url(runId, ".progress"))
    }

    /// The SKU -> Shopify variant map the last catalogue run of a shop saw (`.catalogue-<shop>.map`, hidden from the
    /// report list): the next run reports a SKU whose variant has since disappeared.
    public func catalogueMap(shop: String) -> [String: String] {
        guard let data = try? Data(contentsOf: directory.appendingPathComponent(".catalogue-\(shop).map")) else { return [:] }
        return (try? JSONDecoder().decode([String: String].self, from: data)) ?? [:]
    }

    public func saveCatalogueMap(_ map: [String: String], shop: String) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try write(try JSONEncoder().encode(map), to: directory.appendingPathComponent(".catalogue-\(shop).map"))
    }

    /// Written to a temporary file and renamed over the target (`.atomic`): a reader sees the old file or the new one.
    /// (FileManager.replaceItemAt, used before, removed a dot-file target on Linux when replacing it.)
    private func write(_ data: Data, to target: URL) throws {
        try data.write(to: target, options: .atomic)
    }
}
