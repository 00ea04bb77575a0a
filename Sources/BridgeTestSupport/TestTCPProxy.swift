import Foundation

/// A TCP proxy in front of a port (`scripts/tcp-proxy.py`), for cutting one process's connections without closing
/// them: `freeze()` stops the proxy process (SIGSTOP), so no byte flows either way and no FIN or RST reaches either
/// side, as in a network partition; `thaw()` resumes it.
public final class TestTCPProxy: Sendable {
    public let port: Int
    let process: Process

    private init(port: Int, process: Process) {
        self.port = port
        self.process = process
    }

    public struct StartFailed: Error, CustomStringConvertible {
        public var description: String
    }

    public static func start(to targetPort: Int, host: String = "127.0.0.1") throws -> TestTCPProxy {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = [TestBroker.repositoryRoot + "/scripts/tcp-proxy.py", host, "\(targetPort)"]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        // The script prints its port, then nothing else.
        var line = Data()
        while let byte = try out.fileHandleForReading.read(upToCount: 1), !byte.isEmpty, byte != Data("\n".utf8) { line += byte }
        guard let port = Int(String(decoding: line, as: UTF8.self)) else {
            p.terminate()
            throw StartFailed(description: "tcp-proxy.py printed no port")
        }
        return TestTCPProxy(port: port, process: p)
    }

    public func freeze() { kill(process.processIdentifier, SIGSTOP) }
    public func thaw() { kill(process.processIdentifier, SIGCONT) }

    /// SIGKILL: the proxy inherits the test runner's signal mask, in which SIGTERM can be blocked (a SIGTERM then
    /// stays pending and the proxy outlives the test).
    public func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
