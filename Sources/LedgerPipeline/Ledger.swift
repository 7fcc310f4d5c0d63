import Attribution
import DequeModule
import DurableFiles
import LedgerCore
import LedgerStore
import Logging
import ProtoWire
import Rollups
import Synchronization
import TraceAssembly
import WriteAheadLog

/// Counters of the pipeline, for logs and `/metrics`.
public struct LedgerStats: Sendable {
    public var spansAccepted: Int64 = 0
    public var runsReleased: Int64 = 0
    public var runsIncomplete: Int64 = 0
    public var tracesEvicted: Int64 = 0
    public var tracesReleasedAtMaxAge: Int64 = 0
    public var tracesAtTraceLimit: Int64 = 0
    public var lateSpanGroups: Int64 = 0
    /// Spans dropped because their run already held a span with their ID (an export sent
    /// again): in assembly, or arriving late for a released run.
    public var repeatedSpans: Int64 = 0
    public var flushes: Int64 = 0
    /// Flushes written on idle CPU time (`flush(idle:)`).
    public var idleFlushes: Int64 = 0
    /// Idle flushes moved to normal priority because the next was due before they ended.
    public var promotedFlushes: Int64 = 0
    public var flushFailures: Int64 = 0
    public var damagedSegments: Int64 = 0
    public var pendingTraces: Int = 0
    public var pendingSpans: Int = 0
    public var pendingBytes: Int = 0
    public var unflushedSpans: Int = 0
    public var refusedBatches: Int64 = 0
    public var replayedRecords: Int64 = 0
    public var replayedSpans: Int64 = 0
    public var replaySkippedSpans: Int64 = 0
    public var corruptLogRecords: Int64 = 0
    public var quarantinedRecords: Int64 = 0
    public var checkpointSequence: UInt64 = 0
    public var verdictsApplied: Int64 = 0
    public var verdictCorrections: Int64 = 0
    public var verdictsHeld: Int = 0
    public var verdictsRefused: Int64 = 0
    public var verdictsDropped: Int64 = 0
    public var reworkChanges: Int64 = 0
    public var compactions: Int64 = 0
    public var compactionFailures: Int64 = 0
    public var compactedRecordsDropped: Int64 = 0
    /// Flushes whose run trees and index entries passed trace retention and were removed.
    public var runSegmentsExpired: Int64 = 0
    /// Runs listed in memory under their task ID (for rework, up to `maxTaskRuns`), and
    /// tasks with at least one of them.
    public var taskRuns = 0
    public var tasks = 0
    /// Runs dropped from their task's list by trace retention.
    public var taskRunsExpired: Int64 = 0
    /// Tasks whose runs were looked up on disk (some were not listed), and the index
    /// segments read for them.
    public var taskDiskLookups: Int64 = 0
    public var taskSegmentsRead: Int64 = 0
    /// Bytes of the filter of tasks with runs not listed, and runs dropped from the lists
    /// past `maxTaskRuns`.
    public var taskFilterBytes: Int = 0
    public var taskRunsDropped: Int64 = 0
    /// Flushes whose index and run-tree files were merged into a bigger pair, the pairs
    /// written, and merges that failed (the files stay as they were).
    public var runSegmentsMerged: Int64 = 0
    public var mergedRunSegmentsWritten: Int64 = 0
    public var runSegmentMergeFailures: Int64 = 0
    /// Index segments read to list runs no longer in memory (`GET /api/v1/runs`).
    public var runListSegmentsRead: Int64 = 0
    /// Runs whose index entry is in memory, and runs left for disk (`maxIndexedRuns`).
    public var indexedRuns: Int = 0
    public var runsOnDiskOnly: Int = 0
    /// Lookups of runs not in memory that read the disk, and those that found the run.
    public var diskLookups: Int64 = 0
    public var diskLookupHits: Int64 = 0
    /// Flushes read for verdicts (`planReads`), once per request, off the actor or on it.
    public var batchSegmentsRead: Int64 = 0
    /// Runs read off the actor (for verdicts or a trace view) and read again on it,
    /// because a flush, merge or expiry changed the data directory meanwhile.
    public var runReadsDiscarded: Int64 = 0
    /// Point lookups served by what the lookup cache keeps, those that read a file, and
    /// the bytes kept (`lookupCacheBytes`).
    public var lookupCacheHits: Int64 = 0
    public var lookupCacheMisses: Int64 = 0
    public var lookupCacheBytes = 0
    /// Bytes of the trace locator's filters.
    public var locatorBytes: Int = 0
    /// Seconds the query-cache warm-up after start took; nil until it finished.
    public var queryCacheWarmSeconds: Double?
}

/// One run as `spanledger trace` explains it.
public struct RunExplanation: Sendable {
    public var entry: TraceIndexEntry
    public var spans: [StoredSpan]
}

