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
        let minute = RollupKey.minuteStart(ofUnixNano: entry.startUnixNano)
        func key(_ model: String, runLevel: Bool, agent: String? = nil) -> RollupKey {
            RollupKey(bucketStartUnix: minute, workflow: entry.workflow, model: model, outcome: entry.outcome, service: entry.service,
                      runLevel: runLevel, agent: agent)
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
        var out: [(key: RollupKey, measures: RollupMeasures)] = []
        var runLevel = base
        runLevel.toolCalls = entry.toolCalls
        runLevel.errors = Int64(tree.filter { $0.kind != .llm && $0.error }.count)
        runLevel.costMicros = tree.reduce(0) { $0 + ($1.kind == .llm ? $1.costMicros : 0) }
        rework(&runLevel)
        runLevel.costMicros = 0 // LLM measures live on model records; the run-level record keeps only the rework cost
        out.append((key("", runLevel: true), runLevel))
        for model in entry.models {
            var m = base
            m.toolCalls = entry.toolCalls
            for s in tree where s.kind == .llm && s.model == model { addCall(s, to: &m) }
            rework(&m)
            out.append((key(model, runLevel: false), m))
        }
        for agent in entry.agents {
            var a = base
            for s in tree where s.agent == agent {
                if s.kind == .llm { addCall(s, to: &a) } else if s.kind == .tool { a.toolCalls += 1 }
            }
            rework(&a)
            out.append((key("", runLevel: false, agent: agent), a))
        }
        return out
    }

    func addRecords(of entry: TraceIndexEntry, tree: [StoredSpan], sign: Int64) {
        for r in Self.runRecords(entry, tree: tree) {
            if sign == 1 {
                add(r.key, r.measures)
            } else {
                var m = RollupMeasures()
                m.merge(r.measures, sign: sign)
                add(r.key, m)
            }
        }
    }

    // MARK: Rework

    /// A run is rework when another run of its task started before it and was rejected or edited.
    func isRework(_ entry: TraceIndexEntry) -> Bool {
        guard !entry.taskID.isEmpty, let runs = tasks[entry.taskID] else { return false }
        return runs.contains { id in
            guard id != entry.traceID, let other = index[id] else { return false }
            return (other.startUnixNano, other.traceID.hex) < (entry.startUnixNano, entry.traceID.hex)
                && (other.outcome == .rejected || other.outcome == .edited)
        }
    }

    func noteTask(_ entry: TraceIndexEntry) {
        guard !entry.taskID.isEmpty else { return }
        if tasks[entry.taskID]?.contains(entry.traceID) != true { tasks[entry.taskID, default: []].append(entry.traceID) }
        reevaluateTask(of: entry)
    }

    /// After a run of a task is released or its outcome changes, the later runs of the
    /// task may become rework or stop being it: their records move accordingly.
    func reevaluateTask(of entry: TraceIndexEntry) {
        guard !entry.taskID.isEmpty, let runs = tasks[entry.taskID] else { return }
        for id in runs where id != entry.traceID {
            guard var other = index[id], other.startUnixNano >= entry.startUnixNano else { continue }
            let now = isRework(other)
            guard now != other.rework else { continue }
            let t = tree(of: id)
            addRecords(of: other, tree: t, sign: -1)
            other.rework = now
            addRecords(of: other, tree: t, sign: 1)
            index[id] = other
            unflushedIndex[id] = other
            stats.reworkChanges += 1
        }
    }
}
