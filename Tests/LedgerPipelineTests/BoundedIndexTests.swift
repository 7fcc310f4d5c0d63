import Foundation
import LedgerCore
@testable import LedgerPipeline
import LedgerStore
import Logging
import OTLPFixtures
import Rollups
import Testing

/// The run index keeps only the newest runs in memory (`maxIndexedRuns`); runs that left
/// it are found on disk for everything that needs them, before and after a restart.

func makeBoundedLedger(_ dir: String, clock: TestClock, maxIndexedRuns: Int, maxRunsPerMergedSegment: Int = 50_000,
                       maxTaskRuns: Int = 250_000) throws -> Ledger {
    var config = LedgerConfiguration()
    config.dataDirectory = dir
    config.assembly.waitNano = 2_000_000_000
    config.maxIndexedRuns = maxIndexedRuns
    config.recentTreeCapacity = 4
    config.maxRunsPerMergedSegment = maxRunsPerMergedSegment
    config.maxTaskRuns = maxTaskRuns
    return try Ledger(configuration: config, prices: prices, logger: Logger(label: "test"), monotonicNow: { clock.now }, wallNow: { minute0 })
}

private func oneCallRuns(_ range: ClosedRange<UInt64>) -> [[FixtureSpan]] {
    range.map { run($0, workflow: "bounded", verdict: nil, calls: [("small", 1000, 100)]) }
}

@Test func runsThatLeftMemoryStillTakeVerdictsLateSpansAndTraceViews() async throws {
    let clock = TestClock()
    let dir = tempDataDir()
    let ledger = try makeBoundedLedger(dir, clock: clock, maxIndexedRuns: 16)
    for spans in oneCallRuns(1...100) { try await ingest(ledger, spans) }
    clock.advance(seconds: 3)
    await ledger.tick()
    try await ledger.flush()
    var stats = await ledger.currentStats()
    #expect(stats.indexedRuns <= 32 && stats.runsOnDiskOnly == 100 - stats.indexedRuns && stats.runsOnDiskOnly >= 64)
    #expect(stats.locatorBytes > 0)

    // One call each: small 1000×1 + 100×4 = 1400 µ$.
    var total = window
    total.groupBy = [.workflow, .outcome]
    #expect(await ledger.query(total).map(\.runs) == [100])

    // A verdict for a run on disk only moves it between outcome buckets.
    let result = await ledger.applyOutcomes([OutcomeRecord(traceID: TraceID(high: 42, low: 1), outcome: .accepted, timeUnixNano: minute0 + 10, source: .api)], sequence: 0)
    #expect(result == [.applied])
    let byOutcome = await ledger.query(total)
    #expect(byOutcome.first { $0.outcome == .accepted }?.runs == 1 && byOutcome.first { $0.outcome == .pending }?.runs == 99)
    #expect(byOutcome.reduce(0) { $0 + $1.measures.costMicros } == 140_000)

    // A late span of a run on disk only joins it: no second run, its call charged once.
    try await ingest(ledger, [llm(TraceID(high: 42, low: 2), 99, model: "small", input: 500, output: 50, start: minute0 + 5)])
    clock.advance(seconds: 3)
    await ledger.tick()
    let g = try #require(await ledger.query(window).first)
    #expect(g.runs == 100 && g.measures.llmCalls == 101 && g.measures.costMicros == 140_700)

    // Its trace view reads the entry and the tree back from disk.
    let explained = try #require(await ledger.explain(TraceID(high: 42, low: 3)))
    #expect(explained.entry.costMicros == 1400 && explained.spans.count == 2)
    #expect(await ledger.explain(TraceID(high: 42, low: 2))?.spans.count == 3)
    // A trace never seen: its verdict is held, not applied to anything.
    #expect(await ledger.applyOutcomes([OutcomeRecord(traceID: TraceID(high: 77, low: 1), outcome: .accepted, timeUnixNano: minute0, source: .api)], sequence: 0) == [.held])
    stats = await ledger.currentStats()
    #expect(stats.diskLookupHits >= 3 && stats.diskLookups >= stats.diskLookupHits)
    try await ledger.flush()
    let beforeRestart = await ledger.query(total)

    // After a restart only the newest runs are loaded; the rest are still found.
    let again = try makeBoundedLedger(dir, clock: clock, maxIndexedRuns: 16)
    stats = await again.currentStats()
    #expect(stats.indexedRuns <= 32 && stats.indexedRuns + stats.runsOnDiskOnly >= 100)
    #expect(await again.query(total) == beforeRestart)
    #expect(await again.explain(TraceID(high: 42, low: 1))?.entry.outcome == .accepted)
    #expect(await again.explain(TraceID(high: 42, low: 2))?.entry.llmCalls == 2)
    let corrected = await again.applyOutcomes([OutcomeRecord(traceID: TraceID(high: 42, low: 1), outcome: .rejected, timeUnixNano: minute0 + 20, source: .api)], sequence: 0)
    #expect(corrected == [.corrected])
    let after = await again.query(total)
    #expect(after.first { $0.outcome == .rejected }?.runs == 1 && after.first { $0.outcome == .accepted } == nil)
    #expect(after.reduce(0) { $0 + $1.runs } == 100)
}

