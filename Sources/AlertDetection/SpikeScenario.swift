/// Synthetic workload for `SpikeHarness`. Per series: a base rate of runs per step drawn in
/// [20, 100] at the daily mean, a daily sinusoid with peak/trough ratio drawn in [2, 5] and a random
/// phase, runs per step ~ Poisson(rate), tokens per run ~ lognormal (median drawn in [500, 5000],
/// σ_log 0.5). A spike multiplies the rate by `spikeFactor` for `spikeSteps` whole steps; spikes are
/// at least 2 × windowSteps apart and only injected in the measured days.
public struct SpikeScenario: Sendable {
    public var series: Int
    /// Measured days.
    public var days: Int
    /// Days simulated before measuring (no spikes injected, false positives not counted).
    public var warmupDays: Int
    public var stepSeconds: Int
    public var spikesPerSeriesPerWeek: Double
    public var spikeFactor: Double
    public var spikeSteps: Int
    public var seed: UInt64
    /// Draw every run's tokens; by default steps with more than 16 runs draw their total from a
    /// lognormal with the exact sum's mean and variance (much faster, nearly the same tail).
    public var exactTokenSums: Bool

    public init(
        series: Int = 100,
        days: Int = 7,
        warmupDays: Int = 3,
        stepSeconds: Int = 60,
        spikesPerSeriesPerWeek: Double = 3,
        spikeFactor: Double = 3.0,
        spikeSteps: Int = 5,
        seed: UInt64 = 42,
        exactTokenSums: Bool = false
    ) {
        self.series = series
        self.days = days
        self.warmupDays = warmupDays
        self.stepSeconds = stepSeconds
        self.spikesPerSeriesPerWeek = spikesPerSeriesPerWeek
        self.spikeFactor = spikeFactor
        self.spikeSteps = spikeSteps
        self.seed = seed
        self.exactTokenSums = exactTokenSums
    }

    /// Steps per simulated day (86 400 s / stepSeconds).
    public var stepsPerDay: Int { 86_400 / max(1, stepSeconds) }
}
