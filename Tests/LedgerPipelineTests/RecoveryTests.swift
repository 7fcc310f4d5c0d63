import Attribution
import Foundation
import LedgerCore
import LedgerPipeline
import LedgerStore
import Logging
import OTLPDecoding
import OTLPFixtures
import Rollups
import Testing
import WriteAheadLog

/// A ledger with a write-ahead log in `dir`, recovered and ready, as `serve` builds it.
func durableLedger(_ dir: String, clock: TestClock) async throws -> (Ledger, WriteAheadLog, DurableIngest) {
    let (wal, report) = try WriteAheadLog.open(.init(directory: dir + "/wal"))
    var config = LedgerConfiguration()
    config.dataDirectory = dir
    config.assembly.waitNano = 2_000_000_000
    let ledger = try Ledger(configuration: config, prices: prices, logger: Logger(label: "test"), wal: wal,
                            monotonicNow: { clock.now }, wallNow: { minute0 })
    try await ledger.recover(report: report)
    try wal.start()
    return (ledger, wal, DurableIngest(ledger: ledger, wal: wal))
}

func send(_ ingest: DurableIngest, _ spans: [FixtureSpan]) async throws {
    let batch = try OTLPProtobufDecoder().decode(OTLPFixtureEncoder.encode([("agents", spans)]))
    try await ingest.consume(batch.spans)
}

var everything: RollupQuery {
    var q = window
    q.groupBy = [.workflow, .model, .outcome]
    return q
}

@Test func killBeforeAnyFlushReplaysEverythingAcknowledged() async throws {
    let dir = tempDataDir()
    let clock = TestClock()
    let (_, wal, ingest) = try await durableLedger(dir, clock: clock)
    for i in 1...10 { try await send(ingest, run(UInt64(i), workflow: "w\(i % 2)", verdict: "accepted", calls: [("small", 100, 10)])) }
    wal.close() // the process dies here: nothing was flushed
    let (ledger, _, _) = try await durableLedger(dir, clock: clock)
    clock.advance(seconds: 3)
    await ledger.tick()
    let groups = await ledger.query(everything)
    #expect(groups.reduce(0) { $0 + $1.runs } == 10)
    #expect(groups.reduce(0) { $0 + $1.measures.costMicros } == 10 * 140)
    #expect(await ledger.currentStats().replayedRecords == 10)
}

@Test func crashBetweenFlushAndCheckpointDoesNotCountTwice() async throws {
    let dir = tempDataDir()
    let clock = TestClock()
    let (first, wal, ingest) = try await durableLedger(dir, clock: clock)
    for i in 1...5 { try await send(ingest, run(UInt64(i), workflow: "a", verdict: "accepted", calls: [("small", 100, 10)])) }
    clock.advance(seconds: 3)
    await first.tick()
    try await first.flush()
    let checkpointAfterFirstFlush = try Data(contentsOf: URL(fileURLWithPath: dir + "/wal/checkpoint"))
    // Second round: one run released and flushed, one still open when the process dies.
    for i in 6...8 { try await send(ingest, run(UInt64(i), workflow: "b", verdict: "rejected", calls: [("large", 10, 1)])) }
    clock.advance(seconds: 3)
    await first.tick()
    try await send(ingest, run(9, workflow: "b", verdict: nil, calls: [("small", 1, 1)]))
    try await first.flush()
    // Run 9 is released in memory only; then the process dies.
    clock.advance(seconds: 3)
    await first.tick()
    let truth = await first.query(everything)
    #expect(truth.reduce(0) { $0 + $1.runs } == 9)
    wal.close()
    // The crash came after the second flush's segments but before its checkpoint.
    try checkpointAfterFirstFlush.write(to: URL(fileURLWithPath: dir + "/wal/checkpoint"))
    let (second, wal2, _) = try await durableLedger(dir, clock: clock)
    clock.advance(seconds: 3)
    await second.tick()
    #expect(await second.query(everything) == truth)
    #expect(await second.currentStats().replaySkippedSpans == 6, "the three flushed runs of round two (2 spans each) are skipped")
    // And once more after a clean stop: nothing replays, same answer.
    try await second.drain()
    wal2.close()
    let (third, _, _) = try await durableLedger(dir, clock: clock)
    #expect(await third.currentStats().replayedRecords == 0)
    #expect(await third.query(everything) == truth)
}

