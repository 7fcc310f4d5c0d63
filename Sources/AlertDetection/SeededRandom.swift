import Foundation
import LedgerCore

/// xoshiro256** with the samplers the synthetic traffic needs. Deterministic for a seed.
struct SeededRandom: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64
    private var spareNormal: Double?

    init(seed: UInt64) {
        var mix = SplitMix64(seed: seed)
        s0 = mix.next()
        s1 = mix.next()
        s2 = mix.next()
        s3 = mix.next()
    }

    mutating func next() -> UInt64 {
        let result = rotateLeft(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotateLeft(s3, 45)
        return result
    }

    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) * 0x1p-53 }

    /// Uniform in [a, b).
    mutating func uniform(_ a: Double, _ b: Double) -> Double { a + (b - a) * uniform() }

    /// Standard normal (Marsaglia polar method).
    mutating func normal() -> Double {
        if let z = spareNormal {
            spareNormal = nil
            return z
        }
        while true {
            let u = 2 * uniform() - 1
            let v = 2 * uniform() - 1
            let s = u * u + v * v
            if s > 0 && s < 1 {
                let m = (-2 * log(s) / s).squareRoot()
                spareNormal = v * m
                return u * m
            }
        }
    }

    /// Poisson(lambda): multiplication method below 10, Hörmann's PTRS transformed rejection above.
    mutating func poisson(_ lambda: Double) -> Int {
        guard lambda > 0 else { return 0 }
        if lambda < 10 {
            let limit = exp(-lambda)
            var k = 0
            var p = uniform()
            while p > limit {
                k += 1
                p *= uniform()
            }
            return k
        }
        let sqrtLambda = lambda.squareRoot()
        let logLambda = log(lambda)
        let b = 0.931 + 2.53 * sqrtLambda
        let a = -0.059 + 0.02483 * b
        let invAlpha = 1.1239 + 1.1328 / (b - 3.4)
        let vr = 0.9277 - 3.6224 / (b - 2)
        while true {
            let u = uniform() - 0.5
            let v = uniform()
            let us = 0.5 - abs(u)
            let k = ((2 * a / us + b) * u + lambda + 0.43).rounded(.down)
            if us >= 0.07 && v <= vr { return Int(k) }
            if k < 0 || (us < 0.013 && v > us) { continue }
            if log(v) + log(invAlpha) - log(a / (us * us) + b) <= -lambda + k * logLambda - lgamma(k + 1) {
                return Int(k)
            }
        }
    }

    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }
}
