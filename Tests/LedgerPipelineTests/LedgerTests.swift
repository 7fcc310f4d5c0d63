import Attribution
import Foundation
@testable import LedgerCore
@testable import LedgerPipeline
import LedgerStore
import Logging
import OTLPDecoding
import OTLPFixtures
import Rollups
import Testing

/// A clock tests move by hand.
final class TestClock: @unchecked Sendable {
    private let lock = NSLock()
    private var value: UInt64 = 1_000_000_000
    var now: UInt64 { lock.withLock { value } }
    func advance(seconds: Double) { lock.withLock { value += UInt64(seconds * 1e9) } }
}

let minute0: Int64 = 1_800_000_000 * 1_000_000_000 // 2027-01-15, a whole minute
let prices = PriceTable(userEntries: [
    PriceEntry(match: "small", input: 1_000_000, cachedInput: 100_000, output: 4_000_000),
    PriceEntry(match: "large", input: 10_000_000, output: 30_000_000),
])

func makeLedger(_ dir: String, clock: TestClock) throws -> Ledger {
    var config = LedgerConfiguration()
    config.dataDirectory = dir
    config.assembly.waitNano = 2_000_000_000
    return try Ledger(configuration: config, prices: prices, logger: Logger(label: "test"), monotonicNow: { clock.now }, wallNow: { minute0 })
}

func tempDataDir() -> String {
    NSTemporaryDirectory() + "spanledger-ledger-" + UUID().uuidString
}

func llm(_ trace: TraceID, _ id: UInt64, model: String, input: Int64, output: Int64, cached: Int64 = 0, start: Int64) -> FixtureSpan {
    FixtureSpan(traceID: trace, spanID: SpanID(id), parent: SpanID(1), name: "chat \(model)", startUnixNano: start, endUnixNano: start + 1_000_000,
                attributes: [("gen_ai.operation.name", .string("chat")), ("gen_ai.request.model", .string(model)),
                             ("gen_ai.usage.input_tokens", .int(input)), ("gen_ai.usage.output_tokens", .int(output)),
                             ("gen_ai.usage.cache_read.input_tokens", .int(cached))])
}

func run(_ n: UInt64, workflow: String, verdict: String?, calls: [(String, Int64, Int64)], startOffset: Int64 = 0) -> [FixtureSpan] {
    let trace = TraceID(high: 42, low: n)
    let start = minute0 + startOffset
    var attrs: [(String, FixtureValue)] = [("gen_ai.workflow.name", .string(workflow))]
    if let verdict { attrs.append(("outcome.verdict", .string(verdict))) }
    var spans = [FixtureSpan(traceID: trace, spanID: SpanID(1), name: "run", startUnixNano: start, endUnixNano: start + 2_000_000_000, attributes: attrs)]
    for (i, c) in calls.enumerated() {
        spans.append(llm(trace, UInt64(10 + i), model: c.0, input: c.1, output: c.2, start: start + Int64(i) * 1_000_000))
    }
    return spans
}

func ingest(_ ledger: Ledger, _ spans: [FixtureSpan]) async throws {
    let batch = try OTLPProtobufDecoder().decode(OTLPFixtureEncoder.encode([("agents", spans)]))
    try await ledger.consume(batch.spans)
}

let window = RollupQuery(fromUnixNano: minute0 - 3_600_000_000_000, toUnixNano: minute0 + 3_600_000_000_000, groupBy: [.workflow])

@Test func releasedRunsRollUpByWorkflowWithExactCost() async throws {
    let clock = TestClock()
    let ledger = try makeLedger(tempDataDir(), clock: clock)
    try await ingest(ledger, run(1, workflow: "triage", verdict: "accepted", calls: [("small", 1000, 100), ("large", 100, 10)]))
    try await ingest(ledger, run(2, workflow: "triage", verdict: nil, calls: [("small", 2000, 0)]))
    try await ingest(ledger, run(3, workflow: "refund", verdict: "rejected", calls: [("unknown-model", 50, 5)]))
    #expect(await ledger.query(window).isEmpty, "nothing released before the wait window")
    clock.advance(seconds: 2.5)
    await ledger.tick()
    let groups = await ledger.query(window)
    let triage = try #require(groups.first { $0.workflow == "triage" })
    // run 1: small 1000×1 + 100×4 = 1400 µ$; large 100×10 + 10×30 = 1300 µ$; run 2: 2000 µ$.
    #expect(triage.measures.costMicros == 4700)
    #expect(triage.runs == 2 && triage.runs(.accepted) == 1 && triage.runs(.pending) == 1)
    #expect(triage.measures.llmCalls == 3 && triage.measures.inputTokens == 3100 && triage.measures.outputTokens == 110)
    #expect(triage.costPerAcceptedMicros == 4700)
    let refund = try #require(groups.first { $0.workflow == "refund" })
    #expect(refund.measures.unpricedTokens == 55 && refund.measures.costMicros == 0 && refund.runs(.rejected) == 1)
    var byModel = window
    byModel.groupBy = [.model]
    let models = await ledger.query(byModel)
    #expect(models.first { $0.model == "small" }?.runs == 2)
    #expect(models.first { $0.model == "large" }?.runs == 1)
    let explained = try #require(await ledger.explain(TraceID(high: 42, low: 1)))
    #expect(explained.entry.costMicros == 2700 && explained.spans.count == 3 && explained.entry.outcome == .accepted)
}

