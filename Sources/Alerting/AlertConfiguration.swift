import AlertDetection
import Attribution
import Foundation
import LedgerCore
import Yams

/// Where notifications go (`hooks:` in the alert rules file).
public struct HookConfiguration: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// POST of the Prometheus Alertmanager webhook payload (version 4).
        case webhook
        /// POST of a Slack incoming-webhook body (`text`, plus one attachment per alert).
        case slack
        /// Runs a command with the Alertmanager payload on stdin.
        case exec
    }

    public var name: String
    public var kind: Kind
    public var url: String?
    public var command: [String] = []
    public var headers: [String: String] = [:]
    public var timeoutNano: Int64 = 10_000_000_000
    public var sendResolved = true
}

/// The kinds of rule (Schemas/alerts.md).
public enum RuleKind: String, Sendable, CaseIterable {
    case tokenSpike = "token_spike"
    case spendBudget = "spend_budget"
    case acceptanceDrop = "acceptance_drop"
    case retryStorm = "retry_storm"
    case unpricedModel = "unpriced_model"
}

public enum BudgetPeriod: String, Sendable { case day, month }

/// One rule of the alert rules file. Fields not used by a rule's kind keep their defaults.
public struct RuleConfiguration: Sendable, Equatable {
    public var name: String
    public var kind: RuleKind
    /// Workflow globs the rule watches; empty = every workflow.
    public var workflows: [String] = []
    /// A business function (`functions:` of the file): adds its workflows and a `function` label.
    public var function: String?
    /// Hook names; empty = the file's `default_hooks`.
    public var hooks: [String] = []
    public var severity = "warning"
    public var labels: [String: String] = [:]
    /// A condition must hold this long before the alert fires (not token_spike, which counts steps).
    public var forNano: Int64 = 0

    // token_spike
    public var spike = SpikeSettings()
    public var stepNano: Int64 = 60_000_000_000
    public var perModel = true
    public var maxSeries = 10_000
    /// Tokens per minute a step must reach to count as exceeding (converted to the step:
    /// a quiet series whose baseline is zero would otherwise fire on any traffic).
    public var minTokensPerMinute = 10_000.0

    // spend_budget
    public var period = BudgetPeriod.day
    public var budgetMicros: Int64 = 0
    public var warningFraction = 0.8
    public var criticalFraction = 1.0
    public var projected = true
    public var perWorkflow = false

    // acceptance_drop (window also retry_storm and unpriced_model)
    public var floor: Double?
    public var drop: Double?
    public var windowNano: Int64 = 3_600_000_000_000
    public var baselineWindowNano: Int64 = 7 * 86_400_000_000_000
    public var minRuns: Int64 = 20

    // retry_storm
    public var ratio = 0.3
    public var minCalls: Int64 = 50

    public func watches(_ workflow: String, functions: [String: [String]]) -> Bool {
        var patterns = workflows
        if let function { patterns += functions[function] ?? [] }
        return patterns.isEmpty || patterns.contains { Glob.matches($0, workflow) }
    }
}

/// Retry, repeat and history of notifications (`delivery:`).
public struct DeliverySettings: Sendable, Equatable {
    public var repeatIntervalNano: Int64 = 4 * 3_600_000_000_000
    public var retryInitialNano: Int64 = 1_000_000_000
    public var retryMaxNano: Int64 = 60_000_000_000
    public var retryDeadlineNano: Int64 = 600_000_000_000
    public var historyLimit = 1_000
    public var resolvedKeep = 100
}

/// The alert rules file given with `serve --alerts FILE` (format: Schemas/alerts.md).
public struct AlertConfiguration: Sendable, Equatable {
    public var evaluationIntervalNano: Int64 = 15_000_000_000
    /// Base of the query links in annotations; default the API listener's address.
    public var externalURL: String?
    public var hooks: [HookConfiguration] = []
    public var defaultHooks: [String] = []
    public var delivery = DeliverySettings()
    public var rules: [RuleConfiguration] = []
    /// Business function → workflow globs.
    public var functions: [String: [String]] = [:]