/// The pipeline from decoded spans to rollups (../shared/DESIGN.md data flow):
/// assemble trees → attribute cost → roll up → store. One actor owns the state; file
/// writes happen outside it (`flush`), so ingest never waits on the disk.
public actor Ledger: SpanConsumer {
    public let configuration: LedgerConfiguration
    let directory: DataDirectory
    let attributor: RunAttributor
    let logger: Logger
    let monotonicNow: @Sendable () -> UInt64
    let wallNow: @Sendable () -> Int64

    var assembler: TraceAssembler
    /// Everything up to the last flush taken: disk plus a flush being written. Queries
    /// read it with `unflushed`, which joins it when the next flush is taken, so each
    /// release chunk's sums are merged into one table, not two.
    var table = RollupTable()
    /// Changes since the last flush taken.
    var unflushed = RollupTable()
    /// The newest runs (`maxIndexedRuns`); it also tracks the entries changed since the
    /// last flush. Older runs are on disk, found through `locator`.
    var index = RunIndex()
    /// Which flushes hold which traces' entries and trees.
    var locator = TraceLocator()
    /// Flushes being written: their taken index changes may come back (`restore`), so no
    /// chunk is evicted meanwhile.
    var flushesInProgress = 0
    /// Packed run trees not yet flushed (a run's tree is packed when it is prepared).
    var unflushedDetails: [PackedTree] = []
    var sharedLists = SharedNameLists()
    /// Spans in `unflushedDetails`: the clock flushes early when they pass
    /// `configuration.maxUnflushedSpans`.
    public private(set) var unflushedSpans = 0

    /// Whether assembly holds under half of its trace and byte limits: memory to spare
    /// for a flush that takes its time (`flush(idle:)`).
    public var assemblyHasHeadroom: Bool {
        let limits = configuration.assembly
        return assembler.openTraces * 2 < limits.maxTraces && assembler.bufferedBytes * 2 < limits.maxBytes
    }
    /// How long the clock may sleep before its next release round: until the next trace
    /// falls due, within [`minimumReleaseGapNano`, `tickIntervalNano`].
    public func nanosUntilNextDue() -> UInt64 {
        let lo = configuration.minimumReleaseGapNano, hi = max(lo, configuration.tickIntervalNano)
        guard let deadline = assembler.nextDeadline() else { return hi }
        let now = monotonicNow()
        return deadline <= now ? lo : min(hi, max(lo, deadline - now))
    }

    var recentTrees: [TraceID: PackedTree] = [:]
    var recentOrder: Deque<TraceID> = []
    var nextSequence: UInt64
    public internal(set) var stats = LedgerStats()
    /// The write-ahead log, when ingest is durable (`DurableIngest`).
    let wal: WriteAheadLog?
    /// Log records appended but not yet consumed hold the checkpoint back.
    public let inflight = InflightSequences()
    /// How far release lags behind; ingest waits on it (`DurableIngest`).
    public nonisolated let backlog: ReleaseBacklog
    /// Highest log sequence consumed so far.
    var lastConsumedSequence: UInt64 = 0
    var lastCheckpoint: UInt64 = 0
    /// Told about every run released from now on (alerts). Set after recovery, so runs
    /// replayed from the log are not counted twice by the alert windows.
    var activityObserver: (any RunActivityObserver)?
    /// Verdicts for traces not released yet (or not seen yet), latest per trace.
    var heldVerdicts: [TraceID: OutcomeRecord] = [:]
    var heldDirty = false
    /// Run trees of the flush being written, for corrections in the meantime.
    var flushingDetails: [PackedTree] = []
    /// Index entries and trees of runs on disk, read for the batch of verdicts being
    /// checked or applied (`withRunsOf`), and the traces looked for: one read of each
    /// flush's files for the whole batch. Empty between batches.
    var batchEntries: [TraceID: TraceIndexEntry] = [:]
    var batchTrees: [TraceID: [StoredSpan]] = [:]
    var batchLookedUp: Set<TraceID> = []
    /// Runs per task ID, for rework (those within trace retention, up to `maxTaskRuns`).
    var tasks = TaskRuns()
    /// Traces released by the clock and being attributed off the actor, with the lowest
    /// log sequence of their spans; late spans of them wait in `lateWhileAttributing`.
    var attributing: [TraceID: UInt64] = [:]
    var lateWhileAttributing: [TraceID: [TraceAssembler.Released]] = [:]
    /// Partial aggregates of whole days for long-window queries.
    let queryCache = PartialAggregateCache()
    /// The highest flush sequence committed to disk (compaction covers up to it).
    var lastCommittedFlush: UInt64 = 0
    /// A merge of small flushes' run files is running (`mergeRunSegments`).
    var mergingRunSegments = false

    public func setActivityObserver(_ observer: (any RunActivityObserver)?) {
        activityObserver = observer
    }

    /// Opens the data directory and loads what it holds.
    public init(configuration: LedgerConfiguration, prices: PriceTable, logger: Logger, wal: WriteAheadLog? = nil,
                monotonicNow: @escaping @Sendable () -> UInt64 = WallClock.monotonicNano,
                wallNow: @escaping @Sendable () -> Int64 = WallClock.nowUnixNano) throws {
        self.wal = wal
        self.configuration = configuration
        self.directory = DataDirectory(path: configuration.dataDirectory,
                                       lookupCache: configuration.lookupCacheBytes > 0 ? SegmentCache(capacityBytes: configuration.lookupCacheBytes) : nil)
        self.attributor = RunAttributor(prices: prices)
        self.logger = logger
        self.monotonicNow = monotonicNow
        self.wallNow = wallNow
        self.assembler = TraceAssembler(limits: configuration.assembly)
        self.backlog = ReleaseBacklog(limitNano: configuration.maxReleaseLagNano)
        let removed = try directory.prepare()
        for name in removed { logger.warning("removed a temporary file or a file of an unfinished flush", metadata: ["file": "\(name)"]) }
        let (table, damagedRollups) = directory.loadRollups()
        // Segment by segment, summaries only (trace, start, task, outcome): every flush goes into
        // the locator and rework's task lists. Then the newest segments holding
        // `maxIndexedRuns` entries are read whole into memory; the runs of older ones stay
        // on disk, found through the locator as if evicted. (Reading every entry whole and
        // evicting all but the newest took 3.8 µs a run at start.)
        var index = RunIndex(chunkShift: RunIndex.chunkShift(forLimit: configuration.maxIndexedRuns))
        var locator = TraceLocator()
        var tasks = TaskRuns(maxRuns: configuration.maxTaskRuns)
        let retainedFrom = wallNow() - configuration.traceRetentionNano
        var segments: [(sequence: UInt64, entries: Int)] = []
        // Every task-tagged run within retention is listed for rework with the outcome its
        // latest summary holds, as a run whose entry left memory (up to `maxTaskRuns`:
        // the earliest go as the lists pass it).
        var damagedIndex = directory.forEachIndexSummary { seq, summaries in
            var taskKeys = Set<TraceID>()
            for s in summaries where !s.taskID.isEmpty && s.startUnixNano >= retainedFrom {
                taskKeys.insert(TraceLocator.taskKey(s.taskID))
                tasks.listFromDisk(s)
            }
            locator.add(sequence: seq, ids: summaries.map(\.traceID), taskKeys: Array(taskKeys),
                        newestStartUnixNano: summaries.lazy.map(\.startUnixNano).max() ?? .min)
            segments.append((seq, summaries.count))
        }
        tasks.cutToLimit()
        var firstLoaded = segments.count, loadedEntries = 0
        while firstLoaded > 0 && loadedEntries < configuration.maxIndexedRuns {
            firstLoaded -= 1
            loadedEntries += segments[firstLoaded].entries
        }
        index.countOnDiskOnly(segments[..<firstLoaded].reduce(0) { $0 + $1.entries })
        for (seq, _) in segments[firstLoaded...] {
            do {
                for e in try directory.indexSegmentEntries(sequence: seq) { index.load(e) }
            } catch {
                damagedIndex.append(error)
            }
            tasks.leftMemory(Self.evictOldest(&index, keeping: configuration.maxIndexedRuns))
        }
        for e in damagedRollups + damagedIndex { logger.error("skipped damaged segment", metadata: ["error": "\(e)"]) }
        self.table = table
        self.index = index
        self.locator = locator
        self.tasks = tasks
        self.nextSequence = directory.nextSequence()
        self.lastCommittedFlush = directory.lastCommittedFlush()
        self.stats.damagedSegments = Int64(damagedRollups.count + damagedIndex.count)
        do {
            for o in try directory.loadHeldVerdicts() { self.heldVerdicts[o.traceID] = o }
        } catch {
            logger.error("held verdicts unreadable; verdicts logged since the last checkpoint are replayed, older held ones are lost",
                         metadata: ["error": "\(error)"])
        }
        logger.info("data directory loaded", metadata: [
            "path": "\(configuration.dataDirectory)", "rollup_records": "\(table.count)", "runs_in_memory": "\(index.residentCount)",
            "runs_on_disk_only": "\(index.evictedCount)",
        ])
    }

    // MARK: Ingest

    public func consume(_ spans: consuming [SpanRecord]) throws(IngestRefusal) {
        let batch = TraceGroups(consume spans)
        let reservation = try admit(batch)
        consume(batch, sequence: 0, reservation: reservation)
    }

    /// Capacity set aside for an admitted batch until it is consumed (or cancelled when
    /// its log append fails), so concurrent batches cannot all pass admission and overrun
    /// the buffer while their appends are in flight.
    public struct Reservation: Sendable {
        var bytes: Int
        var traces: Int
    }

    var reservedBytes = 0
    var reservedTraces = 0

    public func cancel(_ r: Reservation) {
        reservedBytes -= r.bytes
        reservedTraces -= r.traces
    }

    /// Adds spans (already in the log at `sequence`, or 0 when not logged) to assembly.
    /// Never refuses: admission happens before the log append (`admit`).
    public func consume(_ spans: [SpanRecord], sequence: UInt64, reservation: Reservation? = nil) {
        consume(TraceGroups(spans), sequence: sequence, reservation: reservation)
    }

    /// As `consume(_:sequence:reservation:)`, with the batch already grouped by trace
    /// (`DurableIngest` groups it on the request's task, before it reaches the actor).
    public func consume(_ batch: TraceGroups, sequence: UInt64, reservation: Reservation? = nil) {
        if let reservation { cancel(reservation) }
        guard batch.spanCount > 0 else { return }
        let now = monotonicNow()
        for g in batch.groups {
            let late = !assembler.isOpen(g.traceID) && hasRun(g.traceID)
            for released in assembler.ingest(g.spans, of: g.traceID, late: late, now: now, sequence: sequence, bytes: g.bytes, hasRoot: g.hasRoot) {
                process(released)
            }
        }
        for o in batch.feedback { _ = apply(o) }
        lastConsumedSequence = max(lastConsumedSequence, sequence)
        stats.spansAccepted += Int64(batch.spanCount)
    }

    public func admit(_ spans: [SpanRecord]) throws(IngestRefusal) -> Reservation {
        try admit(TraceGroups(spans))
    }

    /// Refuses a batch (retryably) when the assembly buffer is full of traces still inside
    /// their wait window: evicting those would cut live traces apart, so the client is
    /// asked to slow down instead. A buffer full of old traces evicts them (incomplete).
    public func admit(_ batch: TraceGroups) throws(IngestRefusal) -> Reservation {
        let limits = configuration.assembly
        let incoming = batch.bytes
        let newTraces = batch.groups.reduce(0) { $0 + (assembler.isOpen($1.traceID) ? 0 : 1) }
        let full = assembler.bufferedBytes + reservedBytes + incoming > limits.maxBytes
            || assembler.openTraces + reservedTraces + newTraces > limits.maxTraces
        if full && assembler.oldestAge(now: monotonicNow()) < limits.waitNano {
            stats.refusedBatches += 1
            throw IngestRefusal(message: "trace assembly buffer is full (\(assembler.openTraces) open traces, \(assembler.bufferedBytes) bytes); retry later",
                                retryAfterSeconds: max(1, Int(limits.waitNano / 1_000_000_000)))
        }
        reservedBytes += incoming
        reservedTraces += newTraces
        return Reservation(bytes: incoming, traces: newTraces)
    }

    /// Releases up to `limit` traces whose wait window or maximum age has passed and
    /// returns how many it released. Callers loop while it returns `limit`, so ingest
    /// interleaves with a large release instead of waiting for all of it.
    /// (The service does the same in three steps, attributing off the actor.)
    @discardableResult
    public func tick(limit: Int = .max) -> Int {
        let (toAttribute, released) = takeDue(limit: limit)
        for r in toAttribute { commit(prepare(r)) }
        return released
    }

    /// Releases every pending trace (shutdown), then flushes.
    public func drain() async throws {
        for released in assembler.releaseAll() { process(released) }
        try await flush()
    }

    // MARK: Attribution and roll-up

    /// A run attributed, its tree built and its rollup records computed, as it stands
    /// before the actor's state (held verdicts, rework) is consulted.
    public struct PreparedRun: Sendable {
        var released: TraceAssembler.Released
        var run: AttributedRun
        public internal(set) var entry: TraceIndexEntry
        /// The tree as memory keeps it once the run is committed, packed straight from the
        /// attributed run: no `StoredSpan` array is built (and freed) for it.
        public internal(set) var packed: PackedTree
        public internal(set) var records: [RunRecord]
    }

    func process(_ released: TraceAssembler.Released) {
        if released.late, let entry = runEntry(released.traceID) {
            countRelease(released.reason)
            processLate(released.spans, entry: entry)
        } else if released.late, attributing[released.traceID] != nil {
            // Late spans of a run being attributed off the actor: they join it once it is recorded.
            lateWhileAttributing[released.traceID, default: []].append(released)
        } else {
            commit(prepare(released))
        }
    }

    /// The trace was released as a run: recorded (in memory or on disk), or being
    /// attributed off the actor. Its further spans are late spans of that run.
    func hasRun(_ id: TraceID) -> Bool { attributing[id] != nil || runEntry(id) != nil }

    /// Whether the run's index entry is in memory (not on disk only).
    func entryInMemory(_ id: TraceID) -> Bool { index[id] != nil }

    /// A recorded run's index entry, from memory or else from disk; none once the run is
    /// past trace retention, whether or not its entry has left memory yet.
    func runEntry(_ id: TraceID) -> TraceIndexEntry? {
        guard let e = index[id] ?? entryOnDisk(id), e.startUnixNano >= wallNow() - configuration.traceRetentionNano else { return nil }
        return e
    }

    /// The entry of a run no longer in memory: the locator's filters rule out nearly every
    /// trace never recorded without reading anything; a "maybe" decodes the one or two
    /// index segments that may hold it.
    func entryOnDisk(_ id: TraceID) -> TraceIndexEntry? {
        guard index.evictedCount > 0, locator.mayContain(id) else { return nil }
        if batchLookedUp.contains(id) { return batchEntries[id] }
        stats.diskLookups += 1
        guard let e = directory.loadEntry(id, candidates: locator.candidates(id)) else { return nil }
        stats.diskLookupHits += 1
        return e
    }

    /// Takes up to `limit` due traces out of assembly. Late spans of recorded runs are
    /// joined here; the rest are returned for `prepare` (off the actor) and `commit`.
    /// Until committed they count as `attributing`: their late spans wait, and the
    /// checkpoint stays below their log records.
    public func takeDue(limit: Int) -> (toAttribute: [TraceAssembler.Released], released: Int) {
        let now = monotonicNow()
        let due = assembler.releaseDue(now: now, limit: limit)
        backlog.update(lagNano: due.count < limit ? 0 : assembler.releaseLag(now: now))
        var out: [TraceAssembler.Released] = []
        out.reserveCapacity(due.count)
        for r in due {
            if r.late && hasRun(r.traceID) {
                process(r)
            } else {
                attributing[r.traceID] = r.firstSequence
                out.append(r)
            }
        }
        return (out, due.count)
    }

    /// Attribution, tree and rollup records of a released trace: pure, so the clock runs
    /// it off the actor while requests keep the actor busy.
    public nonisolated func prepare(_ released: TraceAssembler.Released) -> PreparedRun {
        Self.prepare(released, attributor: attributor)
    }

    public static func prepare(_ released: TraceAssembler.Released, attributor: RunAttributor) -> PreparedRun {
        var alone: ActivitySums?
        return prepare(released, attributor: attributor, activities: &alone)
    }

    /// `activities`, when there are some, take the run's activity under its prepared
    /// outcome (here, where the run is a local value: added from a prepared run read out of
    /// the chunk's buffer, the whole attributed run was copied for the call).
    static func prepare(_ released: TraceAssembler.Released, attributor: RunAttributor, activities: inout ActivitySums?) -> PreparedRun {
        let run = attributor.attribute(traceID: released.traceID, spans: released.spans)
        let entry = Self.entry(of: run, verdictSource: run.verdict == nil ? .none : .spans, held: nil)
        activities?.add(run, outcome: entry.outcome, rework: false)
        var packer = TreePacker(traceID: released.traceID, expectedSpans: run.spans.count)
        Self.emitTree(run, into: &packer)
        return PreparedRun(released: released, run: run, entry: entry, packed: packer.finish(), records: Self.runRecords(entry, run: run))
    }

    /// Records prepared runs: a held verdict or rework changes the entry (and records).
    public func commit(_ prepared: [PreparedRun]) {
        for p in prepared { commit(p) }
    }

    /// The prepared runs of one release chunk and the sum of their rollup records by key,
    /// made off the actor: the actor then adds each key once per chunk (runs of a chunk
    /// mostly share minute, workflow and model) instead of every record of every run.
    /// Their activities are summed the same way, under the outcomes they were prepared with.
    public struct PreparedChunk: Sendable {
        public internal(set) var runs: [PreparedRun]
        var records: [RollupKey: RollupMeasures]
        var activities: ActivitySums
    }

    public nonisolated func prepare(chunk: [TraceAssembler.Released]) -> PreparedChunk {
        var activities: ActivitySums? = ActivitySums()
        let runs = chunk.map { Self.prepare($0, attributor: attributor, activities: &activities) }
        var records: [RollupKey: RollupMeasures] = [:]
        records.reserveCapacity(runs.count * 2)
        // In place: iterating the runs copied each prepared run (a dozen references retained
        // and released), and iterating its records copied each key and its measures.
        runs.withUnsafeBufferPointer { prepared in
            for n in prepared.indices {
                prepared[n].records.withUnsafeBufferPointer { own in
                    for r in own.indices {
                        if let i = records.index(forKey: own[r].key) { records.values[i].merge(own[r].measures) } else { records[own[r].key] = own[r].measures }
                    }
                }
            }
        }
        return PreparedChunk(runs: runs, records: records, activities: activities ?? ActivitySums())
    }

    /// Records a prepared chunk: its summed records first, then each run, which corrects
    /// the sum by (new − prepared) where a held verdict or rework changed its records.
    public func commit(_ chunk: PreparedChunk) {
        unflushed.add(contentsOf: chunk.records)
        var activities = chunk.activities
        // In place: `chunk.runs[i]` copied each prepared run (a dozen references retained,
        // then released) to lend it to `commit`.
        chunk.runs.withUnsafeBufferPointer { runs in
            for i in runs.indices { commit(runs.baseAddress! + i, recordsAdded: true, activities: &activities) }
        }
        handOn(activities)
    }

    /// Borrowed, not copied: a prepared run holds a dozen references (spans, tree, names),
    /// and a copy per run retained and released every one of them.
    func commit(_ p: borrowing PreparedRun) {
        var activities = ActivitySums()
        withUnsafePointer(to: p) { commit($0, recordsAdded: false, activities: &activities) }
        handOn(activities)
    }

    /// Committed runs' activities to the observer, in one call, released now.
    private func handOn(_ activities: ActivitySums) {
        guard let o = activityObserver else { return }
        let summed = activities.activities(releasedUnixNano: wallNow())
        if !summed.isEmpty { o.observe(contentsOf: summed) }
    }

    /// Commits one run (its records already added with its chunk's sums when
    /// `recordsAdded`, its activity too, under the outcome it was prepared with); its
    /// activity, for the observer, is added to `activities` or moved to its final outcome
    /// and rework.
    /// The run is read in place through a pointer: handed the run itself, a caller reading
    /// it out of an array (or a buffer) copied it first, a dozen references retained and
    /// released.
    func commit(_ prepared: UnsafePointer<PreparedRun>, recordsAdded: Bool, activities: inout ActivitySums) {
        let id = prepared.pointee.released.traceID
        var entry = prepared.pointee.entry
        attributing[id] = nil
        countRelease(prepared.pointee.released.reason)
        // Both maps are empty nearly always: checked first, no hash of the ID.
        if !heldVerdicts.isEmpty, let h = heldVerdicts.removeValue(forKey: id) {
            heldDirty = true
            if h.supersedes(time: prepared.pointee.run.verdict?.timeUnixNano ?? .min, outcome: prepared.pointee.run.verdict?.outcome ?? .pending) {
                var run = prepared.pointee.run
                run.verdict = Verdict(outcome: h.outcome, timeUnixNano: h.timeUnixNano)
                entry = Self.entry(of: run, verdictSource: h.source, held: h)
                stats.verdictsApplied += 1
            }
        }
        stats.runsReleased += 1
        if prepared.pointee.run.incomplete { stats.runsIncomplete += 1 }
        entry.rework = isRework(entry)
        // The records key on outcome and carry rework: recomputed when either differs from the prepared ones.
        let changed = entry.rework || entry.outcome != prepared.pointee.entry.outcome
        if changed {
            for r in Self.runRecords(entry, run: prepared.pointee.run) { add(r.key, r.measures) }
            if recordsAdded { for r in prepared.pointee.records { add(r.key, r.measures.negated) } }
        } else if !recordsAdded {
            for r in prepared.pointee.records { add(r.key, r.measures) }
        }
        let (outcome, rework) = (entry.outcome, entry.rework)
        if entry.taskID.isEmpty {
            // Moved into the index: a copy retained each of its strings and lists again.
            record(consume entry, tree: prepared.pointee.packed)
        } else {
            record(entry, tree: prepared.pointee.packed)
            noteTask(entry)
        }
        if activityObserver != nil {
            if !recordsAdded {
                activities.add(prepared.pointee.run, outcome: outcome, rework: rework)
            } else if changed {
                activities.add(prepared.pointee.run, outcome: prepared.pointee.entry.outcome, rework: false, sign: -1)
                activities.add(prepared.pointee.run, outcome: outcome, rework: rework)
            }
        }
        if !lateWhileAttributing.isEmpty, let late = lateWhileAttributing.removeValue(forKey: id) {
            for r in late { process(r) }
        }
    }

    func countRelease(_ reason: TraceAssembler.ReleaseReason) {
        switch reason {
        case .evicted: stats.tracesEvicted += 1
        case .maxAge: stats.tracesReleasedAtMaxAge += 1
        case .traceLimit: stats.tracesAtTraceLimit += 1
        default: break
        }
    }

    /// The index entry of an attributed run (totals, verdict and its source).
    /// (Rework is left false: it depends on the task's other runs, known on the actor.)
    static func entry(of run: AttributedRun, verdictSource: VerdictSource, held: OutcomeRecord?) -> TraceIndexEntry {
        var entry = TraceIndexEntry(
            traceID: run.traceID, workflow: run.workflow, service: run.service, startUnixNano: run.startUnixNano,
            durationNano: run.durationNano, outcome: run.outcome, costMicros: 0, llmCalls: 0, inputTokens: 0, outputTokens: 0,
            unpricedTokens: 0, spanCount: 0, incomplete: run.incomplete, models: run.calls.isEmpty ? [""] : run.models,
            toolCalls: 0, retries: 0, errors: 0)
        entry.add(run)
        entry.agents = run.agents
        entry.taskID = run.taskID ?? ""
        entry.verdictTimeUnixNano = run.verdict?.timeUnixNano ?? 0
        entry.verdictSource = verdictSource
        if let held {
            entry.reviewer = held.reviewer
            entry.reviewerKind = held.reviewerKind
        }
        return entry
    }

    /// Spans that arrived after their run was released join the same run: their calls
    /// are charged to the run's minute, workflow, outcome and service; the run is not
    /// counted again (a model or agent new to the run counts the run under it). The run's
    /// records are rebuilt from its whole tree, old and new: the difference is added.
    func processLate(_ arrived: [SpanRecord], entry: TraceIndexEntry) {
        let oldTree = tree(of: entry.traceID)
        var inherited: [SpanID: String] = [:]
        for s in oldTree { inherited[s.spanID] = s.agent }
        // Spans the run already has (an export sent again after its run was released)
        // are not counted twice.
        let spans = arrived.filter { inherited[$0.spanID] == nil }
        stats.repeatedSpans += Int64(arrived.count - spans.count)
        guard !spans.isEmpty else { return }
        stats.lateSpanGroups += 1
        var run = AttributedRun(traceID: entry.traceID, workflow: entry.workflow, service: entry.service, startUnixNano: entry.startUnixNano,
                                durationNano: entry.durationNano, verdict: nil, incomplete: false, spans: spans, calls: [], toolCalls: 0, otherErrors: 0)
        attributor.attributeCalls(&run, inheritedAgents: inherited)
        var updated = entry
        var models = entry.models
        if !run.calls.isEmpty { models.removeAll { $0 == "" } }
        for m in run.models where !models.contains(m) { models.append(m) }
        updated.models = models.isEmpty ? [""] : models
        for a in run.agents where !updated.agents.contains(a) { updated.agents.append(a) }
        updated.add(run)
        let lateTree = Self.tree(run)
        addRecords(of: entry, tree: oldTree, sign: -1)
        addRecords(of: updated, tree: oldTree + lateTree, sign: 1)
        record(updated, tree: PackedTree(traceID: entry.traceID, spans: lateTree), wholeTree: PackedTree(traceID: entry.traceID, spans: oldTree + lateTree))
        if !run.calls.isEmpty {
            run.workflow = entry.workflow
            if let o = activityObserver {
                var a = RunActivity(run: run, runs: 0, releasedUnixNano: wallNow())
                a.outcome = entry.outcome
                o.observe(a)
            }
        }
        if let v = spans.compactMap(\.verdict).max(by: { ($0.timeUnixNano, $0.outcome) < ($1.timeUnixNano, $1.outcome) }) {
            _ = apply(OutcomeRecord(traceID: entry.traceID, outcome: v.outcome, timeUnixNano: v.timeUnixNano, source: .lateSpan))
        }
    }

    /// The run's spans as stored-tree spans (late spans joining an older tree).
    static func tree(_ run: AttributedRun) -> [StoredSpan] {
        var list = StoredSpanList(capacity: run.spans.count)
        emitTree(run, into: &list)
        return list.spans
    }

    /// Each span of the run as the stored tree keeps it (offsets from the run's start, an
    /// LLM call's figures on its span, the span's agent), to a packer or a list: one
    /// mapping for both. Fields are read in place and passed borrowed, not copied.
    static func emitTree<S: StoredSpanSink & ~Copyable>(_ run: AttributedRun, into sink: inout S) {
        run.spans.withUnsafeBufferPointer { spans in
            run.calls.withUnsafeBufferPointer { calls in
                run.spanAgents.withUnsafeBufferPointer { agents in
                    withUnsafeTemporaryAllocation(of: Int.self, capacity: spans.count) { callBySpan in
                        callBySpan.initialize(repeating: -1)
                        for n in calls.indices where calls[n].spanIndex < spans.count { callBySpan[calls[n].spanIndex] = n }
                        for i in spans.indices {
                            let c = callBySpan[i]
                            let call = c >= 0
                            sink.add(spanID: spans[i].spanID, parentSpanID: spans[i].parentSpanID, name: spans[i].name,
                                     kind: StoredSpan.Kind(rawValue: spans[i].category.rawValue) ?? .other, model: spans.model(at: i),
                                     startOffsetNano: spans[i].startUnixNano - run.startUnixNano, durationNano: spans[i].durationNano,
                                     usage: call ? calls[c].usage : TokenUsage(), costMicros: call ? calls[c].costMicros : 0,
                                     priced: call && calls[c].priced, error: spans[i].isError, retry: call && calls[c].isRetry,
                                     explicitCost: call && calls[c].explicitCost, agent: i < agents.count ? agents[i] : "")
                        }
                    }
                }
            }
        }
    }

    func add(_ key: RollupKey, _ m: RollupMeasures) {
        unflushed.add(key, m)
    }

    /// Keeps a run's index entry and its new tree records (`tree`: the whole run, or late
    /// spans joining it, whose whole tree is `wholeTree`) for the next flush and `trace`.
    func record(_ entry: consuming TraceIndexEntry, tree: PackedTree, wholeTree: PackedTree? = nil) {
        // Runs of a workflow mostly call the same models through the same agents: every
        // entry then shares one array of each instead of holding its own (two heap blocks
        // fewer per run kept in the index, a quarter of its memory).
        let id = entry.traceID
        entry.models = sharedLists.share(entry.models)
        entry.agents = sharedLists.share(entry.agents)
        index[id] = entry // its last use: moved in
        unflushedDetails.append(tree)
        unflushedSpans += tree.spanCount
        // The whole tree (a run that left `recentTrees` may get late spans); for a new run
        // it shares the array with the flush's copy. One lookup for a new run.
        if let earlier = recentTrees.updateValue(wholeTree ?? tree, forKey: id) {
            if wholeTree == nil { recentTrees[id] = PackedTree(traceID: id, spans: earlier.unpack() + tree.unpack()) }
        } else {
            recentOrder.append(id)
        }
        while recentOrder.count > configuration.recentTreeCapacity, let old = recentOrder.popFirst() {
            recentTrees[old] = nil
        }
    }

    // MARK: Store

    struct PendingFlush: Sendable {
        var sequence: UInt64
        var rollups: RollupTable
        /// The index entries changed since the last flush (listed off the actor, when the flush writes them).
        var index: RunIndex.Changes
        var details: [PackedTree]
        var walSequenceMax: UInt64
        /// Every log record below this is reflected once this flush is written.
        var checkpoint: UInt64
        /// Verdicts held at the time of this flush, when they changed since the last one.
        var held: [OutcomeRecord]?
    }

    /// The log position below which everything is consumed and released: the lowest of
    /// the next log sequence, records appended but not consumed, and open traces.
    func checkpointCandidate() -> UInt64? {
        guard let wal else { return nil }
        var candidate = wal.upcomingSequence
        if let f = inflight.lowestFloor { candidate = min(candidate, f) }
        if let open = assembler.oldestSequence() { candidate = min(candidate, open) }
        if let a = attributing.values.min() { candidate = min(candidate, a) }
        for group in lateWhileAttributing.values { for r in group { candidate = min(candidate, r.firstSequence) } }
        return candidate
    }

    func takeUnflushed() -> PendingFlush? {
        let checkpoint = checkpointCandidate() ?? 0
        guard !unflushed.isEmpty || index.changeCount > 0 || !unflushedDetails.isEmpty || checkpoint > lastCheckpoint || heldDirty else { return nil }
        let p = PendingFlush(sequence: nextSequence, rollups: unflushed, index: index.takeChanges(), details: unflushedDetails,
                             walSequenceMax: lastConsumedSequence, checkpoint: checkpoint, held: heldDirty ? Array(heldVerdicts.values) : nil)
        heldDirty = false
        flushesInProgress += 1
        flushingDetails = unflushedDetails
        nextSequence += 1
        // Once per flush, not per release chunk: the flush's keys recur across its chunks.
        table.merge(unflushed)
        unflushed = RollupTable()
        unflushedDetails = []
        unflushedSpans = 0
        return p
    }

    /// The locator with a written flush's traces added (a copy: the filter being filled
    /// is copied once, about 2.5 MB).
    nonisolated static func locate(_ p: PendingFlush, in locator: TraceLocator) async -> TraceLocator {
        var located = locator
        add(p, to: &located)
        return located
    }

    /// Adds a written flush's traces, task keys and latest start to `locator`.
    nonisolated static func add(_ p: PendingFlush, to locator: inout TraceLocator) {
        locator.add(sequence: p.sequence, ids: Array(traceIDs(of: p)), taskKeys: Array(taskKeys(of: p)), newestStartUnixNano: newestStart(of: p))
    }

    /// The latest start of a run a flush writes (every run tree it writes has an index entry in it).
    nonisolated static func newestStart(of p: PendingFlush) -> Int64 {
        var newest = Int64.min
        for i in p.index.indices { newest = max(newest, p.index[i].startUnixNano) }
        return newest
    }

    /// The traces a flush writes index entries or run-tree records of.
    nonisolated static func traceIDs(of p: PendingFlush) -> Set<TraceID> {
        var ids = Set<TraceID>(minimumCapacity: p.index.count)
        for i in p.index.indices { ids.insert(p.index[i].traceID) }
        for d in p.details { ids.insert(d.traceID) }
        return ids
    }

    /// The task keys (`TraceLocator.taskKey`) of the runs with a task ID a flush writes
    /// index entries of.
    nonisolated static func taskKeys(of p: PendingFlush) -> Set<TraceID> {
        var keys = Set<TraceID>()
        for i in p.index.indices where !p.index[i].taskID.isEmpty { keys.insert(TraceLocator.taskKey(p.index[i].taskID)) }
        return keys
    }

    /// A flush's files are on disk and `located` has its traces (made from `base`): the
    /// locator takes them, and the index keeps only the newest runs in memory, once no
    /// other flush holds taken changes that could come back.
    func committedToDisk(_ p: PendingFlush, located: TraceLocator, from base: TraceLocator) {
        flushesInProgress -= 1
        if locator.changes == base.changes {
            locator = located
        } else {
            // The locator changed meanwhile (flushes overlapped, a merge or retention): add this one's here.
            Self.add(p, to: &locator)
        }
        if flushesInProgress == 0 { evictOldRuns() }
    }

    /// Lets the oldest runs' index entries leave memory (`RunIndex.evictOldest`), and
    /// their task lists with them.
    func evictOldRuns(startedBefore cutoff: Int64 = .min) {
        tasks.leftMemory(Self.evictOldest(&index, keeping: configuration.maxIndexedRuns, startedBefore: cutoff))
    }

    /// The task-tagged runs whose entries left memory.
    static func evictOldest(_ index: inout RunIndex, keeping limit: Int, startedBefore cutoff: Int64 = .min) -> [(task: String, run: TaskRuns.Run)] {
        var left: [(task: String, run: TaskRuns.Run)] = []
        index.evictOldest(keeping: limit, startedBefore: cutoff) { e in
            if !e.taskID.isEmpty { left.append((e.taskID, TaskRuns.Run(traceID: e.traceID, startUnixNano: e.startUnixNano, outcome: e.outcome))) }
        }
        return left
    }

    func restore(_ p: PendingFlush) {
        flushesInProgress -= 1
        // Put a failed flush back in front of what arrived since; the table takes its
        // records again when the next flush is taken.
        table.subtract(p.rollups)
        var merged = p.rollups
        merged.merge(unflushed)
        unflushed = merged
        index.restore(p.index)
        unflushedDetails = p.details + unflushedDetails
        unflushedSpans = unflushedDetails.reduce(0) { $0 + $1.spanCount }
        flushingDetails = []
        if p.held != nil { heldDirty = true }
        stats.flushFailures += 1
    }

    /// An idle flush the clock moved to normal priority (`LedgerService`).
    public func notePromotedFlush() { stats.promotedFlushes += 1 }

    func flushed(_ p: PendingFlush) {
        flushingDetails = []
        lastCommittedFlush = max(lastCommittedFlush, p.sequence)
        stats.flushes += 1
        lastCheckpoint = max(lastCheckpoint, p.checkpoint)
        stats.checkpointSequence = lastCheckpoint
    }

    /// Writes everything not yet on disk as one set of segments, then advances the log's
    /// checkpoint to what that set covers (and drops log segments below it). `idle`: the
    /// files are encoded, compressed and written on CPU time nothing else wants
    /// (`BlockingThread`), for a flush that can wait while requests are served, and the
    /// caller can move it back to normal priority through `idle` (`LedgerService`, when the
    /// next flush is due before it ends). nil: at normal priority.
    public func flush(idle: IdlePriority? = nil) async throws {
        // On the flush interval, busy or not: a burst of lookups' files goes when it is over.
        directory.lookupCache?.expire()
        guard let pending = takeUnflushed() else { return }
        let directory = self.directory
        let now = wallNow() / 1_000_000
        let locatorBefore = locator
        let located: TraceLocator
        do {
            try await Self.writeSegments(pending, to: directory, nowUnixMs: now, idle: idle)
            // Off the actor too: inserting a flush's IDs into the filters touches a few MB.
            located = await Self.locate(pending, in: locatorBefore)
        } catch {
            // Not committed (its run-tree file is absent): keep the data for the next flush.
            restore(pending)
            logger.error("flush failed; will retry", metadata: ["error": "\(error)"])
            throw error
        }
        // Committed. A failed checkpoint only means a longer replay next start (replay
        // skips what this flush holds), never a second copy of the data.
        lastCommittedFlush = max(lastCommittedFlush, pending.sequence)
        committedToDisk(pending, located: located, from: locatorBefore)
        do {
            // Off the actor: two fsyncs and unlinks that ingest would otherwise wait behind.
            if let wal { try await Self.checkpoint(wal, WALCheckpoint(walSequence: pending.checkpoint, flushSequence: pending.sequence)) }
            flushed(pending)
            if idle != nil { stats.idleFlushes += 1 }
        } catch {
            stats.flushes += 1
            stats.flushFailures += 1
            logger.error("checkpoint after flush failed; the next flush writes it", metadata: ["error": "\(error)"])
            throw error
        }
    }

    /// On a thread of its own: two fsyncs would hold one of the pool's two threads.
    nonisolated static func checkpoint(_ wal: WriteAheadLog, _ cp: WALCheckpoint) async throws {
        try await BlockingThread.run(name: "spanledger-checkpoint") { try wal.checkpoint(cp) }
    }

    /// Writes the flush's files; succeeds when the commit mark (the run-tree file) is on
    /// disk, even if only the final directory fsync failed after it was renamed into place.
    /// Encoding, compressing and syncing a flush takes a core for hundreds of ms under
    /// full ingest: it runs on a thread of its own, not on the two-thread concurrency pool.
    /// At normal priority that thread took a third of the CPU from requests for as long:
    /// at half load, requests sent during a flush had a p99 of 14-24 ms against 9-12 ms
    /// for the rest. With `idle` they did not differ. (Always idle, or nice 10, starves it
    /// under sustained overload, which is why the caller decides: `LedgerService`.)
    nonisolated static func writeSegments(_ p: PendingFlush, to directory: DataDirectory, nowUnixMs: Int64,
                                          idle: IdlePriority? = nil) async throws {
        // Held verdicts first: any snapshot at or after the checkpoint this flush sets is
        // right, since replay from the checkpoint re-applies what came after it.
        var steps: [@Sendable () throws -> Void] = []
        if let held = p.held { steps.append { try FileIO.writeAtomically(OutcomeBatchCodec.encode(held), to: directory.path + "/" + Self.heldVerdictsFile) } }
        steps += directory.flushSteps(sequence: p.sequence, rollups: p.rollups, index: p.index, details: p.details,
                                      walSequenceMax: p.walSequenceMax, nowUnixMs: nowUnixMs)
        do {
            try await BlockingThread.runSteps(name: "spanledger-flush", idle: idle, steps)
        } catch {
            // The run-tree file is the commit mark: once it is in place the flush is written.
            if directory.sequences(.traceDetail).contains(p.sequence) { return }
            throw error
        }
    }

    // MARK: Recovery

    /// Replays the log after its checkpoint into assembly. Spans already in flushes made
    /// after the checkpoint are skipped, so a crash anywhere replays to the same rollups.
    public func recover(report: WALRecoveryReport) throws {
        guard let wal else { return }
        let from = report.checkpoint.walSequence
        lastCheckpoint = from
        stats.checkpointSequence = from
        stats.corruptLogRecords = Int64(report.corruptRecords)
        if let q = report.quarantined {
            stats.quarantinedRecords += 1
            logger.error("quarantined a log record that crashed the previous replay", metadata: ["sequence": "\(q)"])
        }
        let flushedSpans = directory.flushedSpans(sinceWALSequence: from)
        var records = 0, spans = 0, skipped = 0
        try wal.replay(from: from, skip: report.quarantined) { seq, payload in
            if OutcomeBatchCodec.isOutcomeBatch(payload) {
                do {
                    _ = applyOutcomes(try OutcomeBatchCodec.decode(payload), sequence: seq)
                    records += 1
                } catch {
                    stats.corruptLogRecords += 1
                    logger.error("skipped an undecodable verdict record", metadata: ["sequence": "\(seq)", "error": "\(error)"])
                }
                return
            }
            let decoded: [SpanRecord]
            do {
                decoded = try SpanBatchCodec.decode(payload)
            } catch {
                stats.corruptLogRecords += 1
                logger.error("skipped an undecodable log record", metadata: ["sequence": "\(seq)", "error": "\(error)"])
                return
            }
            let fresh = flushedSpans.isEmpty ? decoded : decoded.filter { !flushedSpans.contains(SpanKey(traceID: $0.traceID, spanID: $0.spanID)) }
            skipped += decoded.count - fresh.count
            consume(fresh, sequence: seq)
            records += 1
            spans += fresh.count
        }
        stats.replayedRecords = Int64(records)
        stats.replayedSpans = Int64(spans)
        stats.replaySkippedSpans = Int64(skipped)
        logger.info("write-ahead log replayed", metadata: [
            "from_sequence": "\(from)", "records": "\(records)", "spans": "\(spans)", "already_flushed_spans": "\(skipped)",
            "corrupt_records": "\(report.corruptRecords)", "torn_bytes_truncated": "\(report.tornBytesTruncated)",
        ])
    }

    // MARK: Read side

    /// Answers from a snapshot of the table (copy-on-write, so no copy unless ingest
    /// changes it meanwhile), off the actor and across both cores, so a long-window query
    /// holds up neither ingest nor other queries.
    public func query(_ q: RollupQuery) async -> [QueryGroup] {
        let (snapshot, recent) = (table, unflushed)
        return await Self.answer(q, snapshot, recent: recent, cache: queryCache)
    }

    /// `recent`, records since the last flush taken, is aggregated on every query; the
    /// table's whole days come from the cache while no flush changed them.
    nonisolated static func answer(_ q: RollupQuery, _ table: RollupTable, recent: RollupTable? = nil, cache: PartialAggregateCache) async -> [QueryGroup] {
        await q.run(over: table, recent: recent, ways: 2, cache: cache)
    }

    /// A run's entry and tree (the trace view); a run on disk is read off the actor first.
    public nonisolated func explain(_ traceID: TraceID) async -> RunExplanation? {
        let reads = await readRuns([traceID], verdicts: false)
        return await explain(traceID, reads: reads)
    }

    func explain(_ traceID: TraceID, reads: RunReads?) -> RunExplanation? {
        withRunsOf([traceID], trees: true, reads: reads, verdicts: false) {
            guard let entry = runEntry(traceID) else { return nil }
            return RunExplanation(entry: entry, spans: tree(of: traceID))
        }
    }

    public func currentStats() -> LedgerStats {
        var s = stats
        s.pendingTraces = assembler.openTraces
        s.pendingSpans = assembler.bufferedSpans
        s.pendingBytes = assembler.bufferedBytes
        s.repeatedSpans += assembler.repeatedSpans
        s.unflushedSpans = unflushedSpans
        s.indexedRuns = index.residentCount
        s.runsOnDiskOnly = index.evictedCount
        s.tasks = tasks.taskCount
        s.taskRuns = tasks.runCount
        s.taskFilterBytes = tasks.unlistedFilterBytes
        s.taskRunsDropped = tasks.droppedRuns
        s.locatorBytes = locator.byteCount
        if let c = directory.lookupCache?.stats {
            (s.lookupCacheHits, s.lookupCacheMisses, s.lookupCacheBytes) = (c.hits, c.misses, c.bytes)
        }
        return s
    }

    /// Released runs that started in [from, to), newest first, optionally of one workflow
    /// and outcome (`GET /api/v1/runs`), within trace retention. The in-memory index
    /// holds the newest `maxIndexedRuns` runs; when runs have left it, the index segments
    /// that may hold runs of the window are read too, off the actor (`RunListing`).
    public func runs(fromUnixNano: Int64, toUnixNano: Int64, workflow: String?, outcome: Outcome?, limit: Int) async -> [TraceIndexEntry] {
        let filter = RunListing.Filter(fromUnixNano: max(fromUnixNano, wallNow() - configuration.traceRetentionNano), toUnixNano: toUnixNano,
                                       workflow: workflow, outcome: outcome)
        var found: [TraceIndexEntry] = []
        var inMemory = Set<TraceID>()
        index.forEach { e in
            guard filter.inWindow(e) else { return }
            inMemory.insert(e.traceID)
            if filter.matches(e) { found.append(e) }
        }
        if index.evictedCount > 0 {
            // The runs found in memory already answer for every start after their
            // limit-th newest: only segments with a run at or after it can add to them.
            RunListing.sortNewestFirst(&found)
            let memoryStarts = found.prefix(limit).map(\.startUnixNano)
            let floor = max(filter.fromUnixNano, memoryStarts.count == limit ? memoryStarts[limit - 1] : .min)
            let segments = locator.segments.filter { $0.newestStartUnixNano >= floor }
            let directory = self.directory
            let skipping = inMemory
            let disk = await BlockingThread.run(name: "spanledger-runs") {
                RunListing.onDisk(directory, segments: segments, filter: filter, limit: limit, skipping: skipping, memoryStarts: memoryStarts)
            }
            stats.runListSegmentsRead += Int64(disk.segmentsRead)
            found += disk.entries
        }
        RunListing.sortNewestFirst(&found)
        return Array(found.prefix(limit))
    }

    /// The rollup records whose buckets start in the query's window, unaggregated (latency
    /// sketches and all): what another node's query merges with its own
    /// (`GET /api/v1/rollups/records`, `spanledger query --merge-server`).
    public func rollupRecords(_ q: RollupQuery) -> RollupTable {
        var out = RollupTable()
        for t in [table, unflushed] {
            for (key, measures) in t.records(inBucketRange: q.windowStartUnix..<q.windowEndUnix) { out.add(key, measures) }
        }
        return out
    }

    public func workflows() -> [String] {
        Array(Set([table, unflushed].flatMap { $0.days.values.flatMap { $0.keys.map(\.workflow) } })).sorted()
    }
}

