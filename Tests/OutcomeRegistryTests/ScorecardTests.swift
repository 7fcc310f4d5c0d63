import LedgerCore
@testable import OutcomeRegistry
import Rollups
import Testing

func group(_ workflow: String, accepted: Int64, rejected: Int64 = 0, pending: Int64 = 0, cost: Int64) -> QueryGroup {
    var g = QueryGroup(workflow: workflow)
    g.runsByOutcome[Outcome.accepted.rawValue] = accepted
    g.runsByOutcome[Outcome.rejected.rawValue] = rejected
    g.runsByOutcome[Outcome.pending.rawValue] = pending
    g.measures.costMicros = cost
    return g
}

@Suite struct ScorecardTests {
    static let yaml = """
        one_off_max_runs: 3
        workflows:
          - {name: support-answer, outcome: "A customer's question answered correctly", function: support, owner: ana,
             quarterly_target: 100, quarterly_budget_usd: 50}
          - {name: "lead-*", outcome: "A qualified lead handed to sales", function: Sales, owner: bo}
        """

    @Test func parsesDeclarationsAndGlobs() throws {
        let r = try OutcomeRegistry.parse(yaml: Self.yaml, source: "r.yaml")
        #expect(r.oneOffMaxRuns == 3)
        #expect(r.function(of: "support-answer") == "support")
        #expect(r.function(of: "lead-enrich") == "sales")
        #expect(r.function(of: "other") == nil)
        #expect(r.declaration(of: "support-answer")?.quarterlyBudgetMicros == 50_000_000)
        #expect(r.functionPatterns == ["support": ["support-answer"], "sales": ["lead-*"]])
    }

    @Test(arguments: [
        ("workflows:\n  - {name: a, outcome: 'Does a thing well', function: cooking, owner: x}\n", "'cooking' is not one of"),
        ("workflows:\n  - {name: a, outcome: 'Done', function: sales, owner: x}\n", "one sentence"),
        ("workflows:\n  - {name: a, outcome: 'Does a thing well', function: sales}\n", "workflows[0].owner: required"),
        ("workflows:\n  - {name: a, outcome: 'Does a thing well', function: sales, owner: x, budget: 3}\n", "unknown key 'budget'"),
        ("workflows:\n  - {name: a, outcome: 'Does a thing well', function: sales, owner: x}\n  - {name: a, outcome: 'Does it again', function: sales, owner: y}\n",
         "already declared by workflows[0]"),
        ("workflows:\n  - {name: a, outcome: 'Does a thing well', function: sales, owner: x, quarterly_target: -4}\n", "quarterly_target"),
    ])
    func refusesWithTheReason(_ yaml: String, _ reason: String) {
        do {
            _ = try OutcomeRegistry.parse(yaml: yaml, source: "r.yaml")
            Issue.record("accepted \(yaml)")
        } catch {
            #expect(error.message.contains(reason), "\(error.message)")
        }
    }

    @Test func scorecardAgainstTargetsBudgetsAndTrend() throws {
        let r = try OutcomeRegistry.parse(yaml: Self.yaml, source: "r.yaml")
        // 2026-11-16T00:00:00Z: 46 of the quarter's 92 days gone (Oct 1 .. Jan 1).
        let to: Int64 = 1_763_251_200 * 1_000_000_000
        let (qs, qe) = Scorecard.quarter(containing: to)
        #expect(qs == 1_759_276_800 * 1_000_000_000 && (qe - qs) / 86_400_000_000_000 == 92)
        let window = [group("support-answer", accepted: 40, rejected: 10, cost: 20_000_000),
                      group("lead-enrich", accepted: 5, cost: 1_000_000),
                      group("mystery-bot", accepted: 0, pending: 2, cost: 4_000_000)]
        let card = Scorecard.compute(registry: r, window: window,
                                     recent: [group("support-answer", accepted: 10, cost: 4_000_000)],
                                     previous: [group("support-answer", accepted: 10, cost: 5_000_000)],
                                     fromUnixNano: qs, toUnixNano: to)
        #expect(abs(card.quarterElapsed - 0.5) < 1e-9)
        #expect(card.totalCostMicros == 25_000_000)
        #expect(card.functions.map(\.function) == ["support", "sales"])
        let s = card.functions[0].workflows[0]
        #expect(s.targetAttainment == 0.4 && s.pace == 0.8 && s.budgetUsed == 0.4)
        #expect(s.costPerAcceptedMicros == 500_000)
        #expect(abs(s.trend! - (-0.2)) < 1e-12)
        #expect(card.undeclared.map(\.workflow) == ["mystery-bot"] && card.share(card.undeclaredCostMicros) == 0.16)
        #expect(card.oneOff.map(\.workflow) == ["mystery-bot"])
        #expect(card.functions[1].target == nil && card.functions[1].costPerAcceptedMicros == 200_000)
    }
}
