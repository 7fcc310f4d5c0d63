import ArgumentParser
import Foundation
import LedgerCore
import LedgerStore
import QueryAPI
import Rollups

struct QueryCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "query", abstract: "Rollups per workflow, model, outcome or service over a time window.")

    @OptionGroup var source: SourceOptions
    @Option(help: "Window start: a duration back from now (1h, 24h, 7d), a date or RFC 3339 time.") var since = "24h"
    @Option(help: "Window end (default now).") var until: String?
    @Option(name: .customLong("group-by"), help: "Comma list of workflow, model, outcome, service, agent (agent not with model).") var groupBy: String?
    @Option(help: "Only this workflow.") var workflow: String?
    @Option(help: "Only this model.") var model: String?
    @Option(help: "Only this service.") var service: String?
    @Option(help: "table, json or csv.") var format: OutputFormat = .table
    @Option(name: .customLong("merge-server"), parsing: .singleValue,
            help: "Also ask this node's query API and merge its rollups with --server's, repeatable (nodes behind a load balancer that routes by trace ID).")
    var mergeServers: [String] = []

    func validate() throws {
        if !mergeServers.isEmpty && source.data != nil { throw ValidationError("--merge-server merges servers' rollups; not with --data") }
        var asked: Set<String> = [source.baseURL]
        for server in mergeServers where !asked.insert(APIClient.baseURL(server)).inserted {
            throw ValidationError("\(server) is named twice (--server or --merge-server): its runs would be counted twice")
        }
    }

    func run() async throws {
        let json: Data
        if !mergeServers.isEmpty {
            json = Data(try await merged().utf8)
        } else if let dir = source.data {
            let query = try rollupQuery()
            let (table, damaged) = DataDirectory(path: dir).loadRollups()
            for d in damaged { FileHandle.standardError.write(Data("warning: skipped damaged segment \(d)\n".utf8)) }
            json = Data(Self.answer(query, over: table).utf8)
        } else {
            json = try await APIClient.get(source.baseURL, "/api/v1/rollups" + APIClient.queryString([
                ("since", since), ("until", until), ("group_by", groupBy), ("workflow", workflow), ("model", model), ("service", service),
            ]))
        }
        print(try Self.format(json, as: format, groupBy: (try? GroupDimension.parseList(groupBy ?? "")) ?? []), terminator: "")
    }

    /// The options as a query, its window fixed now.
    func rollupQuery() throws -> RollupQuery {
        do {
            return try QueryParameters.rollupQuery(since: since, until: until, groupBy: groupBy, workflow: workflow, model: model,
                                                   service: service, now: WallClock.nowUnixNano())
        } catch { throw ValidationError(error.message) }
    }

    /// The query answered here, over rollups read from disk or fetched from servers, as
    /// `/api/v1/rollups` would answer it.
    static func answer(_ query: RollupQuery, over table: RollupTable) -> String {
        RollupJSON.render(query.run(over: table.records.lazy.map { (key: $0.key, value: $0.value) }), query: query)
    }

    /// The window's rollup records from every server, merged (each run is on one node: a
    /// sum), then queried here as one node would answer: the window is fixed once, so
    /// every server returns the same buckets.
    func merged() async throws -> String {
        let query = try rollupQuery()
        let window = APIClient.queryString([("since", RFC3339.format(unixNano: query.fromUnixNano)), ("until", RFC3339.format(unixNano: query.toUnixNano))])
        var table = RollupTable()
        for server in [source.baseURL] + mergeServers.map({ APIClient.baseURL($0) }) {
            let body = try await APIClient.get(server, "/api/v1/rollups/records" + window)
            do {
                table.merge(try RollupSegmentCodec.decode([UInt8](body), path: server))
            } catch {
                throw ClientError(description: "\(server) answered rollup records that cannot be read: \(error)")
            }
        }
        return Self.answer(query, over: table)
    }

    static let measureColumns: [(key: String, title: String)] = [
        ("runs", "RUNS"), ("accepted", "ACCEPTED"), ("edited", "EDITED"), ("rejected", "REJECTED"), ("escalated", "ESCALATED"),
        ("pending", "PENDING"), ("acceptance_rate", "ACCEPT%"), ("cost_usd", "COST $"), ("cost_per_accepted_usd", "$/ACCEPTED"),
        ("llm_calls", "LLM"), ("tool_calls", "TOOLS"), ("input_tokens", "IN TOK"), ("cached_input_tokens", "CACHED"),
        ("output_tokens", "OUT TOK"), ("reasoning_tokens", "REASON"), ("unpriced_tokens", "UNPRICED"), ("retries", "RETRIES"),
        ("errors", "ERRORS"), ("rework_runs", "REWORK"), ("rework_cost_usd", "REWORK $"), ("latency_p50_ms", "P50 ms"), ("latency_p95_ms", "P95 ms"),
    ]

    /// A group's field as text; money always in fixed six-decimal USD (never 2.1e-05).
    static func cell(_ g: [String: Any], _ key: String) -> String {
        if key == "cost_usd" || key == "cost_per_accepted_usd" || key == "rework_cost_usd", let n = g[key] as? NSNumber {
            return String(format: "%.6f", n.doubleValue)
        }
        return TableText.text(g[key])
    }

    static func format(_ json: Data, as format: OutputFormat, groupBy: [GroupDimension]) throws -> String {
        if format == .json { return String(decoding: json, as: UTF8.self) + "\n" }
        guard let root = try JSONSerialization.jsonObject(with: json) as? [String: Any], let groups = root["groups"] as? [[String: Any]] else {
            throw ClientError(description: "unexpected answer from the server")
        }
        let keys = groupBy.map(\.rawValue)
        if format == .csv {
            let all = keys + ["runs", "accepted", "edited", "rejected", "escalated", "pending", "acceptance_rate", "llm_calls", "tool_calls",
                              "input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "reasoning_tokens",
                              "unpriced_tokens", "cost_usd", "cost_micros", "cost_per_accepted_usd", "retries", "errors",
                              "incomplete_runs", "rework_runs", "rework_rate", "rework_cost_usd", "latency_p50_ms", "latency_p95_ms"]
            return TableText.csv(headers: all, rows: groups.map { g in all.map { k in cell(g, k) == "-" ? "" : cell(g, k) } })
        }
        let columns = keys.map { (key: $0, title: $0.uppercased()) } + measureColumns
        let rows = groups.map { g in
            columns.map { c -> String in
                if c.key == "acceptance_rate", let r = g[c.key] as? Double { return String(format: "%.1f%%", r * 100) }
                if c.key == "model", let m = g[c.key] as? String, m.isEmpty { return "(none)" }
                if c.key == "agent", let m = g[c.key] as? String, m.isEmpty { return "(workflow)" }
                return cell(g, c.key)
            }
        }
        let header = "window \(root["from"] ?? "?") .. \(root["to"] ?? "?")\n"
        if rows.isEmpty { return header + "no runs in this window\n" }
        return header + TableText.render(headers: columns.map(\.title), rows: rows, rightAligned: Set(keys.count..<columns.count))
    }
}