@Test func lateSpansJoinTheSameRunWithoutCountingItAgain() async throws {
    let clock = TestClock()
    let ledger = try makeLedger(tempDataDir(), clock: clock)
    try await ingest(ledger, run(7, workflow: "draft", verdict: "accepted", calls: []))
    clock.advance(seconds: 3)
    await ledger.tick()
    #expect(await ledger.query(window).first?.runs == 1)
    try await ingest(ledger, [llm(TraceID(high: 42, low: 7), 99, model: "small", input: 500, output: 50, start: minute0 + 5)])
    clock.advance(seconds: 3)
    await ledger.tick()
    let g = try #require(await ledger.query(window).first)
    #expect(g.runs == 1 && g.measures.llmCalls == 1 && g.measures.costMicros == 700)
    var byModel = window
    byModel.groupBy = [.model]
    let models = await ledger.query(byModel)
    #expect(models.map(\.model) == ["small"], "the run's no-model placeholder gives way to its real model")
    #expect(models.first?.runs == 1)
    #expect(await ledger.explain(TraceID(high: 42, low: 7))?.entry.llmCalls == 1)
}

@Test func restartAnswersTheSameFromDisk() async throws {
    let clock = TestClock()
    let dir = tempDataDir()
    let first = try makeLedger(dir, clock: clock)
    for i in 1...20 {
        try await ingest(first, run(UInt64(i), workflow: "wf\(i % 3)", verdict: i % 2 == 0 ? "accepted" : "edited",
                                    calls: [("small", Int64(i * 10), Int64(i))], startOffset: Int64(i) * 60_000_000_000))
    }
    // Some released by time, the rest pending until shutdown drains them.
    clock.advance(seconds: 3)
    await first.tick()
    try await ingest(first, run(99, workflow: "wf0", verdict: nil, calls: [("large", 1, 1)]))
    try await first.drain()
    var all = window
    all.groupBy = [.workflow, .model, .outcome]
    let before = await first.query(all)
    #expect(before.reduce(0) { $0 + $1.runs } == 21)
    let second = try makeLedger(dir, clock: clock)
    #expect(await second.query(all) == before)
    #expect(await second.explain(TraceID(high: 42, low: 99))?.spans.count == 2, "run trees read back from disk")
}

@Test func spanBatchCodecRoundTripsEveryField() throws {
    let spans = [
        SpanRecord(traceID: TraceID(high: 1, low: 2), spanID: SpanID(3), parentSpanID: SpanID(4), name: "chat ✓", service: "svc",
                   startUnixNano: -5, endUnixNano: 1_000, isError: true, category: .llm, model: "m",
                   usage: TokenUsage(input: 10, cacheRead: 2, cacheWrite: 1, output: 5, reasoning: 3), explicitCostMicros: -7,
                   workflowNames: WorkflowNames(genAIWorkflow: "g", traceloopWorkflow: nil, agent: "a"), resendCount: 2,
                   verdict: Verdict(outcome: .escalated, timeUnixNano: 99)),
        SpanRecord(traceID: TraceID(high: 9, low: 9), spanID: SpanID(1), name: "", startUnixNano: 0, endUnixNano: 0),
    ]
    #expect(try SpanBatchCodec.decode(SpanBatchCodec.encode(spans)[...]) == spans)
    #expect(throws: (any Error).self) { try SpanBatchCodec.decode(Array(SpanBatchCodec.encode(spans).dropLast(3))[...]) }
}

@Test func runIndexKeepsEntriesAcrossChunksAndReplacesInPlace() {
    var index = RunIndex()
    func entry(_ n: UInt64, cost: Int64 = 0) -> TraceIndexEntry {
        TraceIndexEntry(traceID: TraceID(high: 1, low: n), workflow: "w\(n)", service: "s", startUnixNano: Int64(n), durationNano: 1,
                        outcome: .pending, costMicros: cost, llmCalls: 0, inputTokens: 0, outputTokens: 0, unpricedTokens: 0, spanCount: 1,
                        incomplete: false, models: [""], toolCalls: 0, retries: 0, errors: 0)
    }
    let n = RunIndex().chunkSize * 2 + 3
    for i in 1...UInt64(n) { index[TraceID(high: 1, low: i)] = entry(i) }
    #expect(index.count == n)
    index[TraceID(high: 1, low: UInt64(RunIndex().chunkSize + 1))] = entry(UInt64(RunIndex().chunkSize + 1), cost: 42)
    #expect(index.count == n)
    #expect(index[TraceID(high: 1, low: UInt64(RunIndex().chunkSize + 1))]?.costMicros == 42)
    #expect(index[TraceID(high: 1, low: UInt64(n))]?.workflow == "w\(n)")
    #expect(index[TraceID(high: 2, low: 1)] == nil)
    #expect(index.values.map(\.startUnixNano) == (1...Int64(n)).map { $0 })
    var seen = 0
    index.forEach { _ in seen += 1 }
    #expect(seen == n)
    index.removeAll()
    #expect(index.isEmpty && index[TraceID(high: 1, low: 1)] == nil)
}