@Test func traceFiltersNeverMissAnAddedTraceAndRarelyClaimOthers() {
    var filter = TraceIDFilter(capacity: 10_000, bitsPerID: 20)
    for i in 0..<10_000 { filter.insert(TraceID(high: 5, low: UInt64(i))) }
    #expect((0..<10_000).allSatisfy { filter.mayContain(TraceID(high: 5, low: UInt64($0))) })
    let falseHits = (0..<100_000).filter { filter.mayContain(TraceID(high: 6, low: UInt64($0))) }.count
    #expect(falseHits < 20, "about 1 in 15,000 at capacity; \(falseHits) of 100,000")

    var locator = TraceLocator(generationCapacity: 250)
    for seq in 1...UInt64(10) {
        locator.add(sequence: seq, ids: (0..<100).map { TraceID(high: seq, low: UInt64($0)) }, newestStartUnixNano: Int64(seq) * 100)
    }
    locator.add(sequence: 11, ids: [TraceID(high: 3, low: 7)], newestStartUnixNano: 1100) // a later entry of a trace flushed in 3
    // Newest first; another flush may turn up as a false "maybe" (10 bits an ID per flush).
    let both = locator.candidates(TraceID(high: 3, low: 7))
    #expect(both.first == 11 && both.contains(3) && both == both.sorted(by: >) && both.count <= 4)
    #expect(locator.candidates(TraceID(high: 9, low: 99)).first == 9)
    #expect(!locator.mayContain(TraceID(high: 99, low: 1)))
    // Retention: the flushes whose runs all started before a time, then forgotten.
    #expect(locator.sequences(allStartedBefore: 450) == [1, 2, 3, 4])
    locator.remove(sequences: [1, 2, 3, 4])
    #expect(locator.segmentCount == 7 && !locator.contains(sequence: 3) && locator.contains(sequence: 5))
    #expect(locator.candidates(TraceID(high: 3, low: 7)).first == 11)
    #expect(!locator.candidates(TraceID(high: 2, low: 5)).contains(2))
}

/// A wall clock tests move by hand.
final class WallClockBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Int64
    init(_ start: Int64) { value = start }
    var now: Int64 { lock.withLock { value } }
    func set(_ v: Int64) { lock.withLock { value = v } }
}

