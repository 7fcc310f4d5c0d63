import LedgerCore
import Synchronization

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

    /// Adds another partial group of the same key.
    public mutating func add(_ o: QueryGroup) {
        for i in runsByOutcome.indices { runsByOutcome[i] += o.runsByOutcome[i] }
        measures.merge(o.measures)
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

public struct QueryGroupKey: Hashable, Sendable {
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
        finish(aggregate(records))
    }

    /// Runs the query over a table: each whole day inside the window is answered from the
    /// cache when its partial aggregate is there and the day has not changed since, the
    /// rest is aggregated across `ways` tasks; partial groups merge (every measure is additive).
    /// `recent` (a few seconds of records, changing on every release) is aggregated whole
    /// and added, never cached.
    public func run(over table: RollupTable, recent: RollupTable? = nil, ways: Int, cache: PartialAggregateCache? = nil) async -> [QueryGroup] {
        let range = bucketRange
        let shape = cacheShape
        var wholeDays: [Int64] = []
        var edgeDays: [Int64] = []
        for day in table.days.keys where day < range.upperBound && day + 86_400 > range.lowerBound {
            if day >= range.lowerBound && day + 86_400 <= range.upperBound { wholeDays.append(day) } else { edgeDays.append(day) }
        }
        wholeDays.sort()
        // The whole days as one merged aggregate, valid while none of them changed.
        var signature = Hasher()
        for d in wholeDays {
            signature.combine(d)
            signature.combine(table.versions[d] ?? 0)
        }
        let span = "\(shape)|\(wholeDays.first ?? 0)-\(wholeDays.last ?? 0)#\(wholeDays.count)"
        let stamp = UInt64(bitPattern: Int64(signature.finalize()))
        var merged: [QueryGroupKey: QueryGroup]
        if let cache, !wholeDays.isEmpty, let hit = cache.lookupSpan(span, stamp: stamp) {
            merged = hit
        } else {
            merged = await aggregate(days: wholeDays, of: table, ways: ways, cache: cache, shape: shape)
            if let cache, !wholeDays.isEmpty { cache.storeSpan(span, stamp: stamp, groups: merged) }
        }
        var rest = [await aggregate(days: edgeDays, of: table, ways: ways, cache: nil, shape: shape)]
        if let recent, !recent.isEmpty { rest.append(aggregate(recent.records(inBucketRange: range))) }
        for groups in rest {
            for (k, g) in groups {
                if let i = merged.index(forKey: k) { merged.values[i].add(g) } else { merged[k] = g }
            }
        }
        return finish(merged)
    }

    /// Aggregates the given days: from the per-day cache where valid, the rest across
    /// `ways` tasks when there is enough of it.
    func aggregate(days: [Int64], of table: RollupTable, ways: Int, cache: PartialAggregateCache?, shape: String) async -> [QueryGroupKey: QueryGroup] {
        let range = bucketRange
        var partials: [[QueryGroupKey: QueryGroup]] = []
        var todo: [(day: Int64, records: [RollupKey: RollupMeasures])] = []
        for day in days {
            guard let records = table.days[day] else { continue }
            let whole = day >= range.lowerBound && day + 86_400 <= range.upperBound
            if whole, let cache, let hit = cache.lookup(shape, day: day, version: table.versions[day] ?? 0) {
                partials.append(hit)
            } else {
                todo.append((day, records))
            }
        }
        let total = todo.reduce(0) { $0 + $1.records.count }
        let query = self
        var computed: [(Int64, [QueryGroupKey: QueryGroup])] = []
        if ways > 1 && total > 20_000 && todo.count > 1 {
            var shares = [[(day: Int64, records: [RollupKey: RollupMeasures])]](repeating: [], count: ways)
            var loads = [Int](repeating: 0, count: ways)
            for t in todo.sorted(by: { $0.records.count > $1.records.count }) {
                let i = loads.indices.min { loads[$0] < loads[$1] }!
                shares[i].append(t)
                loads[i] += t.records.count
            }
            computed = await withTaskGroup(of: [(Int64, [QueryGroupKey: QueryGroup])].self) { group in
                for share in shares where !share.isEmpty {
                    group.addTask { share.map { ($0.day, query.aggregate($0.records.lazy.map { (key: $0.key, value: $0.value) })) } }
                }
                var out: [(Int64, [QueryGroupKey: QueryGroup])] = []
                for await p in group { out += p }
                return out
            }
        } else {
            computed = todo.map { ($0.day, aggregate($0.records.lazy.map { (key: $0.key, value: $0.value) })) }
        }
        for (day, groups) in computed {
            if let cache, day >= range.lowerBound && day + 86_400 <= range.upperBound {
                cache.store(shape, day: day, version: table.versions[day] ?? 0, groups: groups)
            }
            partials.append(groups)
        }
        partials.sort { $0.count > $1.count }
        var merged = partials.first ?? [:]
        for p in partials.dropFirst() {
            for (k, g) in p {
                if let i = merged.index(forKey: k) { merged.values[i].add(g) } else { merged[k] = g }
            }
        }
        return merged
    }

    /// What a day's partial aggregate depends on besides the day's records.
    var cacheShape: String {
        "\(groupBy.map(\.rawValue))|w=\(workflow ?? "")|m=\(model ?? "")|s=\(service ?? "")|f=\(functionOf != nil)|step=\(stepSeconds ?? 0)"
    }

    func aggregate<S: Sequence>(_ records: S) -> [QueryGroupKey: QueryGroup] where S.Element == (key: RollupKey, value: RollupMeasures) {
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
            if (byModel || byAgent || model != nil) && key.runLevel { continue }
            let i: Dictionary<QueryGroupKey, QueryGroup>.Index
            if let found = groups.index(forKey: gk) {
                i = found
            } else {
                var g = QueryGroup(workflow: gk.workflow, model: gk.model, outcome: gk.outcome, service: gk.service, agent: gk.agent)
                g.function = gk.function
                g.bucketStartUnix = gk.bucket
                groups[gk] = g
                i = groups.index(forKey: gk)!
            }
            // Mutated in place through one index: no second hash of the key, and no copy
            // of the group's latency sketch per record.
            if byModel || byAgent || model != nil {
                groups.values[i].measures.mergeRun(m)
                groups.values[i].measures.mergeLLM(m)
                groups.values[i].runsByOutcome[key.outcome.rawValue] += m.runs
            } else if key.runLevel {
                groups.values[i].measures.mergeRun(m)
                groups.values[i].measures.errors += m.errors
                groups.values[i].runsByOutcome[key.outcome.rawValue] += m.runs
            } else {
                groups.values[i].measures.mergeLLM(m)
            }
        }
        return groups
    }

    func finish(_ groups: [QueryGroupKey: QueryGroup]) -> [QueryGroup] {
        groups.values.filter { $0.runs != 0 || !$0.measures.isZero }.sorted { a, b in
            if a.bucketStartUnix != b.bucketStartUnix { return (a.bucketStartUnix ?? 0) < (b.bucketStartUnix ?? 0) }
            if a.measures.costMicros != b.measures.costMicros { return a.measures.costMicros > b.measures.costMicros }
            return (a.function ?? "", a.workflow ?? "", a.model ?? "", a.outcome?.rawValue ?? -1, a.service ?? "", a.agent ?? "")
                < (b.function ?? "", b.workflow ?? "", b.model ?? "", b.outcome?.rawValue ?? -1, b.service ?? "", b.agent ?? "")
        }
    }
}

