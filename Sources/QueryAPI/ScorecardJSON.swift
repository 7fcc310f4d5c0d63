import LedgerCore
import OutcomeRegistry

/// The JSON of `GET /api/v1/scorecard` and `spanledger scorecard --format json` (Schemas/registry.md).
public enum ScorecardJSON {
    public static func render(_ s: Scorecard) -> String {
        var w = JSONWriter()
        func money(_ k: String, _ micros: Int64?) {
            w.key(k)
            if let micros { w.number(literal: Money.usdString(micros: micros)) } else { w.null() }
        }
        func moneyD(_ k: String, _ micros: Double?) { money(k, micros.map { Int64($0.rounded(.toNearestOrAwayFromZero)) }) }
        func ratio(_ k: String, _ v: Double?) { w.key(k); w.fixed(v, places: 6) }
        func line(_ l: Scorecard.WorkflowLine) {
            w.objectStart()
            w.field("workflow", l.workflow)
            if let d = l.declaration {
                w.field("outcome", d.outcome)
                w.field("owner", d.owner)
                w.field("function", d.function)
            }
            w.field("runs", l.runs)
            w.field("accepted", l.accepted)
            w.field("decided", l.decided)
            w.key("target")
            if let t = l.declaration?.quarterlyTarget { w.int(t) } else { w.null() }
            ratio("target_attainment", l.targetAttainment)
            ratio("pace", l.pace)
            money("cost_usd", l.costMicros)
            money("budget_usd", l.declaration?.quarterlyBudgetMicros)
            ratio("budget_used", l.budgetUsed)
            moneyD("cost_per_accepted_usd", l.costPerAcceptedMicros)
            moneyD("cost_per_accepted_last_7d_usd", l.recentCostPerAccepted)
            moneyD("cost_per_accepted_previous_7d_usd", l.previousCostPerAccepted)
            ratio("cost_per_accepted_trend", l.trend)
            ratio("share_of_spend", s.share(l.costMicros))
            w.objectEnd()
        }
        w.objectStart()
        w.field("from", RFC3339.format(unixNano: s.fromUnixNano))
        w.field("to", RFC3339.format(unixNano: s.toUnixNano))
        ratio("quarter_elapsed", s.quarterElapsed)
        money("total_cost_usd", s.totalCostMicros)
        w.key("functions")
        w.arrayStart()
        for f in s.functions {
            w.objectStart()
            w.field("function", f.function)
            w.field("accepted", f.accepted)
            w.key("target")
            if let t = f.target { w.int(t) } else { w.null() }
            money("cost_usd", f.costMicros)
            money("budget_usd", f.budgetMicros)
            moneyD("cost_per_accepted_usd", f.costPerAcceptedMicros)
            ratio("share_of_spend", s.share(f.costMicros))
            w.key("workflows")
            w.arrayStart()
            for l in f.workflows { line(l) }
            w.arrayEnd()
            w.objectEnd()
        }
        w.arrayEnd()
        for (name, lines, cost) in [("undeclared", s.undeclared, s.undeclaredCostMicros), ("one_off", s.oneOff, s.oneOffCostMicros)] {
            w.key(name)
            w.objectStart()
            money("cost_usd", cost)
            ratio("share_of_spend", s.share(cost))
            if name == "one_off" { w.field("max_runs", s.oneOffMaxRuns) }
            w.key("workflows")
            w.arrayStart()
            for l in lines { line(l) }
            w.arrayEnd()
            w.objectEnd()
        }
        w.objectEnd()
        return w.text
    }
}
