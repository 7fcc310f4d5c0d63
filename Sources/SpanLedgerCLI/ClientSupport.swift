import ArgumentParser
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case table, json, csv
}

/// Where a client command reads from: the daemon's API, or a data directory directly.
struct SourceOptions: ParsableArguments {
    @Option(help: "Query API base URL (default http://127.0.0.1:4320).") var server: String?
    @Option(help: "Read this data directory directly instead of asking a server (use while the daemon is stopped).") var data: String?

    func validate() throws {
        if server != nil && data != nil { throw ValidationError("give either --server or --data, not both") }
    }

    var baseURL: String { APIClient.baseURL(server) }
}

struct ClientError: Error, CustomStringConvertible {
    var description: String
}

enum APIClient {
    /// `--server` without trailing slashes, or the default listener.
    static func baseURL(_ server: String?, default fallback: String = "http://127.0.0.1:4320") -> String {
        var s = server ?? fallback
        while s.hasSuffix("/") { s.removeLast() }
        return s
    }

    /// A server that could not be reached at all, as opposed to one that answered an error.
    struct Unreachable: Error, CustomStringConvertible {
        var description: String
    }

    /// GETs `path` (with query string) and returns the body; non-2xx responses become errors
    /// carrying the API's message.
    static func get(_ base: String, _ pathAndQuery: String) async throws -> Data {
        guard let url = URL(string: base + pathAndQuery) else { throw ClientError(description: "invalid URL \(base + pathAndQuery)") }
        return try await send(URLRequest(url: url), to: base)
    }

    /// Sends `request` to the server at `base` and returns the body. A transport failure is
    /// `Unreachable` (ending with `hint`); a non-2xx answer is a `ClientError` naming the
    /// server and carrying the API's message.
    static func send(_ request: URLRequest, to base: String, hint: String = "use --server or --data") async throws -> Data {
        let data: Data
        let response: URLResponse
        do {
            (data, response) = try await URLSession.shared.data(for: request)
        } catch {
            throw Unreachable(description: "cannot reach \(base): \(error.localizedDescription) (is `spanledger serve` running? \(hint))")
        }
        let status = (response as? HTTPURLResponse)?.statusCode ?? 0
        guard (200..<300).contains(status) else {
            let message = (try? JSONSerialization.jsonObject(with: data) as? [String: Any])
                .flatMap { ($0["error"] as? [String: Any])?["message"] as? String } ?? String(decoding: data, as: UTF8.self)
            throw ClientError(description: "\(base) answered \(status): \(message)")
        }
        return data
    }

    static func queryString(_ items: [(String, String?)]) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+?")
        let parts = items.compactMap { k, v in v.map { "\(k)=\($0.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0)" } }
        return parts.isEmpty ? "" : "?" + parts.joined(separator: "&")
    }
}

/// Aligned terminal tables and RFC 4180 CSV.
enum TableText {
    static func render(headers: [String], rows: [[String]], rightAligned: Set<Int> = []) -> String {
        var widths = headers.map(\.count)
        for r in rows { for (i, c) in r.enumerated() where i < widths.count { widths[i] = max(widths[i], c.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, c in
                let pad = String(repeating: " ", count: widths[i] - c.count)
                return rightAligned.contains(i) ? pad + c : c + pad
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        var out = line(headers) + "\n" + line(widths.map { String(repeating: "-", count: $0) }) + "\n"
        for r in rows { out += line(r) + "\n" }
        return out
    }

    static func csv(headers: [String], rows: [[String]]) -> String {
        func cell(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
        }
        return ([headers] + rows).map { $0.map(cell).joined(separator: ",") }.joined(separator: "\n") + "\n"
    }

    static func text(_ v: Any?) -> String {
        switch v {
        case nil, is NSNull: return "-"
        case let s as String: return s
        case let n as NSNumber: return n.stringValue
        default: return "\(v!)"
        }
    }
}
