import Foundation
import LedgerCore
@testable import LedgerPipeline
import LedgerStore
import Logging
import OTLPFixtures
import Testing

/// Seconds since `start`, for bounds on how long something waited.
private func elapsed(since start: ContinuousClock.Instant) -> Double {
    let d = ContinuousClock.now - start
    return Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

@Test func ingestGoesOnAtOnceWhileReleaseKeepsUp() async {
    let gate = ReleaseBacklog(limitNano: 500_000_000)
    gate.update(lagNano: 400_000_000)
    let start = ContinuousClock.now
    await gate.waitForRelease()
    #expect(elapsed(since: start) < 0.5)
    #expect(gate.waits == 0)
}

@Test func ingestWaitsWhileReleaseLagsAndGoesOnWhenItCatchesUp() async throws {
    let gate = ReleaseBacklog(limitNano: 500_000_000, maxWaitNano: 30_000_000_000)
    gate.update(lagNano: 2_000_000_000)
    let done = Task {
        await gate.waitForRelease()
        return ContinuousClock.now
    }
    try await Task.sleep(for: .milliseconds(300))
    let caughtUp = ContinuousClock.now
    gate.update(lagNano: 600_000_000)
    try await Task.sleep(for: .milliseconds(100))
    #expect(gate.waits == 1)
    gate.update(lagNano: 100_000_000) // under the limit: the waiter goes on
    let finished = await done.value
    #expect(finished >= caughtUp, "it waited until release caught up")
    #expect(elapsed(since: caughtUp) < 10, "and not for its maximum wait")
}

@Test func aWaitEndsAtItsMaximumAndAnOpenedGateLetsEveryoneThrough() async {
    let gate = ReleaseBacklog(limitNano: 500_000_000, maxWaitNano: 200_000_000)
    gate.update(lagNano: 5_000_000_000)
    var start = ContinuousClock.now
    await gate.waitForRelease()
    let waited = elapsed(since: start)
    #expect(waited >= 0.19 && waited < 10, "waited \(waited) s")
    gate.open()
    start = ContinuousClock.now
    await gate.waitForRelease()
    #expect(elapsed(since: start) < 0.15)
    #expect(gate.waits == 1)
}

@Test func takingDueTracesSetsTheLagIngestWaitsOn() async throws {
    let clock = TestClock()
    let ledger = try makeLedger(tempDataDir(), clock: clock)
    for n in 1...10 as ClosedRange<UInt64> {
        try await ingest(ledger, run(n, workflow: "w", verdict: nil, calls: [("small", 10, 10)]))
    }
    clock.advance(seconds: 3) // due since 1 s (wait 2 s)
    _ = await ledger.takeDue(limit: 4)
    #expect(ledger.backlog.lagNano == 1_000_000_000, "six traces still due, the oldest for 1 s")
    _ = await ledger.takeDue(limit: 100)
    #expect(ledger.backlog.lagNano == 0)
}

@Test func aReleaseRoundStopsAtItsBudgetAndUsesBothCoresOnlyWhileLagging() async throws {
    let clock = TestClock()
    let ledger = try makeLedger(tempDataDir(), clock: clock)
    let service = LedgerService(ledger: ledger, logger: Logger(label: "test"))
    let chunk = LedgerService.releaseChunk, depth = LedgerService.laggingPipelineDepth
    let runs = chunk * (depth + 3)
    var spans: [FixtureSpan] = []
    for n in 1...UInt64(runs) { spans += run(n, workflow: "w", verdict: nil, calls: [("small", 10, 10)]) }
    try await ingest(ledger, spans)
    clock.advance(seconds: 3)
    await ledger.backlog.waitForRelease() // a batch arriving: requests are waiting on the cores
    #expect(await service.releaseDue(budget: .zero), "one round, more due")
    #expect(await ledger.currentStats().runsReleased == Int64(chunk),
            "no lag known yet: one chunk, attributed on one core")
    #expect(ledger.backlog.lagNano == 1_000_000_000)
    #expect(await service.releaseDue(budget: .zero))
    #expect(await ledger.currentStats().runsReleased == Int64(chunk * (1 + depth)),
            "lagging by 1 s: \(depth) chunks attributed at once, on both cores")
    #expect(await service.releaseDue() == false, "without a budget the round takes everything due")
    #expect(await ledger.currentStats().runsReleased == Int64(runs))
    #expect(await ledger.attributing.isEmpty, "every chunk taken was recorded")
}

