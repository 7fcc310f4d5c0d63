import ArgumentParser
import Attribution
import Foundation
import LedgerCore

struct PricesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prices", abstract: "Show the price table, or which entry prices a model.",
        subcommands: [List.self, Check.self])

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List price entries (USD per million tokens).")
        @Option(help: "Price file to add to the built-in table.") var prices: String?

        func run() throws {
            let table: PriceTable
            do { table = try PriceTable.load(userFile: prices) } catch { throw ValidationError("\(error)") }
            func usd(_ pico: Int64) -> String { String(format: "%.4f", Double(pico) / 1_000_000) }
            let rows = (table.userEntries + table.builtinEntries).map { e in
                [e.match, e.provider ?? "", e.effectiveFromUnixNano.map { String(RFC3339.format(unixNano: $0).prefix(10)) } ?? "always",
                 usd(e.input), usd(e.cachedInput), usd(e.cacheWrite), usd(e.output), usd(e.reasoning),
                 e.tiers.isEmpty ? "-" : e.tiersSummary,
                 { if case .file(let p) = e.source { return "\(p) #\(e.position)" } else { return "built-in" } }()]
            }
            print(TableText.render(headers: ["MATCH", "PROVIDER", "FROM", "INPUT", "CACHED", "CACHE WRITE", "OUTPUT", "REASONING", "TIERS", "SOURCE"],
                                   rows: rows, rightAligned: [3, 4, 5, 6, 7]), terminator: "")
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Which price entry matches a model, and why.")
        @Argument(help: "Model name as reported on spans.") var model: String
        @Option(help: "Price file to add to the built-in table.") var prices: String?
        @Option(help: "Price a call at this time (default now).") var at: String?
        @Flag(help: "Also list the built-in entries whose pattern does not match.") var all = false

        func run() throws {
            let table: PriceTable
            do { table = try PriceTable.load(userFile: prices) } catch { throw ValidationError("\(error)") }
            let now = WallClock.nowUnixNano()
            guard let when = at.map({ TimeArgument.resolve($0, now: now) }) ?? now else { throw ValidationError("invalid --at time") }
            let explanation = table.explain(model: model, atUnixNano: when)
            guard let e = explanation.chosen else {
                if explanation.candidates.contains(where: \.matched) {
                    print("\(model): no matching price entry is in force at \(RFC3339.format(unixNano: when)); its tokens are counted as unpriced")
                } else {
                    print("\(model): no price entry matches; its tokens are counted as unpriced")
                }
                for line in explanation.lines(includingUnmatchedBuiltins: all) { print(line) }
                throw ExitCode(1)
            }
            let source: String = if case .file(let p) = e.source { "\(p), entry #\(e.position)" } else { "built-in table" }
            print("\(model): matched '\(e.match)' from \(source) (most specific matching pattern, \(e.specificity) literal characters)")
            if let from = e.effectiveFromUnixNano { print("  effective from \(RFC3339.format(unixNano: from))") }
            func usd(_ pico: Int64) -> String { String(format: "%.6f", Double(pico) / 1_000_000) }
            print("  USD per million tokens: input \(usd(e.input)), cached input \(usd(e.cachedInput)), cache write \(usd(e.cacheWrite)), output \(usd(e.output)), reasoning \(usd(e.reasoning))")
            for line in explanation.lines(includingUnmatchedBuiltins: all) { print(line) }
        }
    }
}