@Test func traceRetentionRemovesOldRunTreesOnceCompactedAndKeepsTheirRollups() async throws {
    let clock = TestClock()
    let wall = WallClockBox(minute0)
    let dir = tempDataDir()
    let day: Int64 = 86_400_000_000_000
    func open() throws -> Ledger {
        var config = LedgerConfiguration()
        config.dataDirectory = dir
        config.assembly.waitNano = 2_000_000_000
        config.maxIndexedRuns = 16
        config.traceRetentionNano = day
        config.correctionWindowNano = day
        return try Ledger(configuration: config, prices: prices, logger: Logger(label: "test"), monotonicNow: { clock.now }, wallNow: { wall.now })
    }
    let ledger = try open()
    // Runs list under their task for rework: five old tasks, then one new one.
    func task(_ spans: [FixtureSpan], _ id: String) -> [FixtureSpan] {
        var s = spans
        s[0].attributes.append(("outcome.task_id", .string(id)))
        return s
    }
    for (i, spans) in oneCallRuns(1...40).enumerated() { try await ingest(ledger, task(spans, "old-\(i % 5)")) }
    clock.advance(seconds: 3)
    await ledger.tick()
    try await ledger.flush()
    // A day and a half later, newer runs.
    wall.set(minute0 + day * 3 / 2)
    for n in UInt64(41)...50 {
        try await ingest(ledger, task(run(n, workflow: "bounded", verdict: nil, calls: [("small", 1000, 100)], startOffset: day * 3 / 2), "new"))
    }
    clock.advance(seconds: 3)
    await ledger.tick()
    try await ledger.flush()
    let all = RollupQuery(fromUnixNano: minute0 - 3_600_000_000_000, toUnixNano: minute0 + 2 * day, groupBy: [.workflow, .outcome])
    let before = await ledger.query(all)
    #expect(before.map(\.runs) == [50])
    let data = DataDirectory(path: dir)
    #expect(data.sequences(.traceIndex) == [1, 2])
    var stats = await ledger.currentStats()
    #expect(stats.tasks == 6 && stats.taskRuns == 50)
    // Past retention by the clock: gone at once, whether or not the files are yet.
    #expect(await ledger.explain(TraceID(high: 42, low: 1)) == nil)

    _ = try await ledger.compact()
    #expect(data.sequences(.traceIndex) == [2] && data.sequences(.traceDetail) == [2], "the first flush's runs all started over a day ago")
    stats = await ledger.currentStats()
    #expect(stats.runSegmentsExpired == 1)
    #expect(stats.tasks == 1 && stats.taskRuns == 10 && stats.taskRunsExpired == 40, "the old tasks' runs are past retention")
    #expect(await ledger.query(all) == before, "rollups keep counting expired runs")
    #expect(await ledger.explain(TraceID(high: 42, low: 1)) == nil)
    #expect(await ledger.explain(TraceID(high: 42, low: 45))?.spans.count == 2)

    // After a restart: the same, and new flushes are numbered after the removed ones.
    let again = try open()
    #expect(await again.query(all) == before)
    #expect(await again.explain(TraceID(high: 42, low: 1)) == nil)
    #expect(await again.explain(TraceID(high: 42, low: 50))?.entry.costMicros == 1400)
    stats = await again.currentStats()
    #expect(stats.tasks == 1 && stats.taskRuns == 10)
    try await ingest(again, run(51, workflow: "bounded", verdict: "accepted", calls: [], startOffset: day * 3 / 2))
    clock.advance(seconds: 3)
    await again.tick()
    try await again.flush()
    #expect(data.sequences(.traceDetail) == [2, 3])
}

