#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
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
    public var description: String { "\(path): \(message)" }
}

/// The frame around every segment file: a 24-byte header — magic "SLSG", format version,
/// kind, two reserved bytes, uncompressed length (u64 LE), compressed length (u32 LE),
/// CRC-32 of the compressed payload (u32 LE) — then the zlib-compressed protobuf message.
public enum SegmentFrame {
    static let magic: [UInt8] = Array("SLSG".utf8)
    static let version: UInt8 = 1
    public static let headerSize = 24
    /// Largest payload a segment may inflate to (guards against corrupt lengths).
    public static let maxUncompressed = 1 << 30

    public static func encode(kind: SegmentKind, message: [UInt8]) throws -> [UInt8] {
        let payload = try Zlib.compress(message)
        var out = magic + [version, kind.rawValue, 0, 0]
        out += le(UInt64(message.count), 8)
        out += le(UInt64(payload.count), 4)
        out += le(UInt64(Zlib.crc32(payload)), 4)
        return out + payload
    }

    public static func decode(_ bytes: [UInt8], expecting kind: SegmentKind, path: String) throws(StoreError) -> [UInt8] {
        guard bytes.count >= headerSize, Array(bytes[0..<4]) == magic else { throw StoreError(path: path, message: "not a SpanLedger segment (bad magic)") }
        guard bytes[4] == version else { throw StoreError(path: path, message: "unsupported segment version \(bytes[4])") }
        guard bytes[5] == kind.rawValue else { throw StoreError(path: path, message: "segment kind \(bytes[5]), expected \(kind.rawValue)") }
        let rawLength = readLE(bytes, 8, 8)
        let compressedLength = Int(readLE(bytes, 16, 4))
        let crc = UInt32(readLE(bytes, 20, 4))
        guard bytes.count - headerSize == compressedLength else {
            throw StoreError(path: path, message: "payload is \(bytes.count - headerSize) bytes, header says \(compressedLength) (torn write?)")
        }
        let payload = Array(bytes[headerSize...])
        guard Zlib.crc32(payload) == crc else { throw StoreError(path: path, message: "CRC mismatch: the segment is corrupt") }
        guard rawLength <= UInt64(maxUncompressed) else { throw StoreError(path: path, message: "uncompressed length \(rawLength) too large") }
        do {
            let message = try Zlib.decompress(payload, limit: Int(rawLength))
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

/// POSIX file helpers: atomic replace (temporary name, fsync, rename, fsync directory).
public enum FileIO {
    public static func readAll(_ path: String) throws(StoreError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(path: path, message: "cannot open: \(errnoText())") }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw StoreError(path: path, message: "read failed: \(errnoText())")
            }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
    }

    /// Writes `bytes` to `path` atomically and durably.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(StoreError) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError(path: tmp, message: "cannot create: \(errnoText())") }
        var ok = false
        defer {
            if !ok { unlink(tmp) }
        }
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                let msg = errnoText()
                close(fd)
                throw StoreError(path: tmp, message: "write failed: \(msg)")
            }
            written += n
        }
        guard fsync(fd) == 0 else {
            let msg = errnoText()
            close(fd)
            throw StoreError(path: tmp, message: "fsync failed: \(msg)")
        }
        close(fd)
        guard rename(tmp, path) == 0 else { throw StoreError(path: path, message: "rename failed: \(errnoText())") }
        ok = true
        try syncDirectory(parent(of: path))
    }

    public static func syncDirectory(_ dir: String) throws(StoreError) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(path: dir, message: "cannot open directory: \(errnoText())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StoreError(path: dir, message: "fsync of directory failed: \(errnoText())") }
    }

    public static func makeDirectories(_ path: String) throws(StoreError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST {
                throw StoreError(path: current, message: "cannot create directory: \(errnoText())")
            }
        }
    }

    public static func list(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) { p in
                p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    public static func remove(_ path: String) { unlink(path) }

    public static func fileSize(_ path: String) -> Int64 {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : 0
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    public static func errnoText() -> String { String(cString: strerror(errno)) }
}
