import LedgerCore
import Rollups
import Testing

func key(_ minute: Int64, _ wf: String, _ model: String, _ o: Outcome, runLevel: Bool = false) -> RollupKey {
    RollupKey(bucketStartUnix: minute * 60, workflow: wf, model: model, outcome: o, service: "svc", runLevel: runLevel)
}

func measures(runs: Int64 = 0, calls: Int64 = 0, cost: Int64 = 0, tokens: Int64 = 0, latencyMs: Double? = nil) -> RollupMeasures {
    var m = RollupMeasures()
    m.runs = runs
    m.llmCalls = calls
    m.costMicros = cost
    m.inputTokens = tokens
    if let latencyMs { m.latency.add(milliseconds: latencyMs) }
    return m
}

/// One run of workflow "wf" using two models, recorded as DESIGN.md's rollups hold it.
func twoModelRun(into t: inout RollupTable, minute: Int64 = 1000, outcome: Outcome = .accepted, latency: Double = 100) {
    t.add(key(minute, "wf", "", outcome, runLevel: true), measures(runs: 1, latencyMs: latency))
    t.add(key(minute, "wf", "a", outcome), measures(runs: 1, calls: 2, cost: 300, tokens: 20, latencyMs: latency))
    t.add(key(minute, "wf", "b", outcome), measures(runs: 1, calls: 1, cost: 50, tokens: 5, latencyMs: latency))
}

func query(_ t: RollupTable, _ dims: [GroupDimension], from: Int64 = 0, to: Int64 = 1_000_000 * 60 * 1_000_000_000) -> [QueryGroup] {
    RollupQuery(fromUnixNano: from, toUnixNano: to, groupBy: dims).run(over: t.records.lazy.map { (key: $0.key, value: $0.value) })
}

@Test func runsCountOnceByWorkflowAndOncePerModelByModel() {
    var t = RollupTable()
    twoModelRun(into: &t)
    twoModelRun(into: &t, outcome: .rejected)
    let byWorkflow = query(t, [.workflow])
    #expect(byWorkflow.count == 1)
    #expect(byWorkflow[0].runs == 2 && byWorkflow[0].measures.llmCalls == 6 && byWorkflow[0].measures.costMicros == 700)
    #expect(byWorkflow[0].acceptedRuns == 1 && byWorkflow[0].acceptanceRate == 0.5)
    #expect(byWorkflow[0].costPerAcceptedMicros == 700)
    let byModel = query(t, [.model])
    #expect(byModel.map(\.model) == ["a", "b"])
    #expect(byModel.map(\.runs) == [2, 2])
    #expect(byModel.map(\.measures.costMicros) == [600, 100])
}

@Test func windowSelectsWholeMinutes() {
    var t = RollupTable()
    twoModelRun(into: &t, minute: 10)
    twoModelRun(into: &t, minute: 20)
    let minuteNano: Int64 = 60_000_000_000
    #expect(query(t, [], from: 15 * minuteNano, to: 25 * minuteNano)[0].runs == 1)
    #expect(query(t, [], from: 10 * minuteNano + 5, to: 20 * minuteNano + 1)[0].runs == 2, "partial minutes at both ends included")
    #expect(query(t, [], from: 21 * minuteNano, to: 30 * minuteNano).isEmpty)
}

@Test func mergingTablesEqualsAddingRecordsAndNegativeDeltasCancel() {
    var a = RollupTable(), b = RollupTable(), both = RollupTable()
    twoModelRun(into: &a)
    twoModelRun(into: &b, latency: 900)
    twoModelRun(into: &both)
    twoModelRun(into: &both, latency: 900)
    a.merge(b)
    #expect(a.records == both.records)
    var undo = RollupTable()
    for (k, m) in b.records {
        var neg = RollupMeasures()
        neg.merge(m, sign: -1)
        undo.add(k, neg)
    }
    a.merge(undo)
    var single = RollupTable()
    twoModelRun(into: &single)
    #expect(a.records == single.records)
}

@Test func latencySketchQuantilesWithinOnePercentAndMergeExactly() {
    var s1 = LatencySketch(), s2 = LatencySketch(), all = LatencySketch()
    for i in 1...1000 {
        let v = Double(i)
        if i % 2 == 0 { s1.add(milliseconds: v) } else { s2.add(milliseconds: v) }
        all.add(milliseconds: v)
    }
    s1.merge(s2)
    #expect(s1 == all)
    let p50 = all.quantile(0.5)!, p95 = all.quantile(0.95)!
    #expect(abs(p50 - 500) / 500 < 0.02)
    #expect(abs(p95 - 950) / 950 < 0.02)
    #expect(LatencySketch().quantile(0.5) == nil)
}

@Test func unknownGroupDimensionIsAnError() throws {
    #expect(throws: QueryError.self) { try GroupDimension.parseList("workflow,colour") }
    #expect(try GroupDimension.parseList(" model , workflow,model") == [.model, .workflow])
}

