/// Spike detector for one per-step series, judged against the series' own robust baseline
/// (median and MAD of the trailing window, deseasonalised by an hourly day profile once enough
/// complete days exist). Value type: Codable for persistence, Sendable, O(windowSteps) per step.
public struct SpikeDetector: Sendable, Codable {
    /// Current tuning. Invalid values are clamped into range when set; a changed `windowSteps`
    /// keeps the newest values, a changed `stepsPerDay` or `seasonalDays` drops the seasonal history.
    public var settings: SpikeSettings {
        didSet {
            let clamped = settings.clamped()
            if clamped != settings { settings = clamped }
            reconcile(with: oldValue)
        }
    }
    /// The last step observed (including steps reached by a gap).
    public internal(set) var lastStep: Int64?
    /// State after `lastStep`.
    public internal(set) var state: SpikeState = .normal

    var window: BaselineWindow
    var history: SeasonalHistory
    /// Consecutive exceeding steps up to `lastStep`, and the first of them.
    var exceedStreak = 0
    var streakStart: Int64?
    /// Consecutive non-exceeding steps while firing.
    var normalStreak = 0
    var firingSince: Int64?

    /// Cache: the profile in force on `profileDay` (nil profile = no seasonality yet). Not persisted.
    var profileDay: Int64?
    var profile: SeasonalProfile?

    private enum CodingKeys: String, CodingKey {
        case settings, lastStep, state, window, history, exceedStreak, streakStart, normalStreak, firingSince
    }

    public init(settings: SpikeSettings) {
        let s = settings.clamped()
        self.settings = s
        window = BaselineWindow(capacity: s.windowSteps)
        history = SeasonalHistory(stepsPerDay: s.stepsPerDay, seasonalDays: s.seasonalDays)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        settings = try c.decode(SpikeSettings.self, forKey: .settings)
        lastStep = try c.decodeIfPresent(Int64.self, forKey: .lastStep)
        state = try c.decode(SpikeState.self, forKey: .state)
        window = try c.decode(BaselineWindow.self, forKey: .window)
        history = try c.decode(SeasonalHistory.self, forKey: .history)
        exceedStreak = try c.decode(Int.self, forKey: .exceedStreak)
        streakStart = try c.decodeIfPresent(Int64.self, forKey: .streakStart)
        normalStreak = try c.decode(Int.self, forKey: .normalStreak)
        firingSince = try c.decodeIfPresent(Int64.self, forKey: .firingSince)
        guard settings.clamped() == settings, window.capacity == settings.windowSteps,
              history.stepsPerDay == settings.stepsPerDay, history.ringDays == settings.seasonalDays + 1,
              exceedStreak >= 0, normalStreak >= 0
        else {
            throw DecodingError.dataCorrupted(.init(codingPath: c.codingPath, debugDescription: "spike detector state does not match its settings"))
        }
    }

    /// Feeds the value of a closed step (negative or non-finite values count as 0). Steps must
    /// increase; a step <= `lastStep` is ignored and returns nil. Steps skipped since `lastStep`
    /// count as 0-valued steps (they can resolve a firing series, never fire it); a gap longer than
    /// seasonalDays × stepsPerDay steps instead resets all history.
    public mutating func observe(step: Int64, value: Double) -> SpikeEvaluation? {
        let value = value.isFinite && value > 0 ? value : 0
        let wasFiring = state == .firing
        let episodeBefore = firingSince
        if let last = lastStep {
            guard step > last else { return nil }
            let (gap, overflow) = step.subtractingReportingOverflow(last)
            if overflow || gap - 1 > Int64(settings.seasonalDays) * Int64(settings.stepsPerDay) {
                resetHistory()
            } else if gap > 1 {
                skipZeros(from: last + 1, through: step - 1)
            }
        }

        let factor = seasonalFactor(atStep: step)
        var expected: Double?
        var sigma: Double?
        var threshold: Double?
        var exceeding = false
        if let base = Self.robustBaseline(window.adjusted, minCount: settings.minHistorySteps) {
            let e = base.level * factor
            let sd = base.sigma * factor
            expected = e
            sigma = sd
            threshold = max(settings.factor * e, e + settings.sigmas * sd, settings.minVolume)
            exceeding = value > settings.factor * e && value > e + settings.sigmas * sd && value >= settings.minVolume
        }

        let fired = advance(step: step, exceeding: exceeding)
        // Exceeding steps stay out of the baseline unless the excess has outlasted the window (a level shift).
        if !exceeding || exceedStreak > settings.windowSteps {
            window.append(step: step, value: value, adjusted: BaselineWindow.adjust(value, by: factor))
        }
        history.add(step: step, value: value)
        lastStep = step

        let transition: SpikeEvaluation.Transition? = fired ? .fired : (wasFiring && state != .firing ? .resolved : nil)
        return SpikeEvaluation(
            step: step, value: value, expected: expected, sigma: sigma, threshold: threshold,
            exceeding: exceeding, state: state, transition: transition,
            firingSince: state == .firing ? firingSince : (transition == .resolved ? episodeBefore : nil)
        )
    }

    /// The expected value at `atStep` from the current baseline and seasonal profile; nil while
    /// history is insufficient.
    public func expected(atStep step: Int64) -> Double? {
        let day = history.day(of: step)
        let cached = profileDay == day && window.isAdjusted
        let profile = cached ? self.profile : history.profile(forDay: day, minDays: settings.minSeasonalDays)
        let adjusted = cached ? window.adjusted : BaselineWindow.adjustedValues(values: window.values, steps: window.steps) {
            profile?.factor(atStep: $0) ?? 1
        }
        guard let base = Self.robustBaseline(adjusted, minCount: settings.minHistorySteps) else { return nil }
        return base.level * (profile?.factor(atStep: step) ?? 1)
    }

    /// Whether seasonality is in force for `step` (enough complete days of history).
    public func isSeasonal(atStep step: Int64) -> Bool {
        history.profile(forDay: history.day(of: step), minDays: settings.minSeasonalDays) != nil
    }

    /// The seasonal factor of `step`, refreshing the per-day profile cache (and the window's
    /// deseasonalised values) when the day changed or the cache is empty.
    mutating func seasonalFactor(atStep step: Int64) -> Double {
        let day = history.day(of: step)
        if profileDay != day || !window.isAdjusted {
            profile = history.profile(forDay: day, minDays: settings.minSeasonalDays)
            profileDay = day
            let p = profile
            window.readjust { p?.factor(atStep: $0) ?? 1 }
        }
        return profile?.factor(atStep: step) ?? 1
    }

    /// Level (median) and σ (1.4826 × MAD, floored at 1% of level + 1e-6) of deseasonalised values.
    static func robustBaseline(_ adjusted: [Double], minCount: Int) -> (level: Double, sigma: Double)? {
        let n = adjusted.count
        guard n > 0, n >= minCount else { return nil }
        let stats = withUnsafeTemporaryAllocation(of: Double.self, capacity: n) { buf in
            adjusted.withUnsafeBufferPointer { src in
                for i in 0..<n { buf[i] = src[i] }
            }
            return RobustStatistics.medianAndMAD(buf)
        }
        let sigma = max(1.4826 * stats.mad, 0.01 * stats.median + 1e-6)
        return (stats.median, sigma)
    }
}