struct TraceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace", abstract: "One run's tree: each LLM call's model, tokens and cost, tool calls, outcome and total cost.")

    @Argument(help: "Trace ID (32 hex digits).") var traceID: String
    @OptionGroup var source: SourceOptions
    @Option(help: "table or json.") var format: OutputFormat = .table

    func run() async throws {
        guard let id = TraceID(hex: traceID) else { throw ValidationError("'\(traceID)' is not a trace ID (32 hex digits)") }
        let json: Data
        if let dir = source.data {
            let directory = DataDirectory(path: dir)
            guard let entry = directory.loadIndex().entries[id] else { throw ClientError(description: "no run with trace ID \(id.hex) in \(dir)") }
            json = Data(TraceJSON.render(entry: entry, spans: directory.loadDetail(id)).utf8)
        } else {
            json = try await APIClient.get(source.baseURL, "/api/v1/traces/\(id.hex)")
        }
        if format == .json {
            print(String(decoding: json, as: UTF8.self))
            return
        }
        guard let run = try JSONSerialization.jsonObject(with: json) as? [String: Any], let spans = run["spans"] as? [[String: Any]] else {
            throw ClientError(description: "unexpected answer from the server")
        }
        if format == .csv {
            // One row per span, every field of the JSON answer's spans.
            let columns = ["span_id", "parent_span_id", "name", "kind", "model", "agent", "input_tokens", "cached_input_tokens", "cache_write_tokens",
                           "output_tokens", "reasoning_tokens", "cost_micros", "priced", "explicit_cost", "error", "retry", "start_offset_ms", "duration_ms"]
            let flags: Set<String> = ["priced", "explicit_cost", "error", "retry"]
            print(TableText.csv(headers: columns, rows: spans.map { s in
                columns.map { c in
                    if flags.contains(c) { return (s[c] as? Bool) == true ? "true" : "false" }
                    return TableText.text(s[c]) == "-" ? "" : TableText.text(s[c])
                }
            }), terminator: "")
            return
        }
        print("trace    \(run["trace_id"] ?? "")")
        print("workflow \(run["workflow"] ?? "")   service \(TableText.text(run["service"]))   start \(run["start"] ?? "")   duration \(TableText.text(run["duration_ms"])) ms")
        print("outcome  \(run["outcome"] ?? "")   cost $\(QueryCommand.cell(run, "cost_usd"))   LLM calls \(TableText.text(run["llm_calls"]))   tool calls \(TableText.text(run["tool_calls"]))   unpriced tokens \(TableText.text(run["unpriced_tokens"]))\((run["incomplete"] as? Bool) == true ? "   (incomplete: root span missing)" : "")")
        print("")
        // Depth-first tree order, each span once (by position: repeated span IDs are all
        // listed). Spans whose parents form a cycle, or that are their own parent, are
        // reached from no root: they follow the tree at the top level, as on the dashboard.
        var children: [String: [Int]] = [:]
        let ids = Set(spans.compactMap { $0["span_id"] as? String })
        for (i, s) in spans.enumerated() {
            let parent = s["parent_span_id"] as? String ?? ""
            children[ids.contains(parent) ? parent : "", default: []].append(i)
        }
        var rows: [[String]] = []
        var seen = Set<Int>()
        func walk(_ list: [Int], depth: Int) {
            for i in list where seen.insert(i).inserted {
                let s = spans[i]
                let kind = s["kind"] as? String ?? ""
                let isLLM = kind == "llm"
                var flags: [String] = []
                if (s["retry"] as? Bool) == true { flags.append("retry") }
                if (s["error"] as? Bool) == true { flags.append("error") }
                if isLLM && (s["priced"] as? Bool) == false { flags.append("unpriced") }
                if (s["explicit_cost"] as? Bool) == true { flags.append("explicit cost") }
                let cost = (s["cost_micros"] as? Int).map { String(format: "%.6f", Double($0) / 1_000_000) } ?? "-"
                rows.append([
                    String(repeating: "  ", count: depth) + (s["name"] as? String ?? ""), kind,
                    isLLM ? ((s["model"] as? String).flatMap { $0.isEmpty ? "(unknown)" : $0 } ?? "") : "",
                    isLLM ? TableText.text(s["input_tokens"]) : "", isLLM ? TableText.text(s["cached_input_tokens"]) : "",
                    isLLM ? TableText.text(s["output_tokens"]) : "", isLLM ? TableText.text(s["reasoning_tokens"]) : "",
                    isLLM ? cost : "", TableText.text(s["duration_ms"]), flags.joined(separator: ","),
                ])
                walk(children[s["span_id"] as? String ?? ""] ?? [], depth: depth + 1)
            }
        }
        walk(children[""] ?? [], depth: 0)
        walk(Array(spans.indices), depth: 0)
        print(TableText.render(headers: ["SPAN", "KIND", "MODEL", "IN TOK", "CACHED", "OUT TOK", "REASON", "COST $", "DURATION ms", "NOTES"],
                               rows: rows, rightAligned: [3, 4, 5, 6, 7, 8]), terminator: "")
    }
}
