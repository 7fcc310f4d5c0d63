import AlertDetection
import Foundation
import LedgerCore

/// Deterministic noise for detector tests (SplitMix64 + Box–Muller).
struct TestNoise {
    var bits: SplitMix64

    init(seed: UInt64) { bits = SplitMix64(seed: seed) }

    /// In (0, 1): never 0, which `normal` takes the logarithm of.
    mutating func uniform() -> Double { (Double(bits.next() >> 11) + 0.5) * 0x1p-53 }

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