@Test func latencySketchMergesLikeAddingEveryBucketsCounts() {
    // Against a plain dictionary of bucket counts: random sketches of 0 to 60 buckets,
    // merged in and subtracted out (corrections), in every size combination the merge
    // takes a different path for (empty, one or two buckets, many).
    var rng = SystemRandomNumberGenerator()
    func sketch(_ n: Int) -> (LatencySketch, [Int32: Int64]) {
        var s = LatencySketch(), ref: [Int32: Int64] = [:]
        for _ in 0..<n {
            let ms = Double.random(in: 0.5...5_000, using: &rng)
            let c = Int64.random(in: 1...3, using: &rng)
            s.add(milliseconds: ms, count: c)
            ref[LatencySketch.index(ofMilliseconds: ms), default: 0] += c
        }
        return (s, ref)
    }
    for (n, m) in [(0, 0), (0, 5), (5, 0), (1, 1), (3, 2), (2, 40), (40, 60), (60, 1)] {
        var (a, refA) = sketch(n)
        let (b, refB) = sketch(m)
        let before = a
        a.merge(b)
        for (i, c) in refB { refA[i, default: 0] += c }
        #expect(a.buckets == refA.filter { $0.value != 0 }, "merge \(n)+\(m)")
        #expect(a.count == refA.values.reduce(0, +))
        #expect(Array(a.orderedBuckets.map(\.0)) == refA.keys.sorted(), "kept in order")
        // Every bucket of `b` is in `a` now: merged again, and taken out, in place.
        var twice = a
        twice.merge(b)
        var refTwice = refA
        for (i, c) in refB { refTwice[i, default: 0] += c }
        #expect(twice.buckets == refTwice.filter { $0.value != 0 }, "merge \(n)+\(m)+\(m)")
        twice.merge(b, sign: -1)
        #expect(twice == a)
        a.merge(b, sign: -1)
        #expect(a == before, "a correction takes exactly what was merged back out (\(n)+\(m))")
        #expect(a.quantile(0.5) == before.quantile(0.5))
        #expect(Array(a.orderedBuckets.map(\.0)) == Array(before.orderedBuckets.map(\.0)), "cancelled buckets are gone")
    }
    var emptied = LatencySketch()
    emptied.add(milliseconds: 12)
    emptied.add(milliseconds: 12, count: -1)
    #expect(emptied.isEmpty && emptied == LatencySketch())
}

// A sketch of one bucket keeps it without arrays; one that held more and came back to one
// keeps it in the arrays. Equality, hashing, order and quantiles must not tell them apart.
@Test func aSketchOfOneBucketIsTheSameHoweverItWasReached() {
    var alone = LatencySketch()
    alone.add(milliseconds: 40)
    alone.add(milliseconds: 40, count: 2)
    var spilled = LatencySketch()
    spilled.add(milliseconds: 40, count: 3)
    spilled.add(milliseconds: 900)
    spilled.add(milliseconds: 900, count: -1)
    #expect(alone == spilled && spilled == alone)
    #expect(Set([alone, spilled]).count == 1)
    #expect(alone.hashValue == spilled.hashValue)
    #expect(alone.orderedBuckets.map(\.count) == [3] && spilled.orderedBuckets.map(\.index) == alone.orderedBuckets.map(\.index))
    #expect(alone.quantile(0.99) == spilled.quantile(0.99) && alone.count == 3)

    // Merging a lone bucket into a lone bucket, the same or another, and back out.
    var other = LatencySketch()
    other.add(milliseconds: 7)
    var merged = alone
    merged.merge(other)
    #expect(merged.buckets == [LatencySketch.index(ofMilliseconds: 40): 3, LatencySketch.index(ofMilliseconds: 7): 1])
    #expect(merged.orderedBuckets.map(\.index) == [LatencySketch.index(ofMilliseconds: 7), LatencySketch.index(ofMilliseconds: 40)])
    merged.merge(other, sign: -1)
    #expect(merged == alone)
    merged.merge(alone, sign: -1)
    #expect(merged.isEmpty && merged == LatencySketch())
    #expect(alone != other && LatencySketch(buckets: alone.buckets, zeroCount: 0) == alone)
}

// `isZero` checks the fields one by one (counts first, the sketch last): any one of them
// set makes a record non-zero, and a record merged with its negation is zero and leaves
// the table.
@Test func aRecordIsZeroOnlyWhenEveryMeasureIs() {
    var full = RollupMeasures()
    full.latency.add(milliseconds: 12)
    let integerFields: [WritableKeyPath<RollupMeasures, Int64>] = [
        \.runs, \.incompleteRuns, \.toolCalls, \.llmCalls, \.inputTokens, \.cachedInputTokens, \.cacheWriteTokens, \.outputTokens,
        \.reasoningTokens, \.unpricedTokens, \.costMicros, \.retries, \.errors, \.reworkRuns, \.reworkCostMicros,
    ]
    // Every stored field is one of these or the sketch: a field added later must be added here and to isZero.
    #expect(Mirror(reflecting: full).children.count == integerFields.count + 1)
    #expect(RollupMeasures().isZero && !full.isZero)
    for f in integerFields {
        var m = RollupMeasures()
        m[keyPath: f] = 1
        #expect(!m.isZero)
        full[keyPath: f] = 3
    }
    var table = RollupTable()
    let key = RollupKey(bucketStartUnix: 0, workflow: "w", model: "m", outcome: .accepted, service: "s", runLevel: true)
    table.add(key, full)
    table.add(key, full)
    #expect(table.count == 1)
    table.add(key, full.negated)
    #expect(table.count == 1, "half of it is left")
    table.add(key, full.negated)
    #expect(table.count == 0 && table.isEmpty)
}