    public init() {}

    public func hooks(for rule: RuleConfiguration) -> [String] { rule.hooks.isEmpty ? defaultHooks : rule.hooks }
    public func hook(named name: String) -> HookConfiguration? { hooks.first { $0.name == name } }

    /// The function whose globs match `workflow`, first by name order.
    public func function(of workflow: String) -> String? {
        functions.keys.sorted().first { f in functions[f]!.contains { Glob.matches($0, workflow) } }
    }
}

public struct AlertConfigurationError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
    init(_ message: String) { self.message = message }
}

extension AlertConfiguration {
    /// `extraFunctions`: business functions declared elsewhere (the outcome registry); the
    /// file's own `functions:` win for a name both declare.
    public static func load(path: String, extraFunctions: [String: [String]] = [:]) throws(AlertConfigurationError) -> AlertConfiguration {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw AlertConfigurationError("cannot read alert rules file \(path)") }
        return try parse(yaml: text, source: path, extraFunctions: extraFunctions)
    }

    public static func parse(yaml text: String, source: String, extraFunctions: [String: [String]] = [:]) throws(AlertConfigurationError) -> AlertConfiguration {
        let loaded: Any?
        do { loaded = try Yams.load(yaml: text) } catch { throw AlertConfigurationError("alert rules file \(source) is not valid YAML: \(error)") }
        guard let loaded else {
            var c = AlertConfiguration()
            c.functions = extraFunctions
            return c
        }
        return try AlertConfigParser(source: source, extraFunctions: extraFunctions).configuration(Node(loaded, path: ""))
    }
}

/// A YAML value and where it is, for error messages that say which key was wrong.
struct Node {
    var value: Any
    var path: String

    init(_ value: Any, path: String) {
        self.value = value
        self.path = path
    }
}

struct AlertConfigParser {
    var source: String
    var extraFunctions: [String: [String]] = [:]

    func fail(_ node: Node, _ reason: String) -> AlertConfigurationError {
        AlertConfigurationError("alert rules file \(source): \(node.path.isEmpty ? "top level" : node.path): \(reason)")
    }

    func map(_ node: Node, allowed: Set<String>) throws(AlertConfigurationError) -> [String: Node] {
        guard let m = node.value as? [String: Any] else { throw fail(node, "expected a mapping") }
        var out: [String: Node] = [:]
        for key in m.keys.sorted() {
            guard allowed.contains(key) else { throw fail(node, "unknown key '\(key)' (known: \(allowed.sorted().joined(separator: ", ")))") }
            out[key] = Node(m[key]!, path: node.path.isEmpty ? key : "\(node.path).\(key)")
        }
        return out
    }

    func list(_ node: Node) throws(AlertConfigurationError) -> [Node] {
        guard let a = node.value as? [Any] else { throw fail(node, "expected a list") }
        return a.enumerated().map { Node($1, path: "\(node.path)[\($0)]") }
    }

    func string(_ node: Node) throws(AlertConfigurationError) -> String {
        if let s = node.value as? String { return s }
        if let i = node.value as? Int { return String(i) }
        if let d = node.value as? Double { return String(d) }
        throw fail(node, "expected a string")
    }

    func strings(_ node: Node) throws(AlertConfigurationError) -> [String] {
        if node.value is String { return [try string(node)] }
        var out: [String] = []
        for n in try list(node) { out.append(try string(n)) }
        return out
    }

    func number(_ node: Node) throws(AlertConfigurationError) -> Double {
        if let d = node.value as? Double { return d }
        if let i = node.value as? Int { return Double(i) }
        if let s = node.value as? String, let d = Double(s) { return d }
        throw fail(node, "expected a number")
    }

