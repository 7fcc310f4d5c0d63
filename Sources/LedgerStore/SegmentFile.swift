#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ProtoWire
import DurableFiles
import ZlibCodec

/// Kinds of segment file in the data directory.
public enum SegmentKind: UInt8, Sendable, CaseIterable {
    case rollup = 1
    case traceIndex = 2
    case traceDetail = 3

    public var directory: String {
        switch self {
        case .rollup: "rollups"
        case .traceIndex: "index"
        case .traceDetail: "traces"
        }
    }

    public var prefix: String {
        switch self {
        case .rollup: "rollup"
        case .traceIndex: "index"
        case .traceDetail: "traces"
        }
    }
}

public struct StoreError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var message: String
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    init(_ e: FileError) {
        self.init(path: e.path, message: e.description)
    }

    public var description: String { "\(path): \(message)" }

    /// Runs a segment decoder: whatever it throws comes out as a store error naming the file.
    static func decoding<T>(_ path: String, _ body: () throws -> T) throws(StoreError) -> T {
        do {
            return try body()
        } catch let e as ProtoDecodeError {
            throw StoreError(path: path, message: e.message)
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError(path: path, message: "\(error)")
        }
    }
}

/// Reads a whole file, as a store error.
func readFile(_ path: String) throws(StoreError) -> [UInt8] {
    do { return try FileIO.readAll(path) } catch { throw StoreError(error) }
}

/// The frame around every segment file: a 24-byte header — magic "SLSG", format version,
/// kind, two reserved bytes, uncompressed length (u64 LE), compressed length (u32 LE),
/// CRC-32 of the compressed payload (u32 LE) — then the zlib-compressed protobuf message.
public enum SegmentFrame {
    static let magic: [UInt8] = Array("SLSG".utf8)
    static let version: UInt8 = 1
    /// Run-tree files with a block table after the stream (`BlockedTrees`).
    static let blockedVersion: UInt8 = 2
    public static let headerSize = 24
    /// Largest payload a segment may inflate to (guards against corrupt lengths).
    public static let maxUncompressed = 1 << 30

    /// zlib level per kind: run trees and the index are most of the bytes written at
    /// ingest, and level 2 deflates them 2.5× faster than the default for about 10% more
    /// bytes; rollups are small and read on every start, so they get the default. Run
    /// trees' compressed part (their shapes, about 35 bytes a span, then stored parts
    /// kept as they are) gets level 1: 17% less deflate time than level 2 for 3% more
    /// bytes on the benchmark's trees (7.01 against 6.82 bytes a span). The index stays
    /// at 2: it counts towards the rollups-plus-index budget of bytes per span.
    static func compressionLevel(_ kind: SegmentKind) -> Int32 {
        switch kind {
        case .rollup: 6
        case .traceIndex: 2
        case .traceDetail: 1
        }
    }

    public static func encode(kind: SegmentKind, message: [UInt8]) throws -> [UInt8] {
        try encode(kind: kind) { try $0.write(message) }
    }

    /// A segment whose message `body` writes in pieces, compressed as it goes: the
    /// message is never held whole.
    public static func encode(kind: SegmentKind, writing body: (Deflater) throws -> Void) throws -> [UInt8] {
        let deflater = try Deflater(level: compressionLevel(kind))
        try body(deflater)
        let payload = try deflater.finish()
        var out = header(kind: kind, version: version, rawLength: deflater.totalIn, payload: payload)
        out.reserveCapacity(headerSize + payload.count)
        out += payload
        return out
    }

    /// The 24-byte header of a segment whose compressed stream is `payload`.
    static func header(kind: SegmentKind, version: UInt8, rawLength: Int, payload: [UInt8]) -> [UInt8] {
        header(kind: kind, version: version, rawLength: rawLength, payloadLength: payload.count, payloadCRC: Zlib.crc32(payload))
    }