// A flush writes the index entries changed since the last one, read from the index's
// own chunks as they stood when taken; writes after the take must not leak into it.
@Test func runIndexHandsAFlushEachChangedEntryOnceAsItStoodWhenTaken() {
    func entry(_ n: UInt64, cost: Int64 = 0) -> TraceIndexEntry {
        TraceIndexEntry(traceID: TraceID(high: 1, low: n), workflow: "w", service: "s", startUnixNano: Int64(n), durationNano: 1,
                        outcome: .pending, costMicros: cost, llmCalls: 0, inputTokens: 0, outputTokens: 0, unpricedTokens: 0, spanCount: 1,
                        incomplete: false, models: [""], toolCalls: 0, retries: 0, errors: 0)
    }
    let loaded = Dictionary(uniqueKeysWithValues: (1...3).map { (TraceID(high: 1, low: $0), entry($0)) })
    var index = RunIndex(loaded)
    #expect(index.changeCount == 0, "entries loaded from disk are not written again")
    let n = UInt64(RunIndex().chunkSize + 10)
    for i in 4...n { index[TraceID(high: 1, low: i)] = entry(i) }
    index[TraceID(high: 1, low: 2)] = entry(2, cost: 5)  // a loaded entry replaced
    index[TraceID(high: 1, low: 7)] = entry(7, cost: 1)  // replaced twice: listed once, latest
    index[TraceID(high: 1, low: 7)] = entry(7, cost: 2)
    let taken = index.takeChanges()
    #expect(taken.count == Int(n) - 3 + 1)
    #expect(taken.values.filter { $0.traceID.low == 7 }.map(\.costMicros) == [2])
    #expect(taken.values.first { $0.traceID.low == 2 }?.costMicros == 5)
    #expect(index.changeCount == 0)
    // After the take: a new run and a replacement in a chunk the flush still reads.
    index[TraceID(high: 1, low: n + 1)] = entry(n + 1)
    index[TraceID(high: 1, low: 7)] = entry(7, cost: 3)
    #expect(taken.values.first { $0.traceID.low == 7 }?.costMicros == 2, "the flush keeps what it took")
    #expect(!taken.values.contains { $0.traceID.low == n + 1 })
    // The flush failed: what it took counts as changed again, once, in its latest form.
    index.restore(taken)
    let retried = index.takeChanges()
    #expect(retried.count == taken.count + 1)
    #expect(retried.values.filter { $0.traceID.low == 7 }.map(\.costMicros) == [3])
}

// The clock releases runs in three steps (take on the actor, attribute off it, commit
// on it); what arrives for a run between the steps must end up in that one run.

@Test func lateSpansAndVerdictsForARunBeingAttributedJoinIt() async throws {
    let clock = TestClock()
    let ledger = try makeLedger(tempDataDir(), clock: clock)
    let trace = TraceID(high: 42, low: 8)
    try await ingest(ledger, run(8, workflow: "triage", verdict: nil, calls: [("small", 1000, 100)]))
    clock.advance(seconds: 3)
    let (toAttribute, released) = await ledger.takeDue(limit: 10)
    #expect(toAttribute.count == 1 && released == 1)
    // Meanwhile: a late span and a reviewer's verdict for the run.
    try await ingest(ledger, [llm(trace, 99, model: "small", input: 500, output: 50, start: minute0 + 5)])
    let verdict = await ledger.applyOutcomes([OutcomeRecord(traceID: trace, outcome: .rejected, timeUnixNano: minute0 + 10, source: .api)], sequence: 0)
    #expect(verdict.count == 1)
    await ledger.commit(toAttribute.map { ledger.prepare($0) })
    clock.advance(seconds: 3)
    await ledger.tick()
    let g = try #require(await ledger.query(window).first)
    // 1000×1 + 100×4 = 1400 µ$ at release; 500×1 + 50×4 = 700 µ$ late.
    #expect(g.runs == 1 && g.runs(.rejected) == 1 && g.measures.llmCalls == 2 && g.measures.costMicros == 2100)
    let entry = try #require(await ledger.explain(trace)?.entry)
    #expect(entry.llmCalls == 2 && entry.spanCount == 3 && entry.outcome == .rejected)
    #expect(await ledger.currentStats().runsReleased == 1)
}

