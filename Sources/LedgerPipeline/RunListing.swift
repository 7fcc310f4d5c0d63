import LedgerCore
import LedgerStore

/// `GET /api/v1/runs` over runs that left memory: the newest `limit` runs of a window
/// among the index segments on disk, reading as few segments as the answer allows.
///
/// Every run in a segment started at or before the segment's newest start (the trace
/// locator keeps it per segment). Reading segments by newest start, latest first, once
/// `limit` runs are found that started at or after some time T, no segment whose newest
/// start is before T can hold a run that belongs in the answer, nor a newer version of
/// one: a run's later entries (a verdict, a late span) are in segments holding that run,
/// whose newest start is at least its own start.
enum RunListing {
    struct Filter: Sendable {
        var fromUnixNano: Int64
        var toUnixNano: Int64
        var workflow: String?
        var outcome: Outcome?

        func inWindow(_ e: TraceIndexEntry) -> Bool { e.startUnixNano >= fromUnixNano && e.startUnixNano < toUnixNano }
        func matches(_ e: TraceIndexEntry) -> Bool {
            inWindow(e) && (workflow == nil || e.workflow == workflow) && (outcome == nil || e.outcome == outcome)
        }
    }

    static func sortNewestFirst(_ entries: inout [TraceIndexEntry]) {
        entries.sort { ($0.startUnixNano, $0.traceID.hex) > ($1.startUnixNano, $1.traceID.hex) }
    }

    /// Runs in the window on disk, except those in `skipping` (in memory: their entry there
    /// is the latest), each by its latest entry, newest first, at most `limit` — and how
    /// many segments were read. Unreadable segments are skipped (start-up reports them).
    /// `memoryStarts`: starts of the newest matching runs in memory (up to `limit`), which
    /// count toward the answer when deciding to stop.
    static func onDisk(_ directory: DataDirectory, segments: [RunSegmentMergePlan.Segment], filter: Filter, limit: Int,
                       skipping: Set<TraceID>, memoryStarts: [Int64] = []) -> (entries: [TraceIndexEntry], segmentsRead: Int) {
        // Latest entry per trace in the window: from the highest flush sequence holding it.
        var latest: [TraceID: (sequence: UInt64, entry: TraceIndexEntry)] = [:]
        var read = 0
        let ordered = segments.sorted { ($0.newestStartUnixNano, $0.sequence) > ($1.newestStartUnixNano, $1.sequence) }
        for (i, segment) in ordered.enumerated() {
            for e in directory.indexEntries(sequence: segment.sequence) where filter.inWindow(e) && !skipping.contains(e.traceID) {
                if let known = latest[e.traceID], known.sequence > segment.sequence { continue }
                latest[e.traceID] = (segment.sequence, e) // within a segment the last entry wins
            }
            read += 1
            // Whether to stop is looked at after 1, 2, 4, 8… segments (each look walks every
            // run found so far): at most twice the segments needed are read.
            guard read & (read - 1) == 0, latest.count + memoryStarts.count >= limit, i + 1 < ordered.count else { continue }
            let next = ordered[i + 1].newestStartUnixNano
            let fromMemory = memoryStarts.lazy.filter { $0 > next }.count
            if fromMemory + latest.values.lazy.filter({ $0.entry.startUnixNano > next && filter.matches($0.entry) }).count >= limit { break }
        }
        var answer = latest.values.map(\.entry).filter(filter.matches)
        sortNewestFirst(&answer)
        return (Array(answer.prefix(limit)), read)
    }
}
