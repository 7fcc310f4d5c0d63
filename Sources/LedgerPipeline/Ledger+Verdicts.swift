import DurableFiles
import LedgerCore
import LedgerStore
import Rollups

/// What became of one verdict.
public enum OutcomeResult: String, Sendable {
    /// A pending run got its first verdict: moved from the pending bucket.
    case applied
    /// A decided run's outcome changed: moved between outcome buckets.
    case corrected
    /// The run already had this outcome; the verdict's time and reviewer were recorded.
    case unchanged
    /// The run is not released (or not seen) yet: kept and applied when it is.
    case held
    /// A later verdict already decides the run; this one changes nothing.
    case superseded
    /// The run started before the correction window.
    case tooOld = "too_old"
    /// Asked to refuse verdicts for runs it does not know (`UnknownRuns.refuse`): this node
    /// has no such run, released or pending; the verdict was neither logged nor held.
    case notFound = "not_found"
}

/// What a node does with a verdict for a run it has not seen: hold it until the run is
/// released (one node, the default), or refuse it so that a client of several nodes can
/// try the next (`POST /v1/outcomes?unknown_runs=refuse`, `spanledger outcome --server`
/// given more than once): held on a node that never gets the run, it would only take
/// room among the held verdicts until dropped as the oldest.
public enum UnknownRuns: String, Sendable {
    case hold, refuse
}

/// Verdicts that arrive on their own (../shared/DESIGN.md; Schemas/conventions.md
/// "Verdicts that arrive late"). The latest verdict by time wins. A change of outcome
/// moves the whole run — its count, cost, tokens and latency, per model — from the old
/// outcome's bucket to the new one's, in the run's start minute: totals over all
/// outcomes never change, and nothing is counted twice.
extension Ledger {
    /// The entries and trees of runs on disk that verdicts or a trace view need, read off
    /// the ledger (`readRuns`), with the state of the trace locator they were read under:
    /// used while the locator has not changed since (no flush, merge or expiry, so they are
    /// what a lookup would read now), else read again on the actor.
    public struct RunReads: Sendable {
        let locatorChanges: UInt64
        let segments: [UInt64: Set<TraceID>]
        var entries: [TraceID: TraceIndexEntry] = [:]
        var trees: [TraceID: [StoredSpan]] = [:]
        /// The traces looked for, found or not.
        var lookedUp: Set<TraceID> { Set(segments.values.joined()) }
    }

    /// Reads what the runs `records` name need from disk (index entries and trees, each
    /// flush's files once) on a thread of its own; nil when none of them is on disk. Only
    /// deciding which flushes to read takes the actor: a cold batch of 500 verdicts over 11
    /// flushes read them for about 160 ms on it, and every request waited that long.
    public nonisolated func readRuns(of records: [OutcomeRecord]) async -> RunReads? {
        await readRuns(records.map(\.traceID), verdicts: true)
    }

    nonisolated func readRuns(_ ids: [TraceID], verdicts: Bool) async -> RunReads? {
        guard var reads = await planReads(ids, trees: true, verdicts: verdicts) else { return nil }
        let directory = self.directory
        let found = await BlockingThread.run(name: "spanledger-run-reads") { [segments = reads.segments] in
            directory.loadRuns(candidates: segments, trees: true)
        }
        (reads.entries, reads.trees) = (found.entries, found.spans)
        return reads
    }

    /// The flushes that may hold the runs `ids` name whose entries or trees are not in
    /// memory, and the traces looked for in each (counted as read for verdicts when
    /// `verdicts`).
    func planReads(_ ids: some Sequence<TraceID>, trees: Bool, verdicts: Bool) -> RunReads? {
        var bySegment: [UInt64: Set<TraceID>] = [:]
        var looked: Set<TraceID> = []
        for id in ids where looked.insert(id).inserted {
            let entryOnDisk = index[id] == nil && index.evictedCount > 0
            let treeOnDisk = trees && recentTrees[id] == nil
            guard entryOnDisk || treeOnDisk, locator.mayContain(id) else { continue }
            for seq in locator.candidates(id) { bySegment[seq, default: []].insert(id) }
        }
        guard !bySegment.isEmpty else { return nil }
        if verdicts { stats.batchSegmentsRead += Int64(bySegment.count) }
        return RunReads(locatorChanges: locator.changes, segments: bySegment)
    }

    /// Runs that started before the correction window, among those `records` name:
    /// their verdicts are refused before anything is logged. `reads`: their runs on disk,
    /// read off the actor (`readRuns(of:)`).
    public func verdictProblems(_ records: [OutcomeRecord], reads: RunReads? = nil) -> [String] {
        withRunsOf(records.map(\.traceID), trees: false, reads: reads, verdicts: true) { verdictProblemsOfBatch(records) }
    }

    /// The traces among `ids` this node has: pending in assembly, being attributed, or a
    /// recorded run (in memory or on disk, within trace retention). `reads`: their runs on
    /// disk, read off the actor (`readRuns(of:)`).
    public func knownRuns(_ ids: [TraceID], reads: RunReads? = nil) -> Set<TraceID> {
        withRunsOf(ids, trees: false, reads: reads, verdicts: true) { Set(ids.filter { assembler.isOpen($0) || hasRun($0) }) }
    }