@Test func lateSpansForcedOutWhileTheirRunIsAttributedWaitForIt() async throws {
    let clock = TestClock()
    let ledger = try makeLedger(tempDataDir(), clock: clock)
    let trace = TraceID(high: 42, low: 9)
    try await ingest(ledger, run(9, workflow: "triage", verdict: "accepted", calls: [("small", 1000, 100)]))
    clock.advance(seconds: 3)
    let (toAttribute, _) = await ledger.takeDue(limit: 10)
    try await ingest(ledger, [llm(trace, 99, model: "large", input: 100, output: 10, start: minute0 + 5)])
    // Shutdown releases everything at once, the late span included, before the commit.
    try await ledger.drain()
    #expect(await ledger.explain(trace) == nil, "the run is not recorded until its commit")
    await ledger.commit(toAttribute.map { ledger.prepare($0) })
    var byModel = window
    byModel.groupBy = [.model]
    let models = await ledger.query(byModel)
    #expect(Set(models.map(\.model)) == ["small", "large"])
    #expect(models.allSatisfy { $0.runs == 1 })
    #expect(await ledger.explain(trace)?.entry.llmCalls == 2)
    #expect(await ledger.currentStats().runsReleased == 1)
}

@Test func checkpointStaysBelowARunBeingAttributed() async throws {
    let dir = tempDataDir()
    let clock = TestClock()
    let (ledger, wal, ingest) = try await durableLedger(dir, clock: clock)
    defer { wal.close() }
    let first = wal.upcomingSequence
    try await send(ingest, run(10, workflow: "a", verdict: "accepted", calls: [("small", 100, 10)]))
    clock.advance(seconds: 3)
    let (toAttribute, _) = await ledger.takeDue(limit: 10)
    #expect(toAttribute.count == 1)
    #expect(await ledger.checkpointCandidate() == first, "the run's log record must be replayed if the process dies now")
    await ledger.commit(toAttribute.map { ledger.prepare($0) })
    #expect(await ledger.checkpointCandidate() == wal.upcomingSequence)
}

// The service commits a release chunk as the sum of its runs' records plus a correction
// for each run a held verdict or rework changed; the rollups must equal run-by-run commits.
/// Collects what observers hear, summed by workflow, outcome, rework and model.
final class ActivityTotals: RunActivityObserver, @unchecked Sendable {
    private let lock = NSLock()
    private var sums: [String: [Int64]] = [:]
    private(set) var deliveries = 0

    func observe(_ activity: RunActivity) { observe(contentsOf: [activity]) }

    func observe(contentsOf activities: [RunActivity]) {
        lock.withLock {
            for a in activities {
                deliveries += 1
                let run = "\(a.workflow)|\(a.service)|\(a.outcome)|\(a.rework)"
                sums[run, default: [0]][0] += a.runs
                for m in a.models {
                    let figures = [m.calls, m.retries, m.tokens, m.unpricedTokens, m.unpricedCalls, m.costMicros, m.inputTokens, m.cachedInputTokens,
                                   m.outputTokens]
                    let old = sums[run + "|" + m.model] ?? Array(repeating: 0, count: figures.count)
                    sums[run + "|" + m.model] = zip(old, figures).map { $0 + $1 }
                }
            }
        }
    }

    var totals: [String: [Int64]] { lock.withLock { sums.filter { $0.value.contains { $0 != 0 } } } }
}

@Test func chunkCommitSumsRecordsExactlyAsRunByRunCommits() async throws {
    func scenario(chunked: Bool) async throws -> (answers: [[QueryGroup]], heard: ActivityTotals) {
        let clock = TestClock()
        let ledger = try makeLedger(tempDataDir(), clock: clock)
        let heard = ActivityTotals()
        await ledger.setActivityObserver(heard)
        func task(_ spans: [FixtureSpan], _ id: String) -> [FixtureSpan] {
            var s = spans
            s[0].attributes.append(("outcome.task_id", .string(id)))
            return s
        }
        try await ingest(ledger, task(run(1, workflow: "triage", verdict: "rejected", calls: [("small", 1000, 100)]), "t1"))
        clock.advance(seconds: 3)
        await ledger.tick()
        // One chunk: a run whose outcome a held verdict changes, a rework run of task t1,
        // plain runs sharing keys, and a late span arriving mid-attribution.
        try await ingest(ledger, run(2, workflow: "triage", verdict: nil, calls: [("small", 500, 50), ("large", 10, 1)], startOffset: 1_000))
        try await ingest(ledger, task(run(3, workflow: "triage", verdict: "accepted", calls: [("small", 700, 70)], startOffset: 2_000), "t1"))
        for n in 4...9 { try await ingest(ledger, run(UInt64(n), workflow: n % 2 == 0 ? "triage" : "refund", verdict: "accepted", calls: [("small", 100, 10)])) }
        _ = await ledger.applyOutcomes([OutcomeRecord(traceID: TraceID(high: 42, low: 2), outcome: .escalated, timeUnixNano: minute0 + 10, source: .api)], sequence: 0)
        clock.advance(seconds: 3)
        let (toAttribute, _) = await ledger.takeDue(limit: 100)
        #expect(toAttribute.count == 8)
        try await ingest(ledger, [llm(TraceID(high: 42, low: 5), 99, model: "large", input: 300, output: 30, start: minute0 + 5)])
        if chunked {
            await ledger.commit(ledger.prepare(chunk: toAttribute))
        } else {
            await ledger.commit(toAttribute.map { ledger.prepare($0) })
        }
        clock.advance(seconds: 3)
        await ledger.tick()
        var answers: [[QueryGroup]] = []
        for groups in [[.workflow], [.model], [.outcome], [.workflow, .model, .outcome]] as [[GroupDimension]] {
            var q = window
            q.groupBy = groups
            answers.append(await ledger.query(q).sorted { "\($0.workflow ?? "")\($0.model ?? "")\($0.outcome?.rawValue ?? -1)" < "\($1.workflow ?? "")\($1.model ?? "")\($1.outcome?.rawValue ?? -1)" })
        }
        return (answers, heard)
    }
    let (runByRun, heardRunByRun) = try await scenario(chunked: false)
    let (chunked, heardChunked) = try await scenario(chunked: true)
    #expect(chunked == runByRun)
    // Observers hear a chunk as sums per workflow, outcome and rework, with the same totals.
    let heard = heardChunked.totals
    #expect(heard == heardRunByRun.totals)
    #expect(heard["triage|agents|escalated|false"] == [1] && heard["triage|agents|pending|false"] == nil, "the held verdict moved run 2")
    #expect(heard["triage|agents|accepted|true"] == [1] && heard["triage|agents|accepted|true|small"]?[0] == 1, "run 3 is rework")
    #expect(heard.filter { !$0.key.hasSuffix("|small") && !$0.key.hasSuffix("|large") }.values.reduce(0) { $0 + $1[0] } == 9)
    #expect(heardChunked.deliveries < heardRunByRun.deliveries, "a chunk is heard as a few sums")
    let byOutcome = runByRun[2]
    #expect(byOutcome.first { $0.outcome == .escalated }?.runs == 1, "the held verdict moved run 2")
    #expect(byOutcome.reduce(0) { $0 + $1.measures.reworkRuns } == 1, "run 3 re-ran rejected task t1")
}

