@testable import Alerting
import Foundation
import LedgerCore
import LedgerPipeline
import Logging
import Rollups
import Testing

/// Rollups the budget and acceptance rules read, fixed by the test.
struct FixedRollups: RollupSource {
    var groups: [QueryGroup]
    func query(_ q: RollupQuery) async -> [QueryGroup] { groups }
}

func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "alerting-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

func engine(_ yaml: String, dir: String, rollups: [QueryGroup] = [], inbox: ActivityInbox = ActivityInbox()) throws -> AlertEngine {
    try AlertEngine(configuration: try AlertConfiguration.parse(yaml: yaml, source: "test"), rollups: FixedRollups(groups: rollups), inbox: inbox,
                    dataDirectory: dir, externalURL: "http://127.0.0.1:4320", logger: Logger(label: "test"))
}

let second: Int64 = 1_000_000_000
let t0: Int64 = 1_790_000_000 * second

func unpricedRun(_ workflow: String, at t: Int64) -> RunActivity {
    RunActivity(workflow: workflow, service: "svc", releasedUnixNano: t, runs: 1,
                models: [.init(model: "mystery", calls: 1, tokens: 1200, unpricedTokens: 1200, unpricedCalls: 1)])
}

@Suite struct AlertEngineTests {
    static let unpricedRules = """
        delivery: {retry_initial: 1s, retry_max: 4s, retry_deadline: 20s, repeat_interval: 1h}
        hooks: [{name: h, type: webhook, url: "http://127.0.0.1:9/x"}]
        default_hooks: [h]
        rules: [{name: unpriced, type: unpriced_model, window: 10s}]
        """

