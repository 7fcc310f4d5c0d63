import LedgerCore
import Synchronization

/// The key of one additive rollup record (../shared/DESIGN.md "Rollups").
/// `runLevel` records hold run measures once per run; model records hold a model's LLM
/// measures plus a copy of the run measures, so grouping by model counts a run under
/// each model it used.
public struct RollupKey: Hashable, Sendable, Comparable {
    public var bucketStartUnix: Int64 { didSet { rehash() } }
    public var resolutionSeconds: UInt32 { didSet { rehash() } }
    public var workflow: String { didSet { rehash() } }
    public var model: String { didSet { rehash() } }
    public var outcome: Outcome { didSet { rehash() } }
    public var service: String { didSet { rehash() } }
    public var runLevel: Bool { didSet { rehash() } }
    /// Set on agent records only (model ""): the agent whose calls these are ("" for calls
    /// no agent span encloses). Run-level and model records have nil.
    public var agent: String? { didSet { rehash() } }
    /// The fields' hash, taken when the key is made or a field changes. A run's keys are
    /// hashed on their way into its chunk's sums, the table and the unflushed records, and
    /// each hash went over four strings; now over this one word. Equal keys have equal
    /// fields, so equal hashes; a differing hash also settles most inequalities at once.
    private var fieldsHash = 0

    public init(bucketStartUnix: Int64, resolutionSeconds: UInt32 = 60, workflow: String, model: String, outcome: Outcome, service: String,
                runLevel: Bool, agent: String? = nil) {
        self.init(Shared(bucketStartUnix: bucketStartUnix, resolutionSeconds: resolutionSeconds, workflow: workflow, outcome: outcome,
                         service: service), model: model, runLevel: runLevel, agent: agent)
    }

    /// What the keys of one run's records share (bucket, workflow, outcome, service), with
    /// those fields already hashed: its keys then hash only what tells them apart.
    public struct Shared: Sendable {
        let bucketStartUnix: Int64
        let resolutionSeconds: UInt32
        let workflow: String
        let outcome: Outcome
        let service: String
        let hasher: Hasher

        public init(bucketStartUnix: Int64, resolutionSeconds: UInt32 = 60, workflow: String, outcome: Outcome, service: String) {
            (self.bucketStartUnix, self.resolutionSeconds, self.workflow, self.outcome, self.service) =
                (bucketStartUnix, resolutionSeconds, workflow, outcome, service)
            var h = Hasher()
            RollupKey.combineShared(&h, bucketStartUnix, resolutionSeconds, workflow, outcome, service)
            hasher = h
        }
    }

    /// A key of `shared`'s run: equal to, and hashed like, one made with every field.
    public init(_ shared: Shared, model: String, runLevel: Bool, agent: String? = nil) {
        bucketStartUnix = shared.bucketStartUnix
        resolutionSeconds = shared.resolutionSeconds
        workflow = shared.workflow
        self.model = model
        outcome = shared.outcome
        service = shared.service
        self.runLevel = runLevel
        self.agent = agent
        var h = shared.hasher
        Self.combineRest(&h, model, runLevel, agent)
        fieldsHash = h.finalize()
    }

    // The shared fields first, then the rest: `Shared` hashes the first part once.
    private static func combineShared(_ h: inout Hasher, _ bucket: Int64, _ resolution: UInt32, _ workflow: String, _ outcome: Outcome,
                                      _ service: String) {
        h.combine(bucket)
        h.combine(resolution)
        h.combine(workflow)
        h.combine(outcome)
        h.combine(service)
    }

    private static func combineRest(_ h: inout Hasher, _ model: String, _ runLevel: Bool, _ agent: String?) {
        h.combine(model)
        h.combine(runLevel)
        h.combine(agent)
    }

    private mutating func rehash() {
        var h = Hasher()
        Self.combineShared(&h, bucketStartUnix, resolutionSeconds, workflow, outcome, service)
        Self.combineRest(&h, model, runLevel, agent)
        fieldsHash = h.finalize()
    }

    public func hash(into hasher: inout Hasher) { hasher.combine(fieldsHash) }

    public static func == (a: RollupKey, b: RollupKey) -> Bool {
        a.fieldsHash == b.fieldsHash && a.bucketStartUnix == b.bucketStartUnix && a.resolutionSeconds == b.resolutionSeconds
            && a.outcome == b.outcome && a.runLevel == b.runLevel && a.workflow == b.workflow && a.model == b.model && a.service == b.service
            && a.agent == b.agent
    }

