import HTTPServing
import LedgerCore
import LedgerPipeline
import LedgerStore
import NIOCore
import NIOHTTP1
import OutcomeRegistry
import Rollups

/// The query API on the API listener (default 127.0.0.1:4320):
/// `GET /api/v1/rollups`, `GET /api/v1/traces/{id}`, `GET /api/v1/workflows`, `GET /api/v1/alerts`,
/// `GET /api/v1/status`, `GET /healthz`, `GET /metrics`. Errors are `{"error":{"code":N,"message":"…"}}`.
public struct QueryHTTPHandler: HTTPHandler {
    public let maxBodySize = 64 << 10
    let ledger: Ledger
    let metrics: @Sendable () async -> String
    let alerts: @Sendable () async -> String
    let registry: OutcomeRegistry

    public init(ledger: Ledger, registry: OutcomeRegistry = OutcomeRegistry(), metrics: @escaping @Sendable () async -> String,
                alerts: @escaping @Sendable () async -> String) {
        self.ledger = ledger
        self.registry = registry
        self.metrics = metrics
        self.alerts = alerts
    }

    public func handle(_ request: HTTPRequest) async -> HTTPResponse {
        let path = request.path
        guard request.method == .GET || request.method == .HEAD else {
            var r = Self.error(.methodNotAllowed, "method \(request.method) not allowed; the query API is read-only (GET)")
            r.headers.add(name: "Allow", value: "GET")
            return r
        }
        switch path {
        case "/api/v1/rollups":
            let q = request.queryItems
            do {
                var query = try QueryParameters.rollupQuery(
                    since: q["since"], until: q["until"], groupBy: q["group_by"], workflow: q["workflow"], model: q["model"],
                    service: q["service"], now: WallClock.nowUnixNano())
                let registry = self.registry
                query.functionOf = { registry.function(of: $0) ?? Scorecard.undeclaredFunction }
                let groups = await ledger.query(query)
                return Self.json(RollupJSON.render(groups, query: query))
            } catch {
                return Self.error(.badRequest, error.message)
            }
        case "/api/v1/rollups/records":
            // The window's records as a spanledger.v1.RollupSegment (Schemas/spanledger/v1/rollup.proto),
            // for a query that merges several nodes' rollups.
            let q = request.queryItems
            do {
                let query = try QueryParameters.rollupQuery(since: q["since"], until: q["until"], groupBy: nil, workflow: nil, model: nil,
                                                            service: nil, now: WallClock.nowUnixNano())
                let records = await ledger.rollupRecords(query)
                return HTTPResponse(status: .ok, headers: ["Content-Type": "application/x-protobuf"],
                                    body: RollupSegmentCodec.encode(records, createdUnixMs: WallClock.nowUnixNano() / 1_000_000))
            } catch {
                return Self.error(.badRequest, error.message)
            }
        case "/api/v1/workflows":
            var w = JSONWriter()
            w.objectStart()
            w.key("workflows")
            w.arrayStart()
            for name in await ledger.workflows() { w.string(name) }
            w.arrayEnd()
            w.objectEnd()
            return Self.json(w.text)
        case "/api/v1/scorecard":
            let q = request.queryItems
            do {
                let now = WallClock.nowUnixNano()
                let (from, to) = try QueryParameters.window(since: q["since"] ?? "quarter", until: q["until"], now: now)
                let week: Int64 = 7 * 86_400_000_000_000
                let window = await ledger.query(RollupQuery(fromUnixNano: from, toUnixNano: to, groupBy: [.workflow]))
                let recent = await ledger.query(RollupQuery(fromUnixNano: to - week, toUnixNano: to, groupBy: [.workflow]))
                let previous = await ledger.query(RollupQuery(fromUnixNano: to - 2 * week, toUnixNano: to - week, groupBy: [.workflow]))
                let card = Scorecard.compute(registry: registry, window: window, recent: recent, previous: previous, fromUnixNano: from, toUnixNano: to)
                return Self.json(ScorecardJSON.render(card))
            } catch {
                return Self.error(.badRequest, error.message)
            }
        case "/api/v1/series":
            let q = request.queryItems
            do throws(QueryError) {
                var query = try QueryParameters.rollupQuery(
                    since: q["since"], until: q["until"], groupBy: q["group_by"], workflow: q["workflow"], model: q["model"],
                    service: q["service"], now: WallClock.nowUnixNano())
                let registry = self.registry
                query.functionOf = { registry.function(of: $0) ?? Scorecard.undeclaredFunction }
                let span = query.windowEndUnix - query.windowStartUnix
                let step = try QueryParameters.step(q["step"], windowSeconds: span)
                query.stepSeconds = step
                let groups = await ledger.query(query)
                let series = max(1, Set(groups.map { [$0.workflow, $0.model, $0.outcome?.name, $0.service, $0.agent, $0.function] }).count)
                guard Int64(series) * (span / step) <= Int64(SeriesJSON.maxPoints) else {
                    throw QueryError("\(series) series × \(span / step) steps is more than \(SeriesJSON.maxPoints) points; use a larger step, a shorter window or a filter")
                }
                return Self.json(SeriesJSON.render(groups, query: query, step: step))
            } catch {
                return Self.error(.badRequest, error.message)
            }
        case "/api/v1/top":
            let q = request.queryItems
            do throws(QueryError) {
                let now = WallClock.nowUnixNano()
                let (from, to) = try QueryParameters.window(since: q["since"] ?? "24h", until: q["until"], now: now)
                let byText = q["by"] ?? "spend"
                guard let by = TopDiagnostics.Ranking(rawValue: byText) else {
                    throw QueryError("by '\(byText)' must be one of \(TopDiagnostics.Ranking.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                let dimText = q["dimension"] ?? "workflow"
                guard let dim = GroupDimension(rawValue: dimText), dim != .outcome else {
                    throw QueryError("dimension '\(dimText)' must be workflow, model, service, agent or function")
                }
                let limit = Int(q["limit"] ?? "10") ?? -1
                guard (1...1000).contains(limit) else { throw QueryError("limit must be between 1 and 1000") }
                let minDecided = Int64(q["min_decided"] ?? "5") ?? -1
                guard minDecided >= 0 else { throw QueryError("min_decided must be a non-negative integer") }
                let registry = self.registry
                var current = RollupQuery(fromUnixNano: from, toUnixNano: to, groupBy: [dim])
                current.functionOf = { registry.function(of: $0) ?? Scorecard.undeclaredFunction }
                current.workflow = q["workflow"].flatMap { $0.isEmpty ? nil : $0 }
                var previous = current
                previous.fromUnixNano = from - (to - from)
                previous.toUnixNano = from
                let items = TopDiagnostics.rank(by, current: await ledger.query(current), previous: await ledger.query(previous),
                                                limit: limit, minDecided: minDecided)
                return Self.json(TopDiagnostics.render(items, by: by, fromUnixNano: from, toUnixNano: to, previousFromUnixNano: from - (to - from)))
            } catch {
                return Self.error(.badRequest, error.message)
            }
        case "/api/v1/runs":
            let q = request.queryItems
            do throws(QueryError) {
                let (from, to) = try QueryParameters.window(since: q["since"] ?? "24h", until: q["until"], now: WallClock.nowUnixNano())
                let limit = Int(q["limit"] ?? "50") ?? -1
                guard (1...1000).contains(limit) else { throw QueryError("limit must be between 1 and 1000") }
                var outcome: Outcome?
                if let o = q["outcome"], !o.isEmpty {
                    guard let parsed = Outcome(name: o) else { throw QueryError("outcome '\(o)' must be pending, accepted, edited, rejected or escalated") }
                    outcome = parsed
                }
                let entries = await ledger.runs(fromUnixNano: from, toUnixNano: to, workflow: q["workflow"].flatMap { $0.isEmpty ? nil : $0 },
                                                outcome: outcome, limit: limit)
                return Self.json(TraceJSON.renderList(entries, fromUnixNano: from, toUnixNano: to))
            } catch {
                return Self.error(.badRequest, error.message)
            }
        case "/api/v1/routes":
            let q = request.queryItems
            do throws(QueryError) {
                let now = WallClock.nowUnixNano()
                let (from, to) = try QueryParameters.window(since: q["since"] ?? "30d", until: q["until"], now: now)
                var settings = RouteSettings()
                if let v = q["confidence"] {
                    guard let c = Double(v) else { throw QueryError("confidence '\(v)' is not a number (e.g. 0.95)") }
                    settings.confidence = c
                }
                if let v = q["min_runs"] {
                    guard let n = Int64(v) else { throw QueryError("min_runs '\(v)' is not an integer") }
                    settings.minDecidedRuns = n
                }
                if let v = q["margin"] {
                    guard let m = Double(v) else { throw QueryError("margin '\(v)' is not a number (e.g. 0.02)") }
                    settings.margin = m
                }
                try settings.validate()
                var query = RollupQuery(fromUnixNano: from, toUnixNano: to, groupBy: [.workflow, .model])
                query.workflow = q["workflow"].flatMap { $0.isEmpty ? nil : $0 }
                let groups = await ledger.query(query)
                return Self.json(RoutesJSON.render(RouteReport.compute(groups, settings: settings), settings: settings, fromUnixNano: from, toUnixNano: to))
            } catch {
                return Self.error(.badRequest, error.message)
            }
        case "/api/v1/alerts":
            return Self.json(await alerts())
        case "/", "/index.html":
            return HTTPResponse(status: .ok, headers: ["Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-cache"],
                                body: Array(DashboardPage.html.utf8))
        case "/api/v1/status":
            let stats = await ledger.currentStats()
            return Self.json(StatusJSON.render(stats, releaseLagNano: ledger.backlog.lagNano, ingestWaits: ledger.backlog.waits))
        case "/healthz":
            return HTTPResponse.text(.ok, "ok\n")
        case "/metrics":
            return HTTPResponse.text(.ok, await metrics(), contentType: "text/plain; version=0.0.4; charset=utf-8")
        default:
            if path.hasPrefix("/api/v1/traces/") {
                let idText = String(path.dropFirst("/api/v1/traces/".count))
                guard let id = TraceID(hex: idText) else {
                    return Self.error(.badRequest, "invalid trace ID '\(idText)': expected 32 hex digits")
                }
                guard let run = await ledger.explain(id) else {
                    return Self.error(.notFound, "no run with trace ID \(id.hex) (it may still be pending in trace assembly)")
                }
                return Self.json(TraceJSON.render(entry: run.entry, spans: run.spans))
            }
            return Self.error(.notFound, "no such path \(path)")
        }
    }

    public func bodyTooLarge(_ head: HTTPRequestHead) -> HTTPResponse {
        var r = Self.error(.payloadTooLarge, "request body too large")
        r.close = true
        return r
    }

    static func json(_ text: String) -> HTTPResponse {
        HTTPResponse(status: .ok, headers: ["Content-Type": "application/json"], body: Array(text.utf8))
    }

    static func error(_ status: HTTPResponseStatus, _ message: String) -> HTTPResponse {
        var w = JSONWriter()
        w.objectStart()
        w.key("error")
        w.objectStart()
        w.field("code", Int64(status.code))
        w.field("message", message)
        w.objectEnd()
        w.objectEnd()
        return HTTPResponse(status: status, headers: ["Content-Type": "application/json"], body: Array(w.text.utf8))
    }
}
