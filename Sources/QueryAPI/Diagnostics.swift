import LedgerCore
import Rollups

/// `GET /api/v1/series`: measures per time step, one series per group, every step present
/// (zeros where nothing ran) so trends chart without gaps (Schemas/query-api.md).
public enum SeriesJSON {
    public static let maxPoints = 200_000

    struct SeriesKey: Hashable {
        var workflow: String?
        var model: String?
        var outcome: Outcome?
        var service: String?
        var agent: String?
        var function: String?
    }

    public static func render(_ groups: [QueryGroup], query: RollupQuery, step: Int64) -> String {
        let start = query.windowStartUnix - ((query.windowStartUnix % step) + step) % step, end = query.windowEndUnix
        var bySeries: [SeriesKey: [Int64: QueryGroup]] = [:]
        var order: [SeriesKey] = []
        var totalCost: [SeriesKey: Int64] = [:]
        for g in groups {
            let k = SeriesKey(workflow: g.workflow, model: g.model, outcome: g.outcome, service: g.service, agent: g.agent, function: g.function)
            if bySeries[k] == nil { order.append(k) }
            bySeries[k, default: [:]][g.bucketStartUnix ?? start] = g
            totalCost[k, default: 0] += g.measures.costMicros
        }
        // Series by total cost over the window, then by key.
        order.sort { a, b in
            if totalCost[a]! != totalCost[b]! { return totalCost[a]! > totalCost[b]! }
            return (a.function ?? "", a.workflow ?? "", a.model ?? "", a.outcome?.rawValue ?? -1, a.service ?? "", a.agent ?? "")
                < (b.function ?? "", b.workflow ?? "", b.model ?? "", b.outcome?.rawValue ?? -1, b.service ?? "", b.agent ?? "")
        }
        if order.isEmpty && query.groupBy.isEmpty { order = [SeriesKey()] }
        var w = JSONWriter()
        w.objectStart()
        w.field("from", RFC3339.format(unixNano: start * 1_000_000_000))
        w.field("to", RFC3339.format(unixNano: end * 1_000_000_000))
        w.field("step_seconds", step)
        w.key("series")
        w.arrayStart()
        for k in order {
            w.objectStart()
            if let v = k.function { w.field("function", v) }
            if let v = k.workflow { w.field("workflow", v) }
            if let v = k.model { w.field("model", v) }
            if let v = k.outcome { w.field("outcome", v.name) }
            if let v = k.service { w.field("service", v) }
            if let v = k.agent { w.field("agent", v) }
            w.key("points")
            w.arrayStart()
            var t = start
            while t < end {
                w.objectStart()
                w.field("t", RFC3339.format(unixNano: t * 1_000_000_000))
                RollupJSON.writeMeasures(bySeries[k]?[t] ?? QueryGroup(), to: &w)
                w.objectEnd()
                t += step
            }
            w.arrayEnd()
            w.objectEnd()
        }
        w.arrayEnd()
        w.objectEnd()
        return w.text
    }
}

/// `GET /api/v1/top`: the diagnostics SREs start from — highest spend, most retries,
/// lowest acceptance, largest change of spend against the previous window of the same length.
public enum TopDiagnostics {
    public enum Ranking: String, Sendable, CaseIterable {
        case spend, retries, acceptance, change
    }

    public struct Item: Sendable {
        public var group: QueryGroup
        public var previous: QueryGroup?
        public var value: Double
        public var changeMicros: Int64 { group.measures.costMicros - (previous?.measures.costMicros ?? 0) }
    }

    /// Ranks `current` groups (one dimension) against `previous` ones; acceptance needs
    /// `minDecided` reviewed runs to rank.
    public static func rank(_ by: Ranking, current: [QueryGroup], previous: [QueryGroup], limit: Int, minDecided: Int64) -> [Item] {
        func key(_ g: QueryGroup) -> String { [g.function, g.workflow, g.model, g.service, g.agent].compactMap { $0 }.joined(separator: "\u{1f}") }
        var before: [String: QueryGroup] = [:]
        for g in previous { before[key(g)] = g }
        var items: [Item] = []
        var seen = Set<String>()
        for g in current {
            seen.insert(key(g))
            let p = before[key(g)]
            switch by {
            case .spend: items.append(Item(group: g, previous: p, value: Double(g.measures.costMicros) / 1e6))
            case .retries where g.measures.retries > 0: items.append(Item(group: g, previous: p, value: Double(g.measures.retries)))
            case .acceptance where g.decidedRuns >= max(1, minDecided): items.append(Item(group: g, previous: p, value: g.acceptanceRate ?? 0))
            case .change: items.append(Item(group: g, previous: p, value: Double(g.measures.costMicros - (p?.measures.costMicros ?? 0)) / 1e6))
            default: break
            }
        }
        if by == .change {
            // Groups that spent before and nothing now changed too.
            for (k, p) in before where !seen.contains(k) {
                var empty = QueryGroup(workflow: p.workflow, model: p.model, outcome: nil, service: p.service, agent: p.agent)
                empty.function = p.function
                items.append(Item(group: empty, previous: p, value: -Double(p.measures.costMicros) / 1e6))
            }
        }
        func name(_ i: Item) -> String { key(i.group) }
        switch by {
        case .spend, .retries: items.sort { ($0.value, name($1)) > ($1.value, name($0)) }
        case .acceptance: items.sort { ($0.value, name($0)) < ($1.value, name($1)) }
        case .change: items.sort { (abs($0.value), name($1)) > (abs($1.value), name($0)) }
        }
        return Array(items.prefix(limit))
    }

    public static func render(_ items: [Item], by: Ranking, fromUnixNano: Int64, toUnixNano: Int64, previousFromUnixNano: Int64) -> String {
        var w = JSONWriter()
        w.objectStart()
        w.field("from", RFC3339.format(unixNano: fromUnixNano))
        w.field("to", RFC3339.format(unixNano: toUnixNano))
        w.field("previous_from", RFC3339.format(unixNano: previousFromUnixNano))
        w.field("by", by.rawValue)
        w.key("items")
        w.arrayStart()
        for i in items {
            let g = i.group
            w.objectStart()
            RollupJSON.writeKeys(g, to: &w)
            w.key("value"); w.fixed(i.value, places: 6)
            w.field("runs", g.runs)
            w.key("cost_usd"); w.number(literal: Money.usdString(micros: g.measures.costMicros))
            w.key("acceptance_rate"); w.fixed(g.acceptanceRate, places: 6)
            w.field("decided", g.decidedRuns)
            w.field("retries", g.measures.retries)
            w.key("retry_rate"); w.fixed(g.measures.llmCalls > 0 ? Double(g.measures.retries) / Double(g.measures.llmCalls) : nil, places: 6)
            w.key("previous_cost_usd"); w.number(literal: Money.usdString(micros: i.previous?.measures.costMicros ?? 0))
            w.key("change_usd"); w.number(literal: Money.usdString(micros: i.changeMicros))
            w.key("previous_acceptance_rate"); w.fixed(i.previous?.acceptanceRate, places: 6)
            w.objectEnd()
        }
        w.arrayEnd()
        w.objectEnd()
        return w.text
    }
}
