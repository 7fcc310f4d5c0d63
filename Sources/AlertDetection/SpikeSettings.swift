/// Tuning of a `SpikeDetector`. Counts are in steps of the series' clock (normally one minute).
public struct SpikeSettings: Sendable, Codable, Equatable {
    /// A step exceeds only when its value is above `factor` × expected.
    public var factor: Double
    /// ... and above expected + `sigmas` × robust σ (1.4826 × MAD).
    public var sigmas: Double
    /// Consecutive exceeding steps before the series fires.
    public var forSteps: Int
    /// Consecutive non-exceeding steps before a firing series resolves.
    public var resolveSteps: Int
    /// A step exceeds only when its value is at least this.
    public var minVolume: Double
    /// Length of the trailing baseline window.
    public var windowSteps: Int
    /// Baseline values needed before anything can exceed.
    public var minHistorySteps: Int
    /// Steps per day; a multiple of 24 (one seasonal slot per hour).
    public var stepsPerDay: Int
    /// Complete days of hourly slot history kept for seasonality.
    public var seasonalDays: Int
    /// Complete days needed before seasonality is applied.
    public var minSeasonalDays: Int

    public init(
        factor: Double = 2.0,
        sigmas: Double = 4.0,
        forSteps: Int = 2,
        resolveSteps: Int = 2,
        minVolume: Double = 0,
        windowSteps: Int = 60,
        minHistorySteps: Int = 30,
        stepsPerDay: Int = 1440,
        seasonalDays: Int = 7,
        minSeasonalDays: Int = 3
    ) {
        self.factor = factor
        self.sigmas = sigmas
        self.forSteps = forSteps
        self.resolveSteps = resolveSteps
        self.minVolume = minVolume
        self.windowSteps = windowSteps
        self.minHistorySteps = minHistorySteps
        self.stepsPerDay = stepsPerDay
        self.seasonalDays = seasonalDays
        self.minSeasonalDays = minSeasonalDays
    }

    /// Returns `self` when every value is sensible, else throws one error naming every problem.
    public func validated() throws(SpikeSettingsError) -> SpikeSettings {
        var problems: [String] = []
        if !factor.isFinite || factor <= 1 { problems.append("factor must be a finite number > 1 (is \(factor))") }
        if !sigmas.isFinite || sigmas < 0 { problems.append("sigmas must be a finite number >= 0 (is \(sigmas))") }
        if forSteps < 1 { problems.append("forSteps must be >= 1 (is \(forSteps))") }
        if resolveSteps < 1 { problems.append("resolveSteps must be >= 1 (is \(resolveSteps))") }
        if !minVolume.isFinite || minVolume < 0 { problems.append("minVolume must be a finite number >= 0 (is \(minVolume))") }
        if windowSteps < 3 || windowSteps > Self.maxWindowSteps {
            problems.append("windowSteps must be in 3...\(Self.maxWindowSteps) (is \(windowSteps))")
        }
        if minHistorySteps < 1 || minHistorySteps > windowSteps {
            problems.append("minHistorySteps must be in 1...windowSteps (\(windowSteps)) (is \(minHistorySteps))")
        }
        if stepsPerDay < 24 || stepsPerDay % 24 != 0 || stepsPerDay > Self.maxStepsPerDay {
            problems.append("stepsPerDay must be a multiple of 24 in 24...\(Self.maxStepsPerDay) (is \(stepsPerDay))")
        }
        if seasonalDays < 1 || seasonalDays > Self.maxSeasonalDays {
            problems.append("seasonalDays must be in 1...\(Self.maxSeasonalDays) (is \(seasonalDays))")
        }
        if minSeasonalDays < 1 || minSeasonalDays > seasonalDays {
            problems.append("minSeasonalDays must be in 1...seasonalDays (\(seasonalDays)) (is \(minSeasonalDays))")
        }
        if !problems.isEmpty { throw SpikeSettingsError(message: "invalid spike settings: " + problems.joined(separator: "; ")) }
        return self
    }

    static let maxWindowSteps = 100_000
    static let maxStepsPerDay = 24 * 86_400
    static let maxSeasonalDays = 366

    /// Every value forced into its valid range, so a detector never traps on bad input.
    func clamped() -> SpikeSettings {
        var s = self
        s.factor = factor.isFinite && factor > 1 ? factor : 2.0
        s.sigmas = sigmas.isFinite && sigmas >= 0 ? sigmas : 4.0
        s.forSteps = max(1, forSteps)
        s.resolveSteps = max(1, resolveSteps)
        s.minVolume = minVolume.isFinite && minVolume >= 0 ? minVolume : 0
        s.windowSteps = min(max(3, windowSteps), Self.maxWindowSteps)
        s.minHistorySteps = min(max(1, minHistorySteps), s.windowSteps)
        let slot = max(1, min(stepsPerDay, Self.maxStepsPerDay) / 24)
        s.stepsPerDay = slot * 24
        s.seasonalDays = min(max(1, seasonalDays), Self.maxSeasonalDays)
        s.minSeasonalDays = min(max(1, minSeasonalDays), s.seasonalDays)
        return s
    }
}

/// Why `SpikeSettings.validated()` rejected a configuration.
public struct SpikeSettingsError: Error, CustomStringConvertible, Sendable, Equatable {
    public var message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
