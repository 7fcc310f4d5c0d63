internal import CZlib

/// Errors of the zlib wrapper (typed throws in the C-wrapping layer).
public struct ZlibError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Value: Hashable, Sendable { case outputLimitExceeded, corrupt, truncated, internalError }
        let value: Value
        public static let outputLimitExceeded = Code(value: .outputLimitExceeded)
        public static let corrupt = Code(value: .corrupt)
        public static let truncated = Code(value: .truncated)
        public static let internalError = Code(value: .internalError)
        public var description: String { "\(value)" }
    }

    public var code: Code
    public var message: String
    public var description: String { message }
}

/// zlib compression for segment files and gzip request bodies. Each call owns its
/// z_stream for the duration of the call and always ends it.
public enum Zlib {
    public enum Format: Sendable {
        /// RFC 1950 zlib stream (segment files).
        case zlib
        /// RFC 1952 gzip member (Content-Encoding: gzip).
        case gzip
        /// A piece of a raw deflate stream (RFC 1951: no header, no checksum) that starts
        /// and ends at full-flush points (`Deflater.fullFlush`): one block of a blocked
        /// run-tree file. It ends where its input ends, without a stream end; the caller
        /// checks its own CRC of the piece.
        case raw

        var windowBits: Int32 {
            switch self {
            case .zlib: 15
            case .gzip: 15 + 16
            case .raw: -15
            }
        }
    }

    public static func compress(_ input: [UInt8], format: Format = .zlib, level: Int32 = 6) throws(ZlibError) -> [UInt8] {
        let deflater = try Deflater(format: format, level: level)
        try deflater.write(input)
        return try deflater.finish()
    }

