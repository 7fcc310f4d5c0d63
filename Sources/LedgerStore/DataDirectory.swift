import DurableFiles
import LedgerCore
import Rollups

/// A span's identity, for replay deduplication.
public struct SpanKey: Hashable, Sendable {
    public var traceID: TraceID
    public var spanID: SpanID
    public init(traceID: TraceID, spanID: SpanID) {
        self.traceID = traceID
        self.spanID = spanID
    }
}

/// The data directory's layout (README "Data directory"):
/// `rollups/rollup-N.seg`, `index/index-N.seg`, `traces/traces-N.seg`, one set per flush,
/// N increasing. Files are written atomically; leftover `*.tmp` files are removed at open.
public struct DataDirectory: Sendable {
    public let path: String
    /// Keeps what point lookups load: index files parsed for lookup by trace ID
    /// (`loadEntry`, `loadRuns`, `taskRuns`) and run-tree files written before blocks
    /// (`loadDetail`); none: each lookup reads its files again.
    public let lookupCache: SegmentCache?

    public init(path: String, lookupCache: SegmentCache? = nil) {
        self.path = path
        self.lookupCache = lookupCache
    }

    public func directory(_ kind: SegmentKind) -> String { path + "/" + kind.directory }

    public func file(_ kind: SegmentKind, sequence: UInt64) -> String {
        let digits = String(sequence)
        return directory(kind) + "/" + kind.prefix + "-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits + ".seg"
    }

    /// Creates the directories and removes what a crash left behind: temporary files, and
    /// the files of a flush whose run-tree file (written last, the commit mark) is missing.
    /// Returns the names of the removed files.
    @discardableResult
    public func prepare() throws(StoreError) -> [String] {
        var removed: [String] = []
        do {
            try FileIO.makeDirectories(path)
            for kind in SegmentKind.allCases { try FileIO.makeDirectories(directory(kind)) }
        } catch {
            throw StoreError(error)
        }
        for kind in SegmentKind.allCases {
            for name in FileIO.list(directory(kind)) where name.hasSuffix(".tmp") {
                FileIO.remove(directory(kind) + "/" + name)
                removed.append(kind.directory + "/" + name)
            }
        }
        removed += recoverRunSegmentMerge()
        removed += removeReplacedRollups()
        let committed = Set(sequences(.traceDetail))
        for kind in [SegmentKind.rollup, .traceIndex] {
            for seq in sequences(kind) where !committed.contains(seq) {
                let path = file(kind, sequence: seq)
                FileIO.remove(path)
                removed.append(kind.directory + "/" + (path.split(separator: "/").last.map(String.init) ?? ""))
            }
        }
        return removed
    }

    /// (trace, span) of every span in flushes that may hold spans of log records at or
    /// after `walSequence`: replay skips these so nothing is counted twice.
    public func flushedSpans(sinceWALSequence walSequence: UInt64) -> Set<SpanKey> {
        var out: Set<SpanKey> = []
        for seq in sequences(.traceDetail).reversed() {
            let p = file(.traceDetail, sequence: seq)
            guard let bytes = try? readFile(p), let message = try? SegmentFrame.decode(bytes, expecting: .traceDetail, path: p) else { continue }
            // Flushes are in log order: once one ends below the sequence, all older ones do.
            if TraceDetailCodec.walSequenceMax(message) < walSequence { break }
            for d in (try? TraceDetailCodec.decode(message, path: p)) ?? [] {
                for s in d.spans { out.insert(SpanKey(traceID: d.traceID, spanID: s.spanID)) }
            }
        }
        return out
    }

    /// Segment sequence numbers present for `kind`, ascending.
    public func sequences(_ kind: SegmentKind) -> [UInt64] {
        FileIO.list(directory(kind)).compactMap { name in
            guard name.hasPrefix(kind.prefix + "-"), name.hasSuffix(".seg") else { return nil }
            return UInt64(name.dropFirst(kind.prefix.count + 1).dropLast(4))
        }.sorted()
    }

    /// After every flush on disk, and after the flushes a compacted segment covers (their
    /// own files may all have been removed since: a reused number would be ignored).
    public func nextSequence() -> UInt64 {
        ((SegmentKind.allCases.compactMap { sequences($0).last } + [compactSequences().last ?? 0]).max() ?? 0) + 1
    }

    /// The last flush committed: its run-tree file, or the last one a compacted segment covers.
    public func lastCommittedFlush() -> UInt64 {
        max(sequences(.traceDetail).last ?? 0, compactSequences().last ?? 0)
    }

