#if canImport(Glibc)
import Glibc
#endif
import DurableFiles

/// Errors of the write-ahead log, with errno in every I/O error.
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

extension WALError {
    init(_ e: FileError) {
        self.init(code: e.isDiskFull ? .diskFull : .io, message: e.description)
    }
}

/// Runs a file operation, reporting its failure as a log error.
func walIO<T>(_ body: () throws(FileError) -> T) throws(WALError) -> T {
    do { return try body() } catch { throw WALError(error) }
}
