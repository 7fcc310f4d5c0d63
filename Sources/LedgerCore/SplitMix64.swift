/// SplitMix64, the small deterministic generator behind every seeded sequence in the
/// project: synthetic workloads (`AgentWorkload`), the history bench, and the seeds of the
/// spike detector's synthetic traffic. The same seed gives the same sequence everywhere.
public struct SplitMix64: Sendable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// In 0..<n (n > 0), by remainder: the slight bias is no concern for test data.
    public mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// Uniform in [0, 1), from the top 53 bits.
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1p-53 }
}