/// Log positions reserved by appends in progress: each append registers a floor (the
/// log's next sequence when it started, a lower bound of the sequence it will get) until
/// its spans are consumed, so no checkpoint passes a record not yet in assembly.
public final class InflightSequences: Sendable {
    private let floors = Mutex<[UInt64: Int]>([:])

    public init() {}

    public func begin(floor: UInt64) {
        floors.withLock { $0[floor, default: 0] += 1 }
    }

    public func end(floor: UInt64) {
        floors.withLock { f in
            let n = (f[floor] ?? 1) - 1
            f[floor] = n > 0 ? n : nil
        }
    }

    public var lowestFloor: UInt64? { floors.withLock { $0.keys.min() } }
}

extension TraceIndexEntry {
    /// Adds the spans, priced calls, tool calls, retries and errors of `run` (a whole run,
    /// or late spans joining one) to this entry's totals.
    mutating func add(_ run: AttributedRun) {
        costMicros += run.costMicros
        llmCalls += Int64(run.calls.count)
        for c in run.calls {
            inputTokens += c.usage.input
            outputTokens += c.usage.output
            unpricedTokens += c.unpricedTokens
            retries += c.isRetry ? 1 : 0
            errors += c.isError ? 1 : 0
        }
        spanCount += Int64(run.spans.count)
        toolCalls += run.toolCalls
        errors += run.otherErrors
    }
}

