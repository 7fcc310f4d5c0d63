import Foundation

/// Outcome of a `SpikeHarness` run.
public struct SpikeReport: Sendable {
    public var series: Int
    /// Measured days.
    public var days: Int
    /// Steps fed to detectors, warm-up included.
    public var stepsEvaluated: Int
    public var injected: Int
    /// Spikes during which (or within resolveSteps + forSteps steps after) the series was firing.
    public var detected: Int
    /// Detected with a delay of at most `targetDelaySeconds`.
    public var detectedWithinTarget: Int
    public var targetDelaySeconds: Int
    /// Delay = (first firing step + 1 - spike start) × stepSeconds, over detected spikes.
    public var medianDelaySeconds: Double?
    public var p90DelaySeconds: Double?
    /// `.fired` transitions in measured days outside [spikeStart, spikeEnd + resolveSteps + forSteps] of every spike.
    public var falsePositives: Int
    public var falsePositivesPerSeriesPerDay: Double
    /// detectedWithinTarget / injected (1 when nothing was injected).
    public var detectionRate: Double
    /// Wall time of the run.
    public var seconds: Double

    public init(
        series: Int, days: Int, stepsEvaluated: Int, injected: Int, detected: Int, detectedWithinTarget: Int,
        targetDelaySeconds: Int, medianDelaySeconds: Double?, p90DelaySeconds: Double?, falsePositives: Int,
        falsePositivesPerSeriesPerDay: Double, detectionRate: Double, seconds: Double
    ) {
        self.series = series
        self.days = days
        self.stepsEvaluated = stepsEvaluated
        self.injected = injected
        self.detected = detected
        self.detectedWithinTarget = detectedWithinTarget
        self.targetDelaySeconds = targetDelaySeconds
        self.medianDelaySeconds = medianDelaySeconds
        self.p90DelaySeconds = p90DelaySeconds
        self.falsePositives = falsePositives
        self.falsePositivesPerSeriesPerDay = falsePositivesPerSeriesPerDay
        self.detectionRate = detectionRate
        self.seconds = seconds
    }

    public var falsePositivesPerSeriesPerWeek: Double { falsePositivesPerSeriesPerDay * 7 }

    public func meetsTargets(minDetectionRate: Double = 0.95, maxFalsePositivesPerSeriesPerWeek: Double = 0.01) -> Bool {
        detectionRate >= minDetectionRate && falsePositivesPerSeriesPerWeek <= maxFalsePositivesPerSeriesPerWeek
    }

    public var lines: [String] {
        func fmt(_ x: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", x) }
        func secs(_ x: Double?) -> String { x.map { fmt($0, 0) + " s" } ?? "n/a" }
        return [
            "series \(series), measured days \(days), steps evaluated \(stepsEvaluated)",
            "spikes injected \(injected), detected \(detected), within \(targetDelaySeconds) s \(detectedWithinTarget)"
                + " (detection rate \(fmt(detectionRate * 100, 1))%)",
            "delay median \(secs(medianDelaySeconds)), p90 \(secs(p90DelaySeconds))",
            "false positives \(falsePositives) (\(fmt(falsePositivesPerSeriesPerDay, 5)) per series per day,"
                + " \(fmt(falsePositivesPerSeriesPerWeek, 4)) per series per week)",
            "targets (>= 95% within \(targetDelaySeconds) s, <= 0.01 FP per series per week): "
                + (meetsTargets() ? "met" : "MISSED"),
            "wall time \(fmt(seconds, 2)) s",
        ]
    }
}
