import DurableFiles
import LedgerCore
import Rollups

/// Compacted rollups: `rollups/compact-K.seg` holds every rollup of the flushes through K
/// (and of earlier compactions), aged by a `CompactionPolicy`. It is written atomically
/// before anything it replaces is removed, and readers ignore the rollup segments it
/// replaces, so a crash at any step neither loses nor double counts a record.
extension DataDirectory {
    public static let compactPrefix = "compact"

    public func compactFile(through k: UInt64) -> String {
        let digits = String(k)
        return directory(.rollup) + "/" + Self.compactPrefix + "-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".seg"
    }

    /// Flush sequences covered by compacted segments present, ascending.
    public func compactSequences() -> [UInt64] {
        FileIO.list(directory(.rollup)).compactMap { name in
            guard name.hasPrefix(Self.compactPrefix + "-"), name.hasSuffix(".seg") else { return nil }
            return UInt64(name.dropFirst(Self.compactPrefix.count + 1).dropLast(4))
        }.sorted()
    }

    /// Removes files a finished compaction replaced (a crash may have left them): older
    /// compacted segments and the rollup segments of flushes through the latest one.
    func removeReplacedRollups() -> [String] {
        guard let k = compactSequences().last else { return [] }
        var removed: [String] = []
        for old in compactSequences() where old < k {
            FileIO.remove(compactFile(through: old))
            removed.append("rollups/" + Self.compactPrefix + "-\(old)")
        }
        for seq in sequences(.rollup) where seq <= k {
            FileIO.remove(file(.rollup, sequence: seq))
            removed.append("rollups/rollup-\(seq)")
        }
        return removed
    }

    public struct CompactionResult: Sendable {
        public var through: UInt64
        public var recordsBefore: Int
        public var recordsAfter: Int
        public var recordsDropped: Int
        public var segmentsReplaced: Int
        public var bytesBefore: Int64
        public var bytesAfter: Int64
    }

    /// Merges the latest compacted segment and the rollup segments of flushes through `k`
    /// (committed ones) into `compact-k.seg`, aged by `policy` at `nowUnix`; then removes
    /// what it replaces. Damaged input segments are kept out and left in place.
    public func compact(through k: UInt64, policy: CompactionPolicy, nowUnix: Int64) throws(StoreError) -> CompactionResult {
        let previous = compactSequences().last
        guard previous.map({ $0 < k }) ?? true else {
            return CompactionResult(through: k, recordsBefore: 0, recordsAfter: 0, recordsDropped: 0, segmentsReplaced: 0, bytesBefore: 0, bytesAfter: 0)
        }
        var merged = RollupTable()
        var inputs: [String] = []
        var bytesBefore: Int64 = 0
        if let previous {
            let p = compactFile(through: previous)
            merged.merge(try RollupSegmentCodec.decode(try SegmentFrame.decode(try readFile(p), expecting: .rollup, path: p), path: p))
            inputs.append(p)
            bytesBefore += FileIO.fileSize(p)
        }
        let committed = Set(sequences(.traceDetail))
        for seq in sequences(.rollup) where seq <= k && seq > (previous ?? 0) && committed.contains(seq) {
            let p = file(.rollup, sequence: seq)
            merged.merge(try RollupSegmentCodec.decode(try SegmentFrame.decode(try readFile(p), expecting: .rollup, path: p), path: p))
            inputs.append(p)
            bytesBefore += FileIO.fileSize(p)
        }
        let before = merged.count
        let (table, dropped) = merged.compacted(policy, nowUnix: nowUnix)
        let target = compactFile(through: k)
        do {
            let bytes = try SegmentFrame.encode(kind: .rollup, message: RollupSegmentCodec.encode(table, createdUnixMs: nowUnix * 1_000, replacesThrough: k))
            try FileIO.writeAtomically(bytes, to: target)
        } catch let e as FileError {
            throw StoreError(e)
        } catch {
            throw StoreError(path: target, message: "\(error)")
        }
        // Read it back before anything it replaces goes.
        let check = try RollupSegmentCodec.decode(try SegmentFrame.decode(try readFile(target), expecting: .rollup, path: target), path: target)
        guard check.count == table.count else { throw StoreError(path: target, message: "compacted segment reads back \(check.count) records, wrote \(table.count)") }
        FaultPoints.hit("compaction-after-write")
        for (i, p) in inputs.enumerated() {
            FileIO.remove(p)
            if i == inputs.count / 2 { FaultPoints.hit("compaction-mid-remove") }
        }
        // Rollup segments through k that were not inputs (uncommitted or damaged) are replaced too.
        for seq in sequences(.rollup) where seq <= k { FileIO.remove(file(.rollup, sequence: seq)) }
        try? FileIO.syncDirectory(directory(.rollup))
        return CompactionResult(through: k, recordsBefore: before, recordsAfter: table.count, recordsDropped: dropped,
                                segmentsReplaced: inputs.count, bytesBefore: bytesBefore, bytesAfter: FileIO.fileSize(target))
    }
}
