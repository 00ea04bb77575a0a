import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A raw TCP client, for the clients URLSession will not be: one that trickles its headers or body, or says nothing.
public final class RawClient {
    public let fd: Int32

    public init(port: Int) {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    deinit { close(fd) }

    /// Sends `text`; false once the server has closed the connection.
    @discardableResult
    public func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Reads what is there within `wait`; nil once the server closed the connection (EOF or reset).
    public func read(wait: Duration) -> String? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, Int32(wait.components.seconds * 1000 + wait.components.attoseconds / 1_000_000_000_000_000)) > 0 else { return "" }
        var buffer = [UInt8](repeating: 0, count: 65536)
        let n = recv(fd, &buffer, buffer.count, 0)
        return n <= 0 ? nil : String(decoding: buffer[0..<n], as: UTF8.self)
    }

    /// Keeps sending `trickle` every 200 ms (reading whatever comes) until the server closes the connection or
    /// `limit` passes; returns how long the connection lasted, nil if it was still open at the limit.
    public func trickleUntilClosed(_ trickle: String?, limit: Duration) -> Duration? {
        let start = ContinuousClock.now
        while ContinuousClock.now - start < limit {
            if let trickle, !send(trickle) { return ContinuousClock.now - start }
            if read(wait: .milliseconds(200)) == nil { return ContinuousClock.now - start }
        }
        return nil
    }
}

