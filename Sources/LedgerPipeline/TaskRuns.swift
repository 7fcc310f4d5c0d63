import LedgerCore
import LedgerStore

/// The runs of each task ID (conventions.md "Rework"), with their start times: a run is
/// rework when an earlier run of its task was rejected or edited.
///
/// Memory holds the task lists of the runs whose index entries are in memory (the newest
/// `maxIndexedRuns`), so it is bounded by that count, not by trace retention: listing
/// every task-tagged run of 30 days took about 170 bytes a run with unique conversation
/// IDs (450 MB at one run a second). A run leaving memory leaves its task's list; its task
/// key goes into `evicted`, a filter of a few bits a run, and the trace locator finds the
/// flushes holding the task's runs (`TraceLocator.taskKey`). Lists read back from disk
/// are kept for a few recently asked tasks (`diskRuns`).
struct TaskRuns: Sendable {
    struct Run: Sendable, Equatable {
        var traceID: TraceID
        var startUnixNano: Int64
        /// The outcome disk holds for a run not in memory (nil for runs listed in memory:
        /// the index has theirs). A change of outcome brings the entry back into memory,
        /// and its leaving memory again brings the new one here.
        var outcome: Outcome? = nil
    }

    private var byTask: [String: [Run]] = [:]
    /// Runs listed in memory, over all tasks.
    private(set) var runCount = 0
    var taskCount: Int { byTask.count }
    /// Task keys of runs that left memory: "no" means every run of the task is in `byTask`.
    private(set) var evicted = ExpiringKeyFilter()
    /// Runs of tasks read from disk (whole lists: runs leaving memory later join them).
    private var diskRuns: [String: [Run]] = [:]
    let diskRunsCapacity: Int

    init(diskRunsCapacity: Int = 1024) {
        self.diskRunsCapacity = diskRunsCapacity
    }

    /// The runs of a task held in memory.
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

    /// A run of the task with this key is on disk and was never in memory (at start).
    mutating func onDiskOnly(key: TraceID, startUnixNano: Int64) {
        evicted.insert(key, startUnixNano: startUnixNano)
    }

    /// Whether some run of the task may have left memory (false: certainly none did).
    func mayHaveLeftMemory(_ task: String) -> Bool {
        !task.isEmpty && evicted.mayContain(TraceLocator.taskKey(task))
    }

    /// The task's runs read from disk earlier, if still kept.
    func runsReadFromDisk(_ task: String) -> [Run]? { diskRuns[task] }

    /// Keeps what disk holds of a task's runs for the next runs of the task.
    mutating func keepRunsReadFromDisk(_ task: String, _ runs: [Run]) {
        if diskRuns.count >= diskRunsCapacity, diskRuns[task] == nil { diskRuns.removeAll(keepingCapacity: true) }
        diskRuns[task] = runs
    }

    /// Runs whose index entries left memory (on disk since their flush, with the outcome
    /// they had) leave their tasks' lists; a task list read from disk that is kept takes them.
    mutating func leftMemory(_ runs: [(task: String, run: Run)]) {
        guard !runs.isEmpty else { return }
        var byLeavingTask: [String: Set<TraceID>] = [:]
        for (task, run) in runs {
            evicted.insert(TraceLocator.taskKey(task), startUnixNano: run.startUnixNano)
            byLeavingTask[task, default: []].insert(run.traceID)
            if var kept = diskRuns[task] {
                if let at = kept.firstIndex(where: { $0.traceID == run.traceID }) { kept[at] = run } else { kept.append(run) }
                diskRuns[task] = kept
            }
        }
        for (task, ids) in byLeavingTask {
            guard let listed = byTask[task] else { continue }
            let remaining = listed.filter { !ids.contains($0.traceID) }
            runCount -= listed.count - remaining.count
            byTask[task] = remaining.isEmpty ? nil : remaining
        }
    }

    /// Forgets the runs that started before `cutoff`, and the tasks left without runs.
    /// Returns how many runs went from memory.
    mutating func prune(startedBefore cutoff: Int64) -> Int {
        var removed = 0
        for key in Array(byTask.keys) {
            guard let runs = byTask[key], runs.contains(where: { $0.startUnixNano < cutoff }) else { continue }
            let kept = runs.filter { $0.startUnixNano >= cutoff }
            removed += runs.count - kept.count
            byTask[key] = kept.isEmpty ? nil : kept
        }
        runCount -= removed
        diskRuns.removeAll()
        evicted.expire(startedBefore: cutoff)
        return removed
    }

    /// Bytes of the filter of tasks with runs on disk.
    var evictedFilterBytes: Int { evicted.byteCount }
}

/// A Bloom filter of keys that forgets them by age: keys go into generations of up to
/// `generationCapacity` keys, and a generation goes once every key in it was added for a
/// run that started before the cutoff (20 bits a key: about 1 false "maybe" in 15,000 per
/// full generation).
struct ExpiringKeyFilter: Sendable {
    struct Generation: Sendable {
        var filter: TraceIDFilter
        var newestStartUnixNano = Int64.min
    }

    private(set) var generations: [Generation] = []
    let generationCapacity: Int

    init(generationCapacity: Int = 262_144) {
        self.generationCapacity = max(1, generationCapacity)
    }

    mutating func insert(_ key: TraceID, startUnixNano: Int64) {
        if generations.isEmpty || generations[generations.count - 1].filter.count >= generationCapacity {
            generations.append(Generation(filter: TraceIDFilter(capacity: generationCapacity, bitsPerID: 20)))
        }
        let g = generations.count - 1
        generations[g].filter.insert(key)
        generations[g].newestStartUnixNano = max(generations[g].newestStartUnixNano, startUnixNano)
    }

    func mayContain(_ key: TraceID) -> Bool {
        generations.contains { $0.filter.mayContain(key) }
    }

    mutating func expire(startedBefore cutoff: Int64) {
        generations.removeAll { $0.newestStartUnixNano < cutoff }
    }

    var count: Int { generations.reduce(0) { $0 + $1.filter.count } }
    var byteCount: Int { generations.reduce(0) { $0 + $1.filter.byteCount } }
}