    public static func < (a: RollupKey, b: RollupKey) -> Bool {
        if a.bucketStartUnix != b.bucketStartUnix { return a.bucketStartUnix < b.bucketStartUnix }
        return (a.workflow, a.model, a.outcome.rawValue, a.service, a.runLevel ? 1 : 0, a.resolutionSeconds)
            < (b.workflow, b.model, b.outcome.rawValue, b.service, b.runLevel ? 1 : 0, b.resolutionSeconds)
            || ((a.workflow, a.model, a.outcome.rawValue, a.service, a.runLevel ? 1 : 0, a.resolutionSeconds)
                == (b.workflow, b.model, b.outcome.rawValue, b.service, b.runLevel ? 1 : 0, b.resolutionSeconds)
                && (a.agent == nil ? 0 : 1, a.agent ?? "") < (b.agent == nil ? 0 : 1, b.agent ?? ""))
    }

    /// The minute bucket holding a run that started at `unixNano`.
    public static func minuteStart(ofUnixNano unixNano: Int64) -> Int64 {
        let secs = unixNano >= 0 ? unixNano / 1_000_000_000 : (unixNano - 999_999_999) / 1_000_000_000
        return secs - ((secs % 60) + 60) % 60
    }
}

/// The additive measures of a rollup record. Signed, so correction records subtract.
public struct RollupMeasures: Sendable, Hashable {
    public var runs: Int64 = 0
    public var incompleteRuns: Int64 = 0
    public var toolCalls: Int64 = 0
    public var latency = LatencySketch()

    public var llmCalls: Int64 = 0
    public var inputTokens: Int64 = 0
    public var cachedInputTokens: Int64 = 0
    public var cacheWriteTokens: Int64 = 0
    public var outputTokens: Int64 = 0
    public var reasoningTokens: Int64 = 0
    public var unpricedTokens: Int64 = 0
    public var costMicros: Int64 = 0
    public var retries: Int64 = 0
    public var errors: Int64 = 0
    /// Runs that re-ran a task after a rejected or edited run of it, and their LLM cost.
    public var reworkRuns: Int64 = 0
    public var reworkCostMicros: Int64 = 0

    public init() {}

    public mutating func merge(_ o: RollupMeasures, sign: Int64 = 1) {
        runs += o.runs * sign
        incompleteRuns += o.incompleteRuns * sign
        toolCalls += o.toolCalls * sign
        latency.merge(o.latency, sign: sign)
        llmCalls += o.llmCalls * sign
        inputTokens += o.inputTokens * sign
        cachedInputTokens += o.cachedInputTokens * sign
        cacheWriteTokens += o.cacheWriteTokens * sign
        outputTokens += o.outputTokens * sign
        reasoningTokens += o.reasoningTokens * sign
        unpricedTokens += o.unpricedTokens * sign
        costMicros += o.costMicros * sign
        retries += o.retries * sign
        errors += o.errors * sign
        reworkRuns += o.reworkRuns * sign
        reworkCostMicros += o.reworkCostMicros * sign
    }

    /// Adds the LLM-call measures of `o` (tokens, cost, calls, retries, errors).
    public mutating func mergeLLM(_ o: RollupMeasures) {
        llmCalls += o.llmCalls
        inputTokens += o.inputTokens
        cachedInputTokens += o.cachedInputTokens
        cacheWriteTokens += o.cacheWriteTokens
        outputTokens += o.outputTokens
        reasoningTokens += o.reasoningTokens
        unpricedTokens += o.unpricedTokens
        costMicros += o.costMicros
        retries += o.retries
        errors += o.errors
    }

    /// Adds the run measures of `o` (runs, incomplete runs, tool calls, latency).
    public mutating func mergeRun(_ o: RollupMeasures) {
        reworkRuns += o.reworkRuns
        reworkCostMicros += o.reworkCostMicros
        runs += o.runs
        incompleteRuns += o.incompleteRuns
        toolCalls += o.toolCalls
        latency.merge(o.latency)
    }

    /// Equal to no measures at all. The counts are checked first: on ingest they are
    /// almost never all zero, and then the sketch is not compared.
    public var isZero: Bool {
        runs == 0 && llmCalls == 0 && toolCalls == 0 && incompleteRuns == 0 && inputTokens == 0 && cachedInputTokens == 0
            && cacheWriteTokens == 0 && outputTokens == 0 && reasoningTokens == 0 && unpricedTokens == 0 && costMicros == 0
            && retries == 0 && errors == 0 && reworkRuns == 0 && reworkCostMicros == 0 && latency == LatencySketch()
    }

    /// Merges `o` in place and tells whether the result is zero: one access to a
    /// dictionary's value instead of a merge and then a copy of it read out to test.
    public mutating func mergeIsZero(_ o: RollupMeasures) -> Bool {
        merge(o)
        return isZero
    }

    /// What subtracts these measures when added (a correction record).
    public var negated: RollupMeasures {
        var m = RollupMeasures()
        m.merge(self, sign: -1)
        return m
    }
}

