import Attribution
import LedgerCore

/// What one released run (or a group of late spans joining one) spent, as the alert
/// engine sees it: keyed by release time, not by the run's start minute, so a token rate
/// is known as soon as the runs are released.
public struct RunActivity: Sendable, Equatable {
    public struct ModelUse: Sendable, Equatable {
        public var model: String
        public var calls: Int64
        public var retries: Int64
        public var tokens: Int64
        public var unpricedTokens: Int64
        public var unpricedCalls: Int64
        public var costMicros: Int64
        /// Tokens by type (input excludes nothing: it is the call's whole prompt).
        public var inputTokens: Int64 = 0
        public var cachedInputTokens: Int64 = 0
        public var cacheWriteTokens: Int64 = 0
        public var outputTokens: Int64 = 0
        public var reasoningTokens: Int64 = 0

        public init(model: String, calls: Int64 = 0, retries: Int64 = 0, tokens: Int64 = 0, unpricedTokens: Int64 = 0,
                    unpricedCalls: Int64 = 0, costMicros: Int64 = 0) {
            self.model = model
            self.calls = calls
            self.retries = retries
            self.tokens = tokens
            self.unpricedTokens = unpricedTokens
            self.unpricedCalls = unpricedCalls
            self.costMicros = costMicros
        }

        /// Adds another use's figures (of the same model) to these.
        public mutating func add(_ o: ModelUse) {
            calls += o.calls
            retries += o.retries
            tokens += o.tokens
            unpricedTokens += o.unpricedTokens
            unpricedCalls += o.unpricedCalls
            costMicros += o.costMicros
            inputTokens += o.inputTokens
            cachedInputTokens += o.cachedInputTokens
            cacheWriteTokens += o.cacheWriteTokens
            outputTokens += o.outputTokens
            reasoningTokens += o.reasoningTokens
        }
    }

    public var workflow: String
    public var service: String
    public var releasedUnixNano: Int64
    /// 1 for a released run, 0 for late spans joining a run already counted.
    public var runs: Int64
    public var models: [ModelUse]
    /// The run's outcome when this was observed (later verdicts are not replayed here).
    public var outcome: Outcome = .pending
    public var rework = false

    public init(workflow: String, service: String, releasedUnixNano: Int64, runs: Int64, models: [ModelUse]) {
        self.workflow = workflow
        self.service = service
        self.releasedUnixNano = releasedUnixNano
        self.runs = runs
        self.models = models
    }

    /// Summarises the priced calls of `run` per model (late spans joining a run; released
    /// runs reach observers summed per chunk, `ActivitySums`).
    public init(run: AttributedRun, runs: Int64, releasedUnixNano: Int64) {
        self.init(workflow: run.workflow, service: run.service, releasedUnixNano: releasedUnixNano, runs: runs, models: [])
        outcome = run.outcome
        addCalls(of: run, sign: 1)
    }

    /// Adds (sign 1) or takes out (sign −1) the priced calls of `run`, per model.
    mutating func addCalls(of run: borrowing AttributedRun, sign: Int64) {
        // The calls in place: iterating the array copied each call, retaining its strings.
        run.calls.withUnsafeBufferPointer { calls in
            for n in calls.indices {
                let i: Int
                if let found = models.firstIndex(where: { $0.model == calls[n].model }) { i = found } else {
                    models.append(ModelUse(model: calls[n].model))
                    i = models.count - 1
                }
                let usage = calls[n].usage
                models[i].calls += sign
                models[i].retries += calls[n].isRetry ? sign : 0
                models[i].tokens += usage.total * sign
                models[i].unpricedTokens += calls[n].unpricedTokens * sign
                models[i].unpricedCalls += calls[n].priced ? 0 : sign
                models[i].costMicros += calls[n].costMicros * sign
                models[i].inputTokens += usage.input * sign
                models[i].cachedInputTokens += usage.cacheRead * sign
                models[i].cacheWriteTokens += usage.cacheWrite * sign
                models[i].outputTokens += usage.output * sign
                models[i].reasoningTokens += usage.reasoning * sign
            }
        }
    }
}

/// A release chunk's activity, summed per workflow, service, outcome and rework: what
/// observers hear of a chunk is a few sums, not one activity per run. Every observer
/// only adds activities up by those labels and the release second, and a chunk is
/// committed in one actor turn, so the sums tell them the same. (Per run, each activity
/// was copied into two observers' queues and walked by both: about 3% of the daemon.)
struct ActivitySums: Sendable {
    private struct Key: Hashable {
        var workflow: String
        var service: String
        var outcome: Outcome
        var rework: Bool
    }

    private var slots: [Key: Int] = [:]
    private var sums: [RunActivity] = []

    /// Adds (sign 1) or takes out (sign −1) one released run, with the outcome and
    /// rework it is counted under.
    mutating func add(_ run: borrowing AttributedRun, outcome: Outcome, rework: Bool, sign: Int64 = 1) {
        let key = Key(workflow: run.workflow, service: run.service, outcome: outcome, rework: rework)
        let i: Int
        if let found = slots[key] { i = found } else {
            var a = RunActivity(workflow: run.workflow, service: run.service, releasedUnixNano: 0, runs: 0, models: [])
            (a.outcome, a.rework) = (outcome, rework)
            sums.append(a)
            i = sums.count - 1
            slots[key] = i
        }
        sums[i].runs += sign
        sums[i].addCalls(of: run, sign: sign)
    }

    /// The sums released at `releasedUnixNano`, without those a correction emptied.
    func activities(releasedUnixNano: Int64) -> [RunActivity] {
        var out: [RunActivity] = []
        out.reserveCapacity(sums.count)
        for var a in sums {
            a.models.removeAll { $0 == RunActivity.ModelUse(model: $0.model) }
            guard a.runs != 0 || !a.models.isEmpty else { continue }
            a.releasedUnixNano = releasedUnixNano
            out.append(a)
        }
        return out
    }
}

/// Receives every run the ledger releases, on the ledger's executor: implementations
/// must only record (a lock and an append), never wait.
public protocol RunActivityObserver: Sendable {
    func observe(_ activity: RunActivity)
    /// A committed chunk's runs at once (one lock for a chunk rather than one per run).
    func observe(contentsOf activities: [RunActivity])
}

extension RunActivityObserver {
    public func observe(contentsOf activities: [RunActivity]) {
        for a in activities { observe(a) }
    }
}

/// Hands each activity to several observers (alerts, Prometheus counters).
public struct FanOutObserver: RunActivityObserver {
    let observers: [any RunActivityObserver]

    public init(_ observers: [any RunActivityObserver]) {
        self.observers = observers
    }

    public func observe(_ activity: RunActivity) {
        for o in observers { o.observe(activity) }
    }

    public func observe(contentsOf activities: [RunActivity]) {
        for o in observers { o.observe(contentsOf: activities) }
    }
}
