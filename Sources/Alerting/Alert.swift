import LedgerCore

/// One alert: a rule's condition for one set of labels (a workflow, a model…).
/// Its fingerprint, a hash of the labels, names it across evaluations and restarts.
public struct Alert: Sendable, Codable, Equatable {
    public enum Status: String, Sendable, Codable { case pending, firing, resolved }

    public var fingerprint: String
    public var rule: String
    public var kind: String
    public var labels: [String: String]
    public var annotations: [String: String]
    public var status: Status
    /// When the condition was first seen true (pending), then when it fired.
    public var activeSinceUnixNano: Int64
    public var startsAtUnixNano: Int64
    public var endsAtUnixNano: Int64?
    public var value: Double
    public var threshold: Double?
    public var baseline: Double?
    public var updatedUnixNano: Int64
    /// When a firing notification was last queued per hook (for the repeat interval).
    public var lastNotifiedUnixNano: [String: Int64] = [:]

    public init(rule: String, kind: String, labels: [String: String], annotations: [String: String], status: Status,
                activeSinceUnixNano: Int64, value: Double, threshold: Double?, baseline: Double?) {
        self.fingerprint = Self.fingerprint(labels)
        self.rule = rule
        self.kind = kind
        self.labels = labels
        self.annotations = annotations
        self.status = status
        self.activeSinceUnixNano = activeSinceUnixNano
        self.startsAtUnixNano = activeSinceUnixNano
        self.value = value
        self.threshold = threshold
        self.baseline = baseline
        self.updatedUnixNano = activeSinceUnixNano
    }

    /// FNV-1a 64 over the sorted `name=value` pairs, as 16 hex digits.
    public static func fingerprint(_ labels: [String: String]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for k in labels.keys.sorted() {
            for b in k.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h = (h ^ 0x3d) &* 0x100_0000_01b3
            for b in labels[k]!.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
            h = (h ^ 0xff) &* 0x100_0000_01b3
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }
}

/// What a rule evaluation found for one label set: the condition, its numbers and the
/// words that explain them.
struct Finding {
    var labels: [String: String]
    var active: Bool
    var value: Double
    var threshold: Double?
    var baseline: Double?
    var summary: String
    var description: String
    var query: String
    /// When the condition became true, if the finding knows better than "now" (a spike's first step).
    var since: Int64?
}

/// One message to one hook about one alert: the unit of delivery, retry and the log.
public struct AlertNotification: Sendable, Codable, Equatable {
    public enum Result: String, Sendable, Codable { case pending, delivered, failed, superseded, dropped }

    public var id: Int64
    public var hook: String
    public var alert: Alert
    /// firing or resolved (the alert's status when this was queued).
    public var status: Alert.Status
    public var createdUnixNano: Int64
    public var attempts: Int = 0
    public var nextAttemptUnixNano: Int64
    public var result: Result = .pending
    public var lastError: String?
    public var httpStatus: Int?
    public var finishedUnixNano: Int64?
}
