import Foundation
import LedgerCore
@testable import LedgerPipeline
import LedgerStore
import Logging
import OTLPFixtures
import Rollups
import Testing

/// Small flushes' index and run-tree files are merged once compaction covers them; every
/// run is found as before (entries, trees with their late spans, verdicts), after a
/// restart too, and a merge cut short by a crash is finished or dropped at open.

/// Ten flushes of ten one-call runs (traces 42/1…42/100); run 42/5 gets a late span in
/// flush 7. Every run but the newest 16 is on disk only.
private func tenSmallFlushes(_ dir: String, clock: TestClock, maxRunsPerMergedSegment: Int = 50_000) async throws -> Ledger {
    let ledger = try makeBoundedLedger(dir, clock: clock, maxIndexedRuns: 16, maxRunsPerMergedSegment: maxRunsPerMergedSegment)
    for f in 0..<10 {
        for n in UInt64(f * 10 + 1)...UInt64(f * 10 + 10) {
            try await ingest(ledger, run(n, workflow: "merge", verdict: nil, calls: [("small", 1000, 100)]))
        }
        if f == 6 { try await ingest(ledger, [llm(TraceID(high: 42, low: 5), 99, model: "small", input: 500, output: 50, start: minute0 + 5)]) }
        clock.advance(seconds: 3)
        await ledger.tick()
        try await ledger.flush()
    }
    return ledger
}

private func expectEveryRunFound(_ ledger: Ledger) async throws {
    for n in UInt64(1)...100 {
        let e = try #require(await ledger.explain(TraceID(high: 42, low: n)), "run \(n)")
        #expect(e.spans.count == (n == 5 ? 3 : 2), "run \(n): its spans, each once")
        #expect(e.entry.costMicros == (n == 5 ? 2100 : 1400), "run \(n): its latest entry")
    }
}

@Test func smallFlushesAreMergedOnceCompactedAndEveryRunIsStillFound() async throws {
    let clock = TestClock()
    let dir = tempDataDir()
    let ledger = try await tenSmallFlushes(dir, clock: clock)
    let data = DataDirectory(path: dir)
    #expect(data.sequences(.traceIndex) == Array(1...10) && data.sequences(.traceDetail) == Array(1...10))
    var total = window
    total.groupBy = [.workflow, .outcome]
    let before = await ledger.query(total)
    let bytesBefore = data.bytesOnDisk()

    _ = try await ledger.compact()
    await ledger.mergeRunSegments()
    #expect(data.sequences(.traceIndex) == [10] && data.sequences(.traceDetail) == [10], "one pair of files for the ten flushes")
    let stats = await ledger.currentStats()
    #expect(stats.runSegmentsMerged == 10 && stats.mergedRunSegmentsWritten == 1 && stats.runSegmentMergeFailures == 0)
    let bytesAfter = data.bytesOnDisk()
    #expect(bytesAfter[.traceIndex]! < bytesBefore[.traceIndex]! && bytesAfter[.traceDetail]! < bytesBefore[.traceDetail]!)
    #expect(await ledger.query(total) == before)
    try await expectEveryRunFound(ledger)
    // A verdict for a merged run on disk only is applied once.
    #expect(await ledger.applyOutcomes([OutcomeRecord(traceID: TraceID(high: 42, low: 3), outcome: .accepted, timeUnixNano: minute0 + 10, source: .api)],
                                       sequence: 0) == [.applied])
    try await ledger.flush()
    // The merged pair is still small (under half the limit): the next compaction merges
    // it again with the verdict's flush.
    _ = try await ledger.compact()
    await ledger.mergeRunSegments()
    #expect(data.sequences(.traceDetail) == [11] && data.sequences(.traceIndex) == [11])
    #expect(await ledger.currentStats().mergedRunSegmentsWritten == 2)
    try await expectEveryRunFound(ledger)

    // After a restart: the same runs, the verdict kept, new flushes numbered after.
    let again = try makeBoundedLedger(dir, clock: clock, maxIndexedRuns: 16)
    try await expectEveryRunFound(again)
    #expect(await again.explain(TraceID(high: 42, low: 3))?.entry.outcome == .accepted)
    let grouped = await again.query(total)
    #expect(grouped.first { $0.outcome == .accepted }?.runs == 1 && grouped.reduce(0) { $0 + $1.runs } == 100)
    try await ingest(again, run(101, workflow: "merge", verdict: "accepted", calls: []))
    clock.advance(seconds: 3)
    await again.tick()
    try await again.flush()
    #expect(data.sequences(.traceDetail).last! > 11)
}

