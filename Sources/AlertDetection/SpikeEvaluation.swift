/// Alert state of one series.
public enum SpikeState: String, Sendable, Codable {
    /// The last step did not exceed (or a firing episode resolved).
    case normal
    /// Exceeding, but for fewer than `forSteps` consecutive steps.
    case pending
    /// Exceeded for `forSteps` consecutive steps and has not yet had `resolveSteps` normal ones.
    case firing
}

/// The verdict on one observed step.
public struct SpikeEvaluation: Sendable, Equatable {
    /// The step evaluated.
    public var step: Int64
    /// The value fed for the step (negative and non-finite values are read as 0).
    public var value: Double
    /// Baseline level × seasonal factor; nil while history is insufficient.
    public var expected: Double?
    /// Robust σ scaled by the seasonal factor; nil with `expected`.
    public var sigma: Double?
    /// max(factor × expected, expected + sigmas × sigma, minVolume); nil with `expected`.
    public var threshold: Double?
    /// value > factor × expected, value > expected + sigmas × sigma and value >= minVolume.
    public var exceeding: Bool
    /// State after this step.
    public var state: SpikeState
    /// What changed during the call that produced this evaluation: `.fired` when a firing episode
    /// began at this step, `.resolved` when the series was firing before the call and is not now
    /// (possibly resolved by skipped zero steps).
    public var transition: Transition?
    /// First exceeding step of the current firing episode; on a `.resolved` evaluation, of the episode that ended.
    public var firingSince: Int64?

    public enum Transition: String, Sendable, Codable {
        case fired, resolved
    }

    public init(
        step: Int64, value: Double, expected: Double?, sigma: Double?, threshold: Double?,
        exceeding: Bool, state: SpikeState, transition: Transition?, firingSince: Int64?
    ) {
        self.step = step
        self.value = value
        self.expected = expected
        self.sigma = sigma
        self.threshold = threshold
        self.exceeding = exceeding
        self.state = state
        self.transition = transition
        self.firingSince = firingSince
    }
}
