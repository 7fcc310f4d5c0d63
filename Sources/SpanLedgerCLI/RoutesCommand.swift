import ArgumentParser
import Foundation

/// `spanledger routes`: per workflow and model, acceptance with a confidence interval and
/// cost per accepted outcome; and where a cheaper model is not significantly worse, what
/// switching would have saved over the window (GET /api/v1/routes).
struct RoutesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "routes", abstract: "Model routes: acceptance and cost per model, and cheaper models not significantly worse.")

    @Option(help: "Query API base URL (default http://127.0.0.1:4320).") var server: String?
    @Option(help: "Window start (default 30d).") var since = "30d"
    @Option(help: "Window end (default now).") var until: String?
    @Option(help: "Only this workflow.") var workflow: String?
    @Option(help: "Confidence of the intervals and the test (default 0.95).") var confidence: Double?
    @Option(name: .customLong("min-runs"), help: "Decided runs each model needs before it is compared (default 30).") var minRuns: Int?
    @Option(help: "Non-inferiority margin in acceptance points, e.g. 0.02 (default 0).") var margin: Double?
    @Option(help: "table, json or csv.") var format: OutputFormat = .table

    func run() async throws {
        let base = APIClient.baseURL(server)
        let data = try await APIClient.get(base, "/api/v1/routes" + APIClient.queryString([
            ("since", since), ("until", until), ("workflow", workflow), ("confidence", confidence.map { String($0) }),
            ("min_runs", minRuns.map(String.init)), ("margin", margin.map { String($0) }),
        ]))
        if format == .json {
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw ClientError(description: "unexpected answer from the server") }
        let routes = root["routes"] as? [[String: Any]] ?? []
        let recs = root["recommendations"] as? [[String: Any]] ?? []
        func pct(_ v: Any?) -> String { (v as? NSNumber).map { String(format: "%.1f%%", $0.doubleValue * 100) } ?? "-" }
        func usd(_ v: Any?) -> String { (v as? NSNumber).map { String(format: "%.6f", $0.doubleValue) } ?? "-" }
        let rHeaders = ["WORKFLOW", "MODEL", "RUNS", "DECIDED", "ACCEPT%", "95% CI", "$/RUN", "$/ACCEPTED", ""]
        let rRows = routes.map { r in
            [TableText.text(r["workflow"]), TableText.text(r["model"]), TableText.text(r["runs"]), TableText.text(r["decided"]), pct(r["acceptance_rate"]),
             r["acceptance_low"] is NSNumber ? "\(pct(r["acceptance_low"]))–\(pct(r["acceptance_high"]))" : "-",
             usd(r["cost_per_run_usd"]), usd(r["cost_per_accepted_usd"]), (r["incumbent"] as? Bool) == true ? "incumbent" : ""]
        }
        let cHeaders = ["WORKFLOW", "INCUMBENT", "CANDIDATE", "VERDICT", "ACCEPT% (INC → CAND)", "P", "SAVED $"]
        let cRows = recs.map { r in
            [TableText.text(r["workflow"]), TableText.text(r["incumbent"]), TableText.text(r["candidate"]), TableText.text(r["verdict"]),
             "\(pct(r["incumbent_acceptance"])) → \(pct(r["candidate_acceptance"]))", (r["p_value"] as? NSNumber).map { String(format: "%.4f", $0.doubleValue) } ?? "-",
             usd(r["savings_usd"])]
        }
        if format == .csv {
            print(TableText.csv(headers: cHeaders, rows: cRows), terminator: "")
            return
        }
        print("window \(root["from"] ?? "?") .. \(root["to"] ?? "?")")
        print(routes.isEmpty ? "no runs with LLM calls in this window" : TableText.render(headers: rHeaders, rows: rRows, rightAligned: [2, 3, 4, 6, 7]))
        if recs.isEmpty {
            print("No workflow has a cheaper model to compare.")
        } else {
            print(TableText.render(headers: cHeaders, rows: cRows, rightAligned: [5, 6]), terminator: "")
            print("switch: the cheaper model's acceptance is not significantly worse (one-sided two-proportion z-test; see `test` in --format json).")
        }
    }
}
