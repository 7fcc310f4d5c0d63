import Attribution
import Foundation
import LedgerCore
import Yams

/// One declared workflow: the one-sentence outcome it exists to produce, who owns it, the
/// business function it serves, and optionally its quarterly outcome target and budget.
public struct DeclaredWorkflow: Sendable, Equatable {
    /// A workflow name, or a glob (`support-*`) declaring every workflow it matches.
    public var match: String
    public var outcome: String
    public var function: String
    public var owner: String
    public var quarterlyTarget: Int64?
    public var quarterlyBudgetMicros: Int64?
}

/// The outcome registry (`serve --registry FILE`, Schemas/registry.md): which outcome each
/// workflow is for. Workflows it does not declare are reported as such.
public struct OutcomeRegistry: Sendable, Equatable {
    public var workflows: [DeclaredWorkflow] = []
    /// Workflows with fewer runs than this in a window are reported as one-off.
    public var oneOffMaxRuns: Int64 = 5

    public init() {}

    /// The declaration of `workflow`: an exact name first, then the first matching glob.
    public func declaration(of workflow: String) -> DeclaredWorkflow? {
        workflows.first { $0.match == workflow } ?? workflows.first { $0.match.contains(where: { $0 == "*" || $0 == "?" }) && Glob.matches($0.match, workflow) }
    }

    public func function(of workflow: String) -> String? { declaration(of: workflow)?.function }

    /// Function name → workflow patterns, for the alert rules' `function` scopes.
    public var functionPatterns: [String: [String]] {
        var out: [String: [String]] = [:]
        for w in workflows { out[w.function, default: []].append(w.match) }
        return out
    }
}

public struct RegistryError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var description: String { message }
}

extension OutcomeRegistry {
    public static let functions: Set<String> = ["sales", "support", "marketing", "engineering", "finance", "operations", "people", "legal",
                                                 "product", "research", "other"]

    public static func load(path: String) throws(RegistryError) -> OutcomeRegistry {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw RegistryError(message: "cannot read registry file \(path)") }
        return try parse(yaml: text, source: path)
    }

    public static func parse(yaml text: String, source: String) throws(RegistryError) -> OutcomeRegistry {
        func fail(_ at: String, _ reason: String) -> RegistryError { RegistryError(message: "registry file \(source): \(at): \(reason)") }
        let loaded: Any?
        do { loaded = try Yams.load(yaml: text) } catch { throw RegistryError(message: "registry file \(source) is not valid YAML: \(error)") }
        guard let top = loaded as? [String: Any] else { throw fail("top level", "expected a mapping with workflows:") }
        for k in top.keys.sorted() where !["workflows", "one_off_max_runs"].contains(k) {
            throw fail("top level", "unknown key '\(k)' (known: one_off_max_runs, workflows)")
        }
        var r = OutcomeRegistry()
        if let v = top["one_off_max_runs"] {
            guard let n = v as? Int, n >= 0 else { throw fail("one_off_max_runs", "a non-negative integer") }
            r.oneOffMaxRuns = Int64(n)
        }
        guard let list = top["workflows"] as? [Any] else { throw fail("workflows", "expected a list of workflow declarations") }
        let allowed: Set<String> = ["name", "outcome", "function", "owner", "quarterly_target", "quarterly_budget_usd"]
        for (i, item) in list.enumerated() {
            let at = "workflows[\(i)]"
            guard let m = item as? [String: Any] else { throw fail(at, "expected a mapping") }
            for k in m.keys.sorted() where !allowed.contains(k) {
                throw fail(at, "unknown key '\(k)' (known: \(allowed.sorted().joined(separator: ", ")))")
            }
            func string(_ k: String) throws(RegistryError) -> String {
                guard let s = m[k] as? String, !s.trimmingCharacters(in: .whitespaces).isEmpty else { throw fail("\(at).\(k)", "required, a non-empty string") }
                return s
            }
            let name = try string("name")
            let outcome = try string("outcome")
            guard outcome.split(separator: " ").count >= 3, !outcome.contains("\n") else {
                throw fail("\(at).outcome", "the outcome is one sentence saying what an accepted run delivers (e.g. \"A customer's refund question answered correctly\")")
            }
            let function = try string("function").lowercased()
            guard functions.contains(function) else {
                throw fail("\(at).function", "'\(function)' is not one of \(functions.sorted().joined(separator: ", "))")
            }
            var d = DeclaredWorkflow(match: name, outcome: outcome, function: function, owner: try string("owner"))
            if let v = m["quarterly_target"] {
                guard let n = v as? Int, n > 0 else { throw fail("\(at).quarterly_target", "a positive number of accepted outcomes per quarter") }
                d.quarterlyTarget = Int64(n)
            }
            if let v = m["quarterly_budget_usd"] {
                let usd = (v as? Double) ?? (v as? Int).map(Double.init)
                guard let usd, let micros = Money.micros(fromUSD: usd), micros > 0 else { throw fail("\(at).quarterly_budget_usd", "a positive amount in USD") }
                d.quarterlyBudgetMicros = micros
            }
            if let other = r.workflows.firstIndex(where: { $0.match == name }) {
                throw fail(at, "'\(name)' is already declared by workflows[\(other)]")
            }
            r.workflows.append(d)
        }
        return r
    }
}
