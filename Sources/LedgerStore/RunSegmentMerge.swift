import DurableFiles
import LedgerCore

/// Merging the run trees and index entries of consecutive flushes into one pair of files.
///
/// Every flush writes `index-N.seg` and `traces-N.seg`: at the default 5 s flush that is
/// 17,000 files a day of each kind, and start-up reads every index file. Once compaction
/// covers a run of small flushes, their files are merged into the last one's name
/// (`index-B.seg`, `traces-B.seg`, B the last flush of the run): index entries last one
/// per trace, run-tree records all kept in flush order (a trace's late spans are records
/// of later flushes, and `loadDetail` joins them). Readers need no change: a merged file
/// is a flush's file holding more runs, and a flush sequence names it.
///
/// In two steps, so that readers never see a run's records twice:
/// 1. `writeMerged` (off the ledger's actor: decoding and packing is the work) writes the
///    merged pair beside the live files, as `index-B.seg.merged` and `traces-B.seg.merged`,
///    which no reader lists.
/// 2. `commitMerged` (on the actor, with the trace locator updated in the same turn)
///    writes a journal naming the flushes, renames the pair over flush B's files (the
///    trees file last: that rename is the commit) and removes the other flushes' files.
///
/// A crash between them is repaired at open (`recoverRunSegmentMerge`): when flush B's
/// trees file is the merged one (the journal has its length and CRC), the other flushes'
/// files are removed; otherwise the merge is dropped. A merged index over B's own index
/// file with the old trees file is harmless: its entries are the latest of those flushes
/// and the old ones are still there (last entry per trace wins).
public struct MergedRunSegments: Sendable {
    /// The flushes merged, ascending; the last names the merged files.
    public var sequences: [UInt64]
    public var key: UInt64 { sequences.last ?? 0 }
    /// Traces with an index entry or a run-tree record in them (for the trace locator).
    public var traceIDs: [TraceID]
    /// Task keys (`TraceLocator.taskKey`) of the runs with a task ID in them.
    public var taskKeys: [TraceID]
    public var newestStartUnixNano: Int64
    public var indexEntries: Int
    public var treeRecords: Int
    /// The merged trees file's length and CRC, as the journal records them.
    public var treesLength: Int64
    public var treesCRC: UInt32
    /// Bytes of the flushes' files before, and of the merged pair.
    public var bytesBefore: Int64
    public var bytesAfter: Int64
}

extension DataDirectory {
    static let mergeJournalName = "run-merge.journal"
    static let mergedSuffix = ".merged"

    var mergeJournalPath: String { path + "/" + Self.mergeJournalName }

    /// Step 1: reads the flushes' index and trees files (committed flushes, ascending, all
    /// covered by compaction) and writes their merged pair beside them. Nothing a reader
    /// sees changes. One flush's trees are decoded at a time.
    public func writeMerged(_ sequences: [UInt64], nowUnixMs: Int64) throws -> MergedRunSegments {
        precondition(sequences.count >= 2 && sequences == sequences.sorted(), "a merge takes two or more flushes in order")
        let key = sequences[sequences.count - 1]
        var ids = Set<TraceID>()
        var taskKeys = Set<TraceID>()
        var bytesBefore: Int64 = 0
        // Index: the latest entry per trace, in the order first seen.
        var position: [TraceID: Int] = [:]
        var entries: [TraceIndexEntry] = []
        var newest = Int64.min
        for seq in sequences {
            let size = FileIO.fileSize(file(.traceIndex, sequence: seq))
            guard size > 0 else { continue } // a flush that wrote no index entry
            bytesBefore += size
            for e in try indexSegmentEntries(sequence: seq) {
                ids.insert(e.traceID)
                if !e.taskID.isEmpty { taskKeys.insert(TraceLocator.taskKey(e.taskID)) }
                newest = max(newest, e.startUnixNano)
                if let at = position[e.traceID] { entries[at] = e } else {
                    position[e.traceID] = entries.count
                    entries.append(e)
                }
            }
        }
        // Run trees: every record, flush by flush. The merged file keeps the last flush's
        // log position (flushes are in log order), which replay's deduplication reads.
        // The last flush's message is inflated once: its header goes first, its trees last.
        func treesMessage(_ seq: UInt64) throws -> [UInt8] {
            let p = file(.traceDetail, sequence: seq)
            bytesBefore += FileIO.fileSize(p)
            return try SegmentFrame.decode(try readFile(p), expecting: .traceDetail, path: p)
        }
        let lastTrees = file(.traceDetail, sequence: key)
        let lastMessage = try treesMessage(key)
        var records = 0
        let writer = try BlockedTrees.Writer(createdUnixMs: nowUnixMs, walSequenceMax: TraceDetailCodec.walSequenceMax(lastMessage))
        for seq in sequences {
            let p = file(.traceDetail, sequence: seq)
            let details = try TraceDetailCodec.decode(seq == key ? lastMessage : try treesMessage(seq), path: p)
            for d in details { ids.insert(d.traceID) }
            records += details.count
            try writer.add(details.map(PackedTree.init))
        }
        let trees = try writer.finish()
        let treesLength = trees.reduce(0) { $0 + $1.count }
        var bytesAfter = Int64(treesLength)
        if !entries.isEmpty {
            let index = try TraceIndexCodec.segment(entries, createdUnixMs: nowUnixMs)
            try FileIO.writeAtomically(index, to: file(.traceIndex, sequence: key) + Self.mergedSuffix)
            bytesAfter += Int64(index.count)
        }
        try FileIO.writeAtomically(parts: trees, to: lastTrees + Self.mergedSuffix)
        return MergedRunSegments(sequences: sequences, traceIDs: Array(ids), taskKeys: Array(taskKeys), newestStartUnixNano: newest, indexEntries: entries.count,
                                 treeRecords: records, treesLength: Int64(treesLength), treesCRC: SegmentFrame.headerCRC(trees[0]),
                                 bytesBefore: bytesBefore, bytesAfter: bytesAfter)
    }

