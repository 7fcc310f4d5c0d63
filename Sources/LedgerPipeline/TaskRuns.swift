import LedgerCore
import LedgerStore

/// The runs of each task ID (conventions.md "Rework"), with their start times: a run is
/// rework when an earlier run of its task was rejected or edited.
///
/// Memory lists up to `maxRuns` task-tagged runs. While a run's index entry is in memory
/// the index has its outcome; when the entry leaves memory, its list keeps the outcome it
/// left with (a later change of outcome brings the entry back first), so deciding rework
/// reads nothing from disk. Past `maxRuns`, the runs that started first and whose entries
/// left memory are dropped from their lists and their task keys go into `unlisted`, a
/// filter of a few bits a run: a task it may hold reads its runs from the index segments
/// the trace locator names for the task's key (`TraceLocator.taskKey`), and keeps the
/// list read for the next runs of the task while it stays among the 1,024 last read.
/// (Before, every task-tagged run of the whole trace retention stayed listed: about 170
/// bytes a run with one conversation ID a run, 450 MB at a run a second for 30 days; and
/// each earlier run whose entry had left memory decoded an index segment for every new
/// run of its task.)
struct TaskRuns: Sendable {
    struct Run: Sendable, Equatable {
        var traceID: TraceID
        var startUnixNano: Int64
        /// The outcome the run's index entry left memory with, or read from disk; nil
        /// while the entry is in memory (the index has it).
        var outcome: Outcome? = nil
    }

    private var byTask: [String: [Run]] = [:]
    /// Runs listed, over all tasks.
    private(set) var runCount = 0
    var taskCount: Int { byTask.count }
    let maxRuns: Int
    /// Task keys of runs not listed (dropped past `maxRuns`).
    private(set) var unlisted = ExpiringKeyFilter()
    /// Runs dropped past `maxRuns`.
    private(set) var droppedRuns: Int64 = 0
    /// Runs of tasks read from disk (whole lists: runs leaving memory later join them).
    private var diskRuns: [String: [Run]] = [:]
    let diskRunsCapacity: Int

    init(maxRuns: Int = 250_000, diskRunsCapacity: Int = 1024) {
        self.maxRuns = max(1, maxRuns)
        self.diskRunsCapacity = diskRunsCapacity
    }

    /// The runs of a task listed in memory.
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

    /// Lists a run read from an index summary at start, with its outcome (a later
    /// summary of the same run replaces it). Past half again `maxRuns` the earliest go.
    mutating func listFromDisk(_ s: TraceIndexSummary) {
        let run = Run(traceID: s.traceID, startUnixNano: s.startUnixNano, outcome: s.outcome)
        if let at = byTask[s.taskID]?.firstIndex(where: { $0.traceID == s.traceID }) {
            byTask[s.taskID]![at] = run
        } else {
            byTask[s.taskID, default: []].append(run)
            runCount += 1
        }
        if runCount > maxRuns + maxRuns / 2 { dropOldest(keeping: maxRuns) }
    }

    /// Cuts the lists back to `maxRuns` if they passed it.
    mutating func cutToLimit() {
        if runCount > maxRuns { dropOldest(keeping: maxRuns) }
    }

    /// Whether some run of the task may be missing from its list (false: certainly none is).
    func mayHaveUnlistedRuns(_ task: String) -> Bool {
        !task.isEmpty && unlisted.mayContain(TraceLocator.taskKey(task))
    }

    /// The task's runs read from disk earlier, if still kept.
    func runsReadFromDisk(_ task: String) -> [Run]? { diskRuns[task] }

    /// Keeps what disk holds of a task's runs for the next runs of the task.
    mutating func keepRunsReadFromDisk(_ task: String, _ runs: [Run]) {
        if diskRuns.count >= diskRunsCapacity, diskRuns[task] == nil { diskRuns.removeAll(keepingCapacity: true) }
        diskRuns[task] = runs
    }

    /// Runs whose index entries left memory, with the outcome they had: their lists keep
    /// it (a run not listed goes into `unlisted`), as does a task list read from disk
    /// that is kept. Then the lists are cut back to `maxRuns` if they passed it.
    mutating func leftMemory(_ runs: [(task: String, run: Run)]) {
        guard !runs.isEmpty else { return }
        var byLeavingTask: [String: [TraceID: Run]] = [:]
        for (task, run) in runs {
            byLeavingTask[task, default: [:]][run.traceID] = run
            if var kept = diskRuns[task] {
                if let at = kept.firstIndex(where: { $0.traceID == run.traceID }) { kept[at] = run } else { kept.append(run) }
                diskRuns[task] = kept
            }
        }
        for (task, leaving) in byLeavingTask {
            var found = 0
            if var listed = byTask[task] {
                for i in listed.indices {
                    if let run = leaving[listed[i].traceID] {
                        listed[i].outcome = run.outcome
                        found += 1
                    }
                }
                byTask[task] = listed
            }
            if found < leaving.count {
                let key = TraceLocator.taskKey(task)
                for run in leaving.values { unlisted.insert(key, startUnixNano: run.startUnixNano) }
            }
        }
        if runCount > maxRuns { dropOldest(keeping: maxRuns - maxRuns / 10) }
    }

    /// Drops the runs that started first among those whose entries left memory, until
    /// `keeping` runs are listed (or only runs in memory are left); their task keys go
    /// into `unlisted`.
    mutating func dropOldest(keeping: Int) {
        var starts: [Int64] = []
        starts.reserveCapacity(runCount)
        for runs in byTask.values { for r in runs where r.outcome != nil { starts.append(r.startUnixNano) } }
        let excess = runCount - keeping
        guard excess > 0, !starts.isEmpty else { return }
        starts.sort()
        let cutoff = starts[min(excess, starts.count) - 1]
        var dropped: [(task: String, start: Int64)] = []
        removeRuns(where: { $0.outcome != nil && $0.startUnixNano <= cutoff }) { dropped.append(($0, $1.startUnixNano)) }
        for d in dropped { unlisted.insert(TraceLocator.taskKey(d.task), startUnixNano: d.start) }
        droppedRuns += Int64(dropped.count)
    }

    /// Forgets the runs that started before `cutoff`, and the tasks left without runs.
    /// Returns how many runs went from the lists.
    mutating func prune(startedBefore cutoff: Int64) -> Int {
        let removed = removeRuns(where: { $0.startUnixNano < cutoff })
        diskRuns.removeAll()
        unlisted.expire(startedBefore: cutoff)
        return removed
    }

    /// Removes the runs `drop` holds for from their lists (telling `removing` of each),
    /// and the tasks left without runs; returns how many went. Lists without such a run
    /// are left untouched.
    @discardableResult
    private mutating func removeRuns(where drop: (Run) -> Bool, removing: (String, Run) -> Void = { _, _ in }) -> Int {
        var removed = 0
        for task in Array(byTask.keys) {
            guard let runs = byTask[task], runs.contains(where: drop) else { continue }
            var kept: [Run] = []
            for r in runs {
                if drop(r) { removing(task, r) } else { kept.append(r) }
            }
            removed += runs.count - kept.count
            byTask[task] = kept.isEmpty ? nil : kept
        }
        runCount -= removed
        return removed
    }

    /// Bytes of the filter of tasks with runs not listed.
    var unlistedFilterBytes: Int { unlisted.byteCount }
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

    var byteCount: Int { generations.reduce(0) { $0 + $1.filter.byteCount } }
}
