import AlertDetection
import Foundation

/// Deterministic noise for detector tests (SplitMix64 + Box–Muller).
struct TestNoise {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func uniform() -> Double { (Double(next() >> 11) + 0.5) * 0x1p-53 }

    mutating func normal() -> Double {
        (-2 * log(uniform())).squareRoot() * cos(2 * Double.pi * uniform())
    }

    /// `level` with multiplicative normal noise of relative size `relative`.
    mutating func around(_ level: Double, relative: Double) -> Double {
        level * (1 + relative * normal())
    }
}

extension SpikeDetector {
    /// Feeds `values` at consecutive steps from `first`; returns every evaluation.
    mutating func feed(from first: Int64, _ values: [Double]) -> [SpikeEvaluation] {
        values.enumerated().compactMap { observe(step: first + Int64($0.offset), value: $0.element) }
    }
}

func fired(_ evaluations: [SpikeEvaluation]) -> [Int64] {
    evaluations.filter { $0.transition == .fired }.map(\.step)
}

func resolved(_ evaluations: [SpikeEvaluation]) -> [Int64] {
    evaluations.filter { $0.transition == .resolved }.map(\.step)
}
