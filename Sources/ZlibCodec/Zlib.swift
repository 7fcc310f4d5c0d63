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

        var windowBits: Int32 { self == .zlib ? 15 : 15 + 16 }
    }

    public static func compress(_ input: [UInt8], format: Format = .zlib, level: Int32 = 6) throws(ZlibError) -> [UInt8] {
        var stream = z_stream()
        guard CZlib_deflateInit2(&stream, level, Z_DEFLATED, format.windowBits, 8, Z_DEFAULT_STRATEGY) == Z_OK else {
            throw ZlibError(code: .internalError, message: "deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        // The output is left uninitialised beyond what deflate writes, and the input is read
        // where it is (zlib does not write through next_in): a segment of tens of megabytes
        // is neither copied nor zero-filled, so its pages are not touched twice.
        var status: Int32 = Z_OK
        let output = [UInt8](unsafeUninitializedCapacity: bound) { outPtr, written in
            status = input.withUnsafeBufferPointer { inPtr in
                stream.next_in = UnsafeMutablePointer(mutating: inPtr.baseAddress)
                stream.avail_in = uInt(inPtr.count)
                stream.next_out = outPtr.baseAddress
                stream.avail_out = uInt(outPtr.count)
                return deflate(&stream, Z_FINISH)
            }
            written = status == Z_STREAM_END ? Int(stream.total_out) : 0
        }
        guard status == Z_STREAM_END else { throw ZlibError(code: .internalError, message: "deflate failed (\(status))") }
        return output
    }

    /// Inflates a whole stream, refusing to produce more than `limit` bytes, and succeeding
    /// only when the stream ends (a truncated stream is an error, not a short result).
    public static func decompress(_ input: UnsafeRawBufferPointer, format: Format = .zlib, limit: Int) throws(ZlibError) -> [UInt8] {
        var stream = z_stream()
        guard CZlib_inflateInit2(&stream, format.windowBits) == Z_OK else {
            throw ZlibError(code: .internalError, message: "inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: min(max(input.count * 4, 16 << 10), 1 << 20))
        stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
        stream.avail_in = uInt(input.count)
        while true {
            let (status, produced): (Int32, Int) = chunk.withUnsafeMutableBufferPointer { out in
                stream.next_out = out.baseAddress
                stream.avail_out = uInt(out.count)
                let s = inflate(&stream, Z_NO_FLUSH)
                return (s, out.count - Int(stream.avail_out))
            }
            if produced > 0 {
                guard output.count + produced <= limit else {
                    throw ZlibError(code: .outputLimitExceeded, message: "decompressed size exceeds the limit of \(limit) bytes")
                }
                output.append(contentsOf: chunk[0..<produced])
            }
            switch status {
            case Z_STREAM_END:
                if stream.avail_in != 0 && format == .gzip {
                    // Trailing bytes after the member: more gzip members are allowed by RFC 1952,
                    // but a collector does not need them; refuse rather than ignore data.
                    throw ZlibError(code: .corrupt, message: "unexpected data after the end of the gzip stream")
                }
                return output
            case Z_OK:
                continue
            case Z_BUF_ERROR:
                if stream.avail_in == 0 {
                    throw ZlibError(code: .truncated, message: "compressed stream is truncated")
                }
                continue
            case Z_DATA_ERROR:
                throw ZlibError(code: .corrupt, message: "compressed stream is corrupt")
            case Z_MEM_ERROR:
                throw ZlibError(code: .internalError, message: "out of memory while inflating")
            default:
                throw ZlibError(code: .corrupt, message: "inflate failed (\(status))")
            }
        }
    }

    public static func decompress(_ input: [UInt8], format: Format = .zlib, limit: Int) throws(ZlibError) -> [UInt8] {
        do {
            return try input.withUnsafeBytes { try decompress($0, format: format, limit: limit) }
        } catch let e as ZlibError {
            throw e
        } catch {
            throw ZlibError(code: .internalError, message: "\(error)")
        }
    }

    /// CRC-32 (IEEE) as zlib computes it, for segment framing.
    public static func crc32(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBufferPointer { p in
            UInt32(CZlib.crc32(0, p.baseAddress, uInt(p.count)))
        }
    }
}
