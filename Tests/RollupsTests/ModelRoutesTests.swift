import LedgerCore
import Rollups
import Testing

// MARK: - Proportions

@Test func wilsonIntervalMatchesHandComputedValues() throws {
    // 8/10 at 95%: p̂ = 0.8, z = 1.959964, centre = (0.8 + z²/20) / (1 + z²/10) = 0.716740,
    // half = z / (1 + z²/10) · √(0.016 + z²/400) = 0.226578.
    let eight = try #require(Proportions.wilson(successes: 8, trials: 10, confidence: 0.95))
    #expect(eight.estimate == 0.8)
    #expect(abs(eight.lower - 0.4902) < 0.00005 && abs(eight.upper - 0.9433) < 0.00005)
    #expect(abs(eight.lower - 0.490162471537) < 1e-9 && abs(eight.upper - 0.943317848546) < 1e-9)

    // 0/10: lower exactly 0, upper z²/(n + z²) = 0.277533; 10/10 mirrors it.
    let none = try #require(Proportions.wilson(successes: 0, trials: 10, confidence: 0.95))
    #expect(none.estimate == 0 && none.lower == 0 && abs(none.upper - 0.277532799863) < 1e-9)
    let all = try #require(Proportions.wilson(successes: 10, trials: 10, confidence: 0.95))
    #expect(all.estimate == 1 && all.upper == 1 && abs(all.lower - 0.722467200137) < 1e-9)

    // A wider confidence gives a wider interval around the same estimate.
    let wide = try #require(Proportions.wilson(successes: 8, trials: 10, confidence: 0.99))
    #expect(wide.lower < eight.lower && wide.upper > eight.upper)

    #expect(Proportions.wilson(successes: 0, trials: 0, confidence: 0.95) == nil)
    #expect(Proportions.wilson(successes: 11, trials: 10, confidence: 0.95) == nil)
    #expect(Proportions.wilson(successes: 5, trials: 10, confidence: 1) == nil)
    #expect(Proportions.wilson(successes: 5, trials: 10, confidence: 0) == nil)
}

@Test func normalQuantileAndCDFAreAccurateAndInverse() {
    #expect(abs(Proportions.normalQuantile(0.975) - 1.959964) < 1e-6)
    #expect(abs(Proportions.normalQuantile(0.975) - 1.959963984540054) < 1e-12)
    #expect(abs(Proportions.normalQuantile(0.025) + 1.959963984540054) < 1e-12)
    #expect(abs(Proportions.normalQuantile(1e-6) + 4.753424308822899) < 1e-10)
    #expect(Proportions.normalQuantile(0.5) == 0)
    #expect(Proportions.normalQuantile(0) == -.infinity && Proportions.normalQuantile(1) == .infinity)
    #expect(abs(Proportions.normalCDF(1.959964) - 0.975) < 1e-8)
    #expect(Proportions.normalCDF(0) == 0.5)
    #expect(abs(Proportions.normalCDF(-1) - 0.158655253931457) < 1e-14)

    // Round trip across (1e-6 … 1 − 1e-6): log-spaced in both tails and linear in between.
    var ps: [Double] = []
    var tail = 1e-6
    while tail < 0.5 {
        ps.append(tail)
        ps.append(1 - tail)
        tail *= 1.37
    }
    for i in 1..<1000 { ps.append(Double(i) / 1000) }
    ps.append(1 - 1e-6)
    var worst = 0.0
    for p in ps {
        let x = Proportions.normalQuantile(p)
        let error = abs(Proportions.normalCDF(x) - p) / min(p, 1 - p)
        worst = max(worst, error)
        #expect(abs(x + Proportions.normalQuantile(1 - p)) < 1e-9, "symmetry at p = \(p)")
    }
    #expect(worst < 1e-9, "worst relative round-trip error \(worst)")
}