/// Memory lists at most `maxTaskRuns` task-tagged runs; rework reads the runs of a task
/// dropped from the lists from disk, before and after a restart.
@Test func reworkFindsTaskRunsNotListedInMemoryOnDisk() async throws {
    let clock = TestClock()
    let dir = tempDataDir()
    func task(_ spans: [FixtureSpan], _ id: String) -> [FixtureSpan] {
        var s = spans
        s[0].attributes.append(("outcome.task_id", .string(id)))
        return s
    }
    func settle(_ ledger: Ledger) async throws {
        clock.advance(seconds: 3)
        await ledger.tick()
        try await ledger.flush()
    }
    func reworkRuns(_ ledger: Ledger) async -> Int64 {
        await ledger.query(window).reduce(0) { $0 + $1.measures.reworkRuns }
    }
    let ledger = try makeBoundedLedger(dir, clock: clock, maxIndexedRuns: 16, maxTaskRuns: 40)
    // Run 1 of task "t" is rejected, run 2 of task "u" waits for its verdict; then 200
    // runs, each of a task of its own (conversation IDs), push both out of memory and
    // out of the task lists.
    try await ingest(ledger, task(run(1, workflow: "bounded", verdict: "rejected", calls: [("small", 1000, 100)]), "t"))
    try await ingest(ledger, task(run(2, workflow: "bounded", verdict: nil, calls: [("small", 1000, 100)]), "u"))
    try await settle(ledger)
    for n in UInt64(3)...202 {
        try await ingest(ledger, task(run(n, workflow: "bounded", verdict: "accepted", calls: [("small", 1000, 100)], startOffset: 1_000), "conversation-\(n)"))
    }
    try await settle(ledger)
    var stats = await ledger.currentStats()
    #expect(stats.runsOnDiskOnly >= 170 && stats.indexedRuns <= 32)
    #expect(stats.taskRuns <= 40 && stats.tasks == stats.taskRuns && stats.taskRunsDropped >= 162, "at most 40 runs listed")
    #expect(stats.taskFilterBytes > 0)
    #expect(await reworkRuns(ledger) == 0)
    let lookupsBefore = stats.taskDiskLookups

    // Run 203 re-runs task "t": run 1, on disk only, was rejected.
    try await ingest(ledger, task(run(203, workflow: "bounded", verdict: nil, calls: [("small", 1000, 100)], startOffset: 2_000), "t"))
    try await settle(ledger)
    #expect(await reworkRuns(ledger) == 1)
    let entryLookupsBefore = stats.diskLookups
    stats = await ledger.currentStats()
    #expect(stats.taskDiskLookups > lookupsBefore && stats.taskSegmentsRead >= 1)
    #expect(stats.diskLookups == entryLookupsBefore, "run 1's outcome came with its task's list, not from its entry")

    // Run 204 re-runs task "u" (pending: not rework yet); run 2's late rejection, for a
    // run on disk only, makes it rework.
    try await ingest(ledger, task(run(204, workflow: "bounded", verdict: nil, calls: [("small", 1000, 100)], startOffset: 3_000), "u"))
    try await settle(ledger)
    #expect(await reworkRuns(ledger) == 1)
    let rejected = await ledger.applyOutcomes([OutcomeRecord(traceID: TraceID(high: 42, low: 2), outcome: .rejected, timeUnixNano: minute0 + 10, source: .api)], sequence: 0)
    #expect(rejected == [.corrected] || rejected == [.applied])
    #expect(await reworkRuns(ledger) == 2)
    #expect(await ledger.explain(TraceID(high: 42, low: 204))?.entry.rework == true)
    // A new conversation reads nothing from disk.
    stats = await ledger.currentStats()
    let segmentsRead = stats.taskSegmentsRead
    try await ingest(ledger, task(run(205, workflow: "bounded", verdict: nil, calls: [("small", 1000, 100)], startOffset: 4_000), "fresh"))
    try await settle(ledger)
    #expect(await ledger.currentStats().taskSegmentsRead == segmentsRead)
    let before = await ledger.query(window)

    // After a restart, the runs of "t" and "u" are on disk only: a third run of "t" is rework.
    let again = try makeBoundedLedger(dir, clock: clock, maxIndexedRuns: 16, maxTaskRuns: 40)
    #expect(await again.query(window) == before)
    stats = await again.currentStats()
    #expect(stats.taskRuns > 0 && stats.taskRuns <= 40 && stats.taskRunsDropped > 0, "at start, the latest runs are listed, 40 at most (runs starting together go together)")
    try await ingest(again, task(run(206, workflow: "bounded", verdict: nil, calls: [("small", 1000, 100)], startOffset: 5_000), "t"))
    try await settle(again)
    #expect(await reworkRuns(again) == 3)
    #expect(await again.explain(TraceID(high: 42, low: 206))?.entry.rework == true)
    // A run of a task none before had is not rework, however many tasks are on disk.
    try await ingest(again, task(run(207, workflow: "bounded", verdict: nil, calls: [("small", 1000, 100)], startOffset: 6_000), "conversation-207"))
    try await settle(again)
    #expect(await reworkRuns(again) == 3)
}

