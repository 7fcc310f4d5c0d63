import LedgerCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// Model routes: for each workflow and each model it used over a window, the acceptance rate
// (with a Wilson interval) and the cost per run and per accepted run; then, per workflow,
// every model cheaper per run than the incumbent, tested for being significantly worse.
//
// Input is the answer of a RollupQuery grouped by [.workflow, .model]. Grouped by model a
// run is counted under every model it called, so a route's runs are the runs that used the
// model, its acceptance is the acceptance of those runs, and its cost is that model's calls
// in them: the cost per run is the model's cost share of a run, not the whole run's cost.

/// Settings of a model-route report.
public struct RouteSettings: Sendable, Equatable {
    /// Two-sided confidence of the acceptance intervals; the test's alpha is 1 − confidence.
    public var confidence: Double = 0.95
    /// Decided runs (accepted, edited, rejected, escalated) each of the incumbent and a
    /// candidate needs before the two are compared.
    public var minDecidedRuns: Int64 = 30
    /// Non-inferiority margin as a fraction of runs (0.05 = five percentage points of
    /// acceptance): how much worse than the incumbent a candidate may be and still count as
    /// not worse. 0 asks plainly "not significantly worse".
    public var margin: Double = 0.0

    public init(confidence: Double = 0.95, minDecidedRuns: Int64 = 30, margin: Double = 0.0) {
        self.confidence = confidence
        self.minDecidedRuns = minDecidedRuns
        self.margin = margin
    }

    /// Significance level of the test, 1 − confidence.
    public var alpha: Double { 1 - confidence }

    /// Throws unless confidence is strictly between 0 and 1, minDecidedRuns ≥ 0 and margin
    /// is in [0, 1).
    public func validate() throws(QueryError) {
        guard confidence > 0, confidence < 1 else {
            throw QueryError("confidence must be strictly between 0 and 1, e.g. 0.95")
        }
        guard minDecidedRuns >= 0 else { throw QueryError("min decided runs must not be negative") }
        guard margin >= 0, margin < 1 else {
            throw QueryError("margin must be a fraction in [0, 1), e.g. 0.05 for five percentage points")
        }
    }
}

/// One model in one workflow over the window.
public struct ModelRoute: Sendable, Equatable {
    public var workflow: String
    public var model: String
    /// Runs that called the model (pending runs included).
    public var runs: Int64
    public var decidedRuns: Int64
    /// Accepted and edited runs.
    public var acceptedRuns: Int64
    /// acceptedRuns / decidedRuns with its Wilson interval; nil with no decided run.
    public var acceptance: ProportionInterval?
    /// Cost of this model's calls in those runs.
    public var costMicros: Int64
    /// costMicros / runs: the model's cost share of a run; nil with no runs.
    public var costPerRunMicros: Double?
    /// costMicros / acceptedRuns; nil with none accepted.
    public var costPerAcceptedMicros: Double?
    /// The model with the most runs in its workflow (ties: higher cost, then model name).
    public var incumbent: Bool

    public init(workflow: String, model: String, runs: Int64, decidedRuns: Int64, acceptedRuns: Int64,
                acceptance: ProportionInterval?, costMicros: Int64, costPerRunMicros: Double?,
                costPerAcceptedMicros: Double?, incumbent: Bool) {
        self.workflow = workflow
        self.model = model
        self.runs = runs
        self.decidedRuns = decidedRuns
        self.acceptedRuns = acceptedRuns
        self.acceptance = acceptance
        self.costMicros = costMicros
        self.costPerRunMicros = costPerRunMicros
        self.costPerAcceptedMicros = costPerAcceptedMicros
        self.incumbent = incumbent
    }
}