/// A key carries the hash of its fields, taken when it is made and again when a field
/// changes: keys that end up equal must hash alike however they got there, and every
/// field must tell keys apart. Mirror pins the stored fields: a new one must join the
/// hash and `==`.
@Test func aKeysHashFollowsEveryFieldAndEveryChange() {
    let key = RollupKey(bucketStartUnix: 120, resolutionSeconds: 60, workflow: "support", model: "gpt-4o", outcome: .accepted, service: "svc",
                        runLevel: false, agent: "planner")
    #expect(Mirror(reflecting: key).children.count == 9)
    var built = RollupKey(bucketStartUnix: 0, resolutionSeconds: 3_600, workflow: "", model: "", outcome: .pending, service: "", runLevel: true)
    built.bucketStartUnix = 120
    built.resolutionSeconds = 60
    built.workflow = "support"
    built.model = "gpt-4o"
    built.outcome = .accepted
    built.service = "svc"
    built.runLevel = false
    built.agent = "planner"
    #expect(built == key && built.hashValue == key.hashValue)
    #expect([key: 7][built] == 7)
    // Made from a run's shared part, as the ledger makes its records' keys.
    let shared = RollupKey.Shared(bucketStartUnix: 120, workflow: "support", outcome: .accepted, service: "svc")
    let fromShared = RollupKey(shared, model: "gpt-4o", runLevel: false, agent: "planner")
    #expect(fromShared == key && fromShared.hashValue == key.hashValue && [key: 7][fromShared] == 7)
    #expect(RollupKey(shared, model: "", runLevel: true) != key)
    let changes: [(inout RollupKey) -> Void] = [
        { $0.bucketStartUnix = 180 }, { $0.resolutionSeconds = 3_600 }, { $0.workflow = "other" }, { $0.model = "gpt-4o-mini" },
        { $0.outcome = .rejected }, { $0.service = "svc2" }, { $0.runLevel = true }, { $0.agent = nil }, { $0.agent = "" },
    ]
    for (n, change) in changes.enumerated() {
        var other = key
        change(&other)
        #expect(other != key, "change \(n)")
        #expect([key: 1, other: 2].count == 2, "change \(n)")
    }
}

/// A release chunk's sums go in with `add(contentsOf:)`: the same table as adding them one
/// by one, across days (a chunk that spans midnight), a day whose records all cancel is
/// dropped, and only the days touched get a new version stamp.
@Test func addingManyRecordsAtOnceEqualsAddingThemOneByOne() {
    let minutesPerDay: Int64 = 1440
    var base = RollupTable()
    twoModelRun(into: &base, minute: 10)                       // day 0
    twoModelRun(into: &base, minute: minutesPerDay + 5)        // day 1: cancelled below
    twoModelRun(into: &base, minute: 3 * minutesPerDay + 1)    // day 3: untouched
    var batch: [RollupKey: RollupMeasures] = [:]
    for (k, m) in base.records where k.bucketStartUnix / 86_400 == 1 { batch[k] = m.negated }
    var more = RollupTable()
    twoModelRun(into: &more, minute: minutesPerDay - 1)         // day 0, last minute
    twoModelRun(into: &more, minute: 2 * minutesPerDay)         // day 2, new
    twoModelRun(into: &more, minute: 10, latency: 300)          // day 0, keys already there
    for (k, m) in more.records { batch[k, default: RollupMeasures()].merge(m) }

    var oneByOne = base, atOnce = base
    for (k, m) in batch { oneByOne.add(k, m) }
    atOnce.add(contentsOf: batch)
    #expect(atOnce.records == oneByOne.records)
    #expect(atOnce.count == oneByOne.count && atOnce.count == oneByOne.records.count)
    #expect(atOnce.days.keys.sorted() == [0, 2 * 86_400, 3 * 86_400], "the cancelled day is gone")
    #expect(atOnce.versions[3 * 86_400] == base.versions[3 * 86_400], "an untouched day keeps its stamp")
    #expect(atOnce.versions[0] != base.versions[0] && atOnce.versions[2 * 86_400] != nil)
    var empty = base
    empty.add(contentsOf: [:])
    #expect(empty.records == base.records && empty.versions == base.versions)
}