    /// Whether a committed flush wrote no run trees (a flush that only moved the log's
    /// checkpoint or the held verdicts). Unreadable counts as not empty.
    public func flushHoldsNoRuns(_ sequence: UInt64) -> Bool {
        let p = file(.traceDetail, sequence: sequence)
        guard let bytes = try? readFile(p), let message = try? SegmentFrame.decode(bytes, expecting: .traceDetail, path: p),
              let details = try? TraceDetailCodec.decode(message, path: p) else { return false }
        return details.isEmpty
    }

    /// Removes the run trees and index entries of flushes past trace retention: the index
    /// file first, then the run-tree file (the flush's commit mark; `prepare` would remove
    /// an index file left without it). Only flushes a compacted rollup segment covers, so
    /// no rollup file is left without its commit mark. Returns the sequences removed.
    public func expireRunSegments(_ candidates: [UInt64]) -> [UInt64] {
        let compacted = compactSequences().last ?? 0
        var removed: [UInt64] = []
        for seq in candidates where seq <= compacted {
            FileIO.remove(file(.traceIndex, sequence: seq))
            FileIO.remove(file(.traceDetail, sequence: seq))
            removed.append(seq)
        }
        if !removed.isEmpty {
            try? FileIO.syncDirectory(directory(.traceIndex))
            try? FileIO.syncDirectory(directory(.traceDetail))
        }
        return removed
    }

    /// Everything on disk, merged. Damaged segments are skipped and reported.
    public func loadRollups() -> (table: RollupTable, damaged: [StoreError]) {
        var table = RollupTable()
        var damaged: [StoreError] = []
        let committed = Set(sequences(.traceDetail))
        // The latest compacted segment stands for every flush through its sequence.
        let compactedThrough = compactSequences().last ?? 0
        if compactedThrough > 0 {
            let p = compactFile(through: compactedThrough)
            do {
                let message = try SegmentFrame.decode(try readFile(p), expecting: .rollup, path: p)
                table.merge(try RollupSegmentCodec.decode(message, path: p))
            } catch {
                damaged.append(error)
            }
        }
        for seq in sequences(.rollup) where committed.contains(seq) && seq > compactedThrough {
            let p = file(.rollup, sequence: seq)
            do {
                let message = try SegmentFrame.decode(try readFile(p), expecting: .rollup, path: p)
                table.merge(try RollupSegmentCodec.decode(message, path: p))
            } catch {
                damaged.append(error)
            }
        }
        return (table, damaged)
    }

    /// The trace index, last entry per trace winning.
    public func loadIndex() -> (entries: [TraceID: TraceIndexEntry], damaged: [StoreError]) {
        var out: [TraceID: TraceIndexEntry] = [:]
        let damaged = forEachIndexSegment { _, entries in
            for e in entries { out[e.traceID] = e }
        }
        return (out, damaged)
    }

    /// Calls `body` with each committed index segment's entries, in flush order, and
    /// returns the segments that could not be read. Nothing is kept between segments, so
    /// a caller can keep just the newest entries (the ledger's bounded run index).
    public func forEachIndexSegment(_ body: (UInt64, [TraceIndexEntry]) -> Void) -> [StoreError] {
        forEachIndexSegment(decoding: { m, p throws(StoreError) in try TraceIndexCodec.decode(m, path: p) }, body)
    }

    /// `forEachIndexSegment` with summaries (`TraceIndexCodec.decodeSummaries`).
    public func forEachIndexSummary(_ body: (UInt64, [TraceIndexSummary]) -> Void) -> [StoreError] {
        forEachIndexSegment(decoding: { m, p throws(StoreError) in try TraceIndexCodec.decodeSummaries(m, path: p) }, body)
    }

    private func forEachIndexSegment<T>(decoding decode: ([UInt8], String) throws(StoreError) -> [T], _ body: (UInt64, [T]) -> Void) -> [StoreError] {
        var damaged: [StoreError] = []
        let committed = Set(sequences(.traceDetail))
        for seq in sequences(.traceIndex) where committed.contains(seq) {
            do {
                let (message, p) = try indexMessage(sequence: seq)
                body(seq, try decode(message, p))
            } catch {
                damaged.append(error)
            }
        }
        return damaged
    }

