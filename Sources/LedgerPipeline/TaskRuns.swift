import LedgerCore
import LedgerStore

/// The runs of each task ID (conventions.md "Rework"), with their start times: a run is
/// rework when an earlier run of its task was rejected or edited. Only runs within trace
/// retention count (older ones have no index entry), so `prune` drops the rest; before it
/// existed the map grew by every task-tagged run for as long as the daemon ran.
struct TaskRuns: Sendable {
    struct Run: Sendable, Equatable {
        var traceID: TraceID
        var startUnixNano: Int64
    }

    private var byTask: [String: [Run]] = [:]
    /// Runs listed, over all tasks.
    private(set) var runCount = 0
    var taskCount: Int { byTask.count }

    subscript(task: String) -> [Run]? { byTask[task] }

    /// Lists the run under its task, once (a run without a task ID is not listed).
    mutating func add(_ entry: TraceIndexEntry) {
        add(taskID: entry.taskID, traceID: entry.traceID, startUnixNano: entry.startUnixNano)
    }

    mutating func add(taskID: String, traceID: TraceID, startUnixNano: Int64) {
        guard !taskID.isEmpty, byTask[taskID]?.contains(where: { $0.traceID == traceID }) != true else { return }
        byTask[taskID, default: []].append(Run(traceID: traceID, startUnixNano: startUnixNano))
        runCount += 1
    }

    /// Forgets the runs that started before `cutoff`, and the tasks left without runs.
    /// Returns how many runs went.
    mutating func prune(startedBefore cutoff: Int64) -> Int {
        var removed = 0
        for key in Array(byTask.keys) {
            guard let runs = byTask[key], runs.contains(where: { $0.startUnixNano < cutoff }) else { continue }
            let kept = runs.filter { $0.startUnixNano >= cutoff }
            removed += runs.count - kept.count
            byTask[key] = kept.isEmpty ? nil : kept
        }
        runCount -= removed
        return removed
    }
}
