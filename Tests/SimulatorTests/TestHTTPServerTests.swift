import BridgeTestSupport
import Foundation
import Hummingbird
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The test servers every simulator and harness runs on. CI once crashed the whole test process when a test stopped
/// its server while a client was connecting (NIO traps on an accepted connection nobody took: apple/swift-nio#2813).
@Suite("test support: a test HTTP server stops without crashing while clients connect")
struct TestHTTPServerTests {
    /// Opens a TCP connection to 127.0.0.1:`port` and leaves it to the server (closed a moment later).
    static func connect(_ port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return fd
    }

    @Test("stopping the server while connections keep arriving, 30 times")
    func stopUnderConnections() async throws {
        for _ in 0..<30 {
            let router = Router()
            router.get("/") { _, _ in "ok" }
            let (port, task) = await TestHTTPServer.start(router, label: "stop-test")
            #expect(port > 0)
            let stop = Task.detached {
                var fds: [Int32] = []
                for _ in 0..<200 { fds.append(Self.connect(port)) }
                return fds
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 0...3)))
            task.cancel()
            _ = await task.result
            for fd in await stop.value where fd >= 0 { close(fd) }
        }
    }
}