    static func header(kind: SegmentKind, version: UInt8, rawLength: Int, payloadLength: Int, payloadCRC: UInt32) -> [UInt8] {
        var out: [UInt8] = []
        out += magic
        out += [version, kind.rawValue, 0, 0]
        out += le(UInt64(rawLength), 8)
        out += le(UInt64(payloadLength), 4)
        out += le(UInt64(payloadCRC), 4)
        return out
    }

    /// The payload's CRC-32 as the header holds it (0 for bytes shorter than a header).
    static func headerCRC(_ segment: [UInt8]) -> UInt32 {
        segment.count >= headerSize ? UInt32(readLE(segment, 20, 4)) : 0
    }

    /// What a segment's header says, checked: magic, a version this build reads (blocked
    /// only for run trees), the kind expected.
    struct Header {
        var version: UInt8
        var rawLength: UInt64
        var compressedLength: Int
        var crc: UInt32
        var blocked: Bool { version == SegmentFrame.blockedVersion }

        /// From the file's first `headerSize` bytes (or more).
        init(_ bytes: [UInt8], expecting kind: SegmentKind, path: String) throws(StoreError) {
            guard bytes.count >= headerSize, Array(bytes[0..<4]) == magic else { throw StoreError(path: path, message: "not a SpanLedger segment (bad magic)") }
            guard bytes[4] == SegmentFrame.version || (bytes[4] == blockedVersion && kind == .traceDetail) else {
                throw StoreError(path: path, message: "unsupported segment version \(bytes[4])")
            }
            guard bytes[5] == kind.rawValue else { throw StoreError(path: path, message: "segment kind \(bytes[5]), expected \(kind.rawValue)") }
            (version, rawLength, compressedLength, crc) = (bytes[4], readLE(bytes, 8, 8), Int(readLE(bytes, 16, 4)), headerCRC(bytes))
        }
    }

    public static func decode(_ bytes: [UInt8], expecting kind: SegmentKind, path: String) throws(StoreError) -> [UInt8] {
        let header = try Header(bytes, expecting: kind, path: path)
        let (blocked, rawLength, compressedLength, crc) = (header.blocked, header.rawLength, header.compressedLength, header.crc)
        // A blocked run-tree file has its block table and footer after the stream.
        var trailer = 0
        if blocked {
            guard bytes.count >= headerSize + BlockedTrees.footerSize, Array(bytes[(bytes.count - 4)...]) == BlockedTrees.footerMagic else {
                throw StoreError(path: path, message: "blocked run-tree file without its footer (torn write?)")
            }
            trailer = Int(readLE(bytes, bytes.count - BlockedTrees.footerSize, 4)) + BlockedTrees.footerSize
        }
        guard bytes.count - headerSize - trailer == compressedLength else {
            throw StoreError(path: path, message: "payload is \(bytes.count - headerSize - trailer) bytes, header says \(compressedLength) (torn write?)")
        }
        let payload = Array(bytes[headerSize..<(headerSize + compressedLength)])
        guard Zlib.crc32(payload) == crc else { throw StoreError(path: path, message: "CRC mismatch: the segment is corrupt") }
        guard rawLength <= UInt64(maxUncompressed) else { throw StoreError(path: path, message: "uncompressed length \(rawLength) too large") }
        do {
            let message = try Zlib.decompress(payload, limit: Int(rawLength), expectedSize: Int(rawLength))
            guard message.count == Int(rawLength) else { throw StoreError(path: path, message: "uncompressed length mismatch") }
            return message
        } catch let e as ZlibError {
            throw StoreError(path: path, message: "payload does not inflate: \(e.message)")
        } catch let e as StoreError {
            throw e
        } catch {
            throw StoreError(path: path, message: "\(error)")
        }
    }

    static func le(_ v: UInt64, _ n: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: v >> (8 * $0)) } }
    static func readLE(_ b: [UInt8], _ at: Int, _ n: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(b[at + i]) << (8 * i) }
        return v
    }
}
