import Attribution
import LedgerCore
import LedgerStore
import Rollups

/// The rollup records one run contributes, rebuilt from its index entry and stored tree,
/// and rework across the runs of a task (Schemas/conventions.md "Rework").
extension Ledger {
    /// What a run adds to the rollups (../shared/DESIGN.md "Rollups"), from its stored
    /// tree: what `RunRecordSums` says, fed one stored span at a time.
    static func runRecords(_ entry: TraceIndexEntry, tree: [StoredSpan]) -> [RunRecord] {
        var sums = RunRecordSums(entry)
        // In place: a copy of a span retains its strings.
        tree.withUnsafeBufferPointer { spans in
            for i in spans.indices {
                switch spans[i].kind {
                case .llm:
                    sums.call(model: spans[i].model, agent: spans[i].agent, usage: spans[i].usage, costMicros: spans[i].costMicros,
                              priced: spans[i].priced, retry: spans[i].retry, error: spans[i].error)
                case .tool: sums.tool(agent: spans[i].agent, error: spans[i].error)
                default: sums.other(error: spans[i].error)
                }
            }
        }
        return sums.takeRecords()
    }

    /// The same records, from the attributed run the tree would be built from (a prepared
    /// run has no `StoredSpan` tree): its calls are its LLM spans.
    static func runRecords(_ entry: TraceIndexEntry, run: AttributedRun) -> [RunRecord] {
        var sums = RunRecordSums(entry)
        run.calls.withUnsafeBufferPointer { calls in
            for c in calls.indices {
                sums.call(model: calls[c].model, agent: calls[c].agent, usage: calls[c].usage, costMicros: calls[c].costMicros,
                          priced: calls[c].priced, retry: calls[c].isRetry, error: calls[c].isError)
            }
        }
        run.spans.withUnsafeBufferPointer { spans in
            run.spanAgents.withUnsafeBufferPointer { agents in
                for i in spans.indices {
                    switch spans[i].category {
                    case .llm: continue
                    case .tool: sums.tool(agent: i < agents.count ? agents[i] : "", error: spans[i].isError)
                    case .workflow, .other: sums.other(error: spans[i].isError)
                    }
                }
            }
        }
        return sums.takeRecords()
    }

    func addRecords(of entry: TraceIndexEntry, tree: [StoredSpan], sign: Int64) {
        for r in Self.runRecords(entry, tree: tree) {
            add(r.key, sign == 1 ? r.measures : r.measures.negated)
        }
    }

    // MARK: Rework

    /// The runs of a task: those listed in memory, and when some may not be listed,
    /// those the flushes the trace locator names for the task's key hold (read once, then
    /// kept for the next runs of the task while it stays among the recently read).
    func runs(ofTask task: String) -> [TaskRuns.Run] {
        guard !task.isEmpty else { return [] }
        var runs = tasks[task] ?? []
        guard tasks.mayHaveUnlistedRuns(task) else { return runs }
        let onDisk: [TaskRuns.Run]
        if let kept = tasks.runsReadFromDisk(task) {
            onDisk = kept
        } else {
            let candidates = locator.candidates(TraceLocator.taskKey(task))
            stats.taskDiskLookups += 1
            stats.taskSegmentsRead += Int64(candidates.count)
            onDisk = directory.taskRuns(task, candidates: candidates).map { TaskRuns.Run(traceID: $0.traceID, startUnixNano: $0.startUnixNano, outcome: $0.outcome) }
            tasks.keepRunsReadFromDisk(task, onDisk)
        }
        let listed = Set(runs.lazy.map(\.traceID))
        runs += onDisk.lazy.filter { !listed.contains($0.traceID) }
        return runs
    }

    /// A run is rework when another run of its task started before it and was rejected or
    /// edited. Only runs that started no later are looked at, and the outcome of one whose
    /// entry is not in memory is the one its list holds: deciding costs no disk read per
    /// run (each such run decoded an index segment before).
    func isRework(_ entry: TraceIndexEntry) -> Bool {
        let retainedFrom = wallNow() - configuration.traceRetentionNano
        return runs(ofTask: entry.taskID).contains { run in
            guard run.traceID != entry.traceID, run.startUnixNano <= entry.startUnixNano else { return false }
            let start: Int64, outcome: Outcome
            if let e = index[run.traceID] {
                (start, outcome) = (e.startUnixNano, e.outcome)
            } else if let o = run.outcome {
                (start, outcome) = (run.startUnixNano, o)
            } else if let e = runEntry(run.traceID) {
                (start, outcome) = (e.startUnixNano, e.outcome)
            } else {
                return false
            }
            return start >= retainedFrom && (start, run.traceID.hex) < (entry.startUnixNano, entry.traceID.hex)
                && (outcome == .rejected || outcome == .edited)
        }
    }

    func noteTask(_ entry: TraceIndexEntry) {
        guard !entry.taskID.isEmpty else { return }
        tasks.add(entry)
        reevaluateTask(of: entry)
    }