@Test func aMergeCutShortIsFinishedOrDroppedAtOpen() async throws {
    for committed in [true, false] {
        let clock = TestClock()
        let dir = tempDataDir()
        let ledger = try await tenSmallFlushes(dir, clock: clock)
        _ = ledger
        let data = DataDirectory(path: dir)
        let batch = Array(UInt64(1)...10)
        let merged = try data.writeMerged(batch, nowUnixMs: 0)
        if committed {
            // Crashed after the trees file was renamed into place, before the other
            // flushes' files were removed: keep copies, commit, put them back with the journal.
            var saved: [(String, [UInt8])] = []
            for seq in batch.dropLast() {
                for kind in [SegmentKind.traceIndex, .traceDetail] {
                    let p = data.file(kind, sequence: seq)
                    saved.append((p, Array(try Data(contentsOf: URL(fileURLWithPath: p)))))
                }
            }
            try data.commitMerged(merged)
            for (p, bytes) in saved { try Data(bytes).write(to: URL(fileURLWithPath: p)) }
            let journal = "\(merged.key) \(merged.treesLength) \(merged.treesCRC) " + batch.map(String.init).joined(separator: ",") + "\n"
            try Data(journal.utf8).write(to: URL(fileURLWithPath: dir + "/run-merge.journal"))
        } else {
            // Crashed after the journal, before any rename.
            let journal = "\(merged.key) \(merged.treesLength) \(merged.treesCRC) " + batch.map(String.init).joined(separator: ",") + "\n"
            try Data(journal.utf8).write(to: URL(fileURLWithPath: dir + "/run-merge.journal"))
        }
        let again = try makeBoundedLedger(dir, clock: clock, maxIndexedRuns: 16)
        #expect(!FileManager.default.fileExists(atPath: dir + "/run-merge.journal"))
        #expect(!FileIO_anyMerged(dir), "no merged file left beside the live ones")
        #expect(data.sequences(.traceDetail) == (committed ? [10] : batch), "committed: \(committed)")
        try await expectEveryRunFound(again)
    }
}

private func FileIO_anyMerged(_ dir: String) -> Bool {
    ["index", "traces"].contains { sub in
        ((try? FileManager.default.contentsOfDirectory(atPath: dir + "/" + sub)) ?? []).contains { $0.hasSuffix(".merged") }
    }
}

@Test func mergePlansTakeRunsOfSmallFlushesOnly() {
    let day: Int64 = 86_400_000_000_000
    func s(_ seq: UInt64, _ runs: Int, _ start: Int64 = 0) -> RunSegmentMergePlan.Segment {
        RunSegmentMergePlan.Segment(sequence: seq, runs: runs, newestStartUnixNano: start)
    }
    // Big flushes (half the limit or more) stay and split the runs around them.
    #expect(RunSegmentMergePlan.batches([s(1, 10), s(2, 10), s(3, 600), s(4, 10), s(5, 10), s(6, 10)], through: 10, maxRuns: 1000)
            == [[1, 2], [4, 5, 6]])
    // Up to the limit of runs per merged file; a lone small flush is left for later.
    #expect(RunSegmentMergePlan.batches([s(1, 400), s(2, 400), s(3, 400), s(4, 10)], through: 10, maxRuns: 1000) == [[1, 2], [3, 4]])
    #expect(RunSegmentMergePlan.batches([s(1, 400), s(2, 400), s(3, 400)], through: 10, maxRuns: 1000) == [[1, 2]])
    // Only flushes compaction covers, and runs within a day of each other.
    #expect(RunSegmentMergePlan.batches([s(1, 10), s(2, 10), s(3, 10)], through: 2, maxRuns: 1000) == [[1, 2]])
    #expect(RunSegmentMergePlan.batches([s(1, 10, 0), s(2, 10, day / 2), s(3, 10, 2 * day), s(4, 10, 2 * day)], through: 9, maxRuns: 1000)
            == [[1, 2], [3, 4]])
}

