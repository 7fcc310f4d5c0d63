#if canImport(Glibc)
import Glibc
#endif

/// One blocking TCP connection to a loopback port (Nagle off), for the load generator's
/// clients: whole writes, and reads of whatever has arrived.
final class LoopbackSocket {
    let fd: Int32
    private var buffer = [UInt8](repeating: 0, count: 1 << 16)

    init(host: String, port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw LoadError("socket: \(String(cString: strerror(errno)))") }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &addr.sin_addr)
        let r = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard r == 0 else {
            close(fd)
            throw LoadError("connect \(host):\(port): \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LoadError("send: \(String(cString: strerror(errno)))")
            }
            sent += n
        }
    }

    /// What has arrived (at least one byte), waiting for it.
    func receive() throws -> ArraySlice<UInt8> {
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw LoadError(n == 0 ? "connection closed by server" : "recv: \(String(cString: strerror(errno)))") }
            return buffer[0..<n]
        }
    }
}