/// A model cheaper per run than its workflow's incumbent, and whether to switch to it.
///
/// Decision rule: only models cheaper per run than the incumbent are candidates. If either
/// side has fewer than `minDecidedRuns` decided runs the verdict is `.tooFewRuns` (savings are
/// still computed, for information). Otherwise a one-sided two-proportion z-test is run of
/// H0: p_candidate ≥ p_incumbent − margin against H1: p_candidate < p_incumbent − margin
/// (pooled standard error when margin = 0, unpooled otherwise). The candidate is
/// "significantly worse" (`.significantlyWorse`) iff the test's one-sided p-value is below
/// alpha = 1 − confidence; otherwise it is "not significantly worse" and, being cheaper,
/// `.switchRecommended`. Not significantly worse is not proof of equal quality: with few runs
/// the test has little power, which `minDecidedRuns` and `margin` are there to control.
public struct RouteRecommendation: Sendable, Equatable {
    public var workflow: String
    public var incumbent: String
    public var candidate: String
    /// Point estimates accepted / decided (0 for a side with no decided run).
    public var incumbentAcceptance: Double
    public var candidateAcceptance: Double
    /// The test's statistic and one-sided p-value; computed for information under
    /// `.tooFewRuns` too when both sides have decided runs, else z = 0 and p = 1.
    public var z: Double
    public var pValue: Double
    /// What was done, in words: the test, its hypotheses, alpha, z and p, or why no test.
    public var test: String
    /// (incumbent cost per run − candidate cost per run) × incumbent runs: what running the
    /// incumbent's runs on the candidate would have saved over the window, rounded half away
    /// from zero. Never negative, as candidates are cheaper per run.
    public var savingsMicros: Int64
    public var verdict: Verdict

    public enum Verdict: String, Sendable {
        /// Cheaper and not significantly worse.
        case switchRecommended = "switch"
        /// Acceptance significantly below the incumbent's (less the margin).
        case significantlyWorse = "worse"
        /// Fewer than minDecidedRuns decided runs on either side; not tested.
        case tooFewRuns = "too_few_runs"
    }

    public init(workflow: String, incumbent: String, candidate: String, incumbentAcceptance: Double,
                candidateAcceptance: Double, z: Double, pValue: Double, test: String, savingsMicros: Int64,
                verdict: Verdict) {
        self.workflow = workflow
        self.incumbent = incumbent
        self.candidate = candidate
        self.incumbentAcceptance = incumbentAcceptance
        self.candidateAcceptance = candidateAcceptance
        self.z = z
        self.pValue = pValue
        self.test = test
        self.savingsMicros = savingsMicros
        self.verdict = verdict
    }
}

/// Model routes of a window and the switches they suggest.
public struct RouteReport: Sendable, Equatable {
    /// Sorted by workflow, then cost descending, then model.
    public var routes: [ModelRoute]
    /// Every cheaper candidate of every workflow with an incumbent, sorted by savings
    /// descending, then workflow, then candidate. See `RouteRecommendation` for the rule.
    public var recommendations: [RouteRecommendation]

    public init(routes: [ModelRoute], recommendations: [RouteRecommendation]) {
        self.routes = routes
        self.recommendations = recommendations
    }

