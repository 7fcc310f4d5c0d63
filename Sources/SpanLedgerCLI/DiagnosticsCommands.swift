import ArgumentParser
import Foundation

/// `spanledger top`: highest spend, most retries, lowest acceptance, largest change of
/// spend against the previous window (GET /api/v1/top).
struct TopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top", abstract: "Diagnostics: highest spend, most retries, lowest acceptance, largest change vs the previous window.")

    @Option(help: "Query API base URL (default http://127.0.0.1:4320).") var server: String?
    @Option(help: "spend, retries, acceptance or change.") var by = "spend"
    @Option(help: "workflow, model, service, agent or function.") var dimension = "workflow"
    @Option(help: "Window start (default 24h); the previous window is the same length before it.") var since = "24h"
    @Option(help: "Window end (default now).") var until: String?
    @Option(help: "Rows.") var limit = 10
    @Option(name: .customLong("min-decided"), help: "Reviewed runs a group needs to rank by acceptance (default 5).") var minDecided: Int?
    @Option(help: "table, json or csv.") var format: OutputFormat = .table

    func run() async throws {
        let base = APIClient.baseURL(server)
        let data = try await APIClient.get(base, "/api/v1/top" + APIClient.queryString([
            ("by", by), ("dimension", dimension), ("since", since), ("until", until), ("limit", String(limit)), ("min_decided", minDecided.map(String.init)),
        ]))
        if format == .json {
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw ClientError(description: "unexpected answer from the server") }
        let items = root["items"] as? [[String: Any]] ?? []
        func usd(_ v: Any?) -> String { (v as? NSNumber).map { String(format: "%.6f", $0.doubleValue) } ?? "-" }
        func pct(_ v: Any?) -> String { (v as? NSNumber).map { String(format: "%.1f%%", $0.doubleValue * 100) } ?? "-" }
        func signed(_ v: Any?) -> String { (v as? NSNumber).map { String(format: "%+.6f", $0.doubleValue) } ?? "-" }
        let headers = [dimension.uppercased(), "RUNS", "COST $", "PREV COST $", "CHANGE $", "ACCEPT%", "PREV ACCEPT%", "RETRIES", "RETRY%"]
        let rows = items.map { i -> [String] in
            var name = TableText.text(i[dimension])
            if name.isEmpty { name = dimension == "agent" ? "(workflow)" : "(none)" }
            return [name, TableText.text(i["runs"]), usd(i["cost_usd"]), usd(i["previous_cost_usd"]), signed(i["change_usd"]), pct(i["acceptance_rate"]),
                    pct(i["previous_acceptance_rate"]), TableText.text(i["retries"]), pct(i["retry_rate"])]
        }
        if format == .csv {
            print(TableText.csv(headers: headers, rows: rows), terminator: "")
            return
        }
        let title = ["spend": "highest spend", "retries": "most retries", "acceptance": "lowest acceptance", "change": "largest change of spend"][by] ?? by
        print("\(title), \(root["from"] ?? "?") .. \(root["to"] ?? "?") (previous from \(root["previous_from"] ?? "?"))")
        print(rows.isEmpty ? "nothing to rank in this window" : TableText.render(headers: headers, rows: rows, rightAligned: Set(1..<headers.count)), terminator: "")
    }
}

/// `spanledger series`: one workflow's (or every group's) measures per time step (GET /api/v1/series).
struct SeriesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "series", abstract: "Runs, outcomes, cost and cost per accepted outcome per time step, for trends.")

    @Option(help: "Query API base URL (default http://127.0.0.1:4320).") var server: String?
    @Option(help: "Window start (default 24h).") var since = "24h"
    @Option(help: "Window end (default now).") var until: String?
    @Option(help: "Step: whole minutes (5m, 1h, 1d); default about 60 points.") var step: String?
    @Option(name: .customLong("group-by"), help: "Comma list of workflow, model, outcome, service, agent, function: one series each.") var groupBy: String?
    @Option(help: "Only this workflow.") var workflow: String?
    @Option(help: "Only this model.") var model: String?
    @Option(help: "table, json or csv.") var format: OutputFormat = .table

    func run() async throws {
        let base = APIClient.baseURL(server)
        let data = try await APIClient.get(base, "/api/v1/series" + APIClient.queryString([
            ("since", since), ("until", until), ("step", step), ("group_by", groupBy), ("workflow", workflow), ("model", model),
        ]))
        if format == .json {
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw ClientError(description: "unexpected answer from the server") }
        let keys = ["function", "workflow", "model", "outcome", "service", "agent"]
        func usd(_ v: Any?) -> String { (v as? NSNumber).map { String(format: "%.6f", $0.doubleValue) } ?? "-" }
        func pct(_ v: Any?) -> String { (v as? NSNumber).map { String(format: "%.1f%%", $0.doubleValue * 100) } ?? "-" }
        var headers = ["SERIES", "T", "RUNS", "ACCEPTED", "ACCEPT%", "COST $", "$/ACCEPTED", "REWORK", "RETRIES", "P95 ms"]
        var rows: [[String]] = []
        for s in root["series"] as? [[String: Any]] ?? [] {
            let name = keys.compactMap { s[$0] as? String }.map { $0.isEmpty ? "(none)" : $0 }.joined(separator: "/")
            for p in s["points"] as? [[String: Any]] ?? [] {
                rows.append([name.isEmpty ? "all" : name, TableText.text(p["t"]), TableText.text(p["runs"]),
                             String(((p["accepted"] as? Int) ?? 0) + ((p["edited"] as? Int) ?? 0)), pct(p["acceptance_rate"]), usd(p["cost_usd"]),
                             usd(p["cost_per_accepted_usd"]), TableText.text(p["rework_runs"]), TableText.text(p["retries"]), TableText.text(p["latency_p95_ms"])])
            }
        }
        if format == .csv {
            headers[0] = "series"
            print(TableText.csv(headers: headers.map { $0.lowercased() }, rows: rows), terminator: "")
            return
        }
        print("step \(TableText.text(root["step_seconds"])) s, \(root["from"] ?? "?") .. \(root["to"] ?? "?")")
        print(TableText.render(headers: headers, rows: rows, rightAligned: Set(2..<headers.count)), terminator: "")
    }
}
