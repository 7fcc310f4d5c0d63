/// Who gave a verdict.
public enum ReviewerKind: UInt8, Sendable, CaseIterable {
    case unknown = 0, human = 1, llm = 2, code = 3

    public var name: String {
        switch self {
        case .unknown: ""
        case .human: "human"
        case .llm: "llm"
        case .code: "code"
        }
    }

    public init?(name: String) {
        guard let k = Self.allCases.first(where: { $0.name == name.lowercased() && $0 != .unknown }) else { return nil }
        self = k
    }
}

/// Where a run's verdict came from.
public enum VerdictSource: UInt8, Sendable, CaseIterable {
    /// None yet (pending).
    case none = 0
    /// Attributes or evaluation events on the run's own spans when it was released.
    case spans = 1
    /// `POST /v1/outcomes` or `spanledger outcome`.
    case api = 2
    /// A feedback span in another trace linking to the run.
    case feedbackSpan = 3
    /// A span of the run that arrived after the run was released.
    case lateSpan = 4

    public var name: String {
        switch self {
        case .none: "none"
        case .spans: "spans"
        case .api: "api"
        case .feedbackSpan: "feedback_span"
        case .lateSpan: "late_span"
        }
    }
}

/// A verdict about one run that arrives on its own: through the outcomes API, a
/// feedback span linking to the run, or a late span. The latest by time wins.
public struct OutcomeRecord: Sendable, Hashable {
    public var traceID: TraceID
    public var outcome: Outcome
    public var timeUnixNano: Int64
    public var source: VerdictSource
    public var reviewer: String
    public var reviewerKind: ReviewerKind
    public var comment: String

    public init(traceID: TraceID, outcome: Outcome, timeUnixNano: Int64, source: VerdictSource, reviewer: String = "",
                reviewerKind: ReviewerKind = .unknown, comment: String = "") {
        self.traceID = traceID
        self.outcome = outcome
        self.timeUnixNano = timeUnixNano
        self.source = source
        self.reviewer = reviewer
        self.reviewerKind = reviewerKind
        self.comment = comment
    }

    /// Whether this verdict replaces one given at `time` with `outcome`: a later time
    /// wins; at the same time the higher outcome wins, so any order of arrival ends in
    /// the same verdict.
    public func supersedes(time: Int64, outcome other: Outcome) -> Bool {
        timeUnixNano > time || (timeUnixNano == time && outcome > other)
    }
}
