#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOHPACK

/// A minimal blocking HTTP/2 client for unary gRPC calls over one connection, one call at
/// a time, for load generation on loopback (RFC 9113 framing, gRPC over HTTP/2 message
/// framing). Request headers are encoded once; each call writes its message as DATA frames
/// within the server's flow-control windows and reads frames until the call's trailers,
/// so the client costs little next to the daemon (grpc-swift's client cost about 1.4 CPU-s
/// per million spans, a fifth of what the daemon spent). Responses' header blocks go
/// through NIOHPACK's decoder, which keeps the server's dynamic table.
public final class LoopbackGRPCClient {
    let socket: LoopbackSocket
    private var decoder = HPACKDecoder(allocator: ByteBufferAllocator())
    private let requestHeaders: [UInt8]
    private var nextStream: UInt32 = 1
    /// What the server lets us send: the connection window and each new stream's window.
    private var connectionWindow = 65_535
    private var initialStreamWindow = 65_535
    private var streamWindow = 0
    private var maxFrame = 16_384
    /// Bytes of DATA received since our windows were last topped up.
    private var unacknowledgedData = 0
    private var input: [UInt8] = []
    private var inputStart = 0
    private var output: [UInt8] = []

    /// What the current call has heard back.
    private struct Answer {
        var grpcStatus: Int?
        var grpcMessage: String?
        var ended = false
    }

    static let ourWindow = 1 << 24

    /// Connects and exchanges SETTINGS. `path` is the method's `/package.Service/Method`.
    public init(port: Int, path: String) throws {
        socket = try LoopbackSocket(host: "127.0.0.1", port: port)
        requestHeaders = Self.literalHeaderBlock([
            (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1:\(port)"),
            ("content-type", "application/grpc"), ("te", "trailers"),
        ])
        output = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)
        // SETTINGS: no push, a large window for what the server sends us; then the same for the connection.
        var settings: [UInt8] = []
        Self.append16(&settings, 0x2); Self.append32(&settings, 0)
        Self.append16(&settings, 0x4); Self.append32(&settings, UInt32(Self.ourWindow))
        frame(type: 0x4, flags: 0, stream: 0, payload: settings)
        frame(type: 0x8, flags: 0, stream: 0, payload: Self.be32(UInt32(Self.ourWindow - 65_535)))
        try flush()
    }

    /// One unary call: returns the grpc-status of its trailers and grpc-message, if any.
    public func call(_ message: [UInt8]) throws -> (status: Int, message: String?) {
        let stream = nextStream
        nextStream += 2
        streamWindow = initialStreamWindow
        frame(type: 0x1, flags: 0x4, stream: stream, payload: requestHeaders) // HEADERS, END_HEADERS
        var prefix: [UInt8] = [0]
        prefix += Self.be32(UInt32(message.count))
        var answer = Answer()
        try message.withUnsafeBufferPointer { body in
            var offset = -prefix.count // the 5-byte gRPC message prefix goes first
            while offset < body.count {
                let remaining = body.count - offset
                let allowed = min(connectionWindow, streamWindow, maxFrame, remaining)
                if allowed <= 0 {
                    try flush()
                    try readFrame(stream, &answer)
                    if answer.ended { throw LoadError("gRPC call ended before its message was sent: status \(answer.grpcStatus ?? -1)") }
                    continue
                }
                let last = allowed == remaining
                frameHeader(length: allowed, type: 0x0, flags: last ? 0x1 : 0, stream: stream)
                var n = allowed
                if offset < 0 {
                    let p = min(-offset, n)
                    output += prefix[(prefix.count + offset)..<(prefix.count + offset + p)]
                    n -= p
                    offset += p
                }
                if n > 0 {
                    output.append(contentsOf: UnsafeBufferPointer(rebasing: body[offset..<(offset + n)]))
                    offset += n
                }
                connectionWindow -= allowed
                streamWindow -= allowed
            }
        }
        try flush()
        while !answer.ended { try readFrame(stream, &answer) }
        guard let status = answer.grpcStatus else { throw LoadError("gRPC call ended without grpc-status") }
        return (status, answer.grpcMessage)
    }

    // MARK: Frames

