import CoreMetrics
import LedgerCore
import LedgerPipeline
import Prometheus
import Synchronization

/// Ledger counters for Prometheus (`/metrics` on the API listener), kept with
/// swift-prometheus: runs, cost, tokens, LLM calls, retries and rework by workflow, model
/// and outcome, counted when runs are released (the outcome they had then; the query API
/// is the authority for verdicts that come later). At most `maxLabelSets` label sets per
/// metric: past that, series fold into one labelled `__overflow__` on every label, and
/// `spanledger_ledger_series_overflowed` counts the label sets folded.
public final class LedgerPrometheus: RunActivityObserver {
    public static let overflow = "__overflow__"

    public let registry: PrometheusCollectorRegistry
    let maxLabelSets: Int

    struct State {
        var counters: [String: Prometheus.Counter] = [:]
        var labelSets: [String: Set<[String]>] = [:]
        var overflowed: Set<String> = []
        /// Each label set's counters once resolved through `counter` (folded or not, which
        /// does not change): applying a batch then finds a model's eight counters with one
        /// lookup instead of building, hashing and looking up a key for each.
        var byModel: [ModelKey: ModelCounters] = [:]
        var byWorkflow: [WorkflowKey: Prometheus.Counter] = [:]
        var reworkByWorkflow: [String: Prometheus.Counter] = [:]
    }

    struct ModelCounters {
        var runs, cost, calls, retries: Prometheus.Counter?
        var tokens = [Prometheus.Counter?](repeating: nil, count: tokenTypes.count)
    }

    static let tokenTypes = ["input", "cached_input", "cache_write", "output", "reasoning"]