// A batch is grouped by trace before it reaches the actor: interleaved traces, a trace
// met again later in the batch, and feedback spans whose verdicts are about other runs.
@Test func traceGroupsKeepEverySpanOnceInFirstSeenOrderAndLiftFeedbackVerdicts() {
    func span(_ trace: UInt64, _ id: UInt64, parent: UInt64 = 0, verdict: Verdict? = nil, feedbackFor: [TraceID] = []) -> SpanRecord {
        var s = SpanRecord(traceID: TraceID(high: 5, low: trace), spanID: SpanID(id), parentSpanID: SpanID(parent), name: "s\(id)",
                           startUnixNano: Int64(id), endUnixNano: Int64(id) + 1, verdict: verdict)
        s.feedbackFor = feedbackFor
        return s
    }
    let target = TraceID(high: 5, low: 99)
    let spans = [span(1, 1), span(1, 2, parent: 1), span(2, 3), span(3, 4, parent: 9), span(3, 5, parent: 4), span(1, 6, parent: 1),
                 span(4, 7, verdict: Verdict(outcome: .rejected, timeUnixNano: 70), feedbackFor: [target]),
                 span(2, 8, verdict: Verdict(outcome: .accepted, timeUnixNano: 80))]
    let kept = spans
    let g = TraceGroups(spans)
    // Grouping moves records out of the batch's array; an array still shared (here, with
    // `kept` and `spans`) is copied first, and its other holders see it unchanged.
    #expect(spans == kept && spans[0].name == "s1" && spans[6].feedbackFor == [target])
    #expect(g.spanCount == spans.count)
    #expect(g.groups.map(\.traceID.low) == [1, 2, 3, 4])
    #expect(g.groups.map { $0.spans.map(\.spanID.value) } == [[1, 2, 6], [3, 8], [4, 5], [7]])
    #expect(g.bytes == spans.reduce(0) { $0 + $1.approximateBytes })
    // Each group's bytes and root, for assembly: trace 3 has no root among its spans.
    #expect(g.groups.map(\.bytes) == g.groups.map { $0.spans.reduce(0) { $0 + $1.approximateBytes } })
    #expect(g.groups.map(\.bytes).reduce(0, +) == g.bytes && g.groups.map(\.hasRoot) == [true, true, false, true])
    #expect(g.feedback.map(\.traceID) == [target] && g.feedback.first?.outcome == .rejected)
    let feedbackSpan = g.groups[3].spans[0]
    #expect(feedbackSpan.verdict == nil && feedbackSpan.feedbackFor.isEmpty, "a feedback span's verdict is not its own trace's")
    #expect(g.groups[1].spans[1].verdict?.outcome == .accepted, "an ordinary verdict stays on its span")
}

