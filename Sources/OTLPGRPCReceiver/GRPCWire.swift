import NIOCore
import NIOHPACK
import OTLPDecoding

/// gRPC over HTTP/2 as the OTLP/gRPC receiver needs it: unary calls, the request's
/// length-prefixed message, the response's headers, message and trailers
/// (grpc/grpc doc/PROTOCOL-HTTP2.md).

/// A call's outcome other than OK: the code, a message for people, and binary metadata
/// for the trailers (keys ending in `-bin`, values sent base64).
public struct GRPCStatus: Error, Sendable, Equatable {
    public var code: Int32
    public var message: String
    public var binaryMetadata: [(key: String, value: [UInt8])]

    public init(code: Int32, message: String, binaryMetadata: [(key: String, value: [UInt8])] = []) {
        self.code = code
        self.message = message
        self.binaryMetadata = binaryMetadata
    }

    public static func == (a: GRPCStatus, b: GRPCStatus) -> Bool {
        a.code == b.code && a.message == b.message && a.binaryMetadata.elementsEqual(b.binaryMetadata) { $0.key == $1.key && $0.value == $1.value }
    }
}

/// The message compressions a call may name in `grpc-encoding`.
public enum GRPCCompression: Sendable, Equatable {
    case identity, gzip, deflate

    init?(header: String?) {
        switch header?.lowercased() {
        case nil, "identity": self = .identity
        case "gzip": self = .gzip
        case "deflate": self = .deflate
        default: return nil
        }
    }

    /// What the server answers in `grpc-accept-encoding`.
    static let accepted = "identity,deflate,gzip"
}

/// What a call's request headers ask for, or the status that refuses it.
struct GRPCRequestHead: Equatable {
    var path: String
    var compression: GRPCCompression

    /// Refusals answered before any message is read. `httpStatus` is 200 for gRPC-level
    /// errors; a request that is not gRPC at all gets 415 (PROTOCOL-HTTP2.md).
    struct Refusal: Error, Equatable {
        var httpStatus: Int
        var status: GRPCStatus
        var acceptEncoding = false
    }

    static func parse(_ headers: HPACKHeaders, servedPaths: Set<String>) -> Result<GRPCRequestHead, Refusal> {
        guard headers.first(name: ":method") == "POST" else {
            let method = headers.first(name: ":method") ?? "none"
            return .failure(Refusal(httpStatus: 405, status: GRPCStatus(code: RPCCode.unimplemented, message: "HTTP method \(method): gRPC calls are POST")))
        }
        let contentType = headers.first(name: "content-type") ?? ""
        guard contentType.lowercased().hasPrefix("application/grpc") else {
            return .failure(Refusal(httpStatus: 415, status: GRPCStatus(
                code: RPCCode.internal, message: "content-type '\(contentType)' is not gRPC; this listener takes application/grpc")))
        }
        let path = headers.first(name: ":path") ?? ""
        guard servedPaths.contains(path) else {
            let served = servedPaths.sorted().joined(separator: ", ")
            return .failure(Refusal(httpStatus: 200, status: GRPCStatus(
                code: RPCCode.unimplemented, message: "method '\(path)' is not implemented here; this listener serves \(served)")))
        }
        let encoding = headers.first(name: "grpc-encoding")
        guard let compression = GRPCCompression(header: encoding) else {
            return .failure(Refusal(httpStatus: 200, status: GRPCStatus(
                code: RPCCode.unimplemented, message: "grpc-encoding '\(encoding ?? "")' is not supported; use one of \(GRPCCompression.accepted)"),
                acceptEncoding: true))
        }
        return .success(GRPCRequestHead(path: path, compression: compression))
    }
}

/// Collects a unary call's DATA into its one length-prefixed message, refusing as soon
/// as the prefix shows a message over the limit (before its bytes arrive), a second
/// message, or a compressed flag without a compression.
struct GRPCRequestMessage {
    static let prefixBytes = 5
    let maxMessageBytes: Int
    let compression: GRPCCompression
    /// The prefix and what has arrived of the message.
    private(set) var bytes = ByteBuffer()
    private var declaredLength: Int?
    private(set) var compressed = false

    init(maxMessageBytes: Int, compression: GRPCCompression) {
        self.maxMessageBytes = maxMessageBytes
        self.compression = compression
    }