@Test func taskKeysLocateTheFlushesHoldingATasksRuns() {
    var locator = TraceLocator(generationCapacity: 250)
    for seq in 1...UInt64(6) {
        let keys = seq % 2 == 0 ? [TraceLocator.taskKey("even")] : [TraceLocator.taskKey("odd-\(seq)")]
        locator.add(sequence: seq, ids: (0..<50).map { TraceID(high: seq, low: UInt64($0)) }, taskKeys: keys, newestStartUnixNano: Int64(seq))
    }
    #expect(locator.candidates(TraceLocator.taskKey("even")).filter { $0 % 2 == 0 } == [6, 4, 2])
    #expect(locator.candidates(TraceLocator.taskKey("odd-3")).contains(3))
    #expect(!locator.mayContain(TraceLocator.taskKey("never")))
    #expect(TraceLocator.taskKey("a") != TraceLocator.taskKey("b") && TraceLocator.taskKey("ab") == TraceLocator.taskKey("ab"))
    // The merge plan counts runs, not task keys.
    #expect(locator.segments.allSatisfy { $0.runs == 50 })
    locator.merge(sequences: [1, 2], ids: (0..<100).map { TraceID(high: 100, low: UInt64($0)) }, taskKeys: [TraceLocator.taskKey("even")], newestStartUnixNano: 2)
    #expect(locator.candidates(TraceLocator.taskKey("even")).filter { $0 % 2 == 0 } == [6, 4, 2])
    #expect(locator.segments.first?.runs == 100)

    var filter = ExpiringKeyFilter(generationCapacity: 10)
    for i in 0..<25 { filter.insert(TraceLocator.taskKey("k\(i)"), startUnixNano: Int64(i)) }
    #expect(filter.generations.count == 3 && (0..<25).allSatisfy { filter.mayContain(TraceLocator.taskKey("k\($0)")) })
    filter.expire(startedBefore: 10)
    #expect(filter.generations.count == 2 && filter.mayContain(TraceLocator.taskKey("k10")))
}

/// The lists keep the outcome a run's entry left memory with, so rework over runs no
/// longer in memory reads nothing from disk while they stay listed.
@Test func taskListsKeepTheOutcomeOfRunsThatLeftMemory() async throws {
    let clock = TestClock()
    let dir = tempDataDir()
    let ledger = try makeBoundedLedger(dir, clock: clock, maxIndexedRuns: 16)
    func task(_ spans: [FixtureSpan], _ id: String) -> [FixtureSpan] {
        var s = spans
        s[0].attributes.append(("outcome.task_id", .string(id)))
        return s
    }
    try await ingest(ledger, task(run(1, workflow: "bounded", verdict: "edited", calls: [("small", 1000, 100)]), "t"))
    for n in UInt64(2)...120 {
        try await ingest(ledger, task(run(n, workflow: "bounded", verdict: "accepted", calls: [("small", 1000, 100)], startOffset: 1_000), "c-\(n)"))
    }
    clock.advance(seconds: 3)
    await ledger.tick()
    try await ledger.flush()
    var stats = await ledger.currentStats()
    #expect(stats.runsOnDiskOnly >= 88 && stats.taskRuns == 120 && stats.taskRunsDropped == 0)
    let lookups = stats.diskLookups
    try await ingest(ledger, task(run(121, workflow: "bounded", verdict: nil, calls: [("small", 1000, 100)], startOffset: 2_000), "t"))
    clock.advance(seconds: 3)
    await ledger.tick()
    #expect(await ledger.query(window).reduce(0) { $0 + $1.measures.reworkRuns } == 1, "run 1 was edited")
    stats = await ledger.currentStats()
    #expect(stats.diskLookups == lookups && stats.taskDiskLookups == 0, "nothing read from disk")

    // After a restart the lists come from the index summaries, outcomes included.
    try await ledger.flush()
    let again = try makeBoundedLedger(dir, clock: clock, maxIndexedRuns: 16)
    stats = await again.currentStats()
    #expect(stats.taskRuns == 121 && stats.runsOnDiskOnly >= 88)
    try await ingest(again, task(run(122, workflow: "bounded", verdict: nil, calls: [("small", 1000, 100)], startOffset: 3_000), "t"))
    clock.advance(seconds: 3)
    await again.tick()
    #expect(await again.query(window).reduce(0) { $0 + $1.measures.reworkRuns } == 2, "runs 121 and 122 re-ran edited run 1")
    stats = await again.currentStats()
    #expect(stats.diskLookups == 0 && stats.taskDiskLookups == 0, "nothing read from disk")
}