    /// Builds the report from the groups of a query grouped by [.workflow, .model].
    ///
    /// Groups with model "" (runs without an LLM call) or no model key are ignored; groups
    /// with the same workflow and model (e.g. from a query also grouped by service) are
    /// added up. A model with no runs in the window gets a route but is neither incumbent
    /// nor candidate. With settings that fail `validate()`, intervals are nil when the
    /// confidence is unusable and there are no recommendations.
    public static func compute(_ groups: [QueryGroup], settings: RouteSettings) -> RouteReport {
        var merged: [RouteKey: QueryGroup] = [:]
        for g in groups {
            guard let model = g.model, !model.isEmpty else { continue }
            let key = RouteKey(workflow: g.workflow ?? "", model: model)
            var acc = merged[key] ?? QueryGroup(workflow: key.workflow, model: key.model)
            for i in acc.runsByOutcome.indices where i < g.runsByOutcome.count {
                acc.runsByOutcome[i] += g.runsByOutcome[i]
            }
            acc.measures.merge(g.measures)
            merged[key] = acc
        }

        var routes: [ModelRoute] = merged.map { key, g in
            let runs = g.runs, accepted = g.acceptedRuns, cost = g.measures.costMicros
            return ModelRoute(
                workflow: key.workflow, model: key.model, runs: runs, decidedRuns: g.decidedRuns, acceptedRuns: accepted,
                acceptance: Proportions.wilson(successes: accepted, trials: g.decidedRuns, confidence: settings.confidence),
                costMicros: cost,
                costPerRunMicros: runs > 0 ? Double(cost) / Double(runs) : nil,
                costPerAcceptedMicros: accepted > 0 ? Double(cost) / Double(accepted) : nil,
                incumbent: false)
        }
        routes.sort { a, b in
            if a.workflow != b.workflow { return a.workflow < b.workflow }
            if a.costMicros != b.costMicros { return a.costMicros > b.costMicros }
            return a.model < b.model
        }

        // Incumbent of each workflow: most runs, then higher cost, then model name.
        var incumbentIndex: [String: Int] = [:]
        for (i, r) in routes.enumerated() where r.runs > 0 {
            guard let j = incumbentIndex[r.workflow] else { incumbentIndex[r.workflow] = i; continue }
            let c = routes[j]
            if (r.runs, r.costMicros) > (c.runs, c.costMicros)
                || ((r.runs, r.costMicros) == (c.runs, c.costMicros) && r.model < c.model) {
                incumbentIndex[r.workflow] = i
            }
        }
        for i in incumbentIndex.values { routes[i].incumbent = true }

        var recommendations: [RouteRecommendation] = []
        if (try? settings.validate()) != nil {
            for r in routes where r.runs > 0 && !r.incumbent {
                guard let i = incumbentIndex[r.workflow] else { continue }
                let inc = routes[i]
                // Cheaper per run, compared exactly: r.cost / r.runs < inc.cost / inc.runs.
                guard Int128(r.costMicros) * Int128(inc.runs) < Int128(inc.costMicros) * Int128(r.runs) else { continue }
                recommendations.append(recommend(candidate: r, incumbent: inc, settings: settings))
            }
        }
        recommendations.sort { a, b in
            if a.savingsMicros != b.savingsMicros { return a.savingsMicros > b.savingsMicros }
            return (a.workflow, a.candidate) < (b.workflow, b.candidate)
        }
        return RouteReport(routes: routes, recommendations: recommendations)
    }

    private static func recommend(candidate c: ModelRoute, incumbent i: ModelRoute, settings: RouteSettings) -> RouteRecommendation {
        let margin = settings.margin
        let result = Proportions.nonInferiority(
            candidateSuccesses: c.acceptedRuns, candidateTrials: c.decidedRuns,
            incumbentSuccesses: i.acceptedRuns, incumbentTrials: i.decidedRuns, margin: margin)
        let z = result?.z ?? 0, p = result?.pValue ?? 1
        let alpha = settings.alpha
        let hypotheses = margin == 0
            ? "one-sided two-proportion z-test (pooled SE) of H0: candidate acceptance >= incumbent's"
                + " against H1: candidate acceptance < incumbent's"
            : "one-sided two-proportion z-test (unpooled SE) of H0: candidate acceptance >= incumbent's - \(RouteNumberFormat.significant(margin, 4))"
                + " against H1: candidate acceptance < incumbent's - \(RouteNumberFormat.significant(margin, 4))"
        let counts = "candidate \(c.acceptedRuns)/\(c.decidedRuns) accepted, incumbent \(i.acceptedRuns)/\(i.decidedRuns)"
        let stats = "z = \(RouteNumberFormat.fixed(z, 3)), p = \(RouteNumberFormat.significant(p, 4))"

        let verdict: RouteRecommendation.Verdict
        let test: String
        if c.decidedRuns < settings.minDecidedRuns || i.decidedRuns < settings.minDecidedRuns || result == nil {
            verdict = .tooFewRuns
            test = "not tested: too few decided runs (\(counts); \(settings.minDecidedRuns) decided runs needed on each side)"
                + (result == nil ? "" : "; for information, the \(hypotheses) gives \(stats)")
        } else if p < alpha {
            verdict = .significantlyWorse
            test = "\(hypotheses); \(counts); alpha \(RouteNumberFormat.significant(alpha, 4)): \(stats) < alpha, significantly worse"
        } else {
            verdict = .switchRecommended
            test = "\(hypotheses); \(counts); alpha \(RouteNumberFormat.significant(alpha, 4)): \(stats) >= alpha, not significantly worse"
        }
        return RouteRecommendation(
            workflow: c.workflow, incumbent: i.model, candidate: c.model,
            incumbentAcceptance: i.acceptance?.estimate ?? 0, candidateAcceptance: c.acceptance?.estimate ?? 0,
            z: z, pValue: p, test: test,
            savingsMicros: savings(incumbentCost: i.costMicros, incumbentRuns: i.runs, candidateCost: c.costMicros, candidateRuns: c.runs),
            verdict: verdict)
    }