@Test func nonInferiorityTestSeparatesNotWorseFromWorse() throws {
    // Candidate 48/60 against incumbent 47/60: better, nowhere near significantly worse.
    let better = try #require(Proportions.nonInferiority(
        candidateSuccesses: 48, candidateTrials: 60, incumbentSuccesses: 47, incumbentTrials: 60, margin: 0))
    #expect(better.z > 0 && better.pValue > 0.5)

    // 47/60 against 48/60 by hand: pooled p̄ = 95/120, SE = √(p̄(1 − p̄)·2/60),
    // z = −(1/60) / SE = −0.224780594780.
    let slightly = try #require(Proportions.nonInferiority(
        candidateSuccesses: 47, candidateTrials: 60, incumbentSuccesses: 48, incumbentTrials: 60, margin: 0))
    let pooled = 95.0 / 120
    let handZ = -(1.0 / 60) / (pooled * (1 - pooled) * (2.0 / 60)).squareRoot()
    #expect(abs(slightly.z - handZ) < 1e-12)
    #expect(abs(slightly.z - -0.224780594780) < 1e-6)
    #expect(abs(slightly.pValue - 0.411074981459) < 1e-9)

    // 27/60 against 54/60: z = −5.262348, p ≈ 7.1e-8.
    let worse = try #require(Proportions.nonInferiority(
        candidateSuccesses: 27, candidateTrials: 60, incumbentSuccesses: 54, incumbentTrials: 60, margin: 0))
    #expect(worse.pValue < 0.001)
    #expect(abs(worse.z - -5.262348115842) < 1e-6)

    // A margin uses the unpooled SE: z = (47/60 − 48/60 + 0.05) / √(Σ p̂(1 − p̂)/n).
    let withMargin = try #require(Proportions.nonInferiority(
        candidateSuccesses: 47, candidateTrials: 60, incumbentSuccesses: 48, incumbentTrials: 60, margin: 0.05))
    let (pc, pi) = (47.0 / 60, 48.0 / 60)
    let unpooledZ = (pc - pi + 0.05) / (pc * (1 - pc) / 60 + pi * (1 - pi) / 60).squareRoot()
    #expect(abs(withMargin.z - unpooledZ) < 1e-12 && abs(withMargin.z - 0.449655863918) < 1e-6)

    // No variation on either side: the sign of the difference decides.
    let same = try #require(Proportions.nonInferiority(
        candidateSuccesses: 30, candidateTrials: 30, incumbentSuccesses: 30, incumbentTrials: 30, margin: 0))
    #expect(same.z == 0 && same.pValue == 0.5)
    let sameMargin = try #require(Proportions.nonInferiority(
        candidateSuccesses: 30, candidateTrials: 30, incumbentSuccesses: 30, incumbentTrials: 30, margin: 0.05))
    #expect(sameMargin.pValue == 1)
    let opposite = try #require(Proportions.nonInferiority(
        candidateSuccesses: 0, candidateTrials: 30, incumbentSuccesses: 30, incumbentTrials: 30, margin: 0.05))
    #expect(opposite.pValue == 0)

    #expect(Proportions.nonInferiority(
        candidateSuccesses: 0, candidateTrials: 0, incumbentSuccesses: 5, incumbentTrials: 10, margin: 0) == nil)
    #expect(Proportions.nonInferiority(
        candidateSuccesses: 11, candidateTrials: 10, incumbentSuccesses: 5, incumbentTrials: 10, margin: 0) == nil)
}

// MARK: - Model routes

/// Adds `runs` model records for one model of a workflow, each run costing `costPerRun`,
/// as the rollups hold them (one record per outcome, plus the run-level record).
private func addRoute(_ t: inout RollupTable, _ wf: String, _ model: String,
                      accepted: Int64, edited: Int64 = 0, rejected: Int64, escalated: Int64 = 0, pending: Int64 = 0,
                      costPerRun: Int64, minute: Int64 = 500) {
    let counts: [(Outcome, Int64)] = [(.accepted, accepted), (.edited, edited), (.rejected, rejected), (.escalated, escalated), (.pending, pending)]
    for (o, n) in counts where n > 0 {
        t.add(key(minute, wf, "", o, runLevel: true), measures(runs: n))
        t.add(key(minute, wf, model, o), measures(runs: n, calls: n, cost: n * costPerRun))
    }
}