/// A set of rollup records merged by key. Any two tables merge (DESIGN.md: many nodes'
/// answers merge into one). Records are kept per UTC day of their bucket start, so a
/// query of a short window touches only the days it overlaps.
public struct RollupTable: Sendable {
    public private(set) var days: [Int64: [RollupKey: RollupMeasures]] = [:]
    public private(set) var count = 0
    /// Per day, a process-wide increasing stamp of its last change: cached partial
    /// aggregates of a day are valid while its stamp is the one they were made from.
    public private(set) var versions: [Int64: UInt64] = [:]
    static let stamps = Atomic<UInt64>(0)

    public init() {}

    public var isEmpty: Bool { count == 0 }

    /// Every record (a flattened copy: for writing segments and listings, not for queries).
    public var records: [RollupKey: RollupMeasures] {
        var out: [RollupKey: RollupMeasures] = [:]
        out.reserveCapacity(count)
        for (_, day) in days { out.merge(day) { a, _ in a } }
        return out
    }

    static func day(of bucketStartUnix: Int64) -> Int64 { bucketStartUnix - ((bucketStartUnix % 86_400) + 86_400) % 86_400 }

    /// The records whose bucket starts in `range` (seconds), in no particular order.
    public func records(inBucketRange range: Range<Int64>) -> [(key: RollupKey, value: RollupMeasures)] {
        var out: [(key: RollupKey, value: RollupMeasures)] = []
        for (d, recs) in days where d < range.upperBound && d + 86_400 > range.lowerBound {
            let whole = d >= range.lowerBound && d + 86_400 <= range.upperBound
            for (k, m) in recs where whole || range.contains(k.bucketStartUnix) { out.append((k, m)) }
        }
        return out
    }

    /// The day partitions overlapping `range`, for queries that split work across cores.
    public func partitions(overlapping range: Range<Int64>) -> [[RollupKey: RollupMeasures]] {
        days.filter { $0.key < range.upperBound && $0.key + 86_400 > range.lowerBound }.map(\.value)
    }

    public mutating func add(_ key: RollupKey, _ measures: RollupMeasures) {
        let d = Self.day(of: key.bucketStartUnix)
        var delta = 0
        var emptied = false
        Self.update(&days[d, default: [:]], key, measures, &delta, &emptied)
        count += delta
        versions[d] = Self.stamps.add(1, ordering: .relaxed).newValue
        if emptied { days[d] = nil }
    }

    /// Adds many records (a release chunk's sums, a flush's delta): each day's partition
    /// is taken out once per stretch of records of that day, merged into, and put back
    /// with one new version stamp, where `add` looked the day up and stamped it per record.
    public mutating func add(contentsOf records: [RollupKey: RollupMeasures]) {
        var day: Int64?
        var recs: [RollupKey: RollupMeasures] = [:]
        var delta = 0
        var emptied = false
        func putBack(_ d: Int64, _ recs: inout [RollupKey: RollupMeasures]) {
            if !recs.isEmpty { days[d] = recs }
            versions[d] = Self.stamps.add(1, ordering: .relaxed).newValue
            recs = [:]
        }
        for (key, measures) in records {
            let d = Self.day(of: key.bucketStartUnix)
            if d != day {
                if let day { putBack(day, &recs) }
                day = d
                // Out of the table while merged into: uniquely referenced, so changed in place.
                recs = days.removeValue(forKey: d) ?? [:]
            }
            Self.update(&recs, key, measures, &delta, &emptied)
        }
        if let day { putBack(day, &recs) }
        count += delta
    }

    /// Merges into one day's records in place (no copy of the partition or the sketch),
    /// hashing the key once for a key already present (the common case on ingest).
    private static func update(_ recs: inout [RollupKey: RollupMeasures], _ key: RollupKey, _ measures: RollupMeasures,
                               _ delta: inout Int, _ emptied: inout Bool) {
        if let i = recs.index(forKey: key) {
            if recs.values[i].mergeIsZero(measures) {
                recs.remove(at: i)
                delta -= 1
                emptied = recs.isEmpty
            }
        } else if !measures.isZero {
            recs[key] = measures
            delta += 1
        }
    }

    public mutating func merge(_ other: RollupTable) {
        for (_, day) in other.days { add(contentsOf: day) }
    }

    /// Takes `other`'s records out again (records that reach zero leave the table).
    public mutating func subtract(_ other: RollupTable) {
        for (_, day) in other.days { add(contentsOf: day.mapValues(\.negated)) }
    }

    public mutating func removeAll() {
        days.removeAll(keepingCapacity: true)
        versions.removeAll(keepingCapacity: true)
        count = 0
    }
}
