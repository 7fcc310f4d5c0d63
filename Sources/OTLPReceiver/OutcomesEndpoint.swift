import Foundation
import HTTPServing
import LedgerCore
import LedgerPipeline
import NIOCore
import NIOHTTP1

/// `POST /v1/outcomes` on the OTLP/HTTP listener: verdicts that arrive after the spans
/// (Schemas/outcomes-api.md). One verdict or `{"outcomes": [...]}`; a batch is checked
/// whole before anything is logged, so it is applied entirely or not at all.
/// `?unknown_runs=refuse` answers `not_found` for verdicts whose run this node does not
/// have, instead of holding them (a client of several nodes then tries the next).
struct OutcomesEndpoint: Sendable {
    static let path = "/v1/outcomes"
    static let maxBatch = 10_000

    let consumer: any OutcomeConsumer

    func handle(_ request: HTTPRequest) async -> HTTPResponse {
        guard request.method == .POST else {
            var r = Self.error(.methodNotAllowed, "method \(request.method) not allowed on \(Self.path); use POST")
            r.headers.add(name: "Allow", value: "POST")
            return r
        }
        let media = request.headers.first(name: "content-type").map(OTLPHTTPReceiver.mediaType) ?? ""
        guard media == "application/json" else {
            return Self.error(.unsupportedMediaType, "unsupported Content-Type '\(media)'; \(Self.path) accepts application/json")
        }
        let unknownRuns: UnknownRuns
        switch request.queryItems["unknown_runs"] {
        case nil: unknownRuns = .hold
        case let value?:
            guard let u = UnknownRuns(rawValue: value) else {
                return Self.error(.badRequest, "unknown_runs: '\(value)' is not hold (keep verdicts for runs not seen yet, the default) or refuse "
                                  + "(answer not_found for them, for clients of several nodes)")
            }
            unknownRuns = u
        }
        var body = request.body
        let bytes = body.readBytes(length: body.readableBytes) ?? []
        let records: [OutcomeRecord]
        do {
            records = try Self.parse(Data(bytes), now: WallClock.nowUnixNano())
        } catch {
            return Self.error(.badRequest, "\(error)")
        }
        let results: [OutcomeResult]
        do {
            results = try await consumer.record(records, unknownRuns: unknownRuns)
        } catch let e as OutcomeRejection {
            return Self.error(.unprocessableEntity, "nothing recorded: " + e.description)
        } catch let e as IngestRefusal {
            var r = Self.error(.serviceUnavailable, e.message)
            r.headers.add(name: "Retry-After", value: String(e.retryAfterSeconds))
            return r
        } catch {
            return Self.error(.internalServerError, "\(error)")
        }
        let items = zip(records, results).map { o, r in
            ["trace_id": o.traceID.hex, "outcome": o.outcome.name, "result": r.rawValue]
        }
        let data = (try? JSONSerialization.data(withJSONObject: ["results": items], options: [.sortedKeys])) ?? Data("{}".utf8)
        return HTTPResponse(status: .ok, headers: ["Content-Type": "application/json"], body: Array(data))
    }

    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    static func parse(_ data: Data, now: Int64) throws -> [OutcomeRecord] {
        let root: Any
        do { root = try JSONSerialization.jsonObject(with: data) } catch { throw Invalid(description: "body is not valid JSON") }
        guard let object = root as? [String: Any] else { throw Invalid(description: "expected a JSON object (one verdict, or {\"outcomes\": [...]})") }
        if let list = object["outcomes"] {
            guard object.count == 1 else { throw Invalid(description: "a batch is {\"outcomes\": [...]} with no other keys") }
            guard let items = list as? [Any] else { throw Invalid(description: "\"outcomes\" must be an array") }
            guard items.count <= maxBatch else { throw Invalid(description: "\(items.count) verdicts in one request; the limit is \(maxBatch)") }
            return try items.enumerated().map { i, item in
                guard let o = item as? [String: Any] else { throw Invalid(description: "outcomes[\(i)]: expected an object") }
                return try verdict(o, at: "outcomes[\(i)].", now: now)
            }
        }
        return [try verdict(object, at: "", now: now)]
    }

    static let keys: Set<String> = ["trace_id", "outcome", "reviewer", "reviewer_kind", "comment", "time"]

    static func verdict(_ o: [String: Any], at where_: String, now: Int64) throws -> OutcomeRecord {
        for k in o.keys.sorted() where !keys.contains(k) {
            throw Invalid(description: "\(where_)\(k): unknown field (known: \(keys.sorted().joined(separator: ", ")))")
        }
        guard let idText = o["trace_id"] as? String else { throw Invalid(description: "\(where_)trace_id: required, 32 hex digits") }
        guard let id = TraceID(hex: idText), !id.isZero else { throw Invalid(description: "\(where_)trace_id: '\(idText)' is not 32 hex digits (not all zero)") }
        guard let label = o["outcome"] as? String else { throw Invalid(description: "\(where_)outcome: required: accepted, edited, rejected or escalated") }
        guard let outcome = Outcome(label: label), outcome != .pending else {
            throw Invalid(description: "\(where_)outcome: '\(label)' is not accepted, edited, rejected or escalated")
        }
        var record = OutcomeRecord(traceID: id, outcome: outcome, timeUnixNano: now, source: .api)
        if let v = o["reviewer"] {
            guard let r = v as? String, r.utf8.count <= 256 else { throw Invalid(description: "\(where_)reviewer: a string of at most 256 bytes") }
            record.reviewer = r
        }
        if let v = o["reviewer_kind"] {
            guard let k = (v as? String).flatMap(ReviewerKind.init(name:)) else { throw Invalid(description: "\(where_)reviewer_kind: human, llm or code") }
            record.reviewerKind = k
        }
        if let v = o["comment"] {
            guard let c = v as? String, c.utf8.count <= 4096 else { throw Invalid(description: "\(where_)comment: a string of at most 4096 bytes") }
            record.comment = c
        }
        if let v = o["time"] {
            guard let text = v as? String, let t = RFC3339.parse(text) else { throw Invalid(description: "\(where_)time: an RFC 3339 time, e.g. 2026-11-23T10:00:00Z") }
            guard t <= now + 300_000_000_000 else { throw Invalid(description: "\(where_)time: \(text) is in the future") }
            record.timeUnixNano = t
        }
        return record
    }

    static func error(_ status: HTTPResponseStatus, _ message: String) -> HTTPResponse {
        let data = (try? JSONSerialization.data(withJSONObject: ["error": ["code": Int(status.code), "message": message] as [String: Any]],
                                                options: [.sortedKeys])) ?? Data("{}".utf8)
        return HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: Array(data))
    }
}
