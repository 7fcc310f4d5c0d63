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

    public private(set) var buckets: [Int32: Int64] = [:]
    public private(set) var zeroCount: Int64 = 0

    public init() {}

    public init(buckets: [Int32: Int64], zeroCount: Int64) {
        self.buckets = buckets.filter { $0.value != 0 }
        self.zeroCount = zeroCount
    }

    public var isEmpty: Bool { buckets.isEmpty && zeroCount == 0 }
    public var count: Int64 { buckets.values.reduce(zeroCount, +) }

    public static func index(ofMilliseconds ms: Double) -> Int32 {
        Int32(ceil(log(ms) / logGamma))
    }

    public mutating func add(milliseconds ms: Double, count: Int64 = 1) {
        if ms < 0.001 {
            zeroCount += count
            return
        }
        let i = Self.index(ofMilliseconds: ms)
        let v = buckets[i, default: 0] + count
        buckets[i] = v == 0 ? nil : v
    }

    public mutating func merge(_ other: LatencySketch, sign: Int64 = 1) {
        zeroCount += other.zeroCount * sign
        if buckets.isEmpty && sign == 1 {
            buckets = other.buckets
            return
        }
        for (i, c) in other.buckets {
            let d = c * sign
            // One hash per bucket already present: update through its index.
            if let at = buckets.index(forKey: i) {
                buckets.values[at] += d
                if buckets.values[at] == 0 { buckets.remove(at: at) }
            } else if d != 0 {
                buckets[i] = d
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
        for (i, c) in buckets.sorted(by: { $0.key < $1.key }) {
            seen += max(0, c)
            if Double(seen) > rank {
                // Midpoint of the bucket in relative terms: 2γ^i / (γ + 1).
                return 2 * pow(Self.gamma, Double(i)) / (Self.gamma + 1)
            }
        }
        return buckets.keys.max().map { 2 * pow(Self.gamma, Double($0)) / (Self.gamma + 1) }
    }
}
