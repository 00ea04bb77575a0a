import Foundation

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
#if canImport(Glibc)
import Glibc
#endif

/// The real executables, built by `./dev test` before the tests (`BRIDGE_TEST_BIN_DIR` points at them).
public enum TestProcesses {
    public struct NotBuilt: Error, CustomStringConvertible {
        public let path: String
        public var description: String { "\(path) is not built: run ./dev test" }
    }

    public static func binary(_ name: String) throws -> String {
        let dir = ProcessInfo.processInfo.environment["BRIDGE_TEST_BIN_DIR"] ?? TestBroker.repositoryRoot + "/.build/debug"
        let path = dir + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else { throw NotBuilt(path: path) }
        return path
    }

    /// Starts `name` with the test's environment plus `environment` (no BRIDGE_CONFIG); stderr is returned as a pipe.
    public static func launch(_ name: String, environment: [String: String]) throws -> (Process, Pipe) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary(name))
        var env = ProcessInfo.processInfo.environment
        env["BRIDGE_CONFIG"] = nil
        // The alerter's trace journal defaults to data/ under the working directory: not in a test.
        env["ALERTER_TRACE_JOURNAL"] = ":memory:"
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return (p, err)
    }

    /// Runs `name` to completion with `arguments` and the test's environment (BRIDGE_CONFIG unset) replaced by
    /// `environment` when given; returns its exit status and its stdout and stderr together.
    public static func run(_ name: String, _ arguments: [String], environment: [String: String]? = nil) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: try binary(name))
        p.arguments = arguments
        var env = environment ?? ProcessInfo.processInfo.environment
        env["BRIDGE_CONFIG"] = nil
        p.environment = env
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, text)
    }

    /// A GET with a 2 s timeout: the status and body, `(0, "")` when nothing answered (a process's ops endpoints:
    /// `/readyz`, `/metrics`).
    public static func get(_ url: String) async -> (Int, String) {
        var request = URLRequest(url: URL(string: url)!)
        request.timeoutInterval = 2
        guard let (data, response) = try? await URLSession.shared.data(for: request) else { return (0, "") }
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, String(decoding: data, as: UTF8.self))
    }

    /// A TCP port free right now on 127.0.0.1 (the kernel picks it).
    public static func freePort() -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        return Int(UInt16(bigEndian: addr.sin_port))
    }
}