    /// After a run of a task is released or its outcome changes, the later runs of the
    /// task may become rework or stop being it: their records move accordingly.
    func reevaluateTask(of entry: TraceIndexEntry) {
        // Runs that started earlier are left as they are (their start never changes).
        for run in runs(ofTask: entry.taskID) where run.traceID != entry.traceID && run.startUnixNano >= entry.startUnixNano {
            let id = run.traceID
            guard var other = runEntry(id), other.startUnixNano >= entry.startUnixNano else { continue }
            let now = isRework(other)
            guard now != other.rework else { continue }
            let t = tree(of: id)
            addRecords(of: other, tree: t, sign: -1)
            other.rework = now
            addRecords(of: other, tree: t, sign: 1)
            index[id] = other
            stats.reworkChanges += 1
        }
    }
}

/// One rollup record of a run. A struct, not a (key, measures) tuple: read through a
/// buffer, a tuple's field was copied out with the whole tuple (through its type's
/// value witnesses, retaining every string of the key and the sketch's arrays), four
/// copies per record as a chunk summed them.
public struct RunRecord: Sendable {
    public var key: RollupKey
    public var measures: RollupMeasures
}

/// What a run adds to the rollups (../shared/DESIGN.md "Rollups"): one run-level record
/// (run measures, non-LLM errors, the whole run's rework cost); one record per model (run
/// measures plus that model's calls); one record per agent (the run count and latency,
/// that agent's calls and tool calls). Release, late spans, a change of verdict and a
/// change of rework all go through these sums, so a correction subtracts exactly what
/// was added.
struct RunRecordSums {
    // What the records need of the run's entry, not the entry: a copy of it retained
    // every string and list it holds.
    private let models: [String]
    private let agents: [String]
    private let toolCalls: Int64
    private let rework: Bool
    /// The records as they will be returned: the run-level one, one per model, one per
    /// agent, summed in place (per-model and per-agent arrays of measures beside them
    /// were two allocations and two generic-metadata lookups per run).
    private var out: [RunRecord] = []
    private var otherErrors: Int64 = 0
    private var llmCost: Int64 = 0

    init(_ entry: borrowing TraceIndexEntry) {
        let shared = RollupKey.Shared(bucketStartUnix: RollupKey.minuteStart(ofUnixNano: entry.startUnixNano), workflow: entry.workflow,
                                      outcome: entry.outcome, service: entry.service)
        models = entry.models
        agents = entry.agents
        toolCalls = entry.toolCalls
        rework = entry.rework
        var base = RollupMeasures()
        base.runs = 1
        base.incompleteRuns = entry.incomplete ? 1 : 0
        base.latency.add(milliseconds: Double(entry.durationNano) / 1_000_000)
        var modelBase = base
        modelBase.toolCalls = entry.toolCalls
        out.reserveCapacity(1 + models.count + agents.count)
        out.append(RunRecord(key: RollupKey(shared, model: "", runLevel: true, agent: nil), measures: base))
        for model in models { out.append(RunRecord(key: RollupKey(shared, model: model, runLevel: false, agent: nil), measures: modelBase)) }
        for agent in agents { out.append(RunRecord(key: RollupKey(shared, model: "", runLevel: false, agent: agent), measures: base)) }
    }

    mutating func call(model: String, agent: String, usage: TokenUsage, costMicros: Int64, priced: Bool, retry: Bool, error: Bool) {
        func add(to m: inout RollupMeasures) {
            m.llmCalls += 1
            m.inputTokens += usage.input
            m.cachedInputTokens += usage.cacheRead
            m.cacheWriteTokens += usage.cacheWrite
            m.outputTokens += usage.output
            m.reasoningTokens += usage.reasoning
            m.unpricedTokens += priced ? 0 : usage.total
            m.costMicros += costMicros
            m.retries += retry ? 1 : 0
            m.errors += error ? 1 : 0
        }
        llmCost += costMicros
        if let m = models.firstIndex(of: model) { add(to: &out[1 + m].measures) }
        if let a = agents.firstIndex(of: agent) { add(to: &out[1 + models.count + a].measures) }
    }

    mutating func tool(agent: String, error: Bool) {
        if error { otherErrors += 1 }
        if let a = agents.firstIndex(of: agent) { out[1 + models.count + a].measures.toolCalls += 1 }
    }

    mutating func other(error: Bool) {
        if error { otherErrors += 1 }
    }

    /// Taken out (the sums are left empty): a `consuming` copy of `out` shared its buffer
    /// with the sums still alive, and the first write copied all the records.
    mutating func takeRecords() -> [RunRecord] {
        var out: [RunRecord] = []
        swap(&out, &self.out)
        out.withUnsafeMutableBufferPointer { records in
            let run = records.baseAddress!
            run.pointee.measures.toolCalls = toolCalls
            run.pointee.measures.errors = otherErrors
            guard rework else { return }
            // Rework: every record counts the run once and its LLM cost; the run-level
            // record keeps only that cost (LLM measures live on the model records).
            run.pointee.measures.reworkRuns = 1
            run.pointee.measures.reworkCostMicros = llmCost
            for i in 1..<records.count {
                records[i].measures.reworkRuns = 1
                records[i].measures.reworkCostMicros = records[i].measures.costMicros
            }
        }
        return out
    }
}
