import LedgerCore
import Rollups

/// The JSON of `GET /api/v1/routes` and `spanledger routes --format json` (Schemas/routes.md).
public enum RoutesJSON {
    public static func render(_ report: RouteReport, settings: RouteSettings, fromUnixNano: Int64, toUnixNano: Int64) -> String {
        var w = JSONWriter()
        func money(_ k: String, _ micros: Double?) {
            w.key(k)
            if let micros { w.number(literal: Money.usdString(micros: Int64(micros.rounded(.toNearestOrAwayFromZero)))) } else { w.null() }
        }
        w.objectStart()
        w.field("from", RFC3339.format(unixNano: fromUnixNano))
        w.field("to", RFC3339.format(unixNano: toUnixNano))
        w.key("settings")
        w.objectStart()
        w.key("confidence"); w.fixed(settings.confidence, places: 6)
        w.field("min_decided_runs", settings.minDecidedRuns)
        w.key("margin"); w.fixed(settings.margin, places: 6)
        w.objectEnd()
        w.key("routes")
        w.arrayStart()
        for r in report.routes {
            w.objectStart()
            w.field("workflow", r.workflow)
            w.field("model", r.model)
            w.field("incumbent", r.incumbent)
            w.field("runs", r.runs)
            w.field("decided", r.decidedRuns)
            w.field("accepted", r.acceptedRuns)
            w.key("acceptance_rate"); w.fixed(r.acceptance?.estimate, places: 6)
            w.key("acceptance_low"); w.fixed(r.acceptance?.lower, places: 6)
            w.key("acceptance_high"); w.fixed(r.acceptance?.upper, places: 6)
            money("cost_usd", Double(r.costMicros))
            money("cost_per_run_usd", r.costPerRunMicros)
            money("cost_per_accepted_usd", r.costPerAcceptedMicros)
            w.objectEnd()
        }
        w.arrayEnd()
        w.key("recommendations")
        w.arrayStart()
        for r in report.recommendations {
            w.objectStart()
            w.field("workflow", r.workflow)
            w.field("incumbent", r.incumbent)
            w.field("candidate", r.candidate)
            w.field("verdict", r.verdict.rawValue)
            w.key("incumbent_acceptance"); w.fixed(r.incumbentAcceptance, places: 6)
            w.key("candidate_acceptance"); w.fixed(r.candidateAcceptance, places: 6)
            w.key("z"); w.fixed(r.z.isFinite ? r.z : nil, places: 6)
            w.key("p_value"); w.fixed(r.pValue, places: 6)
            w.field("test", r.test)
            money("savings_usd", Double(r.savingsMicros))
            w.field("savings_micros", r.savingsMicros)
            w.objectEnd()
        }
        w.arrayEnd()
        w.objectEnd()
        return w.text
    }
}