private func routeGroup(_ wf: String, _ model: String, accepted: Int64, rejected: Int64, pending: Int64 = 0, cost: Int64) -> QueryGroup {
    var g = QueryGroup(workflow: wf, model: model)
    g.runsByOutcome[Outcome.accepted.rawValue] = accepted
    g.runsByOutcome[Outcome.rejected.rawValue] = rejected
    g.runsByOutcome[Outcome.pending.rawValue] = pending
    g.measures.costMicros = cost
    return g
}

/// The seeded window: "support-answer" (claude incumbent, gpt-4o-mini as good and 21× cheaper,
/// gpt-4.1 dearer than claude, a tiny model with 10 decided runs, runs with no LLM call) and
/// "coder" (a cheaper model far worse than the incumbent).
private func seededReport(_ settings: RouteSettings = RouteSettings()) -> RouteReport {
    var t = RollupTable()
    addRoute(&t, "support-answer", "claude", accepted: 40, edited: 8, rejected: 10, escalated: 2, costPerRun: 45_000)
    addRoute(&t, "support-answer", "gpt-4o-mini", accepted: 47, rejected: 13, costPerRun: 2_100)
    addRoute(&t, "support-answer", "gpt-4.1", accepted: 30, rejected: 10, costPerRun: 60_000)
    addRoute(&t, "support-answer", "tiny", accepted: 9, rejected: 1, pending: 5, costPerRun: 100)
    t.add(key(500, "support-answer", "", .accepted), measures(runs: 7))
    addRoute(&t, "coder", "sonnet", accepted: 54, rejected: 6, costPerRun: 30_000)
    addRoute(&t, "coder", "haiku", accepted: 27, rejected: 33, costPerRun: 5_000)
    return RouteReport.compute(query(t, [.workflow, .model]), settings: settings)
}

@Test func cheaperModelNotSignificantlyWorseIsRecommendedWithExactSavings() throws {
    let report = seededReport()
    let claude = try #require(report.routes.first { $0.workflow == "support-answer" && $0.model == "claude" })
    #expect(claude.incumbent && claude.runs == 60 && claude.decidedRuns == 60 && claude.acceptedRuns == 48)
    #expect(claude.costMicros == 2_700_000 && claude.costPerRunMicros == 45_000 && claude.costPerAcceptedMicros == 56_250)
    #expect(claude.acceptance == Proportions.wilson(successes: 48, trials: 60, confidence: 0.95))
    let mini = try #require(report.routes.first { $0.model == "gpt-4o-mini" })
    #expect(!mini.incumbent && mini.costMicros == 126_000 && mini.costPerRunMicros == 2_100)

    let rec = try #require(report.recommendations.first { $0.candidate == "gpt-4o-mini" })
    #expect(rec.workflow == "support-answer" && rec.incumbent == "claude")
    #expect(rec.verdict == .switchRecommended)
    #expect(rec.savingsMicros == (45_000 - 2_100) * 60 && rec.savingsMicros == 2_574_000)
    #expect(rec.incumbentAcceptance == 0.8 && rec.candidateAcceptance == 47.0 / 60)
    #expect(abs(rec.z - -0.224780594780) < 1e-9 && abs(rec.pValue - 0.411074981459) < 1e-9)
    #expect(rec.test.contains("one-sided two-proportion z-test (pooled SE)"), "\(rec.test)")
    #expect(rec.test.contains("alpha 0.05") && rec.test.contains("p = 0.4111 >= alpha, not significantly worse"), "\(rec.test)")
}

