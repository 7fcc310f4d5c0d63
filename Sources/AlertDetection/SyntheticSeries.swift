import Foundation

/// One synthetic series of `SpikeScenario`: runs per step ~ Poisson(rate(t)) with a daily sinusoid,
/// tokens per run ~ lognormal(median, σ_log 0.5).
struct SyntheticSeries: Sendable {
    static let sigmaLog = 0.5
    /// Above this many runs a step's token total is drawn as one Fenton–Wilkinson lognormal
    /// (same mean and variance as the exact sum) instead of run by run.
    static let exactRunLimit = 16

    /// Runs per step at the daily mean.
    let baseRate: Double
    /// Relative amplitude of the daily sinusoid, (peak - trough) / (peak + trough).
    let amplitude: Double
    let phase: Double
    let medianTokens: Double
    let stepsPerDay: Int
    let exactSums: Bool

    init(random: inout SeededRandom, stepsPerDay: Int, exactSums: Bool) {
        baseRate = random.uniform(20, 100)
        let peakToTrough = random.uniform(2, 5)
        amplitude = (peakToTrough - 1) / (peakToTrough + 1)
        phase = random.uniform(0, 2 * Double.pi)
        medianTokens = random.uniform(500, 5000)
        self.stepsPerDay = stepsPerDay
        self.exactSums = exactSums
    }

    /// Expected runs in `step` (evaluated at the step's middle).
    func rate(atStep step: Int) -> Double {
        let dayFraction = (Double(step % stepsPerDay) + 0.5) / Double(stepsPerDay)
        return baseRate * (1 + amplitude * sin(2 * Double.pi * dayFraction + phase))
    }

    /// Tokens used in one step whose run rate is `rate`.
    func tokens(rate: Double, random: inout SeededRandom) -> Double {
        let runs = random.poisson(rate)
        let mu = log(medianTokens)
        let s = Self.sigmaLog
        if exactSums || runs <= Self.exactRunLimit {
            var total = 0.0
            for _ in 0..<runs { total += exp(mu + s * random.normal()) }
            return total
        }
        let n = Double(runs)
        let mean = n * exp(mu + s * s / 2)
        let variance = n * exp(2 * mu + s * s) * (exp(s * s) - 1)
        let sumSigma2 = log(1 + variance / (mean * mean))
        return exp(log(mean) - sumSigma2 / 2 + sumSigma2.squareRoot() * random.normal())
    }
}
