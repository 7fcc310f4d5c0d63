import ArgumentParser
import Foundation
import LedgerCore
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `spanledger outcome TRACE_ID OUTCOME`: records a verdict that arrives after the spans
/// (POST /v1/outcomes on the OTLP/HTTP listener).
struct OutcomeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outcome", abstract: "Record a run's verdict after the fact: accepted, edited, rejected or escalated.")

    @Argument(help: "Trace ID of the run (32 hex digits).") var traceID: String
    @Argument(help: "accepted, edited, rejected or escalated.") var outcome: String
    @Option(help: "Who reviewed the run.") var reviewer: String?
    @Option(name: .customLong("reviewer-kind"), help: "human, llm or code.") var reviewerKind: String?
    @Option(help: "Free-text comment.") var comment: String?
    @Option(help: "When the verdict was given (RFC 3339; default now). The latest verdict by time wins.") var time: String?
    @Option(help: "OTLP/HTTP base URL of the daemon (default http://127.0.0.1:4318).") var server: String?

    func run() async throws {
        var body: [String: String] = ["trace_id": traceID, "outcome": outcome]
        if let reviewer { body["reviewer"] = reviewer }
        if let reviewerKind { body["reviewer_kind"] = reviewerKind }
        if let comment { body["comment"] = comment }
        if let time { body["time"] = time }
        let base = APIClient.baseURL(server, default: "http://127.0.0.1:4318")
        guard let url = URL(string: base + "/v1/outcomes") else { throw ValidationError("invalid server URL \(base)") }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = try JSONSerialization.data(withJSONObject: body)
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw ClientError(description: "cannot reach \(base): \(error.localizedDescription) (is `spanledger serve` running? use --server)")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
        guard status == 200, let results = object?["results"] as? [[String: Any]], let first = results.first else {
            let message = (object?["error"] as? [String: Any])?["message"] as? String ?? String(decoding: data, as: UTF8.self)
            throw ClientError(description: "server answered \(status): \(message)")
        }
        let result = first["result"] as? String ?? "?"
        let explain: [String: String] = [
            "applied": "the run was pending; it now counts as \(first["outcome"] ?? outcome)",
            "corrected": "the run moved to \(first["outcome"] ?? outcome) from its previous outcome",
            "unchanged": "the run already had this outcome",
            "held": "the run is not released yet; the verdict applies when it is",
            "superseded": "a later verdict already decides this run",
        ]
        print("\(traceID.lowercased()): \(result) — \(explain[result] ?? result)")
    }
}