    @Test func transientFailuresBackOffExponentiallyUntilTheDeadline() async throws {
        let inbox = ActivityInbox()
        let e = try engine(Self.unpricedRules.replacingOccurrences(of: "window: 10s", with: "window: 1h"), dir: temporaryDirectory(), inbox: inbox)
        inbox.observe(unpricedRun("wf", at: t0))
        let first = await e.tick(now: t0)
        #expect(first.count == 1 && first[0].status == .firing && first[0].attempts == 1)
        #expect(first[0].alert.labels["model"] == "mystery" && first[0].alert.labels["rule"] == "unpriced")
        // In flight: not handed out twice.
        #expect(await e.tick(now: t0 + second / 10).isEmpty)
        var now = t0 + second / 5
        var attemptTimes: [Int64] = [t0]
        await e.finish(first[0].id, .transient(httpStatus: 500, reason: "HTTP 500"), now: now)
        while now < t0 + 30 * second {
            now += second / 10
            for n in await e.tick(now: now) {
                attemptTimes.append(now)
                await e.finish(n.id, .transient(httpStatus: 503, reason: "HTTP 503"), now: now)
            }
        }
        // Delays 1 s, 2 s, 4 s, then capped at 4 s; attempts at 0, 1.2, 3.2, 7.2, 11.2, 15.2,
        // 19.2 s; the next would pass the 20 s deadline.
        let gaps = zip(attemptTimes.dropFirst(), attemptTimes).map { Double($0 - $1) / Double(second) }
        #expect(gaps.count == 6, "\(gaps)")
        for (gap, want) in zip(gaps, [1.2, 2.0, 4.0, 4.0, 4.0, 4.0]) { #expect(abs(gap - want) <= 0.11, "\(gaps)") }
        let report = try JSONSerialization.jsonObject(with: Data(await e.reportJSON().utf8)) as! [String: Any]
        let n = (report["notifications"] as! [[String: Any]])[0]
        #expect(n["result"] as? String == "failed" && n["attempts"] as? Int == 7)
        #expect((n["error"] as? String)?.hasPrefix("gave up after 7 attempts: HTTP 503") == true)
    }

    @Test func aRestartNeitherResendsNorForgets() async throws {
        let dir = temporaryDirectory()
        let inbox = ActivityInbox()
        let a = try engine(Self.unpricedRules, dir: dir, inbox: inbox)
        inbox.observe(unpricedRun("wf", at: t0))
        inbox.observe(RunActivity(workflow: "other", service: "svc", releasedUnixNano: t0, runs: 1,
                                  models: [.init(model: "mystery-2", calls: 1, tokens: 5, unpricedTokens: 5, unpricedCalls: 1)]))
        let due = await a.tick(now: t0)
        #expect(due.count == 2)
        let delivered = due.first { $0.alert.labels["model"] == "mystery" }!
        await a.finish(delivered.id, .delivered(httpStatus: 200), now: t0 + 1)
        // The other one is in flight when the process dies.
        let saved = try String(contentsOfFile: dir + "/alerts/state.json", encoding: .utf8)
        #expect(saved.contains("mystery-2"), "\(saved.prefix(3000))")

        let b = try engine(Self.unpricedRules, dir: dir, inbox: ActivityInbox())
        let again = await b.tick(now: t0 + second)
        #expect(again.map { $0.alert.labels["model"] } == ["mystery-2"], "only the undelivered notification is attempted again")
        #expect(again.first?.attempts == 2)
        await b.finish(again[0].id, .delivered(httpStatus: 200), now: t0 + second)
        // Both still firing after the restart; they resolve when the 10 s window empties.
        let report = try JSONSerialization.jsonObject(with: Data(await b.reportJSON().utf8)) as! [String: Any]
        #expect((report["firing"] as! [Any]).count == 2)
        let resolved = await b.tick(now: t0 + 12 * second)
        #expect(resolved.map(\.status) == [.resolved, .resolved])
    }

    @Test func aQueuedFiringIsSupersededByItsResolution() async throws {
        let inbox = ActivityInbox()
        let e = try engine(Self.unpricedRules, dir: temporaryDirectory(), inbox: inbox)
        inbox.observe(unpricedRun("wf", at: t0))
        let first = await e.tick(now: t0)
        await e.finish(first[0].id, .transient(httpStatus: nil, reason: "connection refused"), now: t0)
        // Resolved before the retry is due: the queued firing gives way to the resolution.
        let next = await e.tick(now: t0 + 11 * second)
        #expect(next.count == 1 && next[0].status == .resolved)
        let report = try JSONSerialization.jsonObject(with: Data(await e.reportJSON().utf8)) as! [String: Any]
        let results = (report["notifications"] as! [[String: Any]]).map { "\($0["status"]!)/\($0["result"]!)" }
        #expect(results == ["resolved/pending", "firing/superseded"])
    }

    @Test func budgetThresholdsAndProjection() async throws {
        var g = QueryGroup(workflow: "support-bot")
        g.measures.costMicros = 85_000_000 // $85
        let yaml = """
            hooks: [{name: h, type: webhook, url: "http://127.0.0.1:9/x"}]
            default_hooks: [h]
            rules: [{name: b, type: spend_budget, budget_usd: 100, period: day, workflows: ["support-*"]}]
            """
        let e = try engine(yaml, dir: temporaryDirectory(), rollups: [g])
        // 12:00 UTC: half the day gone, $85 spent → warning (≥ $80) and projected ($170 ≥ $100), not critical.
        let noon = (t0 / (86_400 * second)) * 86_400 * second + 12 * 3_600 * second
        let due = await e.tick(now: noon)
        let thresholds = due.map { $0.alert.labels["threshold"]! }.sorted()
        #expect(thresholds == ["projected", "warning"])
        let projected = due.first { $0.alert.labels["threshold"] == "projected" }!
        #expect(projected.alert.annotations["summary"]!.contains("on course to spend $170.000000 against a $100.000000 day budget"))
        #expect(due.allSatisfy { $0.alert.labels["workflow"] == nil })
    }

    @Test func tokenSpikeSeriesFireFromTheReleaseStream() async throws {
        let inbox = ActivityInbox()
        let yaml = """
            hooks: [{name: h, type: webhook, url: "http://127.0.0.1:9/x"}]
            default_hooks: [h]
            rules: [{name: s, type: token_spike, step: 1s, window: 30s, min_history: 10s, per_model: true}]
            """
        let e = try engine(yaml, dir: temporaryDirectory(), inbox: inbox)
        func run(_ tokens: Int64, at t: Int64) -> RunActivity {
            RunActivity(workflow: "agent", service: "svc", releasedUnixNano: t, runs: 1, models: [.init(model: "m", calls: 1, tokens: tokens, costMicros: 1)])
        }
        var fired: [AlertNotification] = []
        for s in 0..<40 {
            let now = t0 + Int64(s) * second
            let tokens: Int64 = (30..<35).contains(s) ? 5_000 : 1_000 + Int64(s % 3) * 20
            inbox.observe(run(tokens, at: now + second / 2))
            for n in await e.tick(now: now + second / 2 + 1) {
                fired.append(n)
                await e.finish(n.id, .delivered(httpStatus: 200), now: now)
            }
        }
        // Both series (the workflow, the workflow on model m) fire at the end of step 31, then resolve.
        let firings = fired.filter { $0.status == Alert.Status.firing }
        let resolutions = fired.filter { $0.status == Alert.Status.resolved }
        #expect(firings.count == 2)
        let models: Set<String> = Set(firings.map { $0.alert.labels["model"] ?? "*" })
        #expect(models == ["*", "m"])
        #expect(resolutions.count == 2)
        let firing = firings[0]
        #expect(firing.alert.startsAtUnixNano == t0 + 30 * second)
        #expect(firing.alert.annotations["summary"]!.contains("300,000 tokens/min against a baseline of"))
    }
}

/// The ledger hands the inbox a committed chunk's runs at once: past its capacity the
/// inbox keeps what fits, in order, and counts the rest as dropped, as it does one by one.
@Test func theInboxTakesAChunkUpToItsCapacityAndCountsTheRest() {
    let inbox = ActivityInbox(capacity: 5)
    inbox.observe(unpricedRun("one", at: t0))
    inbox.observe(contentsOf: (0..<6).map { unpricedRun("chunk-\($0)", at: t0) })
    inbox.observe(unpricedRun("late", at: t0))
    let (kept, dropped) = inbox.drain()
    #expect(kept.map(\.workflow) == ["one", "chunk-0", "chunk-1", "chunk-2", "chunk-3"])
    #expect(dropped == 3)
    inbox.observe(contentsOf: [unpricedRun("after", at: t0)])
    #expect(inbox.drain().activities.map(\.workflow) == ["after"])
}