    /// Step 2: puts the merged pair in place of the flushes' files. Quick (renames and
    /// unlinks): the caller updates the trace locator in the same actor turn.
    public func commitMerged(_ m: MergedRunSegments) throws {
        let journal = "\(m.key) \(m.treesLength) \(m.treesCRC) " + m.sequences.map(String.init).joined(separator: ",") + "\n"
        try FileIO.writeAtomically(Array(journal.utf8), to: mergeJournalPath)
        let index = file(.traceIndex, sequence: m.key)
        if FileIO.fileSize(index + Self.mergedSuffix) > 0 { try FileIO.rename(index + Self.mergedSuffix, to: index) }
        try FileIO.syncDirectory(directory(.traceIndex))
        let trees = file(.traceDetail, sequence: m.key)
        try FileIO.rename(trees + Self.mergedSuffix, to: trees)
        // Committed: nothing below throws, so a caller that sees an error knows the merge
        // did not happen (and `recoverRunSegmentMerge` drops it).
        try? FileIO.syncDirectory(directory(.traceDetail))
        finishMerge(m.sequences.dropLast())
    }

    /// Removes the merged flushes' own files (index first: an index file without its
    /// trees file would be taken for a crashed flush's), then the journal.
    func finishMerge(_ absorbed: some Sequence<UInt64>) {
        for seq in absorbed { FileIO.remove(file(.traceIndex, sequence: seq)) }
        try? FileIO.syncDirectory(directory(.traceIndex))
        for seq in absorbed { FileIO.remove(file(.traceDetail, sequence: seq)) }
        try? FileIO.syncDirectory(directory(.traceDetail))
        FileIO.remove(mergeJournalPath)
        try? FileIO.syncDirectory(path)
    }

    /// At open: finishes a merge whose trees file was renamed into place before a crash,
    /// or drops one that was not; removes merged files never renamed. Returns what it did.
    @discardableResult
    public func recoverRunSegmentMerge() -> [String] {
        var done: [String] = []
        if let text = try? FileIO.readAll(mergeJournalPath) {
            let parts = String(decoding: text, as: UTF8.self).split(whereSeparator: { $0 == " " || $0 == "\n" })
            let seqs = parts.count == 4 ? parts[3].split(separator: ",").compactMap { UInt64($0) } : []
            if parts.count == 4, let key = UInt64(parts[0]), let length = Int64(parts[1]), let crc = UInt32(parts[2]), seqs.last == key,
               let trees = try? readFile(file(.traceDetail, sequence: key)), Int64(trees.count) == length, SegmentFrame.headerCRC(trees) == crc {
                finishMerge(seqs.dropLast())
                done.append("finished the merge of flushes \(seqs.first ?? 0)-\(key)")
            } else {
                FileIO.remove(mergeJournalPath)
                done.append("dropped an unfinished merge (\(parts.prefix(1).joined()))")
            }
        }
        for kind in [SegmentKind.traceIndex, .traceDetail] {
            for name in FileIO.list(directory(kind)) where name.hasSuffix(Self.mergedSuffix) {
                FileIO.remove(directory(kind) + "/" + name)
                done.append(kind.directory + "/" + name)
            }
        }
        return done
    }
}

/// Which flushes to merge: runs of consecutive small flushes. A flush with half the limit
/// or more stays as it is (at full ingest a flush holds about 25,000 runs); a merged file
/// holds at most `maxRuns`, so a lookup of a run no longer in memory decodes about as
/// much as before. Runs in one file start within `maxSpanNano` of each other, so trace
/// retention, which removes whole files, keeps about its resolution.
public enum RunSegmentMergePlan {
    public struct Segment: Sendable {
        public var sequence: UInt64
        public var runs: Int
        public var newestStartUnixNano: Int64
        public init(sequence: UInt64, runs: Int, newestStartUnixNano: Int64) {
            self.sequence = sequence
            self.runs = runs
            self.newestStartUnixNano = newestStartUnixNano
        }
    }

    /// `segments`: every flush with runs, ascending; only those through `through` merge.
    public static func batches(_ segments: [Segment], through: UInt64, maxRuns: Int = 50_000,
                               maxSpanNano: Int64 = 86_400_000_000_000) -> [[UInt64]] {
        var out: [[UInt64]] = []
        var batch: [Segment] = []
        var runs = 0
        func close() {
            if batch.count >= 2 { out.append(batch.map(\.sequence)) }
            batch = []
            runs = 0
        }
        for s in segments {
            guard s.sequence <= through else { break }
            guard s.runs < maxRuns / 2 else {
                close()
                continue
            }
            if let first = batch.first, runs + s.runs > maxRuns || abs(s.newestStartUnixNano - first.newestStartUnixNano) > maxSpanNano { close() }
            batch.append(s)
            runs += s.runs
        }
        close()
        return out
    }
}