@Test func listingRunsReadsTheIndexOnDiskForRunsThatLeftMemory() async throws {
    let clock = TestClock()
    let dir = tempDataDir()
    let ledger = try makeBoundedLedger(dir, clock: clock, maxIndexedRuns: 16)
    // Ten flushes of ten runs; run n starts n seconds after minute0.
    for f in 0..<10 {
        for n in UInt64(f * 10 + 1)...UInt64(f * 10 + 10) {
            try await ingest(ledger, run(n, workflow: "list", verdict: nil, calls: [("small", 1000, 100)], startOffset: Int64(n) * 1_000_000_000))
        }
        clock.advance(seconds: 3)
        await ledger.tick()
        try await ledger.flush()
    }
    #expect(await ledger.currentStats().runsOnDiskOnly >= 64)
    let from = minute0 - 3_600_000_000_000, to = minute0 + 3_600_000_000_000
    func list(_ limit: Int, from: Int64 = from, to: Int64 = to, workflow: String? = nil, outcome: Outcome? = nil) async -> [UInt64] {
        await ledger.runs(fromUnixNano: from, toUnixNano: to, workflow: workflow, outcome: outcome, limit: limit).map(\.traceID.low)
    }
    #expect(await list(1000) == Array((1...100).reversed()), "every run, on disk or in memory, newest first")
    #expect(await list(50) == Array((51...100).reversed()))
    let before = await ledger.currentStats().runListSegmentsRead
    #expect(await list(5) == [100, 99, 98, 97, 96])
    #expect(await ledger.currentStats().runListSegmentsRead - before <= 2, "the newest runs need the newest segments only")
    let second: Int64 = 1_000_000_000
    #expect(await list(1000, from: minute0 + 20 * second, to: minute0 + 30 * second) == Array((20...29).reversed()))
    #expect(await list(1000, workflow: "other").isEmpty)
    // A verdict for a run on disk: listed by its new outcome, once.
    #expect(await ledger.applyOutcomes([OutcomeRecord(traceID: TraceID(high: 42, low: 3), outcome: .accepted, timeUnixNano: minute0 + 10, source: .api)],
                                       sequence: 0) == [.applied])
    try await ledger.flush()
    #expect(await list(1000, outcome: .accepted) == [3])
    #expect(await list(1000, outcome: .pending).count == 99)
    // The same after the flushes are merged, and after a restart.
    _ = try await ledger.compact()
    await ledger.mergeRunSegments()
    #expect(await ledger.currentStats().runSegmentsMerged >= 2)
    #expect(await list(1000) == Array((1...100).reversed()))
    #expect(await list(1000, outcome: .accepted) == [3])
    let again = try makeBoundedLedger(dir, clock: clock, maxIndexedRuns: 16)
    #expect(await again.runs(fromUnixNano: from, toUnixNano: to, workflow: nil, outcome: .accepted, limit: 10).map(\.traceID.low) == [3])
    #expect(await again.runs(fromUnixNano: from, toUnixNano: to, workflow: "list", outcome: nil, limit: 1000).count == 100)
}

@Test func aMergeRoundWritesAtMostItsBatchesAndTheNextRoundGoesOn() async throws {
    let clock = TestClock()
    let dir = tempDataDir()
    // Pairs of at most 40 runs (a flush holds ten runs, flush 7 eleven: run 5's late span):
    // flushes 1-4, then 5-7, then 8-10; a pair of 20 runs or more is not merged again.
    let ledger = try await tenSmallFlushes(dir, clock: clock, maxRunsPerMergedSegment: 40)
    let data = DataDirectory(path: dir)
    _ = try await ledger.compact()
    // A round whose task is cancelled stops before its first pair.
    let cancelled = Task { [ledger] in
        withUnsafeCurrentTask { $0?.cancel() }
        await ledger.mergeRunSegments()
    }
    await cancelled.value
    #expect(data.sequences(.traceDetail) == Array(1...10))
    await ledger.mergeRunSegments(maxBatches: 1)
    #expect(data.sequences(.traceDetail) == [4, 5, 6, 7, 8, 9, 10])
    await ledger.mergeRunSegments(maxBatches: 1)
    #expect(data.sequences(.traceDetail) == [4, 7, 8, 9, 10])
    await ledger.mergeRunSegments()
    #expect(data.sequences(.traceDetail) == [4, 7, 10] && data.sequences(.traceIndex) == [4, 7, 10])
    #expect(await ledger.currentStats().mergedRunSegmentsWritten == 3)
    try await expectEveryRunFound(ledger)
}