    private func readFrame(_ stream: UInt32, _ answer: inout Answer) throws {
        while input.count - inputStart < 9 { try fill() }
        let h = inputStart
        let length = Int(input[h]) << 16 | Int(input[h + 1]) << 8 | Int(input[h + 2])
        let type = input[h + 3], flags = input[h + 4]
        let id = (UInt32(input[h + 5]) << 24 | UInt32(input[h + 6]) << 16 | UInt32(input[h + 7]) << 8 | UInt32(input[h + 8])) & 0x7fff_ffff
        while input.count - inputStart < 9 + length { try fill() }
        let start = h + 9, end = start + length
        inputStart = end
        switch type {
        case 0x0: // DATA: the response message; keep the server's windows open.
            unacknowledgedData += length
            if unacknowledgedData > Self.ourWindow / 2 {
                frame(type: 0x8, flags: 0, stream: 0, payload: Self.be32(UInt32(unacknowledgedData)))
                frame(type: 0x8, flags: 0, stream: id, payload: Self.be32(UInt32(unacknowledgedData)))
                unacknowledgedData = 0
            }
            if id == stream && flags & 0x1 != 0 { answer.ended = true }
        case 0x1: // HEADERS (response headers or trailers); no CONTINUATION from a server this small.
            guard flags & 0x4 != 0 else { throw LoadError("header block split over CONTINUATION frames") }
            var block = input[start..<end]
            if flags & 0x8 != 0 { // PADDED
                let pad = Int(block.first ?? 0)
                block = block.dropFirst().dropLast(pad)
            }
            if flags & 0x20 != 0 { block = block.dropFirst(5) } // PRIORITY
            var buffer = ByteBuffer(bytes: block)
            let headers = try decoder.decodeHeaders(from: &buffer)
            if id == stream {
                if let s = headers.first(name: "grpc-status") { answer.grpcStatus = Int(s) }
                if let m = headers.first(name: "grpc-message") { answer.grpcMessage = m }
                if flags & 0x1 != 0 { answer.ended = true }
            }
        case 0x3: // RST_STREAM
            if id == stream { throw LoadError("stream reset by the server (error \(Self.read32(input, start)))") }
        case 0x4: // SETTINGS
            guard flags & 0x1 == 0 else { break } // our SETTINGS acknowledged
            var i = start
            while i + 6 <= end {
                let key = Int(input[i]) << 8 | Int(input[i + 1]), value = Int(Self.read32(input, i + 2))
                if key == 0x4 { // INITIAL_WINDOW_SIZE: applies to open streams too
                    streamWindow += value - initialStreamWindow
                    initialStreamWindow = value
                } else if key == 0x5 {
                    maxFrame = value
                }
                i += 6
            }
            frame(type: 0x4, flags: 0x1, stream: 0, payload: [])
            try flush()
        case 0x6: // PING
            if flags & 0x1 == 0 {
                frame(type: 0x6, flags: 0x1, stream: 0, payload: Array(input[start..<end]))
                try flush()
            }
        case 0x7: // GOAWAY
            throw LoadError("the server closed the connection (GOAWAY, error \(length >= 8 ? Self.read32(input, start + 4) : 0))")
        case 0x8: // WINDOW_UPDATE
            let increment = Int(Self.read32(input, start) & 0x7fff_ffff)
            if id == 0 { connectionWindow += increment } else if id == stream { streamWindow += increment }
        default:
            break
        }
        if inputStart > 1 << 16 && inputStart * 2 > input.count {
            input.removeFirst(inputStart)
            inputStart = 0
        }
    }

    private func fill() throws {
        let got = try socket.receive()
        input.append(contentsOf: got)
    }

    private func flush() throws {
        guard !output.isEmpty else { return }
        try socket.send(output)
        output.removeAll(keepingCapacity: true)
    }

    private func frameHeader(length: Int, type: UInt8, flags: UInt8, stream: UInt32) {
        output.append(UInt8(truncatingIfNeeded: length >> 16))
        output.append(UInt8(truncatingIfNeeded: length >> 8))
        output.append(UInt8(truncatingIfNeeded: length))
        output.append(type)
        output.append(flags)
        output += Self.be32(stream)
    }

    private func frame(type: UInt8, flags: UInt8, stream: UInt32, payload: [UInt8]) {
        frameHeader(length: payload.count, type: type, flags: flags, stream: stream)
        output += payload
    }

    // MARK: Encoding

    /// Header fields as HPACK literals without indexing, names and values as plain octets
    /// (RFC 7541 §6.2.2); every length here is under 127, a one-byte prefix.
    static func literalHeaderBlock(_ fields: [(String, String)]) -> [UInt8] {
        var out: [UInt8] = []
        for (name, value) in fields {
            precondition(name.utf8.count < 127 && value.utf8.count < 127, "header too long for the one-byte length form")
            out.append(0x00)
            out.append(UInt8(name.utf8.count))
            out += Array(name.utf8)
            out.append(UInt8(value.utf8.count))
            out += Array(value.utf8)
        }
        return out
    }

    static func be32(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }
    static func append16(_ out: inout [UInt8], _ v: UInt16) { out += [UInt8(v >> 8), UInt8(v & 0xff)] }
    static func append32(_ out: inout [UInt8], _ v: UInt32) { out += be32(v) }
    static func read32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
    }
}