    func integer(_ node: Node) throws(AlertConfigurationError) -> Int {
        if let i = node.value as? Int { return i }
        if let s = node.value as? String, let i = Int(s) { return i }
        throw fail(node, "expected an integer")
    }

    func bool(_ node: Node) throws(AlertConfigurationError) -> Bool {
        if let b = node.value as? Bool { return b }
        throw fail(node, "expected true or false")
    }

    func duration(_ node: Node) throws(AlertConfigurationError) -> Int64 {
        let text = try string(node)
        guard let ns = DurationText.nanoseconds(text), ns > 0 else { throw fail(node, "'\(text)' is not a positive duration (e.g. 500ms, 30s, 5m, 1h, 7d)") }
        return ns
    }

    func stringMap(_ node: Node) throws(AlertConfigurationError) -> [String: String] {
        guard let m = node.value as? [String: Any] else { throw fail(node, "expected a mapping of strings") }
        var out: [String: String] = [:]
        for (k, v) in m { out[k] = try string(Node(v, path: "\(node.path).\(k)")) }
        return out
    }

    func configuration(_ root: Node) throws(AlertConfigurationError) -> AlertConfiguration {
        let top = try map(root, allowed: ["evaluation_interval", "external_url", "hooks", "default_hooks", "delivery", "rules", "functions"])
        var c = AlertConfiguration()
        if let n = top["evaluation_interval"] { c.evaluationIntervalNano = try duration(n) }
        if let n = top["external_url"] { c.externalURL = try string(n) }
        if let n = top["default_hooks"] { c.defaultHooks = try strings(n) }
        if let n = top["functions"] {
            guard let m = n.value as? [String: Any] else { throw fail(n, "expected a mapping of function name to workflow globs") }
            for (k, v) in m { c.functions[k] = try strings(Node(v, path: "\(n.path).\(k)")) }
        }
        for (k, v) in extraFunctions where c.functions[k] == nil { c.functions[k] = v }
        if let n = top["delivery"] { c.delivery = try delivery(n) }
        if let n = top["hooks"] {
            for h in try list(n) {
                let hook = try hook(h)
                if c.hooks.contains(where: { $0.name == hook.name }) { throw fail(h, "a second hook named '\(hook.name)'") }
                c.hooks.append(hook)
            }
        }
        if let n = top["rules"] {
            for r in try list(n) {
                let rule = try rule(r, functions: c.functions)
                if c.rules.contains(where: { $0.name == rule.name }) { throw fail(r, "a second rule named '\(rule.name)'") }
                c.rules.append(rule)
            }
        }
        let names = Set(c.hooks.map(\.name))
        for h in c.defaultHooks where !names.contains(h) { throw fail(top["default_hooks"]!, "no hook named '\(h)'") }
        for (i, r) in c.rules.enumerated() {
            for h in r.hooks where !names.contains(h) { throw fail(Node(0, path: "rules[\(i)].hooks"), "no hook named '\(h)' (hooks: \(names.sorted().joined(separator: ", ")))") }
        }
        return c
    }

    func delivery(_ node: Node) throws(AlertConfigurationError) -> DeliverySettings {
        let m = try map(node, allowed: ["repeat_interval", "retry_initial", "retry_max", "retry_deadline", "history", "resolved_keep"])
        var d = DeliverySettings()
        if let n = m["repeat_interval"] { d.repeatIntervalNano = try duration(n) }
        if let n = m["retry_initial"] { d.retryInitialNano = try duration(n) }
        if let n = m["retry_max"] { d.retryMaxNano = try duration(n) }
        if let n = m["retry_deadline"] { d.retryDeadlineNano = try duration(n) }
        if let n = m["history"] { d.historyLimit = try integer(n) }
        if let n = m["resolved_keep"] { d.resolvedKeep = try integer(n) }
        guard d.historyLimit > 0, d.resolvedKeep >= 0 else { throw fail(node, "history must be positive") }
        return d
    }

