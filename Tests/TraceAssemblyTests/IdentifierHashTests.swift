import LedgerCore
import Testing

/// Trace and span IDs key assembly and the run index with their own mix instead of
/// SipHash (LedgerCore/Identifiers.swift): it must still spread structured IDs evenly and
/// depend on the table's seed.
@Suite struct IdentifierHashTests {
    /// The largest bucket's load over the mean, hashing `ids` into 1024 buckets.
    func worstLoad(_ ids: [TraceID], seed: Int) -> Double {
        var buckets = [Int](repeating: 0, count: 1024)
        for id in ids { buckets[id._rawHashValue(seed: seed) & 1023] += 1 }
        return Double(buckets.max()!) / (Double(ids.count) / 1024)
    }

    @Test func structuredIDsSpreadEvenly() {
        let sequential = (0..<100_000).map { TraceID(high: 0, low: UInt64($0)) }
        let highOnly = (0..<100_000).map { TraceID(high: UInt64($0), low: 0) }
        let strided = (0..<100_000).map { TraceID(high: 7, low: UInt64($0) << 20) }
        for (name, ids) in [("sequential", sequential), ("high word", highOnly), ("strided", strided)] {
            let load = worstLoad(ids, seed: 12345)
            // Uniform hashing gives about 1.3 at this size; a weak mix of these patterns gives 8 or more.
            #expect(load < 1.6, "\(name): worst bucket \(load)× the mean")
        }
    }

    @Test func collisionsInOneTableAreNotCollisionsInAnother() {
        let ids = (0..<20_000).map { TraceID(high: UInt64($0) &* 0x9E37_79B9, low: UInt64($0)) }
        var firstBucket: [Int: [TraceID]] = [:]
        for id in ids { firstBucket[id._rawHashValue(seed: 1) & 0xFFFF, default: []].append(id) }
        var pairs = 0, stillTogether = 0
        for group in firstBucket.values where group.count > 1 {
            for j in 1..<group.count {
                pairs += 1
                if group[0]._rawHashValue(seed: 2) & 0xFFFF == group[j]._rawHashValue(seed: 2) & 0xFFFF { stillTogether += 1 }
            }
        }
        #expect(pairs > 1000)
        // By chance, one pair in 65,536 shares a bucket again.
        #expect(stillTogether <= 2, "\(stillTogether) of \(pairs) pairs collide under both seeds")
    }

    @Test func equalIDsHashEquallyAndSetsAndDictionariesWork() {
        let a = TraceID(hex: "4bf92f3577b34da6a3ce929d0e0e4736")!
        let b = TraceID(high: a.high, low: a.low)
        #expect(a.hashValue == b.hashValue)
        #expect(a._rawHashValue(seed: 99) == b._rawHashValue(seed: 99))
        #expect(SpanID(42)._rawHashValue(seed: 3) == SpanID(42)._rawHashValue(seed: 3))
        var set = Set<TraceID>()
        var dict: [SpanID: Int] = [:]
        for i in 0..<50_000 {
            set.insert(TraceID(high: UInt64(i % 7), low: UInt64(i)))
            dict[SpanID(UInt64(i) << 8)] = i
        }
        #expect(set.count == 50_000)
        #expect(set.contains(TraceID(high: 3, low: 49_998 - 49_998 % 7 + 3)))
        #expect(!set.contains(TraceID(high: 1, low: 2)))
        #expect(dict.count == 50_000)
        #expect(dict[SpanID(12_345 << 8)] == 12_345)
    }
}
