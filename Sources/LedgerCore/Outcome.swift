/// The verdict on a run (../shared/DESIGN.md "Outcome of a run"). Raw values are stored on disk.
public enum Outcome: Int, Sendable, CaseIterable, Hashable, Comparable, CustomStringConvertible {
    case pending = 0
    case accepted = 1
    case edited = 2
    case rejected = 3
    case escalated = 4

    public var name: String {
        switch self {
        case .pending: "pending"
        case .accepted: "accepted"
        case .edited: "edited"
        case .rejected: "rejected"
        case .escalated: "escalated"
        }
    }

    public var description: String { name }

    /// Accepted outcomes for cost per accepted outcome: accepted and edited.
    public var countsAsAccepted: Bool { self == .accepted || self == .edited }

    public init?(name: String) {
        guard let match = Outcome.allCases.first(where: { $0.name == name }) else { return nil }
        self = match
    }

    /// Maps a reviewer's or evaluator's label to an outcome (Schemas/conventions.md table).
    public init?(label: some StringProtocol) {
        switch label.lowercased() {
        case "accepted", "accept", "approved", "approve", "pass", "passed", "correct", "success", "thumbs_up":
            self = .accepted
        case "edited", "accepted_with_edits", "modified", "revised":
            self = .edited
        case "rejected", "reject", "fail", "failed", "incorrect", "thumbs_down":
            self = .rejected
        case "escalated", "escalate", "handoff", "human_handoff":
            self = .escalated
        default:
            return nil
        }
    }

    public static func < (a: Outcome, b: Outcome) -> Bool { a.rawValue < b.rawValue }
}

/// A verdict seen on a span, with the time that orders it against other verdicts.
public struct Verdict: Sendable, Hashable {
    public var outcome: Outcome
    public var timeUnixNano: Int64

    public init(outcome: Outcome, timeUnixNano: Int64) {
        self.outcome = outcome
        self.timeUnixNano = timeUnixNano
    }

    /// The later of two verdicts (the latest verdict by time wins; ties keep `self`).
    public func latest(_ other: Verdict?) -> Verdict {
        guard let other, other.timeUnixNano > timeUnixNano else { return self }
        return other
    }
}