/// Partial aggregates of whole days, per query shape, for long windows: a day's entry is
/// used while the day's change stamp is the one it was computed from. Bounded by the
/// number of groups it holds; when full it starts over.
public final class PartialAggregateCache: Sendable {
    struct Entry {
        var version: UInt64
        var groups: [QueryGroupKey: QueryGroup]
    }

    private let state = Mutex<(entries: [String: [Int64: Entry]], groups: Int)>(([:], 0))
    /// Merged aggregates of runs of whole days, keyed by shape and day span.
    private let spans = Mutex<[String: Entry]>([:])
    let maxGroups: Int

    public init(maxGroups: Int = 2_000_000) {
        self.maxGroups = maxGroups
    }

    func lookup(_ shape: String, day: Int64, version: UInt64) -> [QueryGroupKey: QueryGroup]? {
        state.withLock { s in
            guard let e = s.entries[shape]?[day], e.version == version else { return nil }
            return e.groups
        }
    }

    func lookupSpan(_ span: String, stamp: UInt64) -> [QueryGroupKey: QueryGroup]? {
        spans.withLock { s in
            guard let e = s[span], e.version == stamp else { return nil }
            return e.groups
        }
    }

    func storeSpan(_ span: String, stamp: UInt64, groups: [QueryGroupKey: QueryGroup]) {
        spans.withLock { s in
            if s.count >= 256 { s.removeAll() }
            s[span] = Entry(version: stamp, groups: groups)
        }
    }

    func store(_ shape: String, day: Int64, version: UInt64, groups: [QueryGroupKey: QueryGroup]) {
        state.withLock { s in
            if s.groups + groups.count > maxGroups {
                s.entries.removeAll()
                s.groups = 0
            }
            if let old = s.entries[shape]?[day] { s.groups -= old.groups.count }
            s.entries[shape, default: [:]][day] = Entry(version: version, groups: groups)
            s.groups += groups.count
        }
    }
}
