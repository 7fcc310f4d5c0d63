import AlertDetection
import Alerting
import ArgumentParser
import Foundation

struct AlertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "alerts", abstract: "Alerts: what is firing, recently resolved and notified; check a rules file; replay the spike detector's evaluation.",
        subcommands: [AlertsList.self, AlertsCheck.self, AlertsSimulate.self], defaultSubcommand: AlertsList.self)
}

struct AlertsList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Firing and pending alerts, recently resolved ones, and the notification history.")

    @Option(help: "Query API base URL (default http://127.0.0.1:4320).") var server: String?
    @Option(help: "table, json or csv (csv: the notification history).") var format: OutputFormat = .table
    @Option(help: "Notifications shown in the table.") var history = 20

    func run() async throws {
        let base = APIClient.baseURL(server)
        let data = try await APIClient.get(base, "/api/v1/alerts")
        if format == .json {
            print(String(decoding: data, as: UTF8.self))
            return
        }
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any] else { throw ClientError(description: "unexpected answer from the server") }
        let notifications = root["notifications"] as? [[String: Any]] ?? []
        let nHeaders = ["ID", "CREATED", "HOOK", "RULE", "STATUS", "RESULT", "ATTEMPTS", "HTTP", "ERROR"]
        func nRow(_ n: [String: Any]) -> [String] {
            [TableText.text(n["id"]), TableText.text(n["created_at"]), TableText.text(n["hook"]), TableText.text(n["rule"]), TableText.text(n["status"]),
             TableText.text(n["result"]), TableText.text(n["attempts"]), TableText.text(n["http_status"]), String(TableText.text(n["error"]).prefix(60))]
        }
        if format == .csv {
            print(TableText.csv(headers: nHeaders, rows: notifications.map(nRow)), terminator: "")
            return
        }
        let aHeaders = ["STATUS", "SINCE", "RULE", "SEVERITY", "WORKFLOW", "MODEL", "SUMMARY"]
        func aRow(_ a: [String: Any], time: String) -> [String] {
            let labels = a["labels"] as? [String: String] ?? [:]
            let ann = a["annotations"] as? [String: String] ?? [:]
            return [TableText.text(a["status"]), TableText.text(a[time]), TableText.text(a["rule"]), labels["severity"] ?? "-",
                    labels["workflow"] ?? "-", labels["model"] ?? "-", ann["summary"] ?? ""]
        }
        let active = (root["firing"] as? [[String: Any]] ?? []) + (root["pending"] as? [[String: Any]] ?? [])
        print(active.isEmpty ? "No alert is firing.\n" : TableText.render(headers: aHeaders, rows: active.map { aRow($0, time: "starts_at") }))
        let resolved = root["resolved"] as? [[String: Any]] ?? []
        if !resolved.isEmpty {
            print("Recently resolved:")
            print(TableText.render(headers: aHeaders, rows: resolved.prefix(10).map { aRow($0, time: "ends_at") }))
        }
        if !notifications.isEmpty {
            print("Notifications (newest first):")
            print(TableText.render(headers: nHeaders, rows: notifications.prefix(history).map(nRow), rightAligned: [0, 6]), terminator: "")
        }
    }
}

struct AlertsCheck: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Parse an alert rules file and list its rules and hooks, or say what is wrong.")

    @Argument(help: "Alert rules file (YAML).") var file: String

    func run() throws {
        let c: AlertConfiguration
        do { c = try AlertConfiguration.load(path: file) } catch {
            throw ValidationError("\(error)")
        }
        let rows = c.rules.map { r in [r.name, r.kind.rawValue, r.workflows.isEmpty ? (r.function.map { "function \($0)" } ?? "*") : r.workflows.joined(separator: ","),
                                       c.hooks(for: r).joined(separator: ",")] }
        print(TableText.render(headers: ["RULE", "TYPE", "WORKFLOWS", "HOOKS"], rows: rows))
        print(TableText.render(headers: ["HOOK", "TYPE", "TARGET"], rows: c.hooks.map { [$0.name, $0.kind.rawValue, $0.url ?? $0.command.joined(separator: " ")] }), terminator: "")
    }
}

struct AlertsSimulate: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Replay synthetic days of traffic with daily seasonality and injected spikes through the real spike detector on a simulated clock.")

    @Option(help: "Series simulated.") var series = 100
    @Option(help: "Days measured (after the warm-up).") var days = 7
    @Option(name: .customLong("warmup-days"), help: "Days simulated before measuring (history for the baselines).") var warmupDays = 3
    @Option(name: .customLong("spikes-per-week"), help: "Spikes injected per series per week.") var spikesPerWeek = 3.0
    @Option(name: .customLong("spike-factor"), help: "Injected spike size, times the baseline.") var spikeFactor = 3.0
    @Option(name: .customLong("spike-minutes"), help: "Injected spike length in steps (minutes).") var spikeMinutes = 5
    @Option(help: "PRNG seed.") var seed: UInt64 = 42
    @Option(help: "Detector: fire above factor × baseline.") var factor: Double?
    @Option(name: .customLong("for-steps"), help: "Detector: exceeding steps before firing.") var forSteps: Int?
    @Flag(name: .customLong("check-targets"), help: "Exit 1 unless ≥95% of spikes are found within 2 minutes and ≤1 false positive per 100 series per week.") var checkTargets = false

    func run() throws {
        var scenario = SpikeScenario()
        scenario.series = series
        scenario.days = days
        scenario.warmupDays = warmupDays
        scenario.spikesPerSeriesPerWeek = spikesPerWeek
        scenario.spikeFactor = spikeFactor
        scenario.spikeSteps = spikeMinutes
        scenario.seed = seed
        var settings = SpikeSettings()
        if let factor { settings.factor = factor }
        if let forSteps { settings.forSteps = forSteps }
        do { settings = try settings.validated() } catch { throw ValidationError("\(error)") }
        let report = SpikeHarness.run(scenario, settings: settings)
        for line in report.lines { print(line) }
        if checkTargets && !report.meetsTargets() {
            print("targets NOT met")
            throw ExitCode(1)
        }
    }
}
