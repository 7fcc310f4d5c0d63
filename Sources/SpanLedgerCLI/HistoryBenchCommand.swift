import ArgumentParser
import DurableFiles
import Foundation
import LedgerCore
import LedgerStore
import LoadGenerator
import Rollups

/// `spanledger bench-history`: long-window query latency. Writes N days of aged rollups
/// (minute buckets for the last 48 h, hourly to 30 days, daily before, as compaction
/// leaves them) for W workflows × M models × 5 outcomes into a fresh data directory,
/// starts the real daemon on it, and times `GET /api/v1/rollups?since=Nd&group_by=workflow`
/// and `GET /api/v1/top?by=spend&since=Nd` over loopback (README "Performance").
struct HistoryBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-history", abstract: "Query latency over long windows of compacted rollups (90 days × 1,000 workflows by default).")

    @Option(help: "Days of history.") var days = 90
    @Option(help: "Workflows.") var workflows = 1_000
    @Option(help: "Models per workflow.") var models = 4
    @Option(help: "Requests per query kind (p50/p99 over them).") var requests = 60
    @Option(help: "PRNG seed.") var seed: UInt64 = 7
    @Option(name: .customLong("daemon"), help: "spanledger binary to benchmark (default: this executable).") var daemonPath: String?
    @Option(name: .customLong("max-p50-ms"), help: "Exit non-zero if a query kind's p50 exceeds this.") var maxP50: Double?
    @Option(name: .customLong("max-p99-ms"), help: "Exit non-zero if a query kind's p99 exceeds this.") var maxP99: Double?

    /// The aged rollups: per workflow and period (day, hour or minute bucket by age), the
    /// runs of the models and outcomes that occurred in it.
    func history(nowUnix: Int64) -> RollupTable {
        var rng = SplitMix64(seed: seed)
        var table = RollupTable()
        let outcomes: [Outcome] = [.accepted, .edited, .rejected, .escalated, .pending]
        let modelNames = (0..<models).map { ["claude-sonnet-4-5", "gpt-4o-mini", "gemini-2.5-flash", "gpt-5", "claude-haiku-4-5", "o3"][$0 % 6] + ($0 >= 6 ? "-\($0)" : "") }
        let today = nowUnix - nowUnix % 86_400
        for w in 0..<workflows {
            let name = String(format: "workflow-%04d", w)
            let service = "svc-\(w % 20)"
            let busy = 0.2 + rng.unit() * 0.8
            func add(_ bucket: Int64, _ resolution: UInt32) {
                let model = modelNames[rng.int(modelNames.count)]
                let outcome = outcomes[min(4, Int(pow(rng.unit(), 1.6) * 5))]
                let runs = Int64(1 + rng.int(20))
                var m = RollupMeasures()
                m.runs = runs
                m.toolCalls = runs * 2
                m.latency.add(milliseconds: 500 + rng.unit() * 20_000, count: runs)
                var runLevel = m
                runLevel.errors = Int64(rng.int(2))
                table.add(RollupKey(bucketStartUnix: bucket, resolutionSeconds: resolution, workflow: name, model: "", outcome: outcome, service: service, runLevel: true), runLevel)
                m.llmCalls = runs * 3
                m.inputTokens = runs * Int64(2_000 + rng.int(20_000))
                m.outputTokens = runs * Int64(200 + rng.int(2_000))
                m.costMicros = m.inputTokens * 3 / 1_000 + m.outputTokens * 15 / 1_000
                m.retries = Int64(rng.int(3))
                table.add(RollupKey(bucketStartUnix: bucket, resolutionSeconds: resolution, workflow: name, model: model, outcome: outcome, service: service, runLevel: false), m)
            }
            for d in 0..<days {
                let dayStart = today - Int64(d) * 86_400
                if d >= 30 {
                    for _ in 0..<Int(2 + busy * 6) { add(dayStart, 86_400) }
                } else if d >= 2 {
                    for h in 0..<24 where rng.unit() < busy * 0.25 {
                        for _ in 0..<(1 + rng.int(2)) { add(dayStart + Int64(h) * 3_600, 3_600) }
                    }
                } else {
                    for _ in 0..<Int(busy * 12) { add(dayStart + Int64(rng.int(1_440)) * 60, 60) }
                }
            }
        }
        return table
    }

    func run() async throws {
        let binary = daemonPath ?? (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let dataDir = NSTemporaryDirectory() + "spanledger-history-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dataDir) }
        let now = WallClock.nowUnixNano() / 1_000_000_000
        let t0 = Date()
        let table = history(nowUnix: now)
        let directory = DataDirectory(path: dataDir)
        try directory.prepare()
        let segment = try SegmentFrame.encode(kind: .rollup, message: RollupSegmentCodec.encode(table, createdUnixMs: now * 1_000, replacesThrough: 1))
        try FileIO.writeAtomically(segment, to: directory.compactFile(through: 1))
        let bytes = directory.bytesOnDisk()[.rollup] ?? 0
        print(String(format: "history: %d days × %d workflows × %d models × 5 outcomes → %d rollup records, %.1f MB on disk (%.0f bytes/record), generated in %.1f s",
                     days, workflows, models, table.count, Double(bytes) / 1e6, Double(bytes) / Double(max(1, table.count)), Date().timeIntervalSince(t0)))

        let daemon = Process()
        daemon.executableURL = URL(fileURLWithPath: binary)
        daemon.arguments = ["serve", "--data", dataDir, "--otlp-http", "127.0.0.1:0", "--otlp-grpc", "127.0.0.1:0", "--api", "127.0.0.1:0", "--log-level", "warning"]
        let started = Date()
        try daemon.run()
        defer { if daemon.isRunning { daemon.terminate(); daemon.waitUntilExit() } }
        var api: String?
        for _ in 0..<3_000 {
            if let d = FileManager.default.contents(atPath: dataDir + "/listening.json"),
               let j = try? JSONSerialization.jsonObject(with: d) as? [String: Any] { api = j["api"] as? String; break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        guard let api, let port = Int(api.split(separator: ":").last ?? "") else { throw ClientError(description: "daemon did not start (no listening.json)") }
        let loadSeconds = Date().timeIntervalSince(started)
        let client = try LoopbackHTTPClient(host: "127.0.0.1", port: port)
        // The daemon caches the partial aggregates of whole days after start; the first
        // query before that is done is the cold case, measured on its own.
        let first = DispatchTime.now().uptimeNanoseconds
        _ = try client.roundTrip(LoopbackHTTPClient.getRequest(path: "/api/v1/rollups?since=\(days)d&group_by=workflow"))
        let coldMs = Double(DispatchTime.now().uptimeNanoseconds - first) / 1e6
        var warmSeconds = -1.0
        for _ in 0..<600 {
            let (_, body) = try client.roundTrip(LoopbackHTTPClient.getRequest(path: "/metrics"))
            if String(decoding: body, as: UTF8.self).contains("\nspanledger_query_cache_warm 1") {
                warmSeconds = Date().timeIntervalSince(started) - loadSeconds
                break
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        print(String(format: "first query while the cache warms: %.1f ms; cache warm %.1f s after listening", coldMs, warmSeconds))
        var failed = false
        for (label, path) in [("rollups since=\(days)d group_by=workflow", "/api/v1/rollups?since=\(days)d&group_by=workflow"),
                              ("top by=spend since=\(days)d", "/api/v1/top?by=spend&since=\(days)d"),
                              ("rollups since=24h group_by=workflow,model", "/api/v1/rollups?since=24h&group_by=workflow,model")] {
            let request = LoopbackHTTPClient.getRequest(path: path)
            var times: [Double] = []
            for _ in 0..<requests {
                let s = DispatchTime.now().uptimeNanoseconds
                let (status, body) = try client.roundTrip(request)
                times.append(Double(DispatchTime.now().uptimeNanoseconds - s) / 1e6)
                guard status == 200, !body.isEmpty else { throw ClientError(description: "\(path) answered \(status)") }
            }
            times.sort()
            let p50 = times[times.count / 2], p99 = times[min(times.count - 1, Int(Double(times.count) * 0.99))]
            print(String(format: "%-44@ p50 %7.1f ms  p99 %7.1f ms  (%d requests)", label as NSString, p50, p99, requests))
            if let maxP50, p50 > maxP50 { print(String(format: "FAIL: p50 %.1f ms > %.1f ms", p50, maxP50)); failed = true }
            if let maxP99, p99 > maxP99 { print(String(format: "FAIL: p99 %.1f ms > %.1f ms", p99, maxP99)); failed = true }
        }
        let rss = ProcessMetrics.peakRSS(pid: daemon.processIdentifier).map { Double($0) / 1_048_576 } ?? 0
        print(String(format: "daemon: loaded in %.1f s (start to listening), peak RSS %.0f MB", loadSeconds, rss))
        if failed { throw ExitCode(1) }
    }
}