    /// Inflates a whole stream, refusing to produce more than `limit` bytes, and succeeding
    /// only when the stream ends (a truncated stream is an error, not a short result); a
    /// `.raw` piece succeeds once its input is used up with nothing held back.
    ///
    /// The output is first inflated straight into an array of the size the stream declares
    /// (gzip's trailer, ISIZE, or `expectedSize`), so a request body is written once
    /// rather than into a zero-filled scratch buffer and then copied. A declared size is
    /// only a first allocation: it is capped by the limit and by a multiple of the input,
    /// and a stream that inflates to more or less than it still inflates exactly.
    public static func decompress(_ input: UnsafeRawBufferPointer, format: Format = .zlib, limit: Int,
                                  expectedSize: Int? = nil) throws(ZlibError) -> [UInt8] {
        var stream = z_stream()
        guard CZlib_inflateInit2(&stream, format.windowBits) == Z_OK else {
            throw ZlibError(code: .internalError, message: "inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
        stream.avail_in = uInt(input.count)
        // Inflates as much as fits in `out`: the status and the bytes produced.
        func inflate(into out: UnsafeMutableBufferPointer<UInt8>) -> (Int32, Int) {
            stream.next_out = out.baseAddress
            stream.avail_out = uInt(out.count)
            let s = CZlib.inflate(&stream, Z_NO_FLUSH)
            return (s, out.count - Int(stream.avail_out))
        }
        var output: [UInt8] = []
        var status = Z_OK
        if let declared = expectedSize ?? declaredSize(input, format: format), declared > 0 {
            output = [UInt8](unsafeUninitializedCapacity: min(declared, limit, input.count * maxFirstRatio + (64 << 10))) { out, count in
                (status, count) = inflate(into: out)
            }
        }
        var chunk: [UInt8] = []
        while true {
            switch status {
            case Z_STREAM_END:
                if stream.avail_in != 0 && format == .gzip {
                    // Trailing bytes after the member: more gzip members are allowed by RFC 1952,
                    // but a collector does not need them; refuse rather than ignore data.
                    throw ZlibError(code: .corrupt, message: "unexpected data after the end of the gzip stream")
                }
                return output
            case Z_OK:
                // A raw piece is done when inflate used up its input and left output room.
                if format == .raw && stream.avail_in == 0 && stream.avail_out > 0 { return output }
            case Z_BUF_ERROR:
                if stream.avail_in == 0 {
                    if format == .raw { return output }
                    throw ZlibError(code: .truncated, message: "compressed stream is truncated")
                }
            case Z_DATA_ERROR:
                throw ZlibError(code: .corrupt, message: "compressed stream is corrupt")
            case Z_MEM_ERROR:
                throw ZlibError(code: .internalError, message: "out of memory while inflating")
            default:
                throw ZlibError(code: .corrupt, message: "inflate failed (\(status))")
            }
            // More than declared (or nothing declared): the rest through a scratch chunk.
            if chunk.isEmpty { chunk = [UInt8](repeating: 0, count: min(max(input.count * 4, 16 << 10), 1 << 20)) }
            let produced: Int
            (status, produced) = chunk.withUnsafeMutableBufferPointer { inflate(into: $0) }
            if produced > 0 {
                guard output.count + produced <= limit else {
                    throw ZlibError(code: .outputLimitExceeded, message: "decompressed size exceeds the limit of \(limit) bytes")
                }
                output.append(contentsOf: chunk[0..<produced])
            }
        }
    }

    /// A first allocation is at most this many times the input (plus 64 KB): a small body
    /// declaring a huge size does not get a huge buffer. Real OTLP bodies inflate 3-10×.
    static let maxFirstRatio = 64

    /// The uncompressed size a gzip member declares in its trailer (ISIZE: the size modulo
    /// 2^32, little-endian, the last four bytes).
    static func declaredSize(_ input: UnsafeRawBufferPointer, format: Format) -> Int? {
        guard format == .gzip, input.count >= 18 else { return nil }
        let n = input.count
        return Int(input[n - 4]) | Int(input[n - 3]) << 8 | Int(input[n - 2]) << 16 | Int(input[n - 1]) << 24
    }

    public static func decompress(_ input: [UInt8], format: Format = .zlib, limit: Int, expectedSize: Int? = nil) throws(ZlibError) -> [UInt8] {
        do {
            return try input.withUnsafeBytes { try decompress($0, format: format, limit: limit, expectedSize: expectedSize) }
        } catch let e as ZlibError {
            throw e
        } catch {
            throw ZlibError(code: .internalError, message: "\(error)")
        }
    }

    /// CRC-32 (IEEE) as zlib computes it, for segment framing.
    public static func crc32(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        UInt32(CZlib.crc32(0, bytes.bindMemory(to: Bytef.self).baseAddress, uInt(bytes.count)))
    }

    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { crc32($0) }
    }

    /// The CRC-32 of two pieces one after the other, from each piece's CRC and the second's
    /// length (no pass over the bytes again).
    public static func crc32Combine(_ first: UInt32, _ second: UInt32, secondLength: Int) -> UInt32 {
        UInt32(CZlib.crc32_combine(uLong(first), uLong(second), .init(secondLength)))
    }
}

/// One deflate stream written in pieces: a segment is compressed straight from the
/// records it holds instead of being joined into one buffer first (at full ingest a
/// flush's run trees are tens of megabytes). Small pieces are gathered in a staging
/// buffer; a piece at least as large is deflated where it is, unread by anything else.
public final class Deflater {
    /// zlib keeps a pointer back to its z_stream: it lives at one address until `deinit`.
    private let stream: UnsafeMutablePointer<z_stream>
    private var staging: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 64 << 10)
    private var output: [UInt8] = []
    private var finished = false
    /// Bytes written so far (the uncompressed length).
    public private(set) var totalIn = 0
    static let stagingSize = 128 << 10
    private let level: Int32
    /// False while writes are kept as they are (level 0, stored blocks).
    private var compressing = true

