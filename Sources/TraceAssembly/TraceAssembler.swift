import DequeModule
import LedgerCore

/// Buffers spans by trace ID and releases each trace as a unit (issue "Trace assembly"):
/// when its root has arrived and no span of it has arrived for the wait window; or, as
/// incomplete, when it has been open for the maximum age or the buffer is full.
/// A pure state machine: every method takes `now` (monotonic nanoseconds) and returns
/// the traces it releases, so tests drive time instead of sleeping.
public struct TraceAssembler: Sendable {
    public struct Limits: Sendable {
        /// Quiet time after the last span before a rooted trace is released (`--trace-wait`, default 5 s).
        public var waitNano: UInt64 = 5_000_000_000
        /// Longest a trace stays open (`--trace-max-age`, default 10 min).
        public var maxAgeNano: UInt64 = 600_000_000_000
        /// Most open traces (`--max-pending-traces`, default 100,000).
        public var maxTraces: Int = 100_000
        /// Most buffered span bytes, approximate (`--max-pending-bytes`, default 256 MiB).
        public var maxBytes: Int = 256 << 20
        /// Most spans held for one trace (`--max-spans-per-trace`, default 10,000).
        public var maxSpansPerTrace: Int = 10_000
        /// Most bytes held for one trace (`--max-trace-bytes`, default 16 MiB).
        public var maxTraceBytes: Int = 16 << 20

        public init() {}
        public static let `default` = Limits()
    }

    /// Why a trace left the buffer.
    public enum ReleaseReason: Sendable, Equatable {
        /// Root present and quiet for the wait window.
        case complete
        /// Spans of a trace already released earlier, quiet for the wait window.
        case late
        /// Open past the maximum age.
        case maxAge
        /// Forced out because the buffer was full.
        case evicted
        /// Released at shutdown.
        case shutdown
        /// Released as it stands because it reached the per-trace span or byte limit; its
        /// later spans join the same run as late spans.
        case traceLimit
    }

    public struct Released: Sendable {
        public var traceID: TraceID
        public var spans: [SpanRecord]
        public var reason: ReleaseReason
        public var hasRoot: Bool
        /// The spans join a run released earlier (late spans).
        public var late: Bool
        /// Lowest write-ahead-log sequence among the spans (0 when not logged).
        public var firstSequence: UInt64 = 0
    }

    /// The two flags last: 48 bytes a trace rather than 56 with padding after each, in a
    /// table of up to `maxTraces` (beside its 16-byte keys).
    @usableFromInline struct OpenTrace: Sendable {
        var spans: [SpanRecord]
        var firstSeen: UInt64
        var lastSeen: UInt64
        var bytes: Int
        /// Lowest write-ahead-log sequence among the trace's spans (0 when not logged).
        var firstSequence: UInt64
        var hasRoot: Bool
        var late: Bool
    }

    public private(set) var limits: Limits
    @usableFromInline var open: [TraceID: OpenTrace] = [:]
    /// (trace, deadline) in deadline order; stale entries are skipped when popped.
    var quietQueue: Deque<(TraceID, UInt64)> = []
    var ageQueue: Deque<(TraceID, UInt64)> = []
    public private(set) var bufferedBytes = 0
    public private(set) var bufferedSpans = 0

    public init(limits: Limits = .default) {
        self.limits = limits
    }

    @inlinable public var openTraces: Int { open.count }

    /// Adds spans of one trace. `late` says the trace was already released as a run.
    /// Returns traces forced out to stay within the limits.
    public mutating func ingest(_ spans: [SpanRecord], of traceID: TraceID, late: Bool, now: UInt64, sequence: UInt64 = 0) -> [Released] {
        // In place by index: iterating the array would copy each record (and its strings).
        let (bytes, hasRoot) = spans.withUnsafeBufferPointer { p in
            var bytes = 0, root = false
            for i in p.indices {
                bytes += p[i].approximateBytes
                root = root || p[i].isRoot
            }
            return (bytes, root)
        }
        return ingest(spans, of: traceID, late: late, now: now, sequence: sequence, bytes: bytes, hasRoot: hasRoot)
    }

