import LedgerCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mergeable latency sketch with 1% relative accuracy: log-spaced buckets
/// (bucket i covers (γ^(i-1), γ^i] ms, γ = 1.02), merged by adding counts, so any two
/// rollups merge exactly (as DDSketch does). Counts are signed so corrections subtract.
public struct LatencySketch: Sendable, Hashable {
    public static let gamma = 1.02
    static let logGamma = log(gamma)

    /// Bucket indexes ascending, with their counts (never 0): a rollup's sketch holds a few
    /// dozen buckets, where a merge of two sorted arrays beats hashing every bucket.
    private var indexes: [Int32] = []
    private var counts: [Int64] = []
    /// A sketch of exactly one bucket keeps it here and leaves the arrays empty (`soleCount`
    /// is 0 otherwise). A run's own records each hold one latency: they are copied a few
    /// times on their way into the rollups, and with arrays each copy retained two of them
    /// and each run allocated and freed them.
    private var soleIndex: Int32 = 0
    private var soleCount: Int64 = 0
    public private(set) var zeroCount: Int64 = 0

    public init() {}

    public init(buckets: [Int32: Int64], zeroCount: Int64) {
        for (i, c) in buckets.sorted(by: { $0.key < $1.key }) where c != 0 { add(bucket: i, c) }
        self.zeroCount = zeroCount
    }

    /// Bucket index → count.
    public var buckets: [Int32: Int64] { Dictionary(uniqueKeysWithValues: orderedBuckets.map { ($0.index, $0.count) }) }
    /// (index, count) in ascending index order.
    public var orderedBuckets: [(index: Int32, count: Int64)] {
        if soleCount != 0 { return [(soleIndex, soleCount)] }
        return zip(indexes, counts).map { ($0, $1) }
    }

    public var isEmpty: Bool { indexes.isEmpty && soleCount == 0 && zeroCount == 0 }
    public var count: Int64 { counts.reduce(zeroCount + soleCount, +) }

    public static func index(ofMilliseconds ms: Double) -> Int32 {
        Int32(ceil(log(ms) / logGamma))
    }

    public mutating func add(milliseconds ms: Double, count: Int64 = 1) {
        if ms < 0.001 {
            zeroCount += count
            return
        }
        add(bucket: Self.index(ofMilliseconds: ms), count)
    }

    private mutating func add(bucket i: Int32, _ c: Int64) {
        guard c != 0 else { return }
        if soleCount != 0 {
            if soleIndex == i {
                soleCount += c
                return
            }
            spill()
        } else if indexes.isEmpty {
            (soleIndex, soleCount) = (i, c)
            return
        }
        var lo = 0, hi = indexes.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if indexes[mid] < i { lo = mid + 1 } else { hi = mid }
        }
        if lo < indexes.count && indexes[lo] == i {
            counts[lo] += c
            if counts[lo] == 0 {
                indexes.remove(at: lo)
                counts.remove(at: lo)
            }
        } else {
            indexes.insert(i, at: lo)
            counts.insert(c, at: lo)
        }
    }

    /// Moves a sole bucket into the arrays, before a second bucket joins it.
    private mutating func spill() {
        guard soleCount != 0 else { return }
        indexes = [soleIndex]
        counts = [soleCount]
        soleCount = 0
    }

    public mutating func merge(_ other: LatencySketch, sign: Int64 = 1) {
        zeroCount += other.zeroCount * sign
        if other.soleCount != 0 {
            add(bucket: other.soleIndex, other.soleCount * sign)
            return
        }
        if other.indexes.isEmpty { return }
        if indexes.isEmpty && soleCount == 0 && sign == 1 {
            indexes = other.indexes
            counts = other.counts
            return
        }
        spill()
        if other.indexes.count <= 2 {
            for k in other.indexes.indices { add(bucket: other.indexes[k], other.counts[k] * sign) }
            return
        }
        if mergeInPlace(other, sign: sign) { return }
        // Both ascending: one pass, dropping buckets that cancel out.
        var mi: [Int32] = [], mc: [Int64] = []
        mi.reserveCapacity(indexes.count + other.indexes.count)
        mc.reserveCapacity(indexes.count + other.indexes.count)
        var a = 0, b = 0
        while a < indexes.count || b < other.indexes.count {
            if b == other.indexes.count || (a < indexes.count && indexes[a] < other.indexes[b]) {
                mi.append(indexes[a])
                mc.append(counts[a])
                a += 1
            } else if a == indexes.count || other.indexes[b] < indexes[a] {
                mi.append(other.indexes[b])
                mc.append(other.counts[b] * sign)
                b += 1
            } else {
                let c = counts[a] + other.counts[b] * sign
                if c != 0 {
                    mi.append(indexes[a])
                    mc.append(c)
                }
                a += 1
                b += 1
            }
        }
        indexes = mi
        counts = mc
    }

    /// Adds `other`'s counts in place when every one of its buckets is already here (the
    /// usual case once a minute's sketch has filled: a release chunk's latencies land in
    /// buckets it holds), dropping buckets that cancel out; false, untouched, otherwise.
    /// The general merge built two new arrays for every chunk's record.
    private mutating func mergeInPlace(_ other: LatencySketch, sign: Int64) -> Bool {
        var a = 0
        for b in other.indexes.indices {
            while a < indexes.count && indexes[a] < other.indexes[b] { a += 1 }
            guard a < indexes.count && indexes[a] == other.indexes[b] else { return false }
            a += 1
        }
        var cancelled = false
        a = 0
        for b in other.indexes.indices {
            while indexes[a] < other.indexes[b] { a += 1 }
            counts[a] += other.counts[b] * sign
            cancelled = cancelled || counts[a] == 0
            a += 1
        }
        if cancelled {
            var kept = 0
            for k in indexes.indices where counts[k] != 0 {
                (indexes[kept], counts[kept]) = (indexes[k], counts[k])
                kept += 1
            }
            indexes.removeLast(indexes.count - kept)
            counts.removeLast(counts.count - kept)
        }
        return true
    }

    /// Equal when they hold the same counts, whether one bucket is kept alone or in the arrays.
    public static func == (a: LatencySketch, b: LatencySketch) -> Bool {
        guard a.zeroCount == b.zeroCount else { return false }
        if a.soleCount == 0 && b.soleCount == 0 { return a.indexes == b.indexes && a.counts == b.counts }
        return a.orderedBuckets.elementsEqual(b.orderedBuckets) { $0 == $1 }
    }

    public func hash(into h: inout Hasher) {
        h.combine(zeroCount)
        if soleCount != 0 {
            h.combine(1)
            h.combine(soleIndex)
            h.combine(soleCount)
        } else {
            h.combine(indexes.count)
            for k in indexes.indices {
                h.combine(indexes[k])
                h.combine(counts[k])
            }
        }
    }

    /// The value at quantile q (0...1), in milliseconds; nil when empty.
    public func quantile(_ q: Double) -> Double? {
        let total = count
        guard total > 0 else { return nil }
        let rank = q * Double(total - 1)
        var seen = zeroCount
        if Double(seen) > rank { return 0 }
        let ordered = orderedBuckets
        for (i, c) in ordered {
            seen += max(0, c)
            if Double(seen) > rank {
                // Midpoint of the bucket in relative terms: 2γ^i / (γ + 1).
                return 2 * pow(Self.gamma, Double(i)) / (Self.gamma + 1)
            }
        }
        return ordered.last.map { 2 * pow(Self.gamma, Double($0.index)) / (Self.gamma + 1) }
    }
}