@Test func cheaperModelSignificantlyWorseIsNotRecommended() throws {
    let report = seededReport()
    let sonnet = try #require(report.routes.first { $0.model == "sonnet" })
    #expect(sonnet.incumbent)
    let rec = try #require(report.recommendations.first { $0.workflow == "coder" })
    #expect(rec.incumbent == "sonnet" && rec.candidate == "haiku")
    #expect(rec.verdict == .significantlyWorse)
    #expect(rec.pValue < 0.001 && abs(rec.z - -5.262348115842) < 1e-6)
    #expect(rec.savingsMicros == (30_000 - 5_000) * 60, "savings reported even when not recommended")
    #expect(rec.test.contains("< alpha, significantly worse"), "\(rec.test)")
}

@Test func candidateWithTooFewDecidedRunsIsNotTested() throws {
    let report = seededReport()
    let tiny = try #require(report.routes.first { $0.model == "tiny" })
    #expect(tiny.runs == 15 && tiny.decidedRuns == 10 && tiny.acceptedRuns == 9)
    #expect(tiny.costPerRunMicros == 100 && tiny.costPerAcceptedMicros == 1_500.0 / 9)
    let rec = try #require(report.recommendations.first { $0.candidate == "tiny" })
    #expect(rec.verdict == .tooFewRuns)
    #expect(rec.savingsMicros == (45_000 - 100) * 60)
    #expect(rec.test.hasPrefix("not tested: too few decided runs"), "\(rec.test)")
    #expect(rec.test.contains("30 decided runs needed"), "\(rec.test)")

    // Lowering the bar to 10 lets it be tested: 9/10 against 48/60 is not worse.
    let lenient = seededReport(RouteSettings(minDecidedRuns: 10))
    #expect(lenient.recommendations.first { $0.candidate == "tiny" }?.verdict == .switchRecommended)
    // Raising it above 60 leaves every comparison untested.
    let strict = seededReport(RouteSettings(minDecidedRuns: 61))
    #expect(strict.recommendations.allSatisfy { $0.verdict == .tooFewRuns })
}

@Test func noLLMGroupsIgnoredAndDearerModelsAreNotCandidates() throws {
    let report = seededReport()
    #expect(!report.routes.contains { $0.model.isEmpty }, "model \"\" = runs with no LLM call")
    // Routes: by workflow, then cost descending, then model.
    #expect(report.routes.map { "\($0.workflow)/\($0.model)" } == [
        "coder/sonnet", "coder/haiku",
        "support-answer/claude", "support-answer/gpt-4.1", "support-answer/gpt-4o-mini", "support-answer/tiny",
    ])
    let dearer = try #require(report.routes.first { $0.model == "gpt-4.1" })
    #expect(!dearer.incumbent && dearer.costPerRunMicros == 60_000)
    #expect(!report.recommendations.contains { $0.candidate == "gpt-4.1" || $0.candidate == "claude" || $0.candidate.isEmpty })
    // Recommendations: every cheaper candidate, by savings descending.
    #expect(report.recommendations.map(\.candidate) == ["tiny", "gpt-4o-mini", "haiku"])
    #expect(report.routes.filter(\.incumbent).map(\.model) == ["sonnet", "claude"])
}