/// A batch of verdicts for runs on disk reads each flush's files once for the whole batch
/// (`withRunsOf`) and ends exactly where the same verdicts one at a time end.
@Test func aBatchOfVerdictsForRunsOnDiskReadsEachFlushOnceAndMatchesOneByOne() async throws {
    func loaded(_ dir: String, _ clock: TestClock) async throws -> Ledger {
        let ledger = try makeBoundedLedger(dir, clock: clock, maxIndexedRuns: 16)
        // Four flushes of 30 runs: most runs' entries and trees are on disk only.
        for part in 0..<4 {
            let first = UInt64(part * 30 + 1)
            for spans in oneCallRuns(first...(first + 29)) { try await ingest(ledger, spans) }
            clock.advance(seconds: 3)
            await ledger.tick()
            try await ledger.flush()
        }
        return ledger
    }
    let clockA = TestClock(), clockB = TestClock()
    let batched = try await loaded(tempDataDir(), clockA)
    let single = try await loaded(tempDataDir(), clockB)
    // Runs spread over every flush, one named twice (the later verdict wins), a run still
    // in memory and a trace never seen.
    var verdicts = stride(from: UInt64(2), through: 110, by: 9).map {
        OutcomeRecord(traceID: TraceID(high: 42, low: $0), outcome: $0 % 2 == 0 ? .rejected : .accepted, timeUnixNano: minute0 + 10, source: .api)
    }
    verdicts.append(OutcomeRecord(traceID: TraceID(high: 42, low: 2), outcome: .edited, timeUnixNano: minute0 + 20, source: .api))
    verdicts.append(OutcomeRecord(traceID: TraceID(high: 42, low: 120), outcome: .accepted, timeUnixNano: minute0 + 10, source: .api))
    verdicts.append(OutcomeRecord(traceID: TraceID(high: 77, low: 1), outcome: .accepted, timeUnixNano: minute0, source: .api))
    #expect(await batched.currentStats().runsOnDiskOnly >= 100)

    let before = await batched.currentStats()
    #expect(await batched.verdictProblems(verdicts).isEmpty)
    let results = await batched.applyOutcomes(verdicts, sequence: 0)
    let after = await batched.currentStats()
    // Each of the four flushes at most once per pass (entries to check, then entries and
    // trees to apply), and no lookup one run at a time.
    #expect(after.batchSegmentsRead - before.batchSegmentsRead >= 4 && after.batchSegmentsRead - before.batchSegmentsRead <= 8)
    #expect(after.diskLookups == before.diskLookups)

    var oneByOne: [OutcomeResult] = []
    for v in verdicts {
        #expect(await single.verdictProblems([v]).isEmpty)
        oneByOne += await single.applyOutcomes([v], sequence: 0)
    }
    #expect(await single.currentStats().diskLookups - before.diskLookups >= 10, "one at a time, the runs on disk are looked up one by one")
    #expect(results == oneByOne)
    #expect(results.filter { $0 == .applied }.count == 14 && results.last == .held && results[13] == .corrected)

    var byOutcome = window
    byOutcome.groupBy = [.workflow, .outcome]
    let got = await batched.query(byOutcome)
    #expect(got == (await single.query(byOutcome)))
    #expect(got.first { $0.outcome == .edited }?.runs == 1 && got.reduce(0) { $0 + $1.runs } == 120)
    // Each corrected run's whole cost moved with it (its tree was read, not left empty).
    #expect(got.reduce(0) { $0 + $1.measures.costMicros } == 120 * 1400)
    #expect(got.filter { $0.outcome != .pending }.reduce(0) { $0 + $1.measures.costMicros } == 14 * 1400)
    #expect(await batched.explain(TraceID(high: 42, low: 2))?.entry.outcome == .edited)
}

