#if canImport(Glibc)
import Glibc
#endif

/// A minimal blocking HTTP/1.1 client over one keep-alive TCP connection, for load
/// generation on loopback: it writes pre-built requests and reads only the status line,
/// headers and Content-Length body, so the client costs little next to the daemon.
public final class LoopbackHTTPClient {
    let socket: LoopbackSocket
    var pending: [UInt8] = []

    public init(host: String, port: Int) throws {
        socket = try LoopbackSocket(host: host, port: port)
    }

    /// A complete POST request with the given body.
    public static func postRequest(path: String, contentType: String, body: [UInt8], extraHeaders: String = "") -> [UInt8] {
        Array("POST \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: \(contentType)\r\n\(extraHeaders)Content-Length: \(body.count)\r\n\r\n".utf8) + body
    }

    public static func getRequest(path: String) -> [UInt8] {
        Array("GET \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
    }

    /// Sends one request and returns (status, body).
    public func roundTrip(_ request: [UInt8]) throws -> (status: Int, body: [UInt8]) {
        try send(request)
        return try readResponse()
    }

    /// Writes `bytes` as they are: a request, part of one, or several.
    public func send(_ bytes: [UInt8]) throws {
        try socket.send(bytes)
    }

    /// Bytes received and not yet read as part of a response.
    public var buffered: Int { pending.count }

    /// Reads the next response: (status, body).
    public func readResponse() throws -> (status: Int, body: [UInt8]) {
        // Headers.
        var headerEnd: Int?
        while headerEnd == nil {
            headerEnd = Self.find(pending)
            if headerEnd == nil { try fill() }
        }
        let head = String(decoding: pending[0..<headerEnd!], as: UTF8.self)
        pending.removeFirst(headerEnd! + 4)
        let lines = head.split(separator: "\r\n")
        guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
            throw LoadError("bad status line")
        }
        var length = 0
        for l in lines.dropFirst() where l.lowercased().hasPrefix("content-length:") {
            length = Int(l.dropFirst("content-length:".count).trimmingCharacters()) ?? 0
        }
        while pending.count < length { try fill() }
        let body = Array(pending[0..<length])
        pending.removeFirst(length)
        return (status, body)
    }

    func fill() throws {
        pending.append(contentsOf: try socket.receive())
    }

    static func find(_ b: [UInt8]) -> Int? {
        guard b.count >= 4 else { return nil }
        for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
        return nil
    }
}

public struct LoadError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

extension Substring {
    func trimmingCharacters() -> String {
        var s = self
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
