import LedgerCore
import Testing
import TraceAssembly

let second: UInt64 = 1_000_000_000

func span(_ trace: UInt64, _ id: UInt64, parent: UInt64 = 0) -> SpanRecord {
    SpanRecord(traceID: TraceID(high: 0, low: trace), spanID: SpanID(id), parentSpanID: SpanID(parent), name: "s\(id)",
               startUnixNano: 0, endUnixNano: 1)
}

func limits(wait: UInt64 = 5 * second, maxAge: UInt64 = 600 * second, maxTraces: Int = 100, maxBytes: Int = 1 << 30) -> TraceAssembler.Limits {
    var l = TraceAssembler.Limits()
    l.waitNano = wait
    l.maxAgeNano = maxAge
    l.maxTraces = maxTraces
    l.maxBytes = maxBytes
    return l
}

@Test func rootedTraceIsReleasedAfterTheWaitWindowOfQuiet() {
    var a = TraceAssembler(limits: limits())
    let t = TraceID(high: 0, low: 1)
    _ = a.ingest([span(1, 1)], of: t, late: false, now: 0)
    _ = a.ingest([span(1, 2, parent: 1)], of: t, late: false, now: 3 * second)
    #expect(a.releaseDue(now: 5 * second).isEmpty, "a span at 3 s restarts the wait")
    let out = a.releaseDue(now: 8 * second)
    #expect(out.count == 1)
    #expect(out[0].reason == .complete && out[0].hasRoot && out[0].spans.count == 2)
    #expect(a.openTraces == 0 && a.bufferedSpans == 0 && a.bufferedBytes == 0)
}

@Test func childrenBeforeTheRootWaitForIt() {
    var a = TraceAssembler(limits: limits())
    let t = TraceID(high: 0, low: 2)
    _ = a.ingest([span(2, 2, parent: 1), span(2, 3, parent: 2)], of: t, late: false, now: 0)
    #expect(a.releaseDue(now: 30 * second).isEmpty, "no root yet: keep waiting")
    _ = a.ingest([span(2, 1)], of: t, late: false, now: 31 * second)
    let out = a.releaseDue(now: 36 * second)
    #expect(out.count == 1 && out[0].spans.count == 3 && out[0].hasRoot)
}

@Test func traceWithoutRootIsReleasedIncompleteAtMaxAge() {
    var a = TraceAssembler(limits: limits(maxAge: 60 * second))
    let t = TraceID(high: 0, low: 3)
    _ = a.ingest([span(3, 2, parent: 1)], of: t, late: false, now: 0)
    #expect(a.releaseDue(now: 59 * second).isEmpty)
    let out = a.releaseDue(now: 60 * second)
    #expect(out.count == 1 && out[0].reason == .maxAge && !out[0].hasRoot)
}

@Test func fullBufferEvictsTheOldestTrace() {
    var a = TraceAssembler(limits: limits(maxTraces: 2))
    _ = a.ingest([span(1, 1)], of: TraceID(high: 0, low: 1), late: false, now: 0)
    _ = a.ingest([span(2, 1)], of: TraceID(high: 0, low: 2), late: false, now: 1)
    let evicted = a.ingest([span(3, 1)], of: TraceID(high: 0, low: 3), late: false, now: 2)
    #expect(evicted.count == 1)
    #expect(evicted[0].traceID == TraceID(high: 0, low: 1) && evicted[0].reason == .evicted)
    #expect(a.openTraces == 2)
}

@Test func byteLimitEvictsToo() {
    var a = TraceAssembler(limits: limits(maxBytes: 1_000))
    var released = 0
    for i in 1...20 { released += a.ingest([span(UInt64(i), 1)], of: TraceID(high: 0, low: UInt64(i)), late: false, now: UInt64(i)).count }
    #expect(released > 0)
    #expect(a.bufferedBytes <= 1_000 + span(1, 1).approximateBytes)
}

