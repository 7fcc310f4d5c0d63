import LedgerCore
import Rollups

/// The scorecard (`spanledger scorecard`, `GET /api/v1/scorecard`): per business function
/// and declared workflow, accepted outcomes against the quarterly target, spend against
/// the budget, cost per accepted outcome and its trend; then the spend nobody declared an
/// outcome for, and the spend of one-off workflows.
public struct Scorecard: Sendable {
    public struct WorkflowLine: Sendable {
        public var workflow: String
        public var declaration: DeclaredWorkflow?
        public var runs: Int64
        public var accepted: Int64
        public var decided: Int64
        public var costMicros: Int64
        /// Cost per accepted outcome over the window; nil with none accepted.
        public var costPerAcceptedMicros: Double?
        /// Cost per accepted outcome over the last 7 days and the 7 days before.
        public var recentCostPerAccepted: Double?
        public var previousCostPerAccepted: Double?
        /// Relative change from the previous 7 days to the last 7 (−0.1 = 10% cheaper per outcome).
        public var trend: Double? {
            guard let r = recentCostPerAccepted, let p = previousCostPerAccepted, p > 0 else { return nil }
            return r / p - 1
        }
        /// Accepted outcomes as a fraction of the quarterly target, and of the target prorated to the time elapsed.
        public var targetAttainment: Double?
        public var pace: Double?
        public var budgetUsed: Double?
    }

    public struct FunctionLine: Sendable {
        public var function: String
        public var workflows: [WorkflowLine]
        public var accepted: Int64 { workflows.reduce(0) { $0 + $1.accepted } }
        public var costMicros: Int64 { workflows.reduce(0) { $0 + $1.costMicros } }
        public var target: Int64? { workflows.compactMap { $0.declaration?.quarterlyTarget }.reduce(nil) { ($0 ?? 0) + $1 } }
        public var budgetMicros: Int64? { workflows.compactMap { $0.declaration?.quarterlyBudgetMicros }.reduce(nil) { ($0 ?? 0) + $1 } }
        public var costPerAcceptedMicros: Double? { accepted > 0 ? Double(costMicros) / Double(accepted) : nil }
    }

    /// The function of workflows the registry does not declare (`group_by=function`).
    public static let undeclaredFunction = "(undeclared)"

    public var fromUnixNano: Int64
    public var toUnixNano: Int64
    /// Fraction of the window's quarter elapsed at `toUnixNano` (targets and budgets are per quarter).
    public var quarterElapsed: Double
    public var totalCostMicros: Int64
    public var functions: [FunctionLine]
    public var undeclared: [WorkflowLine]
    public var oneOff: [WorkflowLine]
    public var oneOffMaxRuns: Int64

    public var undeclaredCostMicros: Int64 { undeclared.reduce(0) { $0 + $1.costMicros } }
    public var oneOffCostMicros: Int64 { oneOff.reduce(0) { $0 + $1.costMicros } }
    public func share(_ micros: Int64) -> Double? { totalCostMicros > 0 ? Double(micros) / Double(totalCostMicros) : nil }

    /// The UTC calendar quarter holding `unixNano`, as [start, end).
    public static func quarter(containing unixNano: Int64) -> (Int64, Int64) {
        let day: Int64 = 86_400_000_000_000
        let days = Int(unixNano / day)
        let c = RFC3339.civilFromDays(days)
        let firstMonth = (c.month - 1) / 3 * 3 + 1
        let start = RFC3339.daysFromCivil(year: c.year, month: firstMonth, day: 1)
        let end = firstMonth == 10 ? RFC3339.daysFromCivil(year: c.year + 1, month: 1, day: 1) : RFC3339.daysFromCivil(year: c.year, month: firstMonth + 3, day: 1)
        return (Int64(start) * day, Int64(end) * day)
    }

    /// Builds the scorecard from rollups grouped by workflow: over the window, over the
    /// last 7 days and over the 7 days before (all ending at `toUnixNano`).
    public static func compute(registry: OutcomeRegistry, window: [QueryGroup], recent: [QueryGroup], previous: [QueryGroup],
                               fromUnixNano: Int64, toUnixNano: Int64) -> Scorecard {
        let (qStart, qEnd) = quarter(containing: max(fromUnixNano, toUnixNano - 1))
        let elapsed = min(1, max(0, Double(toUnixNano - qStart) / Double(qEnd - qStart)))
        func perAccepted(_ groups: [QueryGroup], _ workflow: String) -> Double? {
            groups.first { $0.workflow == workflow }?.costPerAcceptedMicros
        }
        var lines: [WorkflowLine] = []
        for g in window {
            guard let w = g.workflow else { continue }
            let d = registry.declaration(of: w)
            var line = WorkflowLine(
                workflow: w, declaration: d, runs: g.runs, accepted: g.acceptedRuns, decided: g.decidedRuns, costMicros: g.measures.costMicros,
                costPerAcceptedMicros: g.costPerAcceptedMicros, recentCostPerAccepted: perAccepted(recent, w), previousCostPerAccepted: perAccepted(previous, w))
            if let target = d?.quarterlyTarget {
                line.targetAttainment = Double(line.accepted) / Double(target)
                line.pace = elapsed > 0 ? Double(line.accepted) / (Double(target) * elapsed) : nil
            }
            if let budget = d?.quarterlyBudgetMicros { line.budgetUsed = Double(line.costMicros) / Double(budget) }
            lines.append(line)
        }
        lines.sort { ($0.costMicros, $1.workflow) > ($1.costMicros, $0.workflow) }
        var byFunction: [String: [WorkflowLine]] = [:]
        for l in lines { if let f = l.declaration?.function { byFunction[f, default: []].append(l) } }
        let functions = byFunction.keys.sorted().map { FunctionLine(function: $0, workflows: byFunction[$0]!) }
            .sorted { ($0.costMicros, $1.function) > ($1.costMicros, $0.function) }
        return Scorecard(
            fromUnixNano: fromUnixNano, toUnixNano: toUnixNano, quarterElapsed: elapsed, totalCostMicros: lines.reduce(0) { $0 + $1.costMicros },
            functions: functions, undeclared: lines.filter { $0.declaration == nil }, oneOff: lines.filter { $0.runs < registry.oneOffMaxRuns },
            oneOffMaxRuns: registry.oneOffMaxRuns)
    }
}
