import DurableFiles
import LedgerCore
import ProtoWire
import ZlibCodec

#if canImport(Glibc)
import Glibc
#endif

/// Run-tree files that a lookup reads a block of, not the whole file (format version 2 of
/// `SegmentFrame`, run trees only). The zlib stream is the same message as before, so a
/// whole-file read inflates it as ever; the writer fully flushes it every
/// `treesPerBlock` trees, and after the stream a table lists each block's offset and
/// CRC-32 and, sorted, each tree's trace ID (its first 8 bytes) with its block:
///
///     u32 blocks B · (B+1) × u32 block start (from the stream's first byte; the last is
///     the end of block B−1) · B × u32 CRC-32 of the block's bytes · u32 trees T ·
///     T × (u64 trace ID high half, u32 block), sorted · then the footer: u32 table
///     length, "SLTB"
///
/// A verdict, late span or trace view for a run on disk then reads the table and one
/// block (a few KB inflated) where it inflated the whole file (about 11 MB for a flush of
/// 27,000 runs, 30-40 ms on this VM). Each block starts with the fields of its trees
/// (shapes, then stored parts, as `TraceDetailCodec.writeTrees` lays them out), so it
/// decodes on its own.
public enum BlockedTrees {
    public static let treesPerBlock = 128
    static let footerMagic: [UInt8] = Array("SLTB".utf8)
    static let footerSize = 8

    /// Writes a blocked run-tree file: the header fields, then trees in as many `add`
    /// calls as the caller likes (a merge adds each flush's trees in turn).
    public final class Writer {
        private let deflater: Deflater
        private var starts: [UInt32] = []
        private var crcs: [UInt32] = []
        private var trees: [(id: UInt64, block: UInt32)] = []

        public init(createdUnixMs: Int64, walSequenceMax: UInt64) throws {
            deflater = try Deflater(level: SegmentFrame.compressionLevel(.traceDetail))
            try TraceDetailCodec.writeHeader(createdUnixMs: createdUnixMs, walSequenceMax: walSequenceMax) { try deflater.write($0, compressing: $1) }
            starts.append(UInt32(try deflater.fullFlush()))
        }

        public func add(_ batch: [PackedTree]) throws {
            // Trees come to about 28 bytes a span on SDK-like runs; room for 32.
            deflater.reserveOutput(batch.reduce(0) { $0 + $1.spanCount } * 32 + 64)
            var i = 0
            while i < batch.count {
                let block = Array(batch[i..<min(i + treesPerBlock, batch.count)])
                let n = UInt32(starts.count - 1)
                for t in block { trees.append((t.traceID.high, n)) }
                try TraceDetailCodec.writeTrees(block) { try deflater.write($0, compressing: $1) }
                starts.append(UInt32(try deflater.fullFlush()))
                i += block.count
            }
        }

        /// The whole file in the order it is written: frame header, stream, then the block
        /// table and footer (pieces, so the stream is not copied once more to join them).
        /// The stream's CRC in the header is put together from its blocks' CRCs.
        public func finish() throws -> [[UInt8]] {
            let stream = try deflater.finish()
            func crc(_ range: Range<Int>) -> UInt32 {
                stream.withUnsafeBytes { Zlib.crc32(UnsafeRawBufferPointer(rebasing: $0[range])) }
            }
            var whole = crc(0..<Int(starts[0]))
            for b in 0..<(starts.count - 1) {
                let range = Int(starts[b])..<Int(starts[b + 1])
                let c = crc(range)
                crcs.append(c)
                whole = Zlib.crc32Combine(whole, c, secondLength: range.count)
            }
            let tail = Int(starts[starts.count - 1])..<stream.count
            whole = Zlib.crc32Combine(whole, crc(tail), secondLength: tail.count)
            trees.sort { ($0.id, $0.block) < ($1.id, $1.block) }
            var table: [UInt8] = []
            table.reserveCapacity(8 + starts.count * 8 + trees.count * 12)
            func put(_ v: UInt64, _ n: Int) { for k in 0..<n { table.append(UInt8(truncatingIfNeeded: v >> (8 * k))) } }
            put(UInt64(starts.count - 1), 4)
            for s in starts { put(UInt64(s), 4) }
            for c in crcs { put(UInt64(c), 4) }
            put(UInt64(trees.count), 4)
            for t in trees {
                put(t.id, 8)
                put(UInt64(t.block), 4)
            }
            let header = SegmentFrame.header(kind: .traceDetail, version: SegmentFrame.blockedVersion, rawLength: deflater.totalIn,
                                             payloadLength: stream.count, payloadCRC: whole)
            table += SegmentFrame.le(UInt64(table.count), 4)
            table += footerMagic
            return [header, stream, table]
        }
    }

