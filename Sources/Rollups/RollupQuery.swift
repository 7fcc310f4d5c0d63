import LedgerCore

/// Dimensions a query can group by.
public enum GroupDimension: String, Sendable, CaseIterable, Hashable {
    case workflow, model, outcome, service, agent, function

    /// Parses a comma list such as `workflow,model`; throws on unknown names.
    public static func parseList(_ text: String) throws(QueryError) -> [GroupDimension] {
        var out: [GroupDimension] = []
        for part in text.split(separator: ",") {
            let name = String(part).trimmingWhitespace().lowercased()
            if name.isEmpty { continue }
            guard let d = GroupDimension(rawValue: name) else {
                throw QueryError("unknown group-by dimension '\(name)'; expected workflow, model, outcome, service, agent or function")
            }
            if !out.contains(d) { out.append(d) }
        }
        if out.contains(.agent) && out.contains(.model) {
            throw QueryError("group by agent or by model, not both: a run's calls are split by model or by agent")
        }
        return out
    }
}

public struct QueryError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A rollup query: a window of run start times [fromUnixNano, toUnixNano) and grouping.
public struct RollupQuery: Sendable {
    public var fromUnixNano: Int64
    public var toUnixNano: Int64
    public var groupBy: [GroupDimension]
    public var workflow: String?
    public var model: String?
    public var service: String?
    /// The business function of a workflow (the outcome registry), for `group_by=function`.
    public var functionOf: (@Sendable (String) -> String)?
    /// Time series: groups also split by buckets of this many seconds (a multiple of 60),
    /// aligned to multiples of the step since the Unix epoch (UTC).
    public var stepSeconds: Int64?

    public init(fromUnixNano: Int64, toUnixNano: Int64, groupBy: [GroupDimension] = [], workflow: String? = nil, model: String? = nil, service: String? = nil) {
        self.fromUnixNano = fromUnixNano
        self.toUnixNano = toUnixNano
        self.groupBy = groupBy
        self.workflow = workflow
        self.model = model
        self.service = service
    }

    /// Bucket start (seconds) range covered: whole buckets whose start lies in the window,
    /// the window being widened to whole minutes.
    var bucketRange: Range<Int64> {
        let from = RollupKey.minuteStart(ofUnixNano: fromUnixNano)
        let toMinute = RollupKey.minuteStart(ofUnixNano: toUnixNano)
        let to = toMinute * 1_000_000_000 == toUnixNano ? toMinute : toMinute + 60
        return from..<to
    }

    public var windowStartUnix: Int64 { bucketRange.lowerBound }
    public var windowEndUnix: Int64 { bucketRange.upperBound }
}

/// One group of a query answer: the keys grouped by and the measures summed over it.
public struct QueryGroup: Sendable, Equatable {
    public var workflow: String?
    public var model: String?
    public var outcome: Outcome?
    public var service: String?
    public var agent: String?
    public var function: String?
    /// Start of the step bucket (seconds) of a time-series query.
    public var bucketStartUnix: Int64?
    public var runsByOutcome: [Int64] = Array(repeating: 0, count: Outcome.allCases.count)
    public var measures = RollupMeasures()

    public init(workflow: String? = nil, model: String? = nil, outcome: Outcome? = nil, service: String? = nil, agent: String? = nil) {
        self.workflow = workflow
        self.model = model
        self.outcome = outcome
        self.service = service
        self.agent = agent
    }

    /// Rework runs per run (conventions.md "Rework"); nil with no runs.
    public var reworkRate: Double? { runs > 0 ? Double(measures.reworkRuns) / Double(runs) : nil }

    public var runs: Int64 { runsByOutcome.reduce(0, +) }
    public func runs(_ o: Outcome) -> Int64 { runsByOutcome[o.rawValue] }
    public var acceptedRuns: Int64 { runs(.accepted) + runs(.edited) }
    public var decidedRuns: Int64 { acceptedRuns + runs(.rejected) + runs(.escalated) }

    /// (accepted + edited) / (accepted + edited + rejected + escalated); nil with no verdict.
    public var acceptanceRate: Double? { decidedRuns > 0 ? Double(acceptedRuns) / Double(decidedRuns) : nil }

    /// All cost of the group's runs ÷ accepted runs, in micro-dollars; nil with none accepted.
    public var costPerAcceptedMicros: Double? { acceptedRuns > 0 ? Double(measures.costMicros) / Double(acceptedRuns) : nil }
}

public struct QueryGroupKey: Hashable {
    var workflow: String?
    var model: String?
    var outcome: Outcome?
    var service: String?
    var agent: String?
    var function: String?
    var bucket: Int64?
}

extension RollupQuery {
    /// Aggregates records into groups, sorted by cost descending then by key.
    /// Grouped by model only model records count (a run under each model it used);
    /// otherwise run measures come from run-level records and LLM measures from model records.
    public func run<S: Sequence>(over records: S) -> [QueryGroup] where S.Element == (key: RollupKey, value: RollupMeasures) {
        let byModel = groupBy.contains(.model)
        let byAgent = groupBy.contains(.agent)
        let range = bucketRange
        var groups: [QueryGroupKey: QueryGroup] = [:]
        for (key, m) in records {
            guard range.contains(key.bucketStartUnix) else { continue }
            // Agent records answer only queries by agent; the others never see them.
            guard (key.agent != nil) == byAgent else { continue }
            if let workflow, key.workflow != workflow { continue }
            if let service, key.service != service { continue }
            if let model {
                if key.runLevel || key.model != model { continue }
            }
            let gk = QueryGroupKey(
                workflow: groupBy.contains(.workflow) ? key.workflow : nil,
                model: byModel ? key.model : nil,
                outcome: groupBy.contains(.outcome) ? key.outcome : nil,
                service: groupBy.contains(.service) ? key.service : nil,
                agent: byAgent ? key.agent : nil,
                function: groupBy.contains(.function) ? (functionOf?(key.workflow) ?? "") : nil,
                bucket: stepSeconds.map { step in key.bucketStartUnix - ((key.bucketStartUnix % step) + step) % step }
            )
            var g = groups[gk] ?? QueryGroup(workflow: gk.workflow, model: gk.model, outcome: gk.outcome, service: gk.service, agent: gk.agent)
            g.function = gk.function
            g.bucketStartUnix = gk.bucket
            if byModel || byAgent || model != nil {
                if key.runLevel { continue }
                g.measures.mergeRun(m)
                g.measures.mergeLLM(m)
                g.runsByOutcome[key.outcome.rawValue] += m.runs
            } else if key.runLevel {
                g.measures.mergeRun(m)
                g.measures.errors += m.errors
                g.runsByOutcome[key.outcome.rawValue] += m.runs
            } else {
                g.measures.mergeLLM(m)
            }
            groups[gk] = g
        }
        return groups.values.filter { $0.runs != 0 || !$0.measures.isZero }.sorted { a, b in
            if a.bucketStartUnix != b.bucketStartUnix { return (a.bucketStartUnix ?? 0) < (b.bucketStartUnix ?? 0) }
            if a.measures.costMicros != b.measures.costMicros { return a.measures.costMicros > b.measures.costMicros }
            return (a.function ?? "", a.workflow ?? "", a.model ?? "", a.outcome?.rawValue ?? -1, a.service ?? "", a.agent ?? "")
                < (b.function ?? "", b.workflow ?? "", b.model ?? "", b.outcome?.rawValue ?? -1, b.service ?? "", b.agent ?? "")
        }
    }
}
