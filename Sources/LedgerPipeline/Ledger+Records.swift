import LedgerCore
import LedgerStore
import Rollups

/// The rollup records one run contributes, rebuilt from its index entry and stored tree,
/// and rework across the runs of a task (Schemas/conventions.md "Rework").
extension Ledger {
    /// What a run adds to the rollups (../shared/DESIGN.md "Rollups"): one run-level
    /// record (run measures, non-LLM errors, the whole run's rework cost); one record per
    /// model (run measures plus that model's calls); one record per agent (the run count
    /// and latency, that agent's calls and tool calls). Release, late spans, a change of
    /// verdict and a change of rework all go through this one function, so a correction
    /// subtracts exactly what was added.
    static func runRecords(_ entry: TraceIndexEntry, tree: [StoredSpan]) -> [(key: RollupKey, measures: RollupMeasures)] {
        let shared = RollupKey.Shared(bucketStartUnix: RollupKey.minuteStart(ofUnixNano: entry.startUnixNano), workflow: entry.workflow,
                                      outcome: entry.outcome, service: entry.service)
        func key(_ model: String, runLevel: Bool, agent: String? = nil) -> RollupKey {
            RollupKey(shared, model: model, runLevel: runLevel, agent: agent)
        }
        var base = RollupMeasures()
        base.runs = 1
        base.incompleteRuns = entry.incomplete ? 1 : 0
        base.latency.add(milliseconds: Double(entry.durationNano) / 1_000_000)
        func rework(_ m: inout RollupMeasures) {
            guard entry.rework else { return }
            m.reworkRuns = 1
            m.reworkCostMicros = m.costMicros
        }
        func addCall(_ s: StoredSpan, to m: inout RollupMeasures) {
            m.llmCalls += 1
            m.inputTokens += s.usage.input
            m.cachedInputTokens += s.usage.cacheRead
            m.cacheWriteTokens += s.usage.cacheWrite
            m.outputTokens += s.usage.output
            m.reasoningTokens += s.usage.reasoning
            m.unpricedTokens += s.priced ? 0 : s.usage.total
            m.costMicros += s.costMicros
            m.retries += s.retry ? 1 : 0
            m.errors += s.error ? 1 : 0
        }
        // One pass over the tree, reading spans in place (a copy of a span retains its strings).
        let models = entry.models, agents = entry.agents
        var perModel = models.map { _ in var m = base; m.toolCalls = entry.toolCalls; return m }
        var perAgent = agents.map { _ in base }
        var otherErrors: Int64 = 0
        var llmCost: Int64 = 0
        tree.withUnsafeBufferPointer { spans in
            for i in spans.indices {
                switch spans[i].kind {
                case .llm:
                    llmCost += spans[i].costMicros
                    if let m = models.firstIndex(of: spans[i].model) { addCall(spans[i], to: &perModel[m]) }
                    if let a = agents.firstIndex(of: spans[i].agent) { addCall(spans[i], to: &perAgent[a]) }
                case .tool:
                    if spans[i].error { otherErrors += 1 }
                    if let a = agents.firstIndex(of: spans[i].agent) { perAgent[a].toolCalls += 1 }
                default:
                    if spans[i].error { otherErrors += 1 }
                }
            }
        }
        var out: [(key: RollupKey, measures: RollupMeasures)] = []
        out.reserveCapacity(1 + models.count + agents.count)
        var runLevel = base
        runLevel.toolCalls = entry.toolCalls
        runLevel.errors = otherErrors
        runLevel.costMicros = llmCost
        rework(&runLevel)
        runLevel.costMicros = 0 // LLM measures live on model records; the run-level record keeps only the rework cost
        out.append((key("", runLevel: true), runLevel))
        for (i, model) in models.enumerated() {
            rework(&perModel[i])
            out.append((key(model, runLevel: false), perModel[i]))
        }
        for (i, agent) in agents.enumerated() {
            rework(&perAgent[i])
            out.append((key("", runLevel: false, agent: agent), perAgent[i]))
        }
        return out
    }

    func addRecords(of entry: TraceIndexEntry, tree: [StoredSpan], sign: Int64) {
        for r in Self.runRecords(entry, tree: tree) {
            add(r.key, sign == 1 ? r.measures : r.measures.negated)
        }
    }

    // MARK: Rework

    /// A run is rework when another run of its task started before it and was rejected or edited.
    func isRework(_ entry: TraceIndexEntry) -> Bool {
        guard !entry.taskID.isEmpty, let runs = tasks[entry.taskID] else { return false }
        return runs.contains { run in
            guard run.traceID != entry.traceID, let other = runEntry(run.traceID) else { return false }
            return (other.startUnixNano, other.traceID.hex) < (entry.startUnixNano, entry.traceID.hex)
                && (other.outcome == .rejected || other.outcome == .edited)
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
        guard !entry.taskID.isEmpty, let runs = tasks[entry.taskID] else { return }
        for run in runs where run.traceID != entry.traceID {
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