    public init(format: Zlib.Format = .zlib, level: Int32 = 6) throws(ZlibError) {
        self.level = level
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        guard CZlib_deflateInit2(stream, level, Z_DEFLATED, format.windowBits, 8, Z_DEFAULT_STRATEGY) == Z_OK else {
            stream.deallocate()
            throw ZlibError(code: .internalError, message: "deflateInit2 failed")
        }
        staging.reserveCapacity(Self.stagingSize)
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    public func write(_ bytes: UnsafeRawBufferPointer) throws(ZlibError) {
        precondition(!finished, "write after finish")
        totalIn += bytes.count
        if staging.count + bytes.count <= Self.stagingSize {
            staging.append(contentsOf: bytes)
            return
        }
        try drainStaging()
        if bytes.count >= Self.stagingSize {
            try run(bytes, flush: Z_NO_FLUSH)
        } else {
            staging.append(contentsOf: bytes)
        }
    }

    public func write(_ bytes: [UInt8]) throws(ZlibError) {
        let status = bytes.withUnsafeBytes { raw in Result { () throws(ZlibError) in try write(raw) } }
        try status.get()
    }

    /// Writes `bytes` compressed at the stream's level or, with `compressing` false, kept
    /// as they are in stored blocks: for bytes that do not compress (random IDs,
    /// nanosecond times), where deflate spends about 25 ns a byte to find nothing. A
    /// switch ends the current block, so callers write runs of each kind, not
    /// alternating pieces.
    public func write(_ bytes: UnsafeRawBufferPointer, compressing: Bool) throws(ZlibError) {
        if compressing != self.compressing {
            try drainStaging()
            try setLevel(compressing ? level : 0)
            self.compressing = compressing
        }
        try write(bytes)
    }

    /// deflateParams: what was written so far is compressed at the old level first
    /// (Z_BUF_ERROR: that needed more output room, so again with an empty chunk).
    private func setLevel(_ newLevel: Int32) throws(ZlibError) {
        while true {
            let (status, produced): (Int32, Int) = chunk.withUnsafeMutableBufferPointer { out in
                stream.pointee.next_out = out.baseAddress
                stream.pointee.avail_out = uInt(out.count)
                let s = deflateParams(stream, newLevel, Z_DEFAULT_STRATEGY)
                return (s, out.count - Int(stream.pointee.avail_out))
            }
            if produced > 0 { output.append(contentsOf: chunk[0..<produced]) }
            if status == Z_OK { return }
            guard status == Z_BUF_ERROR, produced > 0 else { throw ZlibError(code: .internalError, message: "deflateParams failed (\(status))") }
        }
    }

    /// Flushes everything written so far and resets the compressor's history (Z_FULL_FLUSH):
    /// inflation can start at the returned offset (compressed bytes so far) with a raw
    /// inflater (`Zlib.decompress` with `.raw`), so a reader can inflate one block of a stream
    /// without the blocks before it.
    public func fullFlush() throws(ZlibError) -> Int {
        try drainStaging()
        try run(UnsafeRawBufferPointer(start: nil, count: 0), flush: Z_FULL_FLUSH)
        return output.count
    }

    /// Room for `additional` more compressed bytes, when the caller can tell: a flush's
    /// run trees (tens of MB) otherwise grew the output by doubling, each step a copy
    /// into freshly faulted pages. At least doubles when it grows, so repeated calls stay
    /// linear.
    public func reserveOutput(_ additional: Int) {
        let needed = output.count + additional
        if output.capacity < needed { output.reserveCapacity(max(needed, output.capacity * 2)) }
    }

    /// Ends the stream and returns it; the deflater takes no more input.
    public func finish() throws(ZlibError) -> [UInt8] {
        try drainStaging()
        try run(UnsafeRawBufferPointer(start: nil, count: 0), flush: Z_FINISH)
        finished = true
        return output
    }

    private func drainStaging() throws(ZlibError) {
        guard !staging.isEmpty else { return }
        let status = staging.withUnsafeBytes { raw in Result { () throws(ZlibError) in try run(raw, flush: Z_NO_FLUSH) } }
        try status.get()
        staging.removeAll(keepingCapacity: true)
    }

    /// Deflates `input` completely (with Z_FINISH, to the end of the stream).
    private func run(_ input: UnsafeRawBufferPointer, flush: Int32) throws(ZlibError) {
        stream.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        while true {
            let (status, produced): (Int32, Int) = chunk.withUnsafeMutableBufferPointer { out in
                stream.pointee.next_out = out.baseAddress
                stream.pointee.avail_out = uInt(out.count)
                let s = deflate(stream, flush)
                return (s, out.count - Int(stream.pointee.avail_out))
            }
            if produced > 0 { output.append(contentsOf: chunk[0..<produced]) }
            switch status {
            case Z_STREAM_END:
                return
            case Z_OK, Z_BUF_ERROR:
                // More to do while deflate filled the whole chunk; without Z_FINISH, done
                // once it consumed the input and left room.
                if flush != Z_FINISH && stream.pointee.avail_in == 0 && stream.pointee.avail_out > 0 { return }
                if status == Z_BUF_ERROR && produced == 0 { throw ZlibError(code: .internalError, message: "deflate made no progress") }
            default:
                throw ZlibError(code: .internalError, message: "deflate failed (\(status))")
            }
        }
    }
}