// The box of rare fields is dropped exactly when none is set: each field alone keeps it
// (and makes the record differ), and clearing it again gives the plain record back.
@Test func eachRareFieldAloneKeepsTheBoxAndClearingItDropsIt() {
    let plain = SpanRecord(traceID: TraceID(high: 1, low: 2), spanID: SpanID(3), name: "run", startUnixNano: 0, endUnixNano: 1)
    let setters: [(inout SpanRecord) -> Void] = [
        { $0.explicitCostMicros = 1 }, { $0.workflowNames = WorkflowNames(genAIWorkflow: "a", agent: "b") }, { $0.resendCount = 1 },
        { $0.verdict = Verdict(outcome: .accepted, timeUnixNano: 1) }, { $0.feedbackFor = [TraceID(high: 4, low: 4)] },
        { $0.taskID = "T" }, { $0.usage = TokenUsage(input: Int64(Int32.max) + 1) },
    ]
    let clear: (inout SpanRecord) -> Void = {
        $0.explicitCostMicros = nil; $0.workflowNames = WorkflowNames(); $0.resendCount = 0; $0.verdict = nil
        $0.feedbackFor = []; $0.taskID = nil; $0.usage = TokenUsage()
    }
    var boxFields = 0
    for set in setters {
        var r = plain
        set(&r)
        #expect(r != plain && r.hasRareFields)
        let box = Mirror(reflecting: r).children.first { $0.label == "rare" }.flatMap { Mirror(reflecting: $0.value).children.first?.value }
        if let box, let fields = Mirror(reflecting: box).children.first?.value { boxFields = Mirror(reflecting: fields).children.count }
        clear(&r)
        #expect(r == plain && !r.hasRareFields)
    }
    // Every field of the box has a setter above: a field added later must be added here and to RareFields.isEmpty.
    #expect(boxFields == setters.count)
}

@Test func aSpanRecordsRareFieldsAreCopiedOnWrite() {
    var a = SpanRecord(traceID: TraceID(high: 1, low: 2), spanID: SpanID(3), name: "run", startUnixNano: 0, endUnixNano: 1)
    let plain = a
    #expect(a.workflowNames.isEmpty && a.taskID == nil && a.verdict == nil && a.feedbackFor.isEmpty && a.resendCount == 0)
    a.workflowNames = WorkflowNames() // setting the defaults leaves it equal to a record that never had them
    a.taskID = nil
    #expect(a == plain && a.hashValue == plain.hashValue)
    a.workflowNames.genAIWorkflow = "support"
    a.taskID = "T-1"
    var b = a
    b.taskID = "T-2"
    b.verdict = Verdict(outcome: .accepted, timeUnixNano: 5)
    b.feedbackFor = [TraceID(high: 9, low: 9)]
    #expect(a.taskID == "T-1" && a.verdict == nil && a.feedbackFor.isEmpty, "a copy's changes leave the original alone")
    #expect(b.workflowNames.genAIWorkflow == "support" && b.taskID == "T-2" && b.verdict?.outcome == .accepted)
    #expect(a != b && a != plain)
    var c = b
    c.taskID = "T-2"
    #expect(c == b && c.hashValue == b.hashValue, "equal fields are equal records, shared or not")
    c.explicitCostMicros = 7
    c.resendCount = 2
    #expect(b.explicitCostMicros == nil && b.resendCount == 0 && c.explicitCostMicros == 7 && c.resendCount == 2)
}

/// Records keep their name, service and model in one shared `SpanLabels`: a decoder's cache
/// hands the same object to spans with the same three (so a copy retains one reference),
/// a record changed afterwards gets labels of its own, and a record with all three empty
/// holds no reference at all (`TraceGroups` relies on that to vacate moved-out slots).
@Test func spansWithTheSameNamesShareLabelsAndChangeThemApart() {
    let cache = SpanLabelCache()
    // Strings built at run time, as a decoder's interner makes them (not literals).
    let chat = String(decoding: Array("chat gpt-4o-mini, the long way".utf8), as: UTF8.self)
    let service = String(decoding: Array("agent-service-with-a-long-name".utf8), as: UTF8.self)
    let model = String(decoding: Array("gpt-4o-mini-2024-07-18-preview".utf8), as: UTF8.self)
    func span(_ id: UInt64, name: String, model m: String) -> SpanRecord {
        SpanRecord(traceID: TraceID(high: 1, low: id), spanID: SpanID(id), name: name, service: service, startUnixNano: 0, endUnixNano: 1,
                   category: .llm, model: m, labelCache: cache)
    }
    let a = span(1, name: chat, model: model), b = span(2, name: chat, model: model)
    #expect(a.labels === b.labels, "the same three strings share one labels object")
    let c = span(3, name: chat, model: "other")
    #expect(c.labels !== a.labels && c.model == "other" && c.name == chat && c.service == service)
    // Equal strings with other storage: a new object (or a cache miss), yet equal records.
    let copied = String(decoding: Array(chat.utf8), as: UTF8.self)
    let d = span(1, name: copied, model: model)
    #expect(d == a && d.hashValue == a.hashValue)
    // Uncached records equal cached ones.
    let plain = SpanRecord(traceID: TraceID(high: 1, low: 1), spanID: SpanID(1), name: chat, service: service, startUnixNano: 0, endUnixNano: 1,
                           category: .llm, model: model)
    #expect(plain == a && plain.labels !== a.labels)
    var e = b
    e.name = "renamed"
    e.model = "m2"
    #expect(b.name == chat && b.model == model && b.labels === a.labels, "changing a copy leaves the shared labels alone")
    #expect(e.name == "renamed" && e.model == "m2" && e.service == service && e.labels !== a.labels)
    e.service = ""
    e.name = ""
    e.model = ""
    #expect(e.labels == nil && e.name.isEmpty && e.service.isEmpty && e.model.isEmpty, "no names, no reference")
    let empty = SpanRecord(traceID: TraceID(high: 0, low: 0), spanID: .none, name: "", startUnixNano: 0, endUnixNano: 0, labelCache: cache)
    #expect(empty.labels == nil)
    // A workflow root keeps its one workflow name in the detail slot of its labels.
    var root = SpanRecord(traceID: TraceID(high: 1, low: 4), spanID: SpanID(4), name: "wf", service: service, startUnixNano: 0, endUnixNano: 1,
                          workflowNames: WorkflowNames(genAIWorkflow: "support"), labelCache: cache)
    #expect(root.workflowNames.genAIWorkflow == "support" && root.model.isEmpty && root.rare == nil)
    root.model = "m"
    #expect(root.model == "m" && root.workflowNames.genAIWorkflow == "support" && root.name == "wf")
}