    /// (ci/ni − cc/nc) × ni = (ci·nc − cc·ni) / nc, in exact integer arithmetic, rounded half
    /// away from zero, clamped to 0…Int64.max. Both run counts are positive.
    static func savings(incumbentCost ci: Int64, incumbentRuns ni: Int64, candidateCost cc: Int64, candidateRuns nc: Int64) -> Int64 {
        let numerator = Int128(ci) * Int128(nc) - Int128(cc) * Int128(ni)
        guard numerator > 0 else { return 0 }
        let denominator = Int128(nc)
        var q = numerator / denominator
        if 2 * (numerator % denominator) >= denominator { q += 1 }
        return q > Int128(Int64.max) ? Int64.max : Int64(q)
    }
}

private struct RouteKey: Hashable {
    var workflow: String
    var model: String
}

/// Number formatting for the test description (the module does not use Foundation).
enum RouteNumberFormat {
    /// `x` with `places` decimals, e.g. fixed(-0.22478, 3) = "-0.225"; "inf", "-inf", "nan".
    static func fixed(_ x: Double, _ places: Int) -> String {
        guard x.isFinite else { return x.isNaN ? "nan" : (x > 0 ? "inf" : "-inf") }
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = (abs(x) * scale).rounded(.toNearestOrAwayFromZero)
        guard scaled < 9.0e18 else { return x > 0 ? "inf" : "-inf" }
        let n = UInt64(scaled), s = UInt64(scale)
        let whole = String(n / s)
        var text = whole
        if places > 0 {
            let frac = String(n % s)
            text += "." + String(repeating: "0", count: places - frac.count) + frac
        }
        return (x < 0 && n != 0 ? "-" : "") + text
    }

    /// `x` to `digits` significant digits with trailing zeros dropped, in scientific notation
    /// below 0.001: significant(0.41112, 4) = "0.4111", significant(0.05000000000000004, 4) =
    /// "0.05", significant(2.4e-7, 2) = "2.4e-07".
    static func significant(_ x: Double, _ digits: Int) -> String {
        guard x.isFinite else { return fixed(x, 0) }
        if x == 0 { return "0" }
        var exponent = Int(log10(abs(x)).rounded(.down))
        if exponent < -3 {
            var mantissa = x / pow(10, Double(exponent))
            if abs(Double(fixed(mantissa, digits - 1)) ?? 0) >= 10 {
                exponent += 1
                mantissa = x / pow(10, Double(exponent))
            }
            let e = -exponent
            return trimmed(fixed(mantissa, digits - 1)) + "e-" + (e < 10 ? "0" : "") + String(e)
        }
        return trimmed(fixed(x, max(0, min(15, digits - 1 - exponent))))
    }

    private static func trimmed(_ s: String) -> String {
        guard s.contains(".") else { return s }
        var t = Substring(s)
        while t.hasSuffix("0") { t = t.dropLast() }
        if t.hasSuffix(".") { t = t.dropLast() }
        return String(t)
    }
}
