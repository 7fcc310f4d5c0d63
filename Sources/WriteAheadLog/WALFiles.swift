#if canImport(Glibc)
import Glibc
#endif

/// Low-level file operations of the log (POSIX), with errno in every error.
public struct WALError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable {
        enum Value: Hashable, Sendable { case io, diskFull, closed }
        let value: Value
        public static let io = Code(value: .io)
        /// ENOSPC / EDQUOT: retryable once space returns.
        public static let diskFull = Code(value: .diskFull)
        public static let closed = Code(value: .closed)
    }

    public var code: Code
    public var message: String
    public var description: String { message }

    static func errno(_ what: String, _ path: String) -> WALError {
        let e = Glibc.errno
        return WALError(code: e == ENOSPC || e == EDQUOT ? .diskFull : .io, message: "\(what) \(path): \(String(cString: strerror(e)))")
    }
}

enum WALFiles {
    static func readAll(_ path: String) throws(WALError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .errno("open", path) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw .errno("read", path) }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(WALError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 { if errno == EINTR { continue }; throw .errno("write", path) }
            done += n
        }
    }

    static func list(_ dir: String) -> [String] {
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        var out: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) { p in p.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) } }
            if name != "." && name != ".." { out.append(name) }
        }
        return out.sorted()
    }

    static func syncDirectory(_ dir: String) throws(WALError) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .errno("open", dir) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .errno("fsync", dir) }
    }

    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(WALError) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .errno("create", tmp) }
        do throws(WALError) {
            try writeAll(fd, bytes, path: tmp)
            guard fsync(fd) == 0 else { throw WALError.errno("fsync", tmp) }
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        close(fd)
        guard rename(tmp, path) == 0 else { throw .errno("rename", path) }
        try syncDirectory(parentDirectory(path))
    }

    static func parentDirectory(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }

    static func makeDirectory(_ path: String) throws(WALError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST { throw .errno("mkdir", current) }
        }
    }
}