@Test func lateSpansAreReleasedWithoutARootAfterTheWait() {
    var a = TraceAssembler(limits: limits())
    let t = TraceID(high: 0, low: 4)
    _ = a.ingest([span(4, 7, parent: 1)], of: t, late: true, now: 0)
    let out = a.releaseDue(now: 5 * second)
    #expect(out.count == 1 && out[0].late && out[0].reason == .late)
}

@Test func releaseAllEmptiesTheBuffer() {
    var a = TraceAssembler(limits: limits())
    for i in 1...5 { _ = a.ingest([span(UInt64(i), 1)], of: TraceID(high: 0, low: UInt64(i)), late: false, now: 0) }
    let out = a.releaseAll()
    #expect(out.count == 5 && out.allSatisfy { $0.reason == .shutdown })
    #expect(a.openTraces == 0)
}

@Test func aTraceAtItsSpanLimitIsReleasedAtOnceAndLaterSpansAreLate() {
    var l = limits()
    l.maxSpansPerTrace = 3
    var a = TraceAssembler(limits: l)
    let t = TraceID(high: 0, low: 9)
    #expect(a.ingest([span(9, 1), span(9, 2, parent: 1)], of: t, late: false, now: 0).isEmpty)
    let out = a.ingest([span(9, 3, parent: 1)], of: t, late: false, now: 1)
    #expect(out.count == 1 && out[0].reason == .traceLimit && out[0].spans.count == 3 && out[0].hasRoot)
    #expect(!a.isOpen(t) && a.bufferedSpans == 0)
}

@Test func aTraceAtItsByteLimitIsReleasedAtOnce() {
    var l = limits()
    l.maxTraceBytes = 3 * span(1, 1).approximateBytes
    var a = TraceAssembler(limits: l)
    let t = TraceID(high: 0, low: 10)
    _ = a.ingest([span(10, 1), span(10, 2, parent: 1)], of: t, late: false, now: 0)
    #expect(a.isOpen(t))
    let out = a.ingest([span(10, 3, parent: 1)], of: t, late: false, now: 0)
    #expect(out.map(\.reason) == [.traceLimit])
}

@Test func releaseLagIsHowLongTheOldestDueTraceHasWaited() {
    var a = TraceAssembler(limits: limits(wait: 1 * second))
    let rooted = TraceID(high: 0, low: 1), rootless = TraceID(high: 0, low: 2), again = TraceID(high: 0, low: 3)
    _ = a.ingest([span(2, 5, parent: 4)], of: rootless, late: false, now: 0)
    _ = a.ingest([span(3, 1)], of: again, late: false, now: 0)
    _ = a.ingest([span(1, 1)], of: rooted, late: false, now: 1 * second)
    _ = a.ingest([span(3, 2, parent: 1)], of: again, late: false, now: 2 * second)
    #expect(a.releaseLag(now: 1 * second) == 0, "nothing is due yet")
    // At 2.5 s: the rooted trace has been due 0.5 s. The rootless one waits for its
    // maximum age, and the first entry of `again` is stale (seen again at 2 s).
    #expect(a.releaseLag(now: 2_500_000_000) == 500_000_000)
    #expect(a.releaseLag(now: 3_500_000_000) == 2_500_000_000 - 1 * second, "`again` is due at 3 s too, the oldest still counts")
    let out = a.releaseDue(now: 3_500_000_000, limit: 1)
    #expect(out.map(\.traceID) == [rooted])
    #expect(a.releaseLag(now: 3_500_000_000) == 500_000_000, "one released, `again` has waited 0.5 s")
    _ = a.releaseDue(now: 3_500_000_000)
    #expect(a.releaseLag(now: 3_500_000_000) == 0)
}