@Test func marginTurnsAModestDropIntoANonInferiorCandidate() throws {
    let groups = [
        routeGroup("triage", "big", accepted: 54, rejected: 6, cost: 600_000),
        routeGroup("triage", "small", accepted: 44, rejected: 16, cost: 60_000),
    ]
    // Plainly: 44/60 against 54/60 is significantly worse (p ≈ 0.0092).
    let plain = try #require(RouteReport.compute(groups, settings: RouteSettings()).recommendations.first)
    #expect(plain.verdict == .significantlyWorse && abs(plain.pValue - 0.009156992055) < 1e-9)
    // Allowing five points: p ≈ 0.0454, still below alpha (the test is one-sided, so a
    // two-sided reading at 0.05 would not call it worse).
    let five = try #require(RouteReport.compute(groups, settings: RouteSettings(margin: 0.05)).recommendations.first)
    #expect(five.verdict == .significantlyWorse && abs(five.pValue - 0.045405945910) < 1e-9)
    // Allowing ten points (unpooled SE): p ≈ 0.167, not significantly worse than 90% − 10.
    let lenient = try #require(RouteReport.compute(groups, settings: RouteSettings(margin: 0.10)).recommendations.first)
    #expect(lenient.verdict == .switchRecommended && abs(lenient.pValue - 0.166931972676) < 1e-9)
    #expect(lenient.test.contains("(unpooled SE)") && lenient.test.contains("incumbent's - 0.1"), "\(lenient.test)")
    #expect(lenient.savingsMicros == (10_000 - 1_000) * 60)
    // A stricter confidence needs stronger evidence to call it worse.
    let loose = try #require(RouteReport.compute(groups, settings: RouteSettings(confidence: 0.999)).recommendations.first)
    #expect(loose.verdict == .switchRecommended && loose.test.contains("alpha 0.001"), "\(loose.test)")
}

@Test func runUsingTwoModelsCountsUnderBothWithItsCostShare() throws {
    var t = RollupTable()
    twoModelRun(into: &t)
    twoModelRun(into: &t, outcome: .rejected)
    let report = RouteReport.compute(query(t, [.workflow, .model]), settings: RouteSettings())
    #expect(report.routes.map(\.model) == ["a", "b"])
    #expect(report.routes.map(\.runs) == [2, 2])
    #expect(report.routes.map(\.costPerRunMicros) == [300, 50])
    // Tied on runs, the dearer model is the incumbent.
    #expect(report.routes.map(\.incumbent) == [true, false])
    let rec = try #require(report.recommendations.first)
    #expect(rec.candidate == "b" && rec.verdict == .tooFewRuns && rec.savingsMicros == (300 - 50) * 2)
}

@Test func incumbentTiesDuplicateGroupsAndSavingsRounding() throws {
    // Equal runs and cost: the incumbent is the first name.
    let tie = RouteReport.compute([
        routeGroup("w", "zeta", accepted: 3, rejected: 0, cost: 300),
        routeGroup("w", "alpha", accepted: 3, rejected: 0, cost: 300),
    ], settings: RouteSettings())
    #expect(tie.routes.filter(\.incumbent).map(\.model) == ["alpha"])
    #expect(tie.recommendations.isEmpty, "equal cost per run is not cheaper")

    // Groups for the same workflow and model (e.g. per service) add up; savings
    // (100/3 − 1/2) × 3 = 98.5 round half away from zero to 99.
    let split = RouteReport.compute([
        routeGroup("w", "big", accepted: 1, rejected: 0, cost: 40),
        routeGroup("w", "big", accepted: 1, rejected: 0, pending: 1, cost: 60),
        routeGroup("w", "small", accepted: 2, rejected: 0, cost: 1),
        routeGroup("w", "", accepted: 50, rejected: 0, cost: 0),
    ], settings: RouteSettings(minDecidedRuns: 0))
    #expect(split.routes.map(\.model) == ["big", "small"])
    #expect(split.routes[0].runs == 3 && split.routes[0].costMicros == 100 && split.routes[0].incumbent)
    let rec = try #require(split.recommendations.first)
    #expect(rec.savingsMicros == 99)

    // Invalid settings: no recommendations, and validate() says why.
    let bad = RouteSettings(confidence: 1.5)
    #expect(throws: QueryError.self) { try bad.validate() }
    #expect(RouteReport.compute([
        routeGroup("w", "big", accepted: 50, rejected: 10, cost: 6_000),
        routeGroup("w", "small", accepted: 50, rejected: 10, cost: 60),
    ], settings: bad).recommendations.isEmpty)
}
