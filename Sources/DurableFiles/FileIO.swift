#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed file operation: the path, what was attempted, and errno.
public struct FileError: Error, Sendable, CustomStringConvertible {
    public var path: String
    public var operation: String
    public var errno: Int32

    public init(path: String, operation: String, errno: Int32) {
        self.path = path
        self.operation = operation
        self.errno = errno
    }

    /// ENOSPC or EDQUOT: retryable once space returns.
    public var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT }
    public var description: String { "\(operation) \(path): \(String(cString: strerror(errno)))" }

    static func last(_ operation: String, _ path: String) -> FileError {
        FileError(path: path, operation: operation, errno: Glibc.errno)
    }
}

/// POSIX file helpers shared by the segment store and the write-ahead log; the atomic
/// replace (temporary name, fsync, rename, fsync directory) lives only here.
public enum FileIO {
    public static func readAll(_ path: String) throws(FileError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open", path) }
        defer { close(fd) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .last("read", path)
            }
            if n == 0 { return out }
            out.append(contentsOf: chunk[0..<n])
        }
    }

    /// Writes all of `bytes` to `fd` (retrying short writes and EINTR).
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(FileError) {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .last("write", path)
            }
            written += n
        }
    }

    /// Writes `bytes` to `path` atomically and durably: a reader sees the old file or the
    /// whole new one, and the new one survives a crash once this returns.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws(FileError) {
        try writeAtomically(parts: [bytes], to: path)
    }

    /// The file is the pieces one after the other (written in turn, never joined).
    public static func writeAtomically(parts: [[UInt8]], to path: String) throws(FileError) {
        let tmp = path + ".tmp"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .last("create", tmp) }
        do throws(FileError) {
            for bytes in parts { try writeAll(fd, bytes, path: tmp) }
            guard fsync(fd) == 0 else { throw .last("fsync", tmp) }
        } catch {
            close(fd)
            unlink(tmp)
            throw error
        }
        close(fd)
        guard systemRename(tmp, path) == 0 else {
            let e = FileError.last("rename", path)
            unlink(tmp)
            throw e
        }
        try syncDirectory(parent(of: path))
    }

    public static func syncDirectory(_ dir: String) throws(FileError) {
        let fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open directory", dir) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .last("fsync directory", dir) }
    }

    public static func makeDirectories(_ path: String) throws(FileError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if mkdir(current, 0o755) != 0 && errno != EEXIST { throw .last("mkdir", current) }
        }
    }

    /// Names in `dir` (without "." and ".."), sorted; empty when it cannot be read.
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

    /// Renames `from` over `to` (atomic on one file system); the caller syncs the directory.
    public static func rename(_ from: String, to: String) throws(FileError) {
        guard systemRename(from, to) == 0 else { throw .last("rename", to) }
    }

    /// Which file a path names now, and its size and last change: equal identities mean
    /// the same unchanged contents (a file replaced by rename gets another inode).
    public struct Identity: Hashable, Sendable {
        public var device: UInt64
        public var inode: UInt64
        public var size: Int64
        public var changedNano: Int64
    }

    /// nil when the path cannot be stat'ed (missing).
    public static func identity(_ path: String) -> Identity? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Identity(device: UInt64(st.st_dev), inode: UInt64(st.st_ino), size: Int64(st.st_size),
                        changedNano: Int64(st.st_mtim.tv_sec) * 1_000_000_000 + Int64(st.st_mtim.tv_nsec))
    }

    /// Reads `count` bytes at `offset` of an open file (fewer only at its end).
    public static func read(_ fd: Int32, offset: Int, count: Int, path: String) throws(FileError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = out.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset + done)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw .last("read", path)
            }
            if n == 0 { break }
            done += n
        }
        if done < count { out.removeLast(count - done) }
        return out
    }

    /// Whether the directory is on a file system held in memory (tmpfs, ramfs), where a
    /// sync costs nothing and zeros written ahead would only take memory: the file system
    /// of the longest mount point in /proc/self/mounts that holds the directory.
    public static func isMemoryBacked(_ dir: String) -> Bool {
        guard let resolved = realpath(dir, nil) else { return false }
        let path = String(cString: resolved)
        free(resolved)
        guard let mounts = try? readAll("/proc/self/mounts") else { return false }
        var best = (length: -1, type: "")
        for line in String(decoding: mounts, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count >= 3 else { continue }
            // Spaces and other odd bytes in mount points are written as octal escapes.
            let point = String(fields[1]).replacingOctalEscapes()
            let holds = point == "/" || path == point || path.hasPrefix(point + "/")
            if holds && point.count > best.length { best = (point.count, String(fields[2])) }
        }
        return best.type == "tmpfs" || best.type == "ramfs"
    }

    public static func fileSize(_ path: String) -> Int64 {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : 0
    }

    private static func systemRename(_ from: String, _ to: String) -> Int32 {
        #if canImport(Glibc)
        Glibc.rename(from, to)
        #else
        Darwin.rename(from, to)
        #endif
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}

extension String {
    /// "\040" and the like (how /proc/self/mounts writes a space) as the bytes they name.
    func replacingOctalEscapes() -> String {
        guard contains("\\") else { return self }
        var bytes: [UInt8] = []
        var u = Array(utf8)[...]
        while let c = u.first {
            if c == UInt8(ascii: "\\"), u.count >= 4, let v = UInt8(String(decoding: u.dropFirst().prefix(3), as: UTF8.self), radix: 8) {
                bytes.append(v)
                u = u.dropFirst(4)
            } else {
                bytes.append(c)
                u = u.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