/// A buffered span keeps token counts in 32 bits and one workflow or agent name inline
/// (SpanRecord.swift): counts that do not fit, and spans with several names, must keep
/// every value, compare equal however they were set, and survive the log's codec.
@Test func aSpanRecordKeepsWideCountsAndSeveralNamesWhole() throws {
    #expect(MemoryLayout<SpanRecord>.stride <= 88, "assembly holds hundreds of thousands of these")
    let wide = TokenUsage(input: 5_000_000_000, cacheRead: 3, cacheWrite: 0, output: Int64(Int32.max) + 1, reasoning: -7)
    var a = SpanRecord(traceID: TraceID(high: 1, low: 2), spanID: SpanID(3), name: "chat", startUnixNano: 0, endUnixNano: 1, category: .llm,
                       model: "m", usage: wide)
    #expect(a.usage == wide && a.hasRareFields)
    var narrow = a
    narrow.usage = TokenUsage(input: 10, output: 2)
    #expect(narrow.usage == TokenUsage(input: 10, output: 2) && a.usage == wide, "a copy's counts are its own")
    let fresh = SpanRecord(traceID: TraceID(high: 1, low: 2), spanID: SpanID(3), name: "chat", startUnixNano: 0, endUnixNano: 1,
                           category: .llm, model: "m", usage: TokenUsage(input: 10, output: 2))
    #expect(narrow == fresh && narrow.hashValue == fresh.hashValue && !narrow.hasRareFields, "counts set after construction compare by value")
    #expect(narrow.usage.input == 10 && narrow.usage.total == 12)

    let one = WorkflowNames(agent: "planner")
    let several = WorkflowNames(genAIWorkflow: "support", traceloopWorkflow: nil, agent: "planner")
    a.workflowNames = one
    #expect(a.workflowNames == one && a.workflowNames.first == "planner")
    a.workflowNames = several
    #expect(a.workflowNames == several && a.workflowNames.first == "support")
    a.workflowNames = WorkflowNames(traceloopWorkflow: "billing")
    #expect(a.workflowNames == WorkflowNames(traceloopWorkflow: "billing"))
    let viaInit = SpanRecord(traceID: TraceID(high: 1, low: 2), spanID: SpanID(3), name: "chat", startUnixNano: 0, endUnixNano: 1,
                             category: .llm, model: "m", usage: wide, workflowNames: WorkflowNames(traceloopWorkflow: "billing"))
    #expect(a == viaInit && a.hashValue == viaInit.hashValue)
    let rootOnly = SpanRecord(traceID: TraceID(high: 4, low: 4), spanID: SpanID(1), name: "run", startUnixNano: 0, endUnixNano: 9,
                              workflowNames: WorkflowNames(genAIWorkflow: "support"))
    #expect(rootOnly.hasRareFields && rootOnly.verdict == nil && rootOnly.taskID == nil)

    // A model and a name: the model takes the inline slot, the name the box; without the
    // model the name moves inline, and the record equals one built with the name alone.
    var agentCall = SpanRecord(traceID: TraceID(high: 6, low: 6), spanID: SpanID(2), name: "invoke_agent", startUnixNano: 0, endUnixNano: 1,
                               model: "gpt-4o", workflowNames: one)
    #expect(agentCall.model == "gpt-4o" && agentCall.workflowNames == one)
    agentCall.model = ""
    let nameOnly = SpanRecord(traceID: TraceID(high: 6, low: 6), spanID: SpanID(2), name: "invoke_agent", startUnixNano: 0, endUnixNano: 1,
                              workflowNames: one)
    #expect(agentCall == nameOnly && agentCall.hashValue == nameOnly.hashValue && agentCall.model.isEmpty)
    agentCall.model = "gpt-4o"
    agentCall.workflowNames = WorkflowNames()
    #expect(agentCall.model == "gpt-4o" && agentCall.workflowNames.isEmpty && !agentCall.hasRareFields)

    let spans = [a, narrow, rootOnly, viaInit, nameOnly,
                 SpanRecord(traceID: TraceID(high: 6, low: 7), spanID: SpanID(3), name: "both", startUnixNano: 0, endUnixNano: 1, model: "m2",
                            workflowNames: several),
                 SpanRecord(traceID: TraceID(high: 5, low: 5), spanID: SpanID(2), name: "agent", startUnixNano: 1, endUnixNano: 2, workflowNames: several,
                            taskID: "T-9")]
    #expect(try SpanBatchCodec.decode(SpanBatchCodec.encode(spans)[...]) == spans)
}