/// A trace whose root never comes waits out its maximum age at the front of the age queue;
/// the entries of the traces released behind it must not pile up meanwhile (they did: one
/// per trace opened in those 10 minutes), and it must still be released at its age.
@Test func anOrphanAtTheFrontDoesNotKeepEveryLaterTraceQueued() {
    var a = TraceAssembler(limits: limits(wait: 1 * second, maxAge: 600 * second, maxTraces: 100_000))
    let orphan = TraceID(high: 9, low: 9)
    _ = a.ingest([span(0, 2, parent: 1)], of: orphan, late: false, now: 0)
    var released = 0, peakQueue = 0
    for i in 0..<50_000 {
        let now = UInt64(i) * 1_000_000 + second / 10  // 1,000 traces a second for 50 s
        _ = a.ingest([span(UInt64(i + 1), 1)], of: TraceID(high: 0, low: UInt64(i + 1)), late: false, now: now)
        if i % 100 == 0 {
            released += a.releaseDue(now: now).count
            _ = a.releaseLag(now: now)
            peakQueue = max(peakQueue, a.ageQueueCount)
        }
    }
    #expect(released > 48_000 && a.isOpen(orphan))
    #expect(peakQueue < 2 * 1_100 + 1_024 + 1, "age queue peaked at \(peakQueue) entries for at most ~1,100 open traces")
    let end = a.releaseDue(now: 700 * second)
    #expect(end.contains { $0.traceID == orphan && $0.reason == .maxAge } && a.openTraces == 0)
}

/// The clock sleeps until `nextDeadline`: the end of the quietest rooted trace's wait, or
/// a rootless trace's maximum age; a span that restarts a wait moves it, and a trace
/// released (or none open) leaves nothing to wake for.
@Test func theNextDeadlineIsTheEarliestWaitOrMaximumAgeStillRunning() {
    var a = TraceAssembler(limits: limits(wait: 5 * second, maxAge: 60 * second))
    #expect(a.nextDeadline() == nil, "nothing open")
    let rooted = TraceID(high: 0, low: 1), rootless = TraceID(high: 0, low: 2)
    _ = a.ingest([span(2, 2, parent: 1)], of: rootless, late: false, now: 0)
    #expect(a.nextDeadline() == 60 * second, "a rootless trace waits for its maximum age only")
    _ = a.ingest([span(1, 1)], of: rooted, late: false, now: 1 * second)
    #expect(a.nextDeadline() == 6 * second)
    _ = a.ingest([span(1, 2, parent: 1)], of: rooted, late: false, now: 4 * second)
    #expect(a.nextDeadline() == 9 * second, "a later span restarts the wait")
    #expect(a.releaseDue(now: 8 * second).isEmpty)
    #expect(a.releaseDue(now: 9 * second).count == 1)
    #expect(a.nextDeadline() == 60 * second)
    #expect(a.releaseDue(now: 60 * second).count == 1)
    #expect(a.nextDeadline() == nil)
}

/// An export sent again brings spans the trace already holds: the release keeps each span
/// ID once, the first copy, and counts the rest.
@Test func aSpanIDRepeatedInATraceIsReleasedOnceAndCounted() {
    var a = TraceAssembler(limits: limits())
    let t = TraceID(high: 0, low: 7)
    let first = [span(7, 1), span(7, 2, parent: 1), span(7, 3, parent: 1)]
    var renamed = span(7, 2, parent: 1)
    renamed.name = "a later copy"
    _ = a.ingest(first, of: t, late: false, now: 0)
    _ = a.ingest([renamed, span(7, 3, parent: 1), span(7, 4, parent: 1)], of: t, late: false, now: second)
    let out = a.releaseDue(now: 7 * second)
    #expect(out.count == 1)
    #expect(out[0].spans.map(\.spanID.value) == [1, 2, 3, 4])
    #expect(out[0].spans[1].name == "s2", "the first copy is kept")
    #expect(a.repeatedSpans == 2)
    // Past 32 spans the check uses a set; the same answer.
    let many = (1...40).map { span(8, UInt64($0), parent: $0 == 1 ? 0 : 1) }
    let (kept, dropped) = TraceAssembler.firstOfEachSpanID(many + many.prefix(5) + [span(8, 41, parent: 1)])
    #expect(dropped == 5 && kept.map(\.spanID.value) == Array(1...41))
    #expect(TraceAssembler.firstOfEachSpanID(many).dropped == 0 && TraceAssembler.firstOfEachSpanID([]).spans.isEmpty)
}