    /// `ingest`, for spans whose bytes (`SpanRecord.approximateBytes`, summed) and root the
    /// caller already knows: a batch grouped by trace counts them as it groups.
    public mutating func ingest(_ spans: [SpanRecord], of traceID: TraceID, late: Bool, now: UInt64, sequence: UInt64, bytes: Int,
                                hasRoot: Bool) -> [Released] {
        guard !spans.isEmpty else { return [] }
        // The trace's size after this batch, for the per-trace limits (read here, not
        // looked up again: a second lookup also copied the trace and retained its spans).
        let (spanCount, traceBytes): (Int, Int)
        if let i = open.index(forKey: traceID) {
            // In place: a copy of the trace out of the dictionary would copy its span array.
            open.values[i].spans += spans
            open.values[i].lastSeen = now
            open.values[i].bytes += bytes
            if hasRoot { open.values[i].hasRoot = true }
            open.values[i].firstSequence = min(open.values[i].firstSequence, sequence)
            (spanCount, traceBytes) = (open.values[i].spans.count, open.values[i].bytes)
        } else {
            open[traceID] = OpenTrace(spans: spans, firstSeen: now, lastSeen: now, bytes: bytes, firstSequence: sequence, hasRoot: hasRoot,
                                      late: late)
            ageQueue.append((traceID, now + limits.maxAgeNano))
            compactAgeQueueIfStale()
            (spanCount, traceBytes) = (spans.count, bytes)
        }
        quietQueue.append((traceID, now + limits.waitNano))
        bufferedBytes += bytes
        bufferedSpans += spans.count
        var out: [Released] = []
        if spanCount >= limits.maxSpansPerTrace || traceBytes >= limits.maxTraceBytes {
            out.append(release(traceID, reason: .traceLimit))
        }
        while open.count > limits.maxTraces || (bufferedBytes > limits.maxBytes && open.count > 1) {
            guard let victim = oldestOpen(excluding: traceID) else { break }
            out.append(release(victim, reason: .evicted))
        }
        return out
    }

    /// Releases traces that are due at `now`, at most `limit` of them (so a caller can
    /// interleave other work between chunks).
    public mutating func releaseDue(now: UInt64, limit: Int = .max) -> [Released] {
        var out: [Released] = []
        while out.count < limit, let (id, deadline) = quietQueue.first, deadline <= now {
            quietQueue.removeFirst()
            guard let t = open[id], t.lastSeen + limits.waitNano <= now else { continue }
            if t.hasRoot { out.append(release(id, reason: .complete)) }
            else if t.late { out.append(release(id, reason: .late)) }
        }
        while out.count < limit, let (id, deadline) = ageQueue.first, deadline <= now {
            ageQueue.removeFirst()
            guard let t = open[id], t.firstSeen + limits.maxAgeNano <= now else { continue }
            out.append(release(id, reason: t.late ? .late : .maxAge))
        }
        return out
    }

    /// How long the oldest due trace has been due at `now` (0 when none is): after
    /// `releaseDue` with a limit, how far release lags behind. The earliest deadline still
    /// running is the oldest due one once it has passed (`nextDeadline`, which drops stale
    /// queue entries on the way).
    public mutating func releaseLag(now: UInt64) -> UInt64 {
        guard let due = nextDeadline(), due < now else { return 0 }
        return now - due
    }

    /// When the next trace falls due (the monotonic clock's nanoseconds; nil when none
    /// will by its quiet wait or maximum age), so the clock can sleep until then rather
    /// than a fixed tick. Stale queue entries, and the quiet entry of a rootless trace
    /// (which waits for its maximum age), are dropped on the way.
    public mutating func nextDeadline() -> UInt64? {
        var next: UInt64?
        while let (id, deadline) = quietQueue.first {
            guard let t = open[id], t.lastSeen + limits.waitNano == deadline, t.hasRoot || t.late else {
                quietQueue.removeFirst()
                continue
            }
            next = deadline
            break
        }
        while let (id, deadline) = ageQueue.first {
            guard let t = open[id], t.firstSeen + limits.maxAgeNano == deadline else { ageQueue.removeFirst(); continue }
            next = min(next ?? deadline, deadline)
            break
        }
        return next
    }

    /// Releases everything (shutdown).
    public mutating func releaseAll() -> [Released] {
        let ids = open.keys.sorted { open[$0]!.firstSeen < open[$1]!.firstSeen }
        let out = ids.map { release($0, reason: open[$0]!.late ? .late : .shutdown) }
        quietQueue.removeAll()
        ageQueue.removeAll()
        return out
    }