    private func verdictProblemsOfBatch(_ records: [OutcomeRecord]) -> [String] {
        let limit = wallNow() - configuration.correctionWindowNano
        var problems: [String] = []
        for o in records {
            if let e = runEntry(o.traceID), e.startUnixNano < limit {
                problems.append("run \(o.traceID.hex) started \(RFC3339.format(unixNano: e.startUnixNano)), before the correction window "
                                + "(\(configuration.correctionWindowNano / 86_400_000_000_000) days); its outcome can no longer change")
            }
        }
        return problems
    }

    /// Applies verdicts logged at `sequence` (0 when not logged), in order.
    public func applyOutcomes(_ records: [OutcomeRecord], sequence: UInt64, reads: RunReads? = nil) -> [OutcomeResult] {
        lastConsumedSequence = max(lastConsumedSequence, sequence)
        return withRunsOf(records.map(\.traceID), trees: true, reads: reads, verdicts: true) { records.map { apply($0) } }
    }

    /// Runs `body` with the entries (and with `trees`, the trees) of the runs `ids` that
    /// are on disk read first, each flush's files once for them all: from `reads` while the
    /// trace locator is as it was when they were read, else here. One by one, a batch of
    /// 500 verdicts for runs flushed earlier read a flush's index and tree files (2 MB and
    /// 11 MB inflated) per verdict: 18 s holding the ledger.
    func withRunsOf<T>(_ ids: [TraceID], trees: Bool, reads: RunReads?, verdicts: Bool, _ body: () -> T) -> T {
        let memo: RunReads
        if let reads, reads.locatorChanges == locator.changes {
            memo = reads
        } else {
            if reads != nil { stats.runReadsDiscarded += 1 }
            // One run reads its files as before; the batch path pays off from two.
            guard Set(ids).count > 1, var planned = planReads(ids, trees: trees, verdicts: verdicts) else { return body() }
            (planned.entries, planned.trees) = directory.loadRuns(candidates: planned.segments, trees: trees)
            memo = planned
        }
        batchLookedUp = memo.lookedUp
        (batchEntries, batchTrees) = (memo.entries, trees ? memo.trees : [:])
        defer { (batchLookedUp, batchEntries, batchTrees) = ([], [:], [:]) }
        return body()
    }

    func apply(_ o: OutcomeRecord) -> OutcomeResult {
        guard !assembler.isOpen(o.traceID), var entry = runEntry(o.traceID) else { return hold(o) }
        if entry.startUnixNano < wallNow() - configuration.correctionWindowNano {
            stats.verdictsRefused += 1
            return .tooOld
        }
        guard o.supersedes(time: entry.verdictTimeUnixNano, outcome: entry.outcome) else { return .superseded }
        let old = entry.outcome
        entry.verdictTimeUnixNano = o.timeUnixNano
        entry.verdictSource = o.source
        entry.reviewer = o.reviewer
        entry.reviewerKind = o.reviewerKind
        var result = OutcomeResult.unchanged
        if o.outcome != old {
            let t = tree(of: o.traceID)
            addRecords(of: entry, tree: t, sign: -1)
            entry.outcome = o.outcome
            addRecords(of: entry, tree: t, sign: 1)
            if old == .pending {
                result = .applied
                stats.verdictsApplied += 1
            } else {
                result = .corrected
                entry.corrections += 1
                stats.verdictCorrections += 1
            }
        }
        index[entry.traceID] = entry
        if o.outcome != old { reevaluateTask(of: entry) }
        return result
    }

    func hold(_ o: OutcomeRecord) -> OutcomeResult {
        if let h = heldVerdicts[o.traceID], !o.supersedes(time: h.timeUnixNano, outcome: h.outcome) { return .superseded }
        if heldVerdicts[o.traceID] == nil && heldVerdicts.count >= configuration.maxHeldVerdicts {
            // Full: the verdict held longest (oldest by time) gives way.
            if let oldest = heldVerdicts.values.min(by: { $0.timeUnixNano < $1.timeUnixNano }) {
                heldVerdicts[oldest.traceID] = nil
                stats.verdictsDropped += 1
                logger.warning("held verdicts at their limit; dropped the oldest", metadata: ["trace_id": "\(oldest.traceID.hex)"])
            }
        }
        heldVerdicts[o.traceID] = o
        heldDirty = true
        stats.verdictsHeld = heldVerdicts.count
        return .held
    }

    /// The run's stored spans: in memory, in the flush being written, not yet flushed, or on disk.
    func tree(of id: TraceID) -> [StoredSpan] {
        if let t = recentTrees[id] { return t.unpack() }
        // In flush order, without copying either list (up to 200,000 spans' trees each).
        var pending: [StoredSpan] = []
        for t in flushingDetails where t.traceID == id { pending += t.unpack() }
        for t in unflushedDetails where t.traceID == id { pending += t.unpack() }
        if batchLookedUp.contains(id) { return (batchTrees[id] ?? []) + pending }
        return directory.loadDetail(id, candidates: locator.candidates(id)) + pending
    }

    public func heldVerdictCount() -> Int { heldVerdicts.count }

    static let heldVerdictsFile = "held-verdicts.bin"
}

extension DataDirectory {
    /// Verdicts held for runs not seen yet, as of the last flush.
    func loadHeldVerdicts() throws -> [OutcomeRecord] {
        let p = path + "/" + Ledger.heldVerdictsFile
        guard FileIO.fileSize(p) > 0 else { return [] }
        return try OutcomeBatchCodec.decode(try FileIO.readAll(p)[...])
    }
}