    /// Appends one DATA frame's bytes. `reserveLimit` caps what is allocated up front for
    /// the declared length (a sender cannot reserve memory it does not send).
    mutating func append(_ data: inout ByteBuffer, reserveLimit: Int) throws(GRPCStatus) {
        if bytes.readableBytes == 0 && bytes.capacity == 0 {
            bytes = data  // the common case: the whole message in one frame, kept without a copy
        } else {
            bytes.writeBuffer(&data)
        }
        if declaredLength == nil, bytes.readableBytes >= Self.prefixBytes {
            let flag = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self)!
            let length = Int(bytes.getInteger(at: bytes.readerIndex + 1, as: UInt32.self)!)
            guard flag == 0 || flag == 1 else {
                throw GRPCStatus(code: RPCCode.internal, message: "message prefix has flag \(flag); only 0 (plain) and 1 (compressed) exist")
            }
            compressed = flag == 1
            if compressed && compression == .identity {
                throw GRPCStatus(code: RPCCode.internal, message: "message is marked compressed but the call named no grpc-encoding")
            }
            guard length <= maxMessageBytes else {
                throw GRPCStatus(code: RPCCode.resourceExhausted, message: compressed
                    ? "request message is \(length) bytes compressed; the limit is \(maxMessageBytes) after decompression"
                    : "request message is \(length) bytes; the limit is \(maxMessageBytes)")
            }
            declaredLength = length
            let whole = Self.prefixBytes + length
            let wanted = min(whole, reserveLimit) - bytes.readableBytes
            if wanted > bytes.writableBytes { bytes.reserveCapacity(minimumWritableBytes: wanted) }
        }
        if let declaredLength, bytes.readableBytes > Self.prefixBytes + declaredLength {
            throw GRPCStatus(code: RPCCode.internal, message: "Export is unary: the call carried more than one request message")
        }
    }

    /// The message once the stream has ended, or why there is none.
    func finish() throws(GRPCStatus) -> ByteBuffer {
        guard bytes.readableBytes > 0 else {
            throw GRPCStatus(code: RPCCode.invalidArgument, message: "the call carried no request message")
        }
        guard let declaredLength, bytes.readableBytes == Self.prefixBytes + declaredLength else {
            let expected = declaredLength.map { " of \($0)" } ?? ""
            throw GRPCStatus(code: RPCCode.internal, message: "request message truncated: the stream ended after \(max(0, bytes.readableBytes - Self.prefixBytes)) bytes\(expected)")
        }
        return bytes.getSlice(at: bytes.readerIndex + Self.prefixBytes, length: declaredLength)!
    }
}

enum GRPCHeaders {
    static let contentType = "application/grpc"

    /// The response's first header block (when a message follows).
    static func response() -> HPACKHeaders {
        [":status": "200", "content-type": contentType, "grpc-accept-encoding": GRPCCompression.accepted]
    }

    static func trailers(_ status: GRPCStatus) -> HPACKHeaders {
        var h: HPACKHeaders = ["grpc-status": String(status.code)]
        addDetails(status, to: &h)
        return h
    }

    /// A response with no message: status and trailers in one header block.
    static func trailersOnly(_ status: GRPCStatus, httpStatus: Int = 200, acceptEncoding: Bool = false) -> HPACKHeaders {
        var h: HPACKHeaders = [":status": String(httpStatus), "content-type": contentType, "grpc-status": String(status.code)]
        if acceptEncoding { h.add(name: "grpc-accept-encoding", value: GRPCCompression.accepted) }
        addDetails(status, to: &h)
        return h
    }

    private static func addDetails(_ status: GRPCStatus, to h: inout HPACKHeaders) {
        if !status.message.isEmpty { h.add(name: "grpc-message", value: percentEncoded(status.message)) }
        for (key, value) in status.binaryMetadata { h.add(name: key, value: base64(value)) }
    }

    /// grpc-message: UTF-8, with bytes outside printable ASCII and '%' as %XX.
    static func percentEncoded(_ message: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(message.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for b in message.utf8 {
            if b >= 0x20 && b <= 0x7E && b != UInt8(ascii: "%") {
                out.append(b)
            } else {
                out.append(UInt8(ascii: "%")); out.append(hex[Int(b >> 4)]); out.append(hex[Int(b & 0xF)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Standard base64 with padding, as binary metadata values are sent.
    static func base64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let n = min(3, bytes.count - i)
            var v = UInt32(bytes[i]) << 16
            if n > 1 { v |= UInt32(bytes[i + 1]) << 8 }
            if n > 2 { v |= UInt32(bytes[i + 2]) }
            for j in 0..<4 {
                out.append(j <= n ? alphabet[Int((v >> UInt32(18 - 6 * j)) & 0x3F)] : UInt8(ascii: "="))
            }
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// A response message with its prefix (never compressed).
    static func message(_ bytes: [UInt8], allocator: ByteBufferAllocator) -> ByteBuffer {
        var b = allocator.buffer(capacity: GRPCRequestMessage.prefixBytes + bytes.count)
        b.writeInteger(UInt8(0))
        b.writeInteger(UInt32(bytes.count))
        b.writeBytes(bytes)
        return b
    }
}
