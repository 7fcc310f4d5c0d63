import ArgumentParser
import Foundation
import LedgerCore
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `spanledger outcome TRACE_ID OUTCOME`: records a verdict that arrives after the spans
/// (POST /v1/outcomes on the OTLP/HTTP listener). With several `--server`s (nodes behind a
/// trace-ID load balancer, README "Several nodes") it finds the node that has the run:
/// each is asked in turn to apply the verdict only if it has the run, released or pending
/// (`?unknown_runs=refuse`), so no other node holds a verdict for a run it never gets.
struct OutcomeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "outcome", abstract: "Record a run's verdict after the fact: accepted, edited, rejected or escalated.")

    @Argument(help: "Trace ID of the run (32 hex digits).") var traceID: String
    @Argument(help: "accepted, edited, rejected or escalated.") var outcome: String
    @Option(help: "Who reviewed the run.") var reviewer: String?
    @Option(name: .customLong("reviewer-kind"), help: "human, llm or code.") var reviewerKind: String?
    @Option(help: "Free-text comment.") var comment: String?
    @Option(help: "When the verdict was given (RFC 3339; default now). The latest verdict by time wins.") var time: String?
    @Option(help: ArgumentHelp("OTLP/HTTP base URL of the daemon (default http://127.0.0.1:4318). Repeat for several nodes: the verdict goes to the one that has the run.",
                               valueName: "url"))
    var server: [String] = []

    var explanations: [String: String] { [
        "applied": "the run was pending; it now counts as \(outcome.lowercased())",
        "corrected": "the run moved to \(outcome.lowercased()) from its previous outcome",
        "unchanged": "the run already had this outcome",
        "held": "the run is not released yet; the verdict applies when it is",
        "superseded": "a later verdict already decides this run",
        "too_old": "the run started before the correction window; its outcome can no longer change",
    ] }

    func validate() throws {
        var named: Set<String> = []
        for s in server where !named.insert(APIClient.baseURL(s, default: "")).inserted {
            throw ValidationError("\(s) is named twice (--server)")
        }
    }

    func run() async throws {
        var body: [String: String] = ["trace_id": traceID, "outcome": outcome]
        if let reviewer { body["reviewer"] = reviewer }
        if let reviewerKind { body["reviewer_kind"] = reviewerKind }
        if let comment { body["comment"] = comment }
        if let time { body["time"] = time }
        let payload = try JSONSerialization.data(withJSONObject: body)
        let id = traceID.lowercased()
        guard server.count > 1 else {
            let base = APIClient.baseURL(server.first, default: "http://127.0.0.1:4318")
            let result = try await Self.post(payload, to: base, refuseUnknown: false)
            print("\(id): \(result) — \(explanations[result] ?? result)")
            return
        }
        // Several nodes: the first that has the run applies the verdict.
        var unreachable: [String] = []
        for s in server {
            let base = APIClient.baseURL(s)
            let result: String
            do {
                result = try await Self.post(payload, to: base, refuseUnknown: true)
            } catch let e as APIClient.Unreachable {
                FileHandle.standardError.write(Data("warning: \(e.description)\n".utf8))
                unreachable.append(base)
                continue
            }
            if result == "not_found" { continue }
            print("\(id): \(result) on \(base) — \(explanations[result] ?? result)")
            return
        }
        if !unreachable.isEmpty {
            throw ClientError(description: "no reachable node has run \(id); not asked: \(unreachable.joined(separator: ", ")) (the run may be there; nothing was recorded)")
        }
        throw ClientError(description: "none of the \(server.count) nodes has run \(id), released or pending; nothing was recorded. "
                          + "If its spans have not arrived yet, try again later, or send the verdict on a span of the trace itself, "
                          + "which the gateway routes with the trace")
    }

    /// POSTs one verdict and returns its result; errors carry the server's message.
    static func post(_ payload: Data, to base: String, refuseUnknown: Bool) async throws -> String {
        guard let url = URL(string: base + "/v1/outcomes" + (refuseUnknown ? "?unknown_runs=refuse" : "")) else {
            throw ValidationError("invalid server URL \(base)")
        }
        var request = URLRequest(url: url)
        request.httpMethod = "POST"
        request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        request.httpBody = payload
        let data = try await APIClient.send(request, to: base, hint: "use --server")
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let results = object["results"] as? [[String: Any]], let first = results.first else {
            throw ClientError(description: "\(base) answered without a result: \(String(decoding: data, as: UTF8.self))")
        }
        return first["result"] as? String ?? "?"
    }
}