// Eviction keeps memory bounded: the oldest whole chunks leave once flushed, never the
// chunk being filled, never an entry changed since the last flush took the changes.
@Test func runIndexEvictsOldestFlushedChunksOnly() {
    func entry(_ n: UInt64) -> TraceIndexEntry {
        TraceIndexEntry(traceID: TraceID(high: 3, low: n), workflow: "w", service: "s", startUnixNano: Int64(n), durationNano: 1,
                        outcome: .pending, costMicros: 0, llmCalls: 0, inputTokens: 0, outputTokens: 0, unpricedTokens: 0, spanCount: 1,
                        incomplete: false, models: [""], toolCalls: 0, retries: 0, errors: 0)
    }
    var index = RunIndex(chunkShift: RunIndex.chunkShift(forLimit: 128))
    #expect(index.chunkSize == 16)
    for i in 1...UInt64(100) { index[TraceID(high: 3, low: i)] = entry(i) }
    #expect(index.evictOldest(keeping: 20) == 0, "nothing leaves before a flush took it")
    _ = index.takeChanges()
    index[TraceID(high: 3, low: 40)] = entry(40) // chunk 2 (33...48) changed again
    #expect(index.evictOldest(keeping: 20) == 32, "chunks 0 and 1 leave; chunk 2 waits for the next flush")
    #expect(index.residentCount == 68 && index.evictedCount == 32 && index.count == 100)
    #expect(index[TraceID(high: 3, low: 1)] == nil && !index.contains(TraceID(high: 3, low: 32)))
    #expect(index[TraceID(high: 3, low: 33)] != nil)
    _ = index.takeChanges()
    #expect(index.evictOldest(keeping: 20) == 48, "down to the last full chunk and the one being filled")
    #expect(index.residentCount == 20)
    var seen: [Int64] = []
    index.forEach { seen.append($0.startUnixNano) }
    #expect(seen == Array(81...100))
    // A run that left comes back (a late verdict): a new entry at the end.
    index[TraceID(high: 3, low: 1)] = entry(1)
    #expect(index[TraceID(high: 3, low: 1)]?.startUnixNano == 1 && index.residentCount == 21 && index.count == 101)
}

/// Queries read the table (through the last flush taken) and the records since: a release,
/// a flush taken, a flush that failed and was put back, and the retry each leave every
/// answer (and the rollup records another node merges) exactly as it was.
@Test func queriesCountEveryRunOnceAcrossFlushesTakenFailedAndRetried() async throws {
    let clock = TestClock()
    let dir = tempDataDir()
    let ledger = try makeLedger(dir, clock: clock)
    var all = window
    all.groupBy = [.workflow, .model, .outcome]
    func ingestRuns(_ ids: ClosedRange<Int>) async throws {
        for i in ids {
            try await ingest(ledger, run(UInt64(i), workflow: "wf\(i % 3)", verdict: i % 2 == 0 ? "accepted" : "rejected",
                                         calls: [("small", Int64(i * 10), Int64(i))], startOffset: Int64(i % 4) * 60_000_000_000))
        }
        clock.advance(seconds: 3)
        await ledger.tick()
    }
    func totals() async -> (runs: Int64, cost: Int64, records: Int64) {
        let groups = await ledger.query(all)
        let records = await ledger.rollupRecords(all).records.values.reduce(0) { $0 + $1.runs }
        return (groups.reduce(0) { $0 + $1.runs }, groups.reduce(0) { $0 + $1.measures.costMicros }, records)
    }
    try await ingestRuns(1...12)
    let released = await totals()
    #expect(released.runs == 12 && released.records > 0, "released runs answer before any flush")
    #expect(await ledger.workflows() == ["wf0", "wf1", "wf2"])
    try await ledger.flush()
    #expect(await totals() == released, "a flush moves records into the table without counting them again")
    try await ingestRuns(13...20)
    let more = await totals()
    #expect(more.runs == 20 && more.cost > released.cost)
    let taken = try #require(await ledger.takeUnflushed())
    #expect(await totals() == more, "a flush being written still answers")
    await ledger.restore(taken)
    #expect(await totals() == more, "a failed flush put back is not counted twice")
    try await ingestRuns(21...24)
    let last = await totals()
    #expect(last.runs == 24)
    try await ledger.flush()
    #expect(await totals() == last)
    let reopened = try makeLedger(dir, clock: clock)
    #expect(await reopened.query(all) == (await ledger.query(all)), "the disk holds each run once")
}
