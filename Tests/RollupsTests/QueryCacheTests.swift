import LedgerCore
@testable import Rollups
import Testing

@Suite struct QueryCacheTests {
    func record(_ table: inout RollupTable, day: Int64, workflow: String, cost: Int64, runs: Int64 = 1) {
        var run = RollupMeasures()
        run.runs = runs
        run.latency.add(milliseconds: 100, count: runs)
        table.add(RollupKey(bucketStartUnix: day * 86_400 + 3_600, workflow: workflow, model: "", outcome: .accepted, service: "s", runLevel: true), run)
        var m = RollupMeasures()
        m.costMicros = cost
        m.llmCalls = 1
        table.add(RollupKey(bucketStartUnix: day * 86_400 + 3_600, workflow: workflow, model: "m", outcome: .accepted, service: "s", runLevel: false), m)
    }

    @Test func cachedDaysAreRecomputedWhenTheyChange() async {
        var table = RollupTable()
        for d in 0..<10 { record(&table, day: 20_000 + Int64(d), workflow: d % 2 == 0 ? "a" : "b", cost: 1_000 + Int64(d)) }
        let q = RollupQuery(fromUnixNano: 20_000 * 86_400 * 1_000_000_000, toUnixNano: 20_010 * 86_400 * 1_000_000_000, groupBy: [.workflow])
        let cache = PartialAggregateCache()
        let plain = q.run(over: table.records.lazy.map { (key: $0.key, value: $0.value) })
        let cold = await q.run(over: table, ways: 2, cache: cache)
        let warm = await q.run(over: table, ways: 2, cache: cache)
        #expect(cold == plain && warm == plain)
        #expect(plain.map(\.measures.costMicros) == [5_025, 5_020] && plain.map(\.runs) == [5, 5])
        // A late correction lands in a cached day: the answer must include it.
        record(&table, day: 20_003, workflow: "a", cost: 7, runs: 2)
        let after = await q.run(over: table, ways: 2, cache: cache)
        #expect(after.first { $0.workflow == "a" }?.measures.costMicros == 5_027)
        #expect(after.first { $0.workflow == "a" }?.runs == 7)
        #expect(after == q.run(over: table.records.lazy.map { (key: $0.key, value: $0.value) }))
        // A different shape does not reuse the entries of another.
        var byOutcome = q
        byOutcome.groupBy = [.outcome]
        let o = await byOutcome.run(over: table, ways: 2, cache: cache)
        #expect(o.count == 1 && o[0].runs == 12)
    }
}
