import AlertDetection
import Foundation
import LedgerCore
import LedgerPipeline
import Logging
import Rollups

/// Answers the rollup queries the budget and acceptance rules need (the ledger; a stub in unit tests).
public protocol RollupSource: Sendable {
    func query(_ q: RollupQuery) async -> [QueryGroup]
}

extension Ledger: RollupSource {}

/// Evaluates the alert rules and keeps alert and notification state (Schemas/alerts.md).
/// Rules over the release stream (token_spike, retry_storm, unpriced_model) run every
/// tick; rules over the rollups (spend_budget, acceptance_drop) every evaluation interval.
public actor AlertEngine {
    public let configuration: AlertConfiguration
    let rollups: any RollupSource
    let inbox: ActivityInbox
    let store: AlertStore
    let logger: Logger
    var externalURL: String

    var state = AlertStateFile()
    var series = SeriesStateFile()
    var inFlight: Set<Int64> = []
    var stateDirty = false
    var seriesDirty = false
    var lastSeriesSave: Int64 = 0
    var nextSlowEvaluation: Int64 = 0
    var counters = AlertCounters()
    var reconciled = false

    public init(configuration: AlertConfiguration, rollups: any RollupSource, inbox: ActivityInbox, dataDirectory: String,
                externalURL: String, logger: Logger) throws {
        self.configuration = configuration
        self.rollups = rollups
        self.inbox = inbox
        self.store = AlertStore(directory: dataDirectory + "/alerts")
        self.logger = logger
        self.externalURL = configuration.externalURL ?? externalURL
        try store.prepare()
        do {
            if let s = try store.load(AlertStateFile.self, from: store.statePath) { state = s }
        } catch {
            throw AlertConfigurationError("alert state \(store.statePath) cannot be read (\(error)); move it aside to start without alert history")
        }
        do {
            if let s = try store.load(SeriesStateFile.self, from: store.seriesPath) { series = s }
        } catch {
            // Detector history only sharpens baselines; losing it is not worth refusing to start.
            logger.error("alert series history unreadable; starting without it", metadata: ["file": "\(store.seriesPath)", "error": "\(error)"])
        }
    }

    public func setExternalURL(_ url: String) {
        if configuration.externalURL == nil { externalURL = url }
    }

    /// Alerts of rules no longer configured are resolved; queued notifications for hooks
    /// no longer configured are dropped (kept in the log as such).
    func reconcileWithConfiguration(now: Int64) {
        let rules = Set(configuration.rules.map(\.name))
        for (fp, alert) in state.alerts where !rules.contains(alert.rule) {
            state.alerts[fp] = nil
            if alert.status == .firing { remember(resolved(alert, now: now)) }
            stateDirty = true
        }
        for (i, n) in state.queue.enumerated().reversed() where configuration.hook(named: n.hook) == nil {
            var d = n
            d.result = .dropped
            d.lastError = "hook '\(n.hook)' is no longer configured"
            d.finishedUnixNano = now
            state.queue.remove(at: i)
            appendLog(d)
            stateDirty = true
        }
        for name in series.spikes.keys where !configuration.rules.contains(where: { $0.name == name && $0.kind == .tokenSpike }) {
            series.spikes[name] = nil
        }
        for rule in configuration.rules where rule.kind == .tokenSpike {
            // Settings may have changed: keep history only if the step is the same.
            guard var all = series.spikes[rule.name] else { continue }
            for (id, s) in all where s.detector.settings != rule.spike {
                if s.detector.settings.stepsPerDay == rule.spike.stepsPerDay { all[id]?.detector.settings = rule.spike } else { all[id] = nil }
            }
            series.spikes[rule.name] = all
        }
        try? persist(now: now, force: true)
    }

    // MARK: Tick

    /// Drains the release stream, evaluates what is due and returns the notifications due
    /// for an attempt now (marked in flight until `finish`).
    public func tick(now: Int64) async -> [AlertNotification] {
        if !reconciled {
            reconciled = true
            reconcileWithConfiguration(now: now)
        }
        ingest(now: now)
        evaluateStreamRules(now: now)
        if now >= nextSlowEvaluation {
            nextSlowEvaluation = now + configuration.evaluationIntervalNano
            await evaluateRollupRules(now: now)
            counters.evaluations += 1
        }
        queueRepeats(now: now)
        let due = takeDue(now: now)
        try? persist(now: now, force: false)
        return due
    }

    func ingest(now: Int64) {
        let (activities, dropped) = inbox.drain()
        counters.droppedActivities += dropped
        guard !activities.isEmpty else { return }
        seriesDirty = true
        for a in activities {
            let second = a.releasedUnixNano / 1_000_000_000
            var calls: Int64 = 0, retries: Int64 = 0
            for m in a.models {
                calls += m.calls
                retries += m.retries
                if m.unpricedCalls > 0 {
                    series.unpriced[m.model, default: WindowCounter()].add(second: second, m.unpricedCalls, m.unpricedTokens)
                    var w = series.unpricedWorkflows[m.model] ?? []
                    if !w.contains(a.workflow) {
                        w.append(a.workflow)
                        if w.count > 20 { w.removeFirst() }
                    }
                    series.unpricedWorkflows[m.model] = w
                }
            }
            if calls > 0 { series.retries[a.workflow, default: WindowCounter()].add(second: second, retries, calls) }
            for rule in configuration.rules where rule.kind == .tokenSpike && rule.watches(a.workflow, functions: configuration.functions) {
                let total = a.models.reduce(0) { $0 + $1.tokens }
                addSpikeTokens(rule: rule, workflow: a.workflow, model: nil, tokens: total, at: a.releasedUnixNano)
                if rule.perModel {
                    for m in a.models where !m.model.isEmpty { addSpikeTokens(rule: rule, workflow: a.workflow, model: m.model, tokens: m.tokens, at: a.releasedUnixNano) }
                }
            }
        }
    }

    static func seriesID(_ workflow: String, _ model: String?) -> String { workflow + "\u{1f}" + (model ?? "*") }

    func addSpikeTokens(rule: RuleConfiguration, workflow: String, model: String?, tokens: Int64, at unixNano: Int64) {
        let id = Self.seriesID(workflow, model)
        var step = unixNano / rule.stepNano
        var all = series.spikes[rule.name] ?? [:]
        if all[id] == nil {
            guard all.count < rule.maxSeries else {
                counters.droppedSeries += 1
                return
            }
            all[id] = SpikeSeries(workflow: workflow, model: model, detector: SpikeDetector(settings: rule.spike), lastDataStep: step)
        }
        // A step already closed gets nothing more; its tokens count in the next open one.
        if let last = all[id]!.detector.lastStep, step <= last { step = last + 1 }
        all[id]!.open[step, default: 0] += Double(tokens)
        all[id]!.lastDataStep = max(all[id]!.lastDataStep, step)
        series.spikes[rule.name] = all
    }

    // MARK: Rules over the release stream

    func evaluateStreamRules(now: Int64) {
        for rule in configuration.rules {
            switch rule.kind {
            case .tokenSpike: evaluateSpikes(rule, now: now)
            case .retryStorm: apply(rule, findings: retryFindings(rule, now: now), complete: true, now: now)
            case .unpricedModel: apply(rule, findings: unpricedFindings(rule, now: now), complete: true, now: now)
            default: break
            }
        }
        let longest = configuration.rules.filter { $0.kind == .retryStorm || $0.kind == .unpricedModel }.map(\.windowNano).max() ?? 0
        let cutoff = (now - longest) / 1_000_000_000
        for (k, var w) in series.retries {
            w.prune(before: cutoff)
            series.retries[k] = w.isEmpty ? nil : w
        }
        for (k, var w) in series.unpriced {
            w.prune(before: cutoff)
            if w.isEmpty {
                series.unpriced[k] = nil
                series.unpricedWorkflows[k] = nil
            } else {
                series.unpriced[k] = w
            }
        }
    }

    func evaluateSpikes(_ rule: RuleConfiguration, now: Int64) {
        guard var all = series.spikes[rule.name] else { return }
        let current = now / rule.stepNano
        let forget = Int64(rule.spike.seasonalDays * rule.spike.stepsPerDay)
        var findings: [Finding] = []
        for id in all.keys.sorted() {
            var s = all[id]!
            let closed = s.open.keys.filter { $0 < current }.sorted()
            var last: SpikeEvaluation?
            for step in closed {
                if let e = s.detector.observe(step: step, value: s.open[step]!) { last = e }
                s.open[step] = nil
            }
            if (s.detector.lastStep ?? current) < current - 1, let e = s.detector.observe(step: current - 1, value: 0) { last = e }
            if let last {
                s.last = last.snapshot
                seriesDirty = true
                findings.append(spikeFinding(rule, s, last))
            }
            if current - s.lastDataStep > forget && s.detector.state == .normal && s.open.isEmpty {
                all[id] = nil
                continue
            }
            all[id] = s
        }
        series.spikes[rule.name] = all
        apply(rule, findings: findings, complete: false, now: now)
    }

    func spikeFinding(_ rule: RuleConfiguration, _ s: SpikeSeries, _ e: SpikeEvaluation) -> Finding {
        var labels = baseLabels(rule, workflow: s.workflow)
        if let m = s.model { labels["model"] = m }
        let perMinute = 60_000_000_000.0 / Double(rule.stepNano)
        let rate = e.value * perMinute
        let expected = e.expected.map { $0 * perMinute }
        let ratio = expected.map { $0 > 0 ? rate / $0 : .infinity }
        let scope = s.model.map { "\(s.workflow) on \($0)" } ?? s.workflow
        let stepText = DurationFormat.text(rule.stepNano)
        let summary: String
        if let expected, let ratio {
            summary = "\(scope): \(Format.int(rate)) tokens/min against a baseline of \(Format.int(expected)) (\(Format.ratio(ratio))×)"
        } else {
            summary = "\(scope): \(Format.int(rate)) tokens/min (no baseline yet)"
        }
        let description = "Token rate over the last \(stepText) step is above \(Format.ratio(rule.spike.factor))× the series' own robust baseline "
            + "(median of the last \(rule.spike.windowSteps) steps\(rule.spike.minSeasonalDays > 0 ? ", time-of-day adjusted once \(rule.spike.minSeasonalDays) days are known" : "")) "
            + "for \(rule.spike.forSteps) steps in a row."
        let since = e.firingSince.map { $0 * rule.stepNano }
        return Finding(labels: labels, active: e.state == .firing, value: rate, threshold: e.threshold.map { $0 * perMinute }, baseline: expected,
                       summary: summary, description: description,
                       query: queryLink(since: "1h", groupBy: "model", workflow: s.workflow, model: s.model), since: since)
    }

    func retryFindings(_ rule: RuleConfiguration, now: Int64) -> [Finding] {
        let since = (now - rule.windowNano) / 1_000_000_000
        var out: [Finding] = []
        for workflow in series.retries.keys.sorted() where rule.watches(workflow, functions: configuration.functions) {
            let (retries, calls) = series.retries[workflow]!.sums(since: since)
            guard calls > 0 else { continue }
            let ratio = Double(retries) / Double(calls)
            let window = DurationFormat.text(rule.windowNano)
            out.append(Finding(
                labels: baseLabels(rule, workflow: workflow), active: calls >= rule.minCalls && ratio >= rule.ratio, value: ratio,
                threshold: rule.ratio, baseline: nil,
                summary: "\(workflow): \(retries) of \(calls) LLM calls in the last \(window) were retries (\(Format.percent(ratio)), threshold \(Format.percent(rule.ratio)))",
                description: "A retry is an LLM call whose previous same-model sibling errored (Schemas/conventions.md). Fires at \(Format.percent(rule.ratio)) or more of at least \(rule.minCalls) calls.",
                query: queryLink(since: window, groupBy: "model", workflow: workflow, model: nil), since: nil))
        }
        return out
    }

    func unpricedFindings(_ rule: RuleConfiguration, now: Int64) -> [Finding] {
        let since = (now - rule.windowNano) / 1_000_000_000
        var out: [Finding] = []
        for model in series.unpriced.keys.sorted() {
            let workflows = (series.unpricedWorkflows[model] ?? []).filter { rule.watches($0, functions: configuration.functions) }
            guard !workflows.isEmpty else { continue }
            let (calls, tokens) = series.unpriced[model]!.sums(since: since)
            var labels = baseLabels(rule, workflow: nil)
            labels["model"] = model
            let window = DurationFormat.text(rule.windowNano)
            out.append(Finding(
                labels: labels, active: calls > 0, value: Double(tokens), threshold: nil, baseline: nil,
                summary: "model '\(model)' has no price: \(calls) calls, \(Format.int(Double(tokens))) tokens in the last \(window) (workflows: \(workflows.joined(separator: ", ")))",
                description: "Calls to a model with no entry in the price table are counted as unpriced tokens and cost nothing in the rollups. Add the model to the price file (spanledger prices check \(model)).",
                query: queryLink(since: window, groupBy: "workflow,model", workflow: nil, model: model), since: nil))
        }
        return out
    }

    // MARK: Rules over the rollups

    func evaluateRollupRules(now: Int64) async {
        for rule in configuration.rules {
            switch rule.kind {
            case .spendBudget: apply(rule, findings: await budgetFindings(rule, now: now), complete: true, now: now)
            case .acceptanceDrop: apply(rule, findings: await acceptanceFindings(rule, now: now), complete: true, now: now)
            default: break
            }
        }
    }

    func budgetFindings(_ rule: RuleConfiguration, now: Int64) async -> [Finding] {
        let (start, end) = Self.period(rule.period, containing: now)
        let groups = await rollups.query(RollupQuery(fromUnixNano: start, toUnixNano: now + 60_000_000_000, groupBy: [.workflow]))
        var spendBy: [String: Int64] = [:]
        for g in groups {
            guard let w = g.workflow, rule.watches(w, functions: configuration.functions) else { continue }
            spendBy[w, default: 0] += g.measures.costMicros
        }
        var scopes: [(workflow: String?, spend: Int64)] = []
        if rule.perWorkflow {
            scopes = spendBy.keys.sorted().map { ($0, spendBy[$0]!) }
        } else {
            scopes = [(nil, spendBy.values.reduce(0, +))]
        }
        let elapsed = Double(now - start) / Double(end - start)
        let budget = rule.budgetMicros
        var out: [Finding] = []
        let periodText = rule.period == .day ? "today (UTC)" : "this month (UTC)"
        for scope in scopes {
            let who = scope.workflow ?? rule.function.map { "function \($0)" } ?? (rule.workflows.isEmpty ? "all workflows" : rule.workflows.joined(separator: ", "))
            let spent = Money.usdString(micros: scope.spend)
            let budgetText = Money.usdString(micros: budget)
            let projectedMicros = elapsed > 0 ? Double(scope.spend) / elapsed : 0
            let link = queryLink(since: rule.period == .day ? "24h" : "31d", groupBy: "workflow,model", workflow: scope.workflow, model: nil)
            for (threshold, fraction, severity) in [("warning", rule.warningFraction, "warning"), ("critical", rule.criticalFraction, "critical")] {
                var labels = baseLabels(rule, workflow: scope.workflow)
                labels["threshold"] = threshold
                labels["severity"] = severity
                let limit = Double(budget) * fraction
                out.append(Finding(
                    labels: labels, active: Double(scope.spend) >= limit, value: Double(scope.spend) / 1e6, threshold: limit / 1e6, baseline: Double(budget) / 1e6,
                    summary: "\(who): spent $\(spent) of a $\(budgetText) \(rule.period.rawValue) budget \(periodText) (\(Format.percent(Double(scope.spend) / Double(budget))), \(threshold) at \(Format.percent(fraction)))",
                    description: "Cost of LLM calls by start minute since the start of the period, from the rollups.", query: link, since: nil))
            }
            if rule.projected {
                var labels = baseLabels(rule, workflow: scope.workflow)
                labels["threshold"] = "projected"
                let active = elapsed >= 0.1 && projectedMicros >= Double(budget) && Double(scope.spend) < Double(budget) * rule.criticalFraction
                out.append(Finding(
                    labels: labels, active: active, value: projectedMicros / 1e6, threshold: Double(budget) / 1e6, baseline: Double(scope.spend) / 1e6,
                    summary: "\(who): on course to spend $\(Money.usdString(micros: Int64(projectedMicros))) against a $\(budgetText) \(rule.period.rawValue) budget ($\(spent) so far, \(Format.percent(elapsed)) of the period gone)",
                    description: "Linear projection of the spend so far to the end of the period; checked once a tenth of the period has passed.", query: link, since: nil))
            }
        }
        return out
    }

    func acceptanceFindings(_ rule: RuleConfiguration, now: Int64) async -> [Finding] {
        let windowStart = now - rule.windowNano
        let current = await rollups.query(RollupQuery(fromUnixNano: windowStart, toUnixNano: now + 60_000_000_000, groupBy: [.workflow]))
        let baseline = rule.drop == nil ? [] :
            await rollups.query(RollupQuery(fromUnixNano: windowStart - rule.baselineWindowNano, toUnixNano: windowStart, groupBy: [.workflow]))
        var baseRates: [String: (Double, Int64)] = [:]
        for g in baseline {
            if let w = g.workflow, let r = g.acceptanceRate { baseRates[w] = (r, g.decidedRuns) }
        }
        var out: [Finding] = []
        let window = DurationFormat.text(rule.windowNano)
        for g in current {
            guard let w = g.workflow, rule.watches(w, functions: configuration.functions), let rate = g.acceptanceRate else { continue }
            var reasons: [String] = []
            var threshold: Double?
            var base: Double?
            if g.decidedRuns >= rule.minRuns {
                if let floor = rule.floor, rate < floor {
                    reasons.append("below the floor of \(Format.percent(floor))")
                    threshold = floor
                }
                if let drop = rule.drop, let (b, n) = baseRates[w], n >= rule.minRuns {
                    base = b
                    if rate < b - drop {
                        reasons.append("\(Format.percent(b - rate)) below its \(DurationFormat.text(rule.baselineWindowNano)) baseline of \(Format.percent(b))")
                        threshold = max(threshold ?? 0, b - drop)
                    }
                }
            }
            let text = "\(w): \(Format.percent(rate)) of \(g.decidedRuns) reviewed runs accepted in the last \(window)"
            out.append(Finding(
                labels: baseLabels(rule, workflow: w), active: !reasons.isEmpty, value: rate, threshold: threshold ?? rule.floor, baseline: base,
                summary: reasons.isEmpty ? text : text + ", " + reasons.joined(separator: " and "),
                description: "Acceptance = (accepted + edited) / runs with a verdict, by run start minute; needs at least \(rule.minRuns) reviewed runs.",
                query: queryLink(since: window, groupBy: "outcome,model", workflow: w, model: nil), since: nil))
        }
        return out
    }

    /// The UTC day or month holding `now`, as [start, end).
    static func period(_ p: BudgetPeriod, containing now: Int64) -> (Int64, Int64) {
        let day: Int64 = 86_400_000_000_000
        let days = Int(now / day)
        switch p {
        case .day:
            return (Int64(days) * day, Int64(days + 1) * day)
        case .month:
            let c = RFC3339.civilFromDays(days)
            let first = RFC3339.daysFromCivil(year: c.year, month: c.month, day: 1)
            let next = c.month == 12 ? RFC3339.daysFromCivil(year: c.year + 1, month: 1, day: 1) : RFC3339.daysFromCivil(year: c.year, month: c.month + 1, day: 1)
            return (Int64(first) * day, Int64(next) * day)
        }
    }

    // MARK: Alert lifecycle

    func baseLabels(_ rule: RuleConfiguration, workflow: String?) -> [String: String] {
        var labels = rule.labels
        labels["alertname"] = rule.name
        labels["rule"] = rule.name
        labels["rule_type"] = rule.kind.rawValue
        labels["severity"] = rule.severity
        if let workflow {
            labels["workflow"] = workflow
            if let f = rule.function ?? configuration.function(of: workflow) { labels["function"] = f }
        } else if let f = rule.function {
            labels["function"] = f
        }
        return labels
    }

    func queryLink(since: String, groupBy: String, workflow: String?, model: String?) -> String {
        var items = ["since=\(Self.escape(since))", "group_by=\(Self.escape(groupBy))"]
        if let workflow { items.append("workflow=\(Self.escape(workflow))") }
        if let model { items.append("model=\(Self.escape(model))") }
        return externalURL + "/api/v1/rollups?" + items.joined(separator: "&")
    }

    static func escape(_ s: String) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?#")
        return s.addingPercentEncoding(withAllowedCharacters: allowed) ?? s
    }

    /// Moves alerts through pending → firing → resolved. With `complete`, alerts of the
    /// rule missing from `findings` are inactive (their series went quiet).
    func apply(_ rule: RuleConfiguration, findings: [Finding], complete: Bool, now: Int64) {
        var seen = Set<String>()
        for f in findings {
            let fp = Alert.fingerprint(f.labels)
            seen.insert(fp)
            let annotations = ["summary": f.summary, "description": f.description, "query": f.query]
            if f.active {
                if var a = state.alerts[fp] {
                    a.value = f.value
                    a.threshold = f.threshold
                    a.baseline = f.baseline
                    a.annotations = annotations
                    a.updatedUnixNano = now
                    if a.status == .pending && now - a.activeSinceUnixNano >= rule.forNano { fire(&a, rule: rule, now: now) }
                    state.alerts[fp] = a
                } else {
                    var a = Alert(rule: rule.name, kind: rule.kind.rawValue, labels: f.labels, annotations: annotations, status: .pending,
                                  activeSinceUnixNano: f.since ?? now, value: f.value, threshold: f.threshold, baseline: f.baseline)
                    a.updatedUnixNano = now
                    if rule.forNano == 0 || now - a.activeSinceUnixNano >= rule.forNano { fire(&a, rule: rule, now: now) }
                    state.alerts[fp] = a
                }
                stateDirty = true
            } else if var a = state.alerts[fp] {
                a.value = f.value
                a.annotations = annotations
                end(a, rule: rule, now: now)
            }
        }
        if complete {
            for (fp, a) in state.alerts where a.rule == rule.name && !seen.contains(fp) { end(a, rule: rule, now: now) }
        }
    }

    func fire(_ a: inout Alert, rule: RuleConfiguration, now: Int64) {
        a.status = .firing
        a.startsAtUnixNano = rule.kind == .tokenSpike ? a.activeSinceUnixNano : now
        counters.fired += 1
        logger.warning("alert firing", metadata: ["rule": "\(rule.name)", "fingerprint": "\(a.fingerprint)", "summary": "\(a.annotations["summary"] ?? "")"])
        for hook in configuration.hooks(for: rule) {
            enqueue(a, status: .firing, hook: hook, now: now)
            a.lastNotifiedUnixNano[hook] = now
        }
    }

    func end(_ a: Alert, rule: RuleConfiguration, now: Int64) {
        state.alerts[a.fingerprint] = nil
        stateDirty = true
        guard a.status == .firing else { return }
        let r = resolved(a, now: now)
        counters.resolved += 1
        logger.notice("alert resolved", metadata: ["rule": "\(rule.name)", "fingerprint": "\(a.fingerprint)"])
        for hook in configuration.hooks(for: rule) where a.lastNotifiedUnixNano[hook] != nil { enqueue(r, status: .resolved, hook: hook, now: now) }
        remember(r)
    }

    func resolved(_ a: Alert, now: Int64) -> Alert {
        var r = a
        r.status = .resolved
        r.endsAtUnixNano = now
        r.updatedUnixNano = now
        return r
    }

    func remember(_ r: Alert) {
        state.resolved.insert(r, at: 0)
        if state.resolved.count > configuration.delivery.resolvedKeep { state.resolved.removeLast(state.resolved.count - configuration.delivery.resolvedKeep) }
    }

    func queueRepeats(now: Int64) {
        let every = configuration.delivery.repeatIntervalNano
        for (fp, var a) in state.alerts where a.status == .firing {
            var changed = false
            for (hook, last) in a.lastNotifiedUnixNano where now - last >= every {
                guard !state.queue.contains(where: { $0.alert.fingerprint == fp && $0.hook == hook }) else { continue }
                enqueue(a, status: .firing, hook: hook, now: now)
                a.lastNotifiedUnixNano[hook] = now
                changed = true
            }
            if changed { state.alerts[fp] = a }
        }
    }
}