    /// One flush's index file read and unframed (inflated), with its path.
    private func indexMessage(sequence: UInt64) throws(StoreError) -> (message: [UInt8], path: String) {
        let p = file(.traceIndex, sequence: sequence)
        return (try SegmentFrame.decode(try readFile(p), expecting: .traceIndex, path: p), p)
    }

    /// One flush's file of `kind` read and unframed for a point lookup: through the lookup
    /// cache when there is one.
    private func lookupMessage(_ kind: SegmentKind, sequence: UInt64) throws(StoreError) -> (message: [UInt8], path: String) {
        let p = file(kind, sequence: sequence)
        let read = { () throws(StoreError) -> [UInt8] in try SegmentFrame.decode(try readFile(p), expecting: kind, path: p) }
        guard let lookupCache else { return (try read(), p) }
        return (try lookupCache.message(path: p, read: read), p)
    }

    /// One flush's index file for lookups by trace ID (parsed once and kept in the lookup
    /// cache when there is one).
    private func lookupIndex(sequence: UInt64) throws(StoreError) -> (lookup: TraceIndexCodec.Lookup, path: String) {
        let p = file(.traceIndex, sequence: sequence)
        let load = { () throws(StoreError) -> TraceIndexCodec.Lookup in try TraceIndexCodec.Lookup(try indexMessage(sequence: sequence).message, path: p) }
        guard let lookupCache else { return (try load(), p) }
        return (try lookupCache.value(path: p, tag: "index lookup", bytes: \.byteCount, load: load), p)
    }

    /// The trees of `ids` in one flush's run-tree file: the blocks holding them, or the
    /// whole file when it has no block table (written before blocks).
    func treeDetails(sequence: UInt64, among ids: Set<TraceID>) throws(StoreError) -> [TraceDetail] {
        if let found = try BlockedTrees.details(at: file(.traceDetail, sequence: sequence), among: ids) { return found }
        let (message, p) = try lookupMessage(.traceDetail, sequence: sequence)
        return try TraceDetailCodec.decode(message, path: p, among: ids)
    }

    /// One flush's index entries, or the error that made them unreadable.
    public func indexSegmentEntries(sequence: UInt64) throws(StoreError) -> [TraceIndexEntry] {
        let (message, p) = try indexMessage(sequence: sequence)
        return try TraceIndexCodec.decode(message, path: p)
    }

    /// One flush's index entries ([] when it has none or its file is unreadable).
    public func indexEntries(sequence: UInt64) -> [TraceIndexEntry] {
        (try? indexSegmentEntries(sequence: sequence)) ?? []
    }

    /// The latest index entry of one trace among the flushes `candidates` (newest first,
    /// as `TraceLocator.candidates` lists them): the first one holding it wins.
    public func loadEntry(_ traceID: TraceID, candidates: [UInt64]) -> TraceIndexEntry? {
        for seq in candidates {
            guard let (lookup, p) = try? lookupIndex(sequence: seq), let found = try? lookup.entries(of: traceID, path: p).last else { continue }
            return found
        }
        return nil
    }

    /// The latest index entries and all stored spans of many traces, each flush file read
    /// once: `candidates` names, per flush, the traces that may be in it (from
    /// `TraceLocator.candidates`, newest flush first per trace). For a batch of lookups,
    /// where one by one each trace reads its flush's files again.
    public func loadRuns(candidates: [UInt64: Set<TraceID>], trees: Bool) -> (entries: [TraceID: TraceIndexEntry], spans: [TraceID: [StoredSpan]]) {
        var entries: [TraceID: (sequence: UInt64, entry: TraceIndexEntry)] = [:]
        var spans: [TraceID: [(sequence: UInt64, spans: [StoredSpan])]] = [:]
        for (seq, ids) in candidates {
            if let (lookup, p) = try? lookupIndex(sequence: seq) {
                for id in ids {
                    guard let e = try? lookup.entries(of: id, path: p).last, seq >= (entries[id]?.sequence ?? 0) else { continue }
                    entries[id] = (seq, e)
                }
            }
            if trees, let details = try? treeDetails(sequence: seq, among: ids) {
                for d in details { spans[d.traceID, default: []].append((seq, d.spans)) }
            }
        }
        return (entries.mapValues(\.entry), spans.mapValues { $0.sorted { $0.sequence < $1.sequence }.flatMap(\.spans) })
    }

