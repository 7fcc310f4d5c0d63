@testable import Alerting
import Testing

@Suite struct AlertConfigurationTests {
    @Test func parsesEveryRuleKindWithItsDefaults() throws {
        let c = try AlertConfiguration.parse(yaml: """
            evaluation_interval: 30s
            hooks:
              - {name: am, type: webhook, url: "http://127.0.0.1:9093/hook", headers: {X-Token: abc}}
              - {name: run, type: exec, command: [/bin/cat], timeout: 3s}
            default_hooks: [am]
            functions: {support: ["support-*"]}
            rules:
              - {name: spike, type: token_spike, step: 1m, window: 2h, factor: 2.5}
              - {name: budget, type: spend_budget, function: support, period: month, budget_usd: 1200.50, hooks: [run]}
              - {name: acc, type: acceptance_drop, drop: 0.2}
              - {name: storm, type: retry_storm}
              - {name: unpriced, type: unpriced_model}
            """, source: "test")
        #expect(c.evaluationIntervalNano == 30_000_000_000)
        #expect(c.hooks.map(\.name) == ["am", "run"])
        #expect(c.hooks[0].headers == ["X-Token": "abc"])
        #expect(c.hooks[1].timeoutNano == 3_000_000_000)
        let spike = c.rules[0]
        #expect(spike.spike.windowSteps == 120 && spike.spike.factor == 2.5 && spike.spike.stepsPerDay == 1440)
        let budget = c.rules[1]
        #expect(budget.budgetMicros == 1_200_500_000 && budget.period == .month && c.hooks(for: budget) == ["run"])
        #expect(budget.watches("support-bot", functions: c.functions) && !budget.watches("sales-bot", functions: c.functions))
        #expect(c.hooks(for: c.rules[2]) == ["am"])
        #expect(c.rules[3].windowNano == 300_000_000_000 && c.rules[3].ratio == 0.3)
        #expect(c.rules[4].windowNano == 3_600_000_000_000)
        #expect(c.function(of: "support-bot") == "support")
    }

    @Test(arguments: [
        ("rules:\n  - {name: a, type: retry_storm, ratio: -1}\n", "ratio must be positive"),
        ("rules:\n  - {name: a, type: acceptance_drop}\n", "needs floor"),
        ("rules:\n  - {name: a, type: spend_budget, budget_usd: 5, warning: 0.9, critical: 0.5}\n", "warning <= critical"),
        ("rules:\n  - {name: a, type: unpriced_model}\n  - {name: a, type: unpriced_model}\n", "a second rule named 'a'"),
        ("hooks:\n  - {name: h, type: exec}\n", "needs a command"),
        ("hooks:\n  - {name: h, type: slack}\n", "needs a url"),
        ("rules:\n  - {name: a, type: token_spike, window: 90s}\n", "whole number of steps"),
        ("rules:\n  - {name: a, type: spend_budget, budget_usd: 5, function: ops}\n", "no function 'ops'"),
        ("colour: blue\n", "unknown key 'colour'"),
    ])
    func refusesWithTheReason(_ yaml: String, _ reason: String) {
        do {
            _ = try AlertConfiguration.parse(yaml: yaml, source: "rules.yaml")
            Issue.record("accepted: \(yaml)")
        } catch {
            #expect(error.message.contains(reason), "\(error.message)")
            #expect(error.message.hasPrefix("alert rules file rules.yaml"))
        }
    }

    @Test func fingerprintsDependOnLabelsOnly() {
        let a = Alert.fingerprint(["alertname": "x", "workflow": "w"])
        #expect(a == Alert.fingerprint(["workflow": "w", "alertname": "x"]))
        #expect(a != Alert.fingerprint(["alertname": "x", "workflow": "v"]))
        #expect(a != Alert.fingerprint(["alertname": "xw", "orkflow": ""]))
        #expect(a.count == 16)
    }

    @Test func budgetPeriodsAreUTCDaysAndMonths() {
        // 2026-02-14T10:00:00Z
        let now: Int64 = 1_771_063_200 * 1_000_000_000
        let (ds, de) = AlertEngine.period(.day, containing: now)
        #expect(ds == 1_771_027_200 * 1_000_000_000 && de - ds == 86_400_000_000_000)
        let (ms, me) = AlertEngine.period(.month, containing: now)
        #expect(ms == 1_769_904_000 * 1_000_000_000) // 2026-02-01
        #expect(me - ms == 28 * 86_400_000_000_000)
    }
}