    /// The trees of the traces in `ids` held by the run-tree file at `path`, reading its
    /// block table and only the blocks that hold them; nil when the file is not blocked
    /// (written before version 2: the caller reads it whole).
    public static func details(at path: String, among ids: Set<TraceID>) throws(StoreError) -> [TraceDetail]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw StoreError(path: path, message: "cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        func read(_ offset: Int, _ count: Int) throws(StoreError) -> [UInt8] {
            let bytes: [UInt8]
            do { bytes = try FileIO.read(fd, offset: offset, count: count, path: path) } catch { throw StoreError(error) }
            guard bytes.count == count else { throw StoreError(path: path, message: "file ends at \(offset + bytes.count), a block or table runs to \(offset + count) (torn write?)") }
            return bytes
        }
        let size = Int(FileIO.fileSize(path))
        let header = try SegmentFrame.Header(try read(0, SegmentFrame.headerSize), expecting: .traceDetail, path: path)
        guard header.blocked else { return nil }
        let streamLength = header.compressedLength
        let footer = try read(size - footerSize, footerSize)
        let tableLength = Int(SegmentFrame.readLE(footer, 0, 4))
        guard Array(footer[4..<8]) == footerMagic, SegmentFrame.headerSize + streamLength + tableLength + footerSize == size else {
            throw StoreError(path: path, message: "block table footer does not match the file's length (torn write?)")
        }
        let table = try read(SegmentFrame.headerSize + streamLength, tableLength)
        let layout = try BlockTable(table, path: path, streamLength: streamLength)
        var blocks = Set<Int>()
        for id in ids { blocks.formUnion(layout.blocks(of: id)) }
        var out: [TraceDetail] = []
        for b in blocks.sorted() {
            let range = layout.range(of: b)
            let bytes = try read(SegmentFrame.headerSize + range.lowerBound, range.count)
            guard Zlib.crc32(bytes) == layout.crcs[b] else { throw StoreError(path: path, message: "CRC mismatch in block \(b): the segment is corrupt") }
            let raw: [UInt8]
            do {
                raw = try Zlib.decompress(bytes, format: .raw, limit: SegmentFrame.maxUncompressed)
            } catch {
                throw StoreError(path: path, message: "block \(b) does not inflate: \(error.message)")
            }
            out += try TraceDetailCodec.decode(raw, path: path, among: ids)
        }
        return out
    }

    /// The block table of a blocked run-tree file, checked against the stream's length.
    struct BlockTable {
        var starts: [Int] = []
        var crcs: [UInt32] = []
        /// (trace ID high half, block), sorted.
        var trees: [(id: UInt64, block: Int)] = []

        init(_ t: [UInt8], path: String, streamLength: Int) throws(StoreError) {
            var at = 0
            func next(_ n: Int) throws(StoreError) -> UInt64 {
                guard at + n <= t.count else { throw StoreError(path: path, message: "block table is truncated") }
                defer { at += n }
                return SegmentFrame.readLE(t, at, n)
            }
            let blocks = Int(try next(4))
            guard blocks < t.count else { throw StoreError(path: path, message: "block table is damaged") }
            for _ in 0...blocks { starts.append(Int(try next(4))) }
            for _ in 0..<blocks { crcs.append(UInt32(try next(4))) }
            guard zip(starts, starts.dropFirst()).allSatisfy({ $0 <= $1 }), (starts.last ?? 0) <= streamLength else {
                throw StoreError(path: path, message: "block offsets out of order or past the stream")
            }
            let count = Int(try next(4))
            guard count <= t.count / 12 else { throw StoreError(path: path, message: "block table is damaged") }
            trees.reserveCapacity(count)
            for _ in 0..<count {
                let id = try next(8)
                let block = Int(try next(4))
                guard block < blocks else { throw StoreError(path: path, message: "tree in block \(block) of \(blocks)") }
                trees.append((id, block))
            }
        }

        func range(of block: Int) -> Range<Int> { starts[block]..<starts[block + 1] }

        /// The blocks that may hold a trace's trees (every tree whose ID shares its high half).
        func blocks(of id: TraceID) -> [Int] {
            var lo = 0, hi = trees.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if trees[mid].id < id.high { lo = mid + 1 } else { hi = mid }
            }
            var out: [Int] = []
            while lo < trees.count && trees[lo].id == id.high {
                if out.last != trees[lo].block { out.append(trees[lo].block) }
                lo += 1
            }
            return out
        }
    }
}
