import ArgumentParser

@main
struct SpanLedgerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spanledger",
        abstract: "Trace collector for AI agents: cost per accepted outcome from OpenTelemetry spans.",
        subcommands: [ServeCommand.self, QueryCommand.self, TraceCommand.self, OutcomeCommand.self, ScorecardCommand.self, RoutesCommand.self, TopCommand.self, SeriesCommand.self, PricesCommand.self, AlertsCommand.self, BenchCommand.self, HistoryBenchCommand.self])
}
