import ArgumentParser
import Foundation

/// `spanledger scorecard`: per function and declared workflow, accepted outcomes against
/// target, spend against budget, cost per accepted outcome and its trend; then spend with
/// no declared outcome and of one-off workflows (GET /api/v1/scorecard).
struct ScorecardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scorecard", abstract: "Outcomes against targets, spend against budgets, cost per accepted outcome, per function and workflow.")

    @Option(help: "Query API base URL (default http://127.0.0.1:4320).") var server: String?
    @Option(help: "Window start: quarter (default: this UTC quarter), a duration back (90d), a date or RFC 3339 time.") var since = "quarter"
    @Option(help: "Window end (default now).") var until: String?
    @Option(help: "table, json or csv.") var format: OutputFormat = .table

    func run() async throws {
        let base = APIClient.baseURL(server)
        let data = try await APIClient.get(base, "/api/v1/scorecard" + APIClient.queryString([("since", since), ("until", until)]))
        if format == .json {
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw ClientError(description: "unexpected answer from the server") }
        print(Self.render(root, csv: format == .csv), terminator: "")
    }

    static func money(_ v: Any?) -> String { (v as? NSNumber).map { String(format: "%.2f", $0.doubleValue) } ?? "-" }
    static func unit(_ v: Any?) -> String { (v as? NSNumber).map { String(format: "%.6f", $0.doubleValue) } ?? "-" }
    static func percent(_ v: Any?) -> String { (v as? NSNumber).map { String(format: "%.0f%%", $0.doubleValue * 100) } ?? "-" }
    static func trend(_ v: Any?) -> String {
        guard let n = v as? NSNumber else { return "-" }
        return String(format: "%+.0f%%", n.doubleValue * 100)
    }

    static func render(_ root: [String: Any], csv: Bool) -> String {
        let headers = ["FUNCTION", "WORKFLOW", "OWNER", "RUNS", "ACCEPTED", "TARGET", "OF TARGET", "PACE", "COST $", "BUDGET $", "BUDGET USED",
                       "$/ACCEPTED", "TREND 7D", "SHARE"]
        var rows: [[String]] = []
        func row(_ function: String, _ l: [String: Any]) -> [String] {
            [function, TableText.text(l["workflow"]), TableText.text(l["owner"]), TableText.text(l["runs"]), TableText.text(l["accepted"]),
             TableText.text(l["target"]), percent(l["target_attainment"]), percent(l["pace"]), money(l["cost_usd"]), money(l["budget_usd"]),
             percent(l["budget_used"]), unit(l["cost_per_accepted_usd"]), trend(l["cost_per_accepted_trend"]), percent(l["share_of_spend"])]
        }
        for f in root["functions"] as? [[String: Any]] ?? [] {
            let name = TableText.text(f["function"])
            for l in f["workflows"] as? [[String: Any]] ?? [] { rows.append(row(name, l)) }
            rows.append([name, "(all)", "", "", TableText.text(f["accepted"]), TableText.text(f["target"]), "", "", money(f["cost_usd"]),
                         money(f["budget_usd"]), "", unit(f["cost_per_accepted_usd"]), "", percent(f["share_of_spend"])])
        }
        let undeclared = root["undeclared"] as? [String: Any] ?? [:]
        for l in undeclared["workflows"] as? [[String: Any]] ?? [] { rows.append(row("(undeclared)", l)) }
        if csv { return TableText.csv(headers: headers, rows: rows) }
        var out = "window \(root["from"] ?? "?") .. \(root["to"] ?? "?")  (quarter \(percent(root["quarter_elapsed"])) elapsed)  total spend $\(money(root["total_cost_usd"]))\n"
        out += rows.isEmpty ? "no runs in this window\n" : TableText.render(headers: headers, rows: rows, rightAligned: Set(3..<headers.count))
        out += "\nNo declared outcome: $\(money(undeclared["cost_usd"])) (\(percent(undeclared["share_of_spend"])) of spend)\n"
        let oneOff = root["one_off"] as? [String: Any] ?? [:]
        let names = (oneOff["workflows"] as? [[String: Any]] ?? []).map { TableText.text($0["workflow"]) }
        out += "One-off workflows (fewer than \(TableText.text(oneOff["max_runs"])) runs): $\(money(oneOff["cost_usd"])) (\(percent(oneOff["share_of_spend"])) of spend)"
        out += names.isEmpty ? "\n" : ": " + names.joined(separator: ", ") + "\n"
        return out
    }
}