    private let state = Mutex(State())
    private let overflowGauge: Prometheus.Gauge
    /// Activities not yet applied to the counters: the ledger only appends (its hot path),
    /// the scrape applies them; past `maxPending` the appending call applies the batch.
    /// 10,000 runs are about 3 MB held between scrapes (100,000 held 30 MB under full
    /// ingest); a batch is summed per label set, so applying more often costs no more.
    private let pending = Mutex<[RunActivity]>([])
    static let maxPending = 10_000

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry(), maxLabelSets: Int = 2_000) {
        self.registry = registry
        self.maxLabelSets = maxLabelSets
        overflowGauge = registry.makeGauge(descriptor: MetricNameDescriptor(
            metricName: "spanledger_ledger_series_overflowed", unitName: "",
            helpText: "Ledger label sets folded into the __overflow__ series (cardinality cap reached)."))
    }

    /// Makes swift-metrics (the metrics API libraries use) report into the same registry.
    public func bootstrapSwiftMetrics() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets["spanledger_wal_fsync_seconds"] =
            [.microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
             .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1)]
        MetricsSystem.bootstrap(factory)
    }

    static let help: [String: String] = [
        "spanledger_ledger_runs_total": "Runs released, by workflow, model (a run counts under each model it called) and the outcome they had at release.",
        "spanledger_ledger_workflow_runs_total": "Runs released, once each, by workflow and the outcome they had at release (for cost per accepted outcome).",
        "spanledger_ledger_cost_usd_total": "LLM cost in USD, by workflow, model and outcome at release.",
        "spanledger_ledger_tokens_total": "Tokens by workflow, model and type (input, cached_input, cache_write, output, reasoning).",
        "spanledger_ledger_llm_calls_total": "LLM calls by workflow and model.",
        "spanledger_ledger_retries_total": "LLM calls that were retries, by workflow and model.",
        "spanledger_ledger_rework_runs_total": "Runs that were rework when released, by workflow.",
    ]

    /// The counter for `name` with `labels` (names then values), folding past the cap.
    private func counter(_ s: inout State, _ name: String, _ labelNames: [String], _ values: [String]) -> Prometheus.Counter {
        var values = values
        if s.labelSets[name]?.contains(values) != true {
            if s.labelSets[name, default: []].count >= maxLabelSets {
                let key = name + "\u{1f}" + values.joined(separator: "\u{1f}")
                if s.overflowed.insert(key).inserted { overflowGauge.set(Double(s.overflowed.count)) }
                values = Array(repeating: Self.overflow, count: values.count)
            } else {
                s.labelSets[name, default: []].insert(values)
            }
        }
        let key = name + "\u{1e}" + values.joined(separator: "\u{1f}")
        if let c = s.counters[key] { return c }
        let c = registry.makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: Self.help[name] ?? name),
                                     labels: Array(zip(labelNames, values)))
        s.counters[key] = c
        return c
    }

    public func observe(_ a: RunActivity) {
        observe(contentsOf: [a])
    }

    public func observe(contentsOf activities: [RunActivity]) {
        let batch: [RunActivity]? = pending.withLock { p in
            p.append(contentsOf: activities)
            guard p.count >= Self.maxPending else { return nil }
            defer { p.removeAll(keepingCapacity: true) }
            return p
        }
        // Applied off the caller (the ledger's executor): ingest never waits for it.
        if let batch { Task.detached { [self] in self.apply(batch) } }
    }

    /// Applies what the ledger reported since the last scrape.
    func applyPending() {
        let batch = pending.withLock { p in
            defer { p.removeAll(keepingCapacity: true) }
            return p
        }
        apply(batch)
    }

    /// Sums of a batch per label set, so each counter is looked up once per scrape
    /// rather than once per run (a scrape after 100,000 runs touches a few hundred).
    struct ModelKey: Hashable {
        var workflow: String
        var model: String
        var outcome: Outcome
    }

    struct ModelSums {
        var runs: Int64 = 0
        var use = RunActivity.ModelUse(model: "")
    }

    struct WorkflowKey: Hashable {
        var workflow: String
        var outcome: Outcome
    }

    /// A batch's sums for one (workflow, outcome): its runs, rework runs and, per model,
    /// the model's sums. A workflow calls a few models: they are found by comparing names
    /// (the same string storage, mostly), so a run costs one hash, not one per model.
    struct WorkflowSums {
        var runs: Int64 = 0
        var rework: Int64 = 0
        var models: [(model: String, sums: ModelSums)] = []

        mutating func model(_ name: String) -> Int {
            if let i = models.firstIndex(where: { $0.model == name }) { return i }
            models.append((name, ModelSums(use: RunActivity.ModelUse(model: name))))
            return models.count - 1
        }

        mutating func add(_ a: RunActivity) {
            if a.runs > 0 {
                runs += a.runs
                if a.rework { rework += a.runs }
            }
            if a.models.isEmpty {
                if a.runs > 0 { models[model("")].sums.runs += a.runs }
                return
            }
            for m in a.models {
                let i = model(m.model)
                models[i].sums.runs += a.runs
                models[i].sums.use.add(m)
            }
        }
    }

    func apply(_ batch: [RunActivity]) {
        guard !batch.isEmpty else { return }
        var byWorkflow: [WorkflowKey: WorkflowSums] = [:]
        for a in batch { byWorkflow[WorkflowKey(workflow: a.workflow, outcome: a.outcome), default: WorkflowSums()].add(a) }
        state.withLock { s in
            for (k, w) in byWorkflow {
                if w.runs > 0 {
                    let c = s.byWorkflow[k] ?? counter(&s, "spanledger_ledger_workflow_runs_total", ["workflow", "outcome"], [k.workflow, k.outcome.name])
                    s.byWorkflow[k] = c
                    c.increment(by: w.runs)
                }
                if w.rework > 0 {
                    let c = s.reworkByWorkflow[k.workflow] ?? counter(&s, "spanledger_ledger_rework_runs_total", ["workflow"], [k.workflow])
                    s.reworkByWorkflow[k.workflow] = c
                    c.increment(by: w.rework)
                }
                for (model, sums) in w.models {
                    let key = ModelKey(workflow: k.workflow, model: model, outcome: k.outcome)
                    var counters = s.byModel.removeValue(forKey: key) ?? ModelCounters()
                    apply(key, sums, &counters, &s)
                    s.byModel[key] = counters
                }
            }
        }
    }

    /// `slot`'s counter, resolved through `counter` the first time.
    private func resolve(_ slot: inout Prometheus.Counter?, _ s: inout State, _ name: String, _ labelNames: [String],
                         _ values: @autoclosure () -> [String]) -> Prometheus.Counter {
        if let c = slot { return c }
        let c = counter(&s, name, labelNames, values())
        slot = c
        return c
    }

    private func apply(_ k: ModelKey, _ sums: ModelSums, _ c: inout ModelCounters, _ s: inout State) {
        if sums.runs > 0 {
            resolve(&c.runs, &s, "spanledger_ledger_runs_total", ["workflow", "model", "outcome"], [k.workflow, k.model, k.outcome.name])
                .increment(by: sums.runs)
        }
        let m = sums.use
        guard m.calls > 0 else { return }
        resolve(&c.cost, &s, "spanledger_ledger_cost_usd_total", ["workflow", "model", "outcome"], [k.workflow, k.model, k.outcome.name])
            .increment(by: Double(m.costMicros) / 1_000_000)
        resolve(&c.calls, &s, "spanledger_ledger_llm_calls_total", ["workflow", "model"], [k.workflow, k.model]).increment(by: m.calls)
        if m.retries > 0 {
            resolve(&c.retries, &s, "spanledger_ledger_retries_total", ["workflow", "model"], [k.workflow, k.model]).increment(by: m.retries)
        }
        let counts = [m.inputTokens, m.cachedInputTokens, m.cacheWriteTokens, m.outputTokens, m.reasoningTokens]
        for (i, n) in counts.enumerated() where n > 0 {
            resolve(&c.tokens[i], &s, "spanledger_ledger_tokens_total", ["workflow", "model", "type"], [k.workflow, k.model, Self.tokenTypes[i]])
                .increment(by: n)
        }
    }

    /// The registry's exposition (Prometheus text format 0.0.4), counters brought up to date.
    public func render() -> String {
        applyPending()
        return registry.emitToString()
    }
}