@Test func theClockFlushesEarlyWhenManySpansWaitForAFlush() async throws {
    let dir = tempDataDir()
    var config = LedgerConfiguration()
    config.dataDirectory = dir
    config.assembly.waitNano = 10_000_000
    config.tickIntervalNano = 10_000_000
    config.flushIntervalNano = 3_600_000_000_000 // the interval alone would not flush in this test
    config.maxUnflushedSpans = 40
    let ledger = try Ledger(configuration: config, prices: prices, logger: Logger(label: "test"), wallNow: { minute0 })
    let service = LedgerService(ledger: ledger, logger: Logger(label: "test"))
    let clockTask = Task { try await service.run() }
    defer { clockTask.cancel() }
    var spans: [FixtureSpan] = []
    for n in 1...30 as ClosedRange<UInt64> { spans += run(n, workflow: "w", verdict: nil, calls: [("small", 10, 10)]) } // 60 spans
    try await ingest(ledger, spans)
    var flushes: Int64 = 0
    for _ in 0..<500 where flushes == 0 {
        try await Task.sleep(for: .milliseconds(20))
        flushes = await ledger.currentStats().flushes
    }
    #expect(flushes >= 1)
    #expect(await ledger.currentStats().unflushedSpans == 0)
    #expect(DataDirectory(path: dir).sequences(.traceDetail).count >= 1, "the run trees are on disk")
}

/// The clock wakes when a trace falls due, not on the next tick: with a 60 s tick and a
/// 300 ms trace wait, a run is rolled up long before the tick (a fixed tick released it
/// at 60 s). The bound is loose: tests share the concurrency pool's two threads, and
/// under the whole suite the clock's task waited seconds to run.
@Test func theClockReleasesARunWhenItsWaitEndsNotOnTheNextTick() async throws {
    var config = LedgerConfiguration()
    config.dataDirectory = tempDataDir()
    config.assembly.waitNano = 300_000_000
    config.tickIntervalNano = 60_000_000_000
    let ledger = try Ledger(configuration: config, prices: prices, logger: Logger(label: "test"), wallNow: { minute0 })
    try await ingest(ledger, run(1, workflow: "w", verdict: nil, calls: [("small", 10, 10)]))
    let start = ContinuousClock.now
    let clockTask = Task { try await LedgerService(ledger: ledger, logger: Logger(label: "test")).run() }
    defer { clockTask.cancel() }
    var released: Int64 = 0
    while released == 0 && ContinuousClock.now - start < .seconds(30) {
        try await Task.sleep(for: .milliseconds(10))
        released = await ledger.currentStats().runsReleased
    }
    let took = ContinuousClock.now - start
    #expect(released == 1)
    #expect(took < .seconds(30), "released after \(took)")
}

/// No request arriving (none for 50 ms): a backlog that does not lag yet is attributed
/// four chunks at once all the same; a batch arriving brings it back to one.
@Test func withNoRequestArrivingTheBacklogUsesBothCores() async throws {
    let clock = TestClock()
    let ledger = try makeLedger(tempDataDir(), clock: clock)
    let service = LedgerService(ledger: ledger, logger: Logger(label: "test"))
    let chunk = LedgerService.releaseChunk, depth = LedgerService.laggingPipelineDepth
    var spans: [FixtureSpan] = []
    for n in 1...UInt64(chunk * (depth + 2)) { spans += run(n, workflow: "w", verdict: nil, calls: [("small", 10, 10)]) }
    try await ingest(ledger, spans)
    clock.advance(seconds: 2.1) // due 100 ms ago: under the 250 ms lag
    await ledger.backlog.waitForRelease()
    #expect(await service.releaseDue(budget: .zero))
    #expect(await ledger.currentStats().runsReleased == Int64(chunk), "a batch just arrived: one chunk")
    #expect(ledger.backlog.lagNano < LedgerService.parallelReleaseLagNano)
    try await Task.sleep(for: .milliseconds(80))
    #expect(await service.releaseDue(budget: .zero))
    #expect(await ledger.currentStats().runsReleased == Int64(chunk * (1 + depth)), "quiet for 80 ms: \(depth) chunks at once")
}

@Test func inflightBudgetAdmitsOneRequestAloneAndRefusesPastItsLimit() {
    let budget = InflightBudget(limit: 100)
    #expect(budget.reserve(500)) // alone: admitted even past the limit
    #expect(!budget.reserve(1))
    budget.release(500)
    #expect(budget.reserve(60))
    #expect(budget.reserve(40)) // exactly at the limit
    #expect(!budget.reserve(1))
    budget.release(60)
    #expect(budget.reserve(50))
    #expect(budget.snapshot == (bytes: 90, refused: 2))
}