@Test func fullBufferOfLiveTracesRefusesRetryably() async throws {
    let clock = TestClock()
    var config = LedgerConfiguration()
    config.dataDirectory = tempDataDir()
    config.assembly.maxTraces = 3
    config.assembly.waitNano = 5_000_000_000
    let ledger = try Ledger(configuration: config, prices: prices, logger: Logger(label: "test"), monotonicNow: { clock.now }, wallNow: { minute0 })
    for i in 1...3 { try await ingest(ledger, [llm(TraceID(high: 1, low: UInt64(i)), 5, model: "small", input: 1, output: 1, start: minute0)]) }
    await #expect(throws: IngestRefusal.self) { try await ingest(ledger, [llm(TraceID(high: 1, low: 99), 5, model: "small", input: 1, output: 1, start: minute0)]) }
    // Once the open traces are older than the wait window, the oldest is evicted instead.
    clock.advance(seconds: 6)
    try await ingest(ledger, [llm(TraceID(high: 1, low: 100), 5, model: "small", input: 1, output: 1, start: minute0)])
    #expect(await ledger.currentStats().tracesEvicted == 1)
}

/// `unknown_runs=refuse` (clients of several nodes): a verdict for a run this node has —
/// released or still pending in assembly — is recorded as usual; one for a run it does
/// not have is answered `.notFound`, neither held nor logged, so a replay does not hold
/// it either.
@Test func verdictsForRunsNotHereAreRefusedUnloggedWhenAskedTo() async throws {
    let dir = tempDataDir()
    let clock = TestClock()
    let (ledger, wal, ingest) = try await durableLedger(dir, clock: clock)
    try await send(ingest, run(1, workflow: "w", verdict: nil, calls: [("small", 100, 10)]))
    clock.advance(seconds: 3)
    await ledger.tick() // run 1 released
    try await send(ingest, run(2, workflow: "w", verdict: nil, calls: [("small", 100, 10)])) // run 2 pending in assembly
    func verdict(_ n: UInt64, _ outcome: Outcome) -> OutcomeRecord {
        OutcomeRecord(traceID: TraceID(high: 42, low: n), outcome: outcome, timeUnixNano: minute0 + 10, source: .api)
    }
    // A batch mixing the released run, one elsewhere and the pending one: results in order.
    let results = try await ingest.record([verdict(1, .accepted), verdict(9, .rejected), verdict(2, .rejected)], unknownRuns: .refuse)
    #expect(results == [.applied, .notFound, .held])
    #expect(await ledger.heldVerdictCount() == 1, "the pending run's verdict is held; the unknown one is not")
    // Only unknown runs: nothing logged at all.
    #expect(try await ingest.record([verdict(8, .accepted)], unknownRuns: .refuse) == [.notFound])
    // The default still holds a verdict for a run not seen yet.
    #expect(try await ingest.record([verdict(7, .accepted)]) == [.held])
    #expect(await ledger.heldVerdictCount() == 2)
    // The log holds what was recorded and nothing refused: after a replay and release,
    // only 7's verdict is still held (8 and 9 would be too, had they been logged).
    wal.close()
    let (again, _, _) = try await durableLedger(dir, clock: clock)
    #expect(await again.knownRuns([TraceID(high: 42, low: 1), TraceID(high: 42, low: 2), TraceID(high: 42, low: 9)]) ==
            [TraceID(high: 42, low: 1), TraceID(high: 42, low: 2)])
    clock.advance(seconds: 3)
    await again.tick()
    #expect(await again.heldVerdictCount() == 1)
    let groups = await again.query(everything)
    func runs(_ o: Outcome) -> Int64 { groups.filter { $0.outcome == o }.reduce(0) { $0 + $1.runs } }
    #expect(runs(.accepted) == 1)
    #expect(runs(.rejected) == 1, "run 2 got its held verdict when released")
    #expect(runs(.pending) == 0)
}
