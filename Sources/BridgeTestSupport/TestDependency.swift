import Foundation
import Testing

/// What a test needs from the machine that a developer's machine may lack (PostgreSQL, Python's graphql-core, the
/// real Shopify schema in ../shared). In CI (`CI` set; `.ci/run` sets it) a missing dependency fails the test with
/// what to install, so CI never passes a test it did not run. Elsewhere the test is cancelled with the same reason,
/// which Swift Testing reports as skipped, never as passed.
public enum TestDependency {
    public static var inCI: Bool { ProcessInfo.processInfo.environment["CI"].map { !$0.isEmpty && $0 != "0" } ?? false }

    /// Returns if `present`; otherwise fails (CI) or skips (elsewhere) the current test, naming what to install.
    public static func require(
        _ present: Bool, _ what: String, install: String, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        guard !present else { return }
        let reason = "\(what) is missing: \(install)"
        if inCI {
            Issue.record(Comment(rawValue: "CI must run this test: \(reason)"), sourceLocation: sourceLocation)
            throw Missing(reason: reason)
        }
        try Test.cancel(Comment(rawValue: "skipped: \(reason)"), sourceLocation: sourceLocation)
    }

    public static var iptablesPath: String {
        ["/usr/sbin/iptables", "/sbin/iptables"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/iptables"
    }

    /// Whether this process may add and remove iptables rules (root, iptables installed, a kernel that has it).
    public static var iptables: Bool {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: iptablesPath) else { return false }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: iptablesPath)
        p.arguments = ["-w", "-L", "INPUT", "-n"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    /// Whether `python3 -c "import <module>"` succeeds.
    public static func pythonModule(_ module: String) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import \(module)"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    public struct Missing: Error, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }
}