    /// Inlined, and by index: called across modules on the `Ledger`'s stored assembler it
    /// copied the whole assembler (its tables retained and released) for every trace of
    /// every batch, and `open[traceID]` copied the trace out to compare it with nil.
    @inlinable public func isOpen(_ traceID: TraceID) -> Bool { open.index(forKey: traceID) != nil }

    /// The lowest log sequence any open trace still needs (nil when nothing is open):
    /// the write-ahead log may not be checkpointed past it.
    public func oldestSequence() -> UInt64? { open.values.lazy.map(\.firstSequence).min() }

    /// How long the oldest open trace has been open, in nanoseconds (0 when none).
    public func oldestAge(now: UInt64) -> UInt64 {
        for (id, deadline) in ageQueue {
            if let t = open[id], t.firstSeen + limits.maxAgeNano == deadline { return now - min(now, t.firstSeen) }
        }
        return 0
    }

    /// Entries of the maximum-age queue, live or stale (for tests and metrics).
    public var ageQueueCount: Int { ageQueue.count }

    /// Drops the age queue's stale entries (traces released since) once they outnumber
    /// the live ones by far. Only its front is trimmed otherwise, and a trace that waits
    /// out its maximum age at the front (a root that never comes) would keep every later
    /// trace's entry for that long: at 20,000 traces a second for 10 minutes, 288 MB.
    /// Each pass removes more entries than it keeps, so the cost per trace stays constant.
    mutating func compactAgeQueueIfStale() {
        guard ageQueue.count > 2 * open.count + 1_024 else { return }
        let maxAge = limits.maxAgeNano
        var live: Deque<(TraceID, UInt64)> = []
        live.reserveCapacity(open.count)
        for (id, deadline) in ageQueue {
            if let i = open.index(forKey: id), open.values[i].firstSeen + maxAge == deadline { live.append((id, deadline)) }
        }
        ageQueue = live
    }

    mutating func oldestOpen(excluding keep: TraceID) -> TraceID? {
        var i = 0
        while i < ageQueue.count {
            let (id, _) = ageQueue[i]
            if let t = open[id], id != keep, t.firstSeen + limits.maxAgeNano == ageQueue[i].1 {
                return id
            }
            if open[id] == nil { ageQueue.remove(at: i); continue }
            i += 1
        }
        return nil
    }

    mutating func release(_ id: TraceID, reason: ReleaseReason) -> Released {
        let t = open.removeValue(forKey: id)!
        bufferedBytes -= t.bytes
        bufferedSpans -= t.spans.count
        let (spans, repeated) = Self.firstOfEachSpanID(t.spans)
        repeatedSpans += Int64(repeated)
        return Released(traceID: id, spans: spans, reason: reason, hasRoot: t.hasRoot, late: t.late, firstSequence: t.firstSequence)
    }

    /// Spans dropped at release because the trace already held a span with their ID.
    public private(set) var repeatedSpans: Int64 = 0

    /// The spans with each span ID kept once, the first to arrive (and how many were
    /// dropped). An exporter sends a batch again when it did not see the answer (a timeout,
    /// a dropped connection), though it may have been taken; counted twice, its LLM calls
    /// would be charged twice. The array itself comes back when no ID repeats (the usual
    /// case); a trace of a few dozen spans is checked pairwise, a larger one with a set.
    public static func firstOfEachSpanID(_ spans: [SpanRecord]) -> (spans: [SpanRecord], dropped: Int) {
        spans.withUnsafeBufferPointer { p -> ([SpanRecord], Int) in
            var repeats = false
            if p.count <= 32 {
                search: for i in p.indices.dropFirst() {
                    for j in 0..<i where p[j].spanID == p[i].spanID {
                        repeats = true
                        break search
                    }
                }
            } else {
                var seen = Set<SpanID>(minimumCapacity: p.count)
                for i in p.indices where !seen.insert(p[i].spanID).inserted {
                    repeats = true
                    break
                }
            }
            guard repeats else { return (spans, 0) }
            var seen = Set<SpanID>(minimumCapacity: p.count)
            var kept: [SpanRecord] = []
            kept.reserveCapacity(p.count - 1)
            for i in p.indices where seen.insert(p[i].spanID).inserted { kept.append(p[i]) }
            return (kept, p.count - kept.count)
        }
    }
}