    /// The runs of one task among the flushes `candidates` (as `TraceLocator.candidates`
    /// lists them for the task's key): each trace once, read from the index summaries.
    public func taskRuns(_ taskID: String, candidates: [UInt64]) -> [TraceIndexSummary] {
        var seen = Set<TraceID>()
        var out: [TraceIndexSummary] = []
        for seq in candidates {
            guard let (lookup, p) = try? lookupIndex(sequence: seq),
                  let summaries = try? TraceIndexCodec.decodeSummaries(lookup.bytes, path: p) else { continue }
            for s in summaries where s.taskID == taskID && seen.insert(s.traceID).inserted { out.append(s) }
        }
        return out
    }

    /// All stored spans of one trace, from every detail segment (newest first scan), or
    /// only from the flushes `candidates` names.
    public func loadDetail(_ traceID: TraceID, candidates: [UInt64]? = nil) -> [StoredSpan] {
        var spans: [StoredSpan] = []
        for seq in candidates ?? Array(sequences(.traceDetail).reversed()) {
            guard let details = try? treeDetails(sequence: seq, among: [traceID]) else { continue }
            for d in details.reversed() { spans = d.spans + spans }
        }
        return spans
    }

    /// Writes one flush: the rollup delta, index entries, then the run trees — each file
    /// atomically, the trees file last: it is the flush's commit mark (`prepare` removes
    /// the other two when it is missing).
    public func writeFlush(sequence: UInt64, rollups: RollupTable, index: some Collection<TraceIndexEntry> & Sendable, details: [PackedTree],
                           walSequenceMax: UInt64 = 0, nowUnixMs: Int64) throws {
        for step in flushSteps(sequence: sequence, rollups: rollups, index: index, details: details, walSequenceMax: walSequenceMax,
                               nowUnixMs: nowUnixMs) {
            try step()
        }
    }

    /// Run trees compressed per step of a flush: under 10 ms of a core each (the store
    /// stage encodes about 2.4 M spans a second; SDK-like runs have about 8 spans).
    public static let treesPerFlushStep = 2_048

    /// `writeFlush`'s work as steps, each to run once the one before has returned (on any
    /// thread, never two at once): the rollup file, the index file, the run trees
    /// compressed `treesPerFlushStep` at a time, then the run-tree file, the flush's commit
    /// mark, written last. An idle flush moves to a normal-priority thread between steps
    /// (`BlockingThread.runSteps`).
    public func flushSteps(sequence: UInt64, rollups: RollupTable, index: some Collection<TraceIndexEntry> & Sendable, details: [PackedTree],
                           walSequenceMax: UInt64 = 0, nowUnixMs: Int64) -> [@Sendable () throws -> Void] {
        var steps: [@Sendable () throws -> Void] = []
        if !rollups.isEmpty {
            steps.append {
                try FileIO.writeAtomically(try SegmentFrame.encode(kind: .rollup, message: RollupSegmentCodec.encode(rollups, createdUnixMs: nowUnixMs)),
                                           to: file(.rollup, sequence: sequence))
            }
        }
        if !index.isEmpty {
            steps.append { try FileIO.writeAtomically(try TraceIndexCodec.segment(index, createdUnixMs: nowUnixMs), to: file(.traceIndex, sequence: sequence)) }
        }
        // Compressed as the trees are copied in: the uncompressed segment is never built.
        let trees = TreesInProgress()
        steps.append { trees.writer = try BlockedTrees.Writer(createdUnixMs: nowUnixMs, walSequenceMax: walSequenceMax) }
        for start in stride(from: 0, to: details.count, by: Self.treesPerFlushStep) {
            steps.append { try trees.writer!.add(Array(details[start..<min(start + Self.treesPerFlushStep, details.count)])) }
        }
        steps.append { try FileIO.writeAtomically(parts: try trees.writer!.finish(), to: file(.traceDetail, sequence: sequence)) }
        return steps
    }

    /// Bytes on disk per segment kind.
    public func bytesOnDisk() -> [SegmentKind: Int64] {
        var out: [SegmentKind: Int64] = [:]
        for kind in SegmentKind.allCases {
            out[kind] = sequences(kind).reduce(0) { $0 + FileIO.fileSize(file(kind, sequence: $1)) }
            if kind == .rollup { out[kind]! += compactSequences().reduce(0) { $0 + FileIO.fileSize(compactFile(through: $1)) } }
        }
        return out
    }
}

/// The run-tree writer a flush's steps share. Its steps run one after another, never at
/// once (`flushSteps`), which is what makes handing it between threads safe.
private final class TreesInProgress: @unchecked Sendable {
    var writer: BlockedTrees.Writer?
}
