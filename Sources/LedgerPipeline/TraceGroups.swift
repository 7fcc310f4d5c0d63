import LedgerCore

/// A batch of spans grouped by trace, as assembly takes them, built before the batch
/// reaches the `Ledger` actor (on the request's own task). SDKs mostly export a trace's
/// spans side by side, so a run of them costs one ID comparison a span and one array;
/// only a trace met again later in the batch is looked up by hash.
public struct TraceGroups: Sendable {
    /// In the order each trace first appears in the batch, with the bytes its spans hold
    /// in assembly and whether its root is among them (assembly need not walk them again).
    public private(set) var groups: [(traceID: TraceID, spans: [SpanRecord], bytes: Int, hasRoot: Bool)] = []
    /// Verdicts of feedback spans, for the runs they link to (the spans themselves keep
    /// no verdict: it is not about their own trace).
    public private(set) var feedback: [OutcomeRecord] = []
    /// Approximate bytes the spans hold in assembly (its byte limit).
    public private(set) var bytes = 0
    public private(set) var spanCount = 0

    /// Groups `spans`, moving each record into its group: copying them retained every
    /// record's strings once more, and freeing the batch released them again, atomically
    /// on a reference the other threads share (about 1.5% of daemon CPU at full ingest).
    public init(_ spans: consuming [SpanRecord]) {
        spanCount = spans.count
        var seen: [TraceID: Int] = [:]
        // A record without labels and without a box (all its names empty): what a
        // moved-out slot holds until the batch is freed, which then has nothing to release.
        let vacated = SpanRecord(traceID: TraceID(high: 0, low: 0), spanID: .none, name: "", startUnixNano: 0, endUnixNano: 0)
        spans.withUnsafeMutableBufferPointer { batch in
            var i = 0
            while i < batch.count {
                let id = batch[i].traceID
                var j = i + 1
                while j < batch.count && batch[j].traceID == id { j += 1 }
                let start = batch.baseAddress! + i, n = j - i
                var run = [SpanRecord](unsafeUninitializedCapacity: n) { moved, count in
                    moved.baseAddress!.moveInitialize(from: start, count: n)
                    count = n
                }
                // The vacated record holds no reference (no labels, no box): its bytes fill
                // the slots as they are, without a field-by-field copy.
                withUnsafeBytes(of: vacated) { v in
                    let slots = UnsafeMutableRawPointer(start)
                    for k in 0..<n { (slots + k * MemoryLayout<SpanRecord>.stride).copyMemory(from: v.baseAddress!, byteCount: v.count) }
                }
                var groupBytes = 0, hasRoot = false
                run.withUnsafeMutableBufferPointer { run in
                    for k in run.indices {
                        groupBytes += run[k].approximateBytes
                        hasRoot = hasRoot || run[k].isRoot
                        guard run[k].hasRareFields, !run[k].feedbackFor.isEmpty, let v = run[k].verdict else { continue }
                        for t in run[k].feedbackFor {
                            feedback.append(OutcomeRecord(traceID: t, outcome: v.outcome, timeUnixNano: v.timeUnixNano, source: .feedbackSpan))
                        }
                        run[k].verdict = nil
                        run[k].feedbackFor = []
                    }
                }
                bytes += groupBytes
                if let g = seen[id] {
                    groups[g].spans += run
                    groups[g].bytes += groupBytes
                    groups[g].hasRoot = groups[g].hasRoot || hasRoot
                } else {
                    seen[id] = groups.count
                    groups.append((id, run, groupBytes, hasRoot))
                }
                i = j
            }
        }
    }
}