/// Runs on disk read off the ledger for a batch of verdicts (`readRuns(of:)`) stand in for
/// the ledger's own reads only while no flush, merge or expiry changed the data directory
/// since: a verdict applied and flushed meanwhile is not undone by an entry read before it.
@Test func runReadsOffTheLedgerAreUsedOnlyWhileTheDataDirectoryIsUnchanged() async throws {
    let clock = TestClock()
    let ledger = try makeBoundedLedger(tempDataDir(), clock: clock, maxIndexedRuns: 16)
    func flushRuns(_ range: ClosedRange<UInt64>) async throws {
        for spans in oneCallRuns(range) { try await ingest(ledger, spans) }
        clock.advance(seconds: 3)
        await ledger.tick()
        try await ledger.flush()
    }
    try await flushRuns(1...30)
    try await flushRuns(31...60)
    func verdict(_ n: UInt64, _ outcome: Outcome, at t: Int64) -> OutcomeRecord {
        OutcomeRecord(traceID: TraceID(high: 42, low: n), outcome: outcome, timeUnixNano: minute0 + t, source: .api)
    }
    let inMemory = (await ledger.entryInMemory(TraceID(high: 42, low: 1)), await ledger.entryInMemory(TraceID(high: 42, low: 31)))
    #expect(inMemory == (false, false), "runs 1 and 31 are on disk only")

    // Unchanged meanwhile: the reads stand in for the ledger's, which reads nothing more.
    let first = [verdict(1, .rejected, at: 20), verdict(31, .accepted, at: 20)]
    let firstReads = try #require(await ledger.readRuns(of: first))
    let before = await ledger.currentStats()
    #expect(await ledger.verdictProblems(first, reads: firstReads).isEmpty)
    #expect(await ledger.applyOutcomes(first, sequence: 0, reads: firstReads) == [.applied, .applied])
    var stats = await ledger.currentStats()
    #expect(stats.batchSegmentsRead == before.batchSegmentsRead && stats.diskLookups == before.diskLookups)
    #expect(stats.runReadsDiscarded == 0 && stats.lookupCacheMisses == before.lookupCacheMisses)

    // Run 2 is edited after the next reads were made, flushed, and leaves memory: the
    // reads still hold it pending, and must not be used.
    let second = [verdict(2, .accepted, at: 30), verdict(32, .accepted, at: 30)]
    let stale = try #require(await ledger.readRuns(of: second))
    #expect(await ledger.applyOutcomes([verdict(2, .edited, at: 25)], sequence: 0) == [.applied])
    try await flushRuns(61...90)
    #expect(await ledger.entryInMemory(TraceID(high: 42, low: 2)) == false, "run 2's edited entry is on disk only")
    #expect(await ledger.applyOutcomes(second, sequence: 0, reads: stale) == [.corrected, .applied])
    stats = await ledger.currentStats()
    #expect(stats.runReadsDiscarded == 1)

    var byOutcome = window
    byOutcome.groupBy = [.workflow, .outcome]
    let got = await ledger.query(byOutcome)
    func runs(_ o: Outcome) -> Int64 { got.first { $0.outcome == o }?.runs ?? 0 }
    #expect(runs(.accepted) == 3 && runs(.rejected) == 1 && runs(.edited) == 0 && runs(.pending) == 86)
    #expect(got.reduce(0) { $0 + $1.measures.costMicros } == 90 * 1400)
    #expect(await ledger.explain(TraceID(high: 42, low: 2))?.entry.corrections == 1)

    // A trace view reads its run off the ledger the same way: used when nothing changed,
    // read again when a verdict was flushed meanwhile.
    let lookups = await ledger.currentStats().diskLookups
    let view = await ledger.explain(TraceID(high: 42, low: 40))
    #expect(view?.entry.outcome == .pending && view?.spans.count == 2)
    #expect(await ledger.currentStats().diskLookups == lookups)
    let three = TraceID(high: 42, low: 3)
    let reads = try #require(await ledger.readRuns([three], verdicts: false))
    #expect(await ledger.applyOutcomes([verdict(3, .rejected, at: 40)], sequence: 0) == [.applied])
    try await flushRuns(91...120)
    #expect(await ledger.entryInMemory(three) == false)
    let seen = await ledger.explain(three, reads: reads)
    #expect(seen?.entry.outcome == .rejected && seen?.spans.count == 2)
    #expect(await ledger.currentStats().runReadsDiscarded == 2)
}