    func hook(_ node: Node) throws(AlertConfigurationError) -> HookConfiguration {
        let m = try map(node, allowed: ["name", "type", "url", "command", "headers", "timeout", "send_resolved"])
        guard let nameNode = m["name"] else { throw fail(node, "a hook needs a name") }
        guard let typeNode = m["type"] else { throw fail(node, "a hook needs a type (webhook, slack or exec)") }
        let typeText = try string(typeNode)
        guard let kind = HookConfiguration.Kind(rawValue: typeText) else { throw fail(typeNode, "unknown hook type '\(typeText)' (webhook, slack or exec)") }
        var h = HookConfiguration(name: try string(nameNode), kind: kind)
        if let n = m["url"] {
            let u = try string(n)
            guard let url = URL(string: u), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https", url.host != nil else {
                throw fail(n, "'\(u)' is not an http:// or https:// URL")
            }
            h.url = u
        }
        if let n = m["command"] { h.command = try strings(n) }
        if let n = m["headers"] { h.headers = try stringMap(n) }
        if let n = m["timeout"] { h.timeoutNano = try duration(n) }
        if let n = m["send_resolved"] { h.sendResolved = try bool(n) }
        switch kind {
        case .webhook, .slack:
            guard h.url != nil else { throw fail(node, "a \(kind.rawValue) hook needs a url") }
        case .exec:
            guard !h.command.isEmpty, !h.command[0].isEmpty else { throw fail(node, "an exec hook needs a command (a list: program then arguments)") }
        }
        return h
    }

    func rule(_ node: Node, functions: [String: [String]]) throws(AlertConfigurationError) -> RuleConfiguration {
        let common: Set<String> = ["name", "type", "workflows", "function", "hooks", "severity", "labels", "for"]
        let byKind: [RuleKind: Set<String>] = [
            .tokenSpike: ["factor", "sigmas", "for_steps", "resolve_steps", "min_tokens", "window", "min_history", "step", "per_model",
                          "seasonal_days", "min_seasonal_days", "max_series"],
            .spendBudget: ["period", "budget_usd", "warning", "critical", "projected", "per_workflow"],
            .acceptanceDrop: ["floor", "drop", "window", "baseline_window", "min_runs"],
            .retryStorm: ["ratio", "min_calls", "window"],
            .unpricedModel: ["window"],
        ]
        guard let m0 = node.value as? [String: Any] else { throw fail(node, "expected a mapping") }
        guard let typeValue = m0["type"] else { throw fail(node, "a rule needs a type (\(RuleKind.allCases.map(\.rawValue).joined(separator: ", ")))") }
        let typeNode = Node(typeValue, path: "\(node.path).type")
        let typeText = try string(typeNode)
        guard let kind = RuleKind(rawValue: typeText) else {
            throw fail(typeNode, "unknown rule type '\(typeText)' (\(RuleKind.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        let m = try map(node, allowed: common.union(byKind[kind]!))
        guard let nameNode = m["name"] else { throw fail(node, "a rule needs a name") }
        var r = RuleConfiguration(name: try string(nameNode), kind: kind)
        if kind == .unpricedModel { r.windowNano = 3_600_000_000_000 }
        if kind == .retryStorm { r.windowNano = 300_000_000_000 }
        if let n = m["workflows"] { r.workflows = try strings(n) }
        if let n = m["function"] {
            let f = try string(n)
            guard functions[f] != nil else { throw fail(n, "no function '\(f)' under functions: (nor in the outcome registry)") }
            r.function = f
        }
        if let n = m["hooks"] { r.hooks = try strings(n) }
        if let n = m["severity"] { r.severity = try string(n) }
        if let n = m["labels"] { r.labels = try stringMap(n) }
        if let n = m["for"] { r.forNano = try duration(n) }
        if let n = m["window"] { r.windowNano = try duration(n) }
        switch kind {
        case .tokenSpike:
            if let n = m["factor"] { r.spike.factor = try number(n) }
            if let n = m["sigmas"] { r.spike.sigmas = try number(n) }
            if let n = m["for_steps"] { r.spike.forSteps = try integer(n) }
            if let n = m["resolve_steps"] { r.spike.resolveSteps = try integer(n) }
            if let n = m["min_tokens"] {
                r.minTokensPerMinute = try number(n)
                guard r.minTokensPerMinute >= 0 else { throw fail(n, "min_tokens (tokens per minute) must not be negative") }
            }
            if let n = m["step"] { r.stepNano = try duration(n) }
            if let n = m["window"] {
                let w = try duration(n)
                guard w % r.stepNano == 0 else { throw fail(n, "window must be a whole number of steps") }
                r.spike.windowSteps = Int(w / r.stepNano)
            }
            if let n = m["min_history"] {
                let w = try duration(n)
                r.spike.minHistorySteps = Int(w / r.stepNano)
            } else {
                r.spike.minHistorySteps = min(r.spike.minHistorySteps, r.spike.windowSteps)
            }
            if let n = m["per_model"] { r.perModel = try bool(n) }
            if let n = m["seasonal_days"] { r.spike.seasonalDays = try integer(n) }
            if let n = m["min_seasonal_days"] { r.spike.minSeasonalDays = try integer(n) }
            if let n = m["max_series"] { r.maxSeries = try integer(n) }
            guard 86_400_000_000_000 % r.stepNano == 0, (86_400_000_000_000 / r.stepNano) % 24 == 0 else {
                throw fail(m["step"] ?? node, "step must divide an hour evenly (e.g. 1s, 10s, 1m, 5m)")
            }
            r.spike.stepsPerDay = Int(86_400_000_000_000 / r.stepNano)
            r.spike.minVolume = r.minTokensPerMinute * Double(r.stepNano) / 60_000_000_000
            do { r.spike = try r.spike.validated() } catch { throw fail(node, "\(error)") }
        case .spendBudget:
            guard let b = m["budget_usd"] else { throw fail(node, "a spend_budget rule needs budget_usd") }
            guard let micros = Money.micros(fromUSD: try number(b)), micros > 0 else { throw fail(b, "budget_usd must be a positive amount") }
            r.budgetMicros = micros
            if let n = m["period"] {
                let p = try string(n)
                guard let period = BudgetPeriod(rawValue: p) else { throw fail(n, "period must be day or month") }
                r.period = period
            }
            if let n = m["warning"] { r.warningFraction = try number(n) }
            if let n = m["critical"] { r.criticalFraction = try number(n) }
            if let n = m["projected"] { r.projected = try bool(n) }
            if let n = m["per_workflow"] { r.perWorkflow = try bool(n) }
            guard r.warningFraction > 0, r.criticalFraction >= r.warningFraction else {
                throw fail(node, "need 0 < warning <= critical (fractions of the budget, e.g. 0.8 and 1.0)")
            }
        case .acceptanceDrop:
            if let n = m["floor"] { r.floor = try number(n) }
            if let n = m["drop"] { r.drop = try number(n) }
            if let n = m["baseline_window"] { r.baselineWindowNano = try duration(n) }
            if let n = m["min_runs"] { r.minRuns = Int64(try integer(n)) }
            guard r.floor != nil || r.drop != nil else { throw fail(node, "an acceptance_drop rule needs floor (e.g. 0.6) or drop (e.g. 0.2 below its baseline), or both") }
            for v in [r.floor, r.drop].compactMap({ $0 }) where !(0...1).contains(v) { throw fail(node, "floor and drop are fractions between 0 and 1") }
        case .retryStorm:
            if let n = m["ratio"] { r.ratio = try number(n) }
            if let n = m["min_calls"] { r.minCalls = Int64(try integer(n)) }
            guard r.ratio > 0 else { throw fail(node, "ratio must be positive (retries per LLM call)") }
        case .unpricedModel:
            break
        }
        return r
    }
}