/// One copy of each distinct list of names (models, agents) for the run index to share,
/// up to `capacity` lists; past it, lists are kept as they come.
struct SharedNameLists {
    private var lists: Set<[String]> = []
    let capacity = 10_000
    /// The lists shared last, compared before the set is hashed (every name of a list):
    /// runs of a workflow mostly go through the same agents and call the same models.
    private var recent: [[String]] = []
    private var nextRecent = 0
    static let recentCount = 8

    mutating func share(_ names: [String]) -> [String] {
        if names.isEmpty { return [] }
        for i in recent.indices where recent[i] == names { return recent[i] }
        let shared: [String]
        if let existing = lists.firstIndex(of: names) { shared = lists[existing] } else {
            if lists.count < capacity { lists.insert(names) }
            shared = names
        }
        if recent.count < Self.recentCount { recent.append(shared) } else { recent[nextRecent] = shared }
        nextRecent = (nextRecent + 1) % Self.recentCount
        return shared
    }
}

/// Where `Ledger.emitTree` puts a run's spans: a `TreePacker`, or a `StoredSpanList`.
protocol StoredSpanSink: ~Copyable {
    mutating func add(spanID: SpanID, parentSpanID: SpanID, name: String, kind: StoredSpan.Kind, model: String, startOffsetNano: Int64,
                      durationNano: Int64, usage: TokenUsage, costMicros: Int64, priced: Bool, error: Bool, retry: Bool,
                      explicitCost: Bool, agent: String)
}

extension TreePacker: StoredSpanSink {}

struct StoredSpanList: StoredSpanSink {
    var spans: [StoredSpan] = []

    init(capacity: Int) { spans.reserveCapacity(capacity) }

    mutating func add(spanID: SpanID, parentSpanID: SpanID, name: String, kind: StoredSpan.Kind, model: String, startOffsetNano: Int64,
                      durationNano: Int64, usage: TokenUsage, costMicros: Int64, priced: Bool, error: Bool, retry: Bool,
                      explicitCost: Bool, agent: String) {
        spans.append(StoredSpan(spanID: spanID, parentSpanID: parentSpanID, name: name, kind: kind, model: model, startOffsetNano: startOffsetNano,
                                durationNano: durationNano, usage: usage, costMicros: costMicros, priced: priced, error: error, retry: retry,
                                explicitCost: explicitCost, agent: agent))
    }
}
