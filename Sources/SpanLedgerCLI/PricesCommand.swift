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
        @Option(help: "table, json or csv.") var format: OutputFormat = .table

        func run() throws {
            let table: PriceTable
            do { table = try PriceTable.load(userFile: prices) } catch { throw ValidationError("\(error)") }
            if format != .table {
                let headers = ["match", "provider", "effective_from", "input", "cached_input", "cache_write", "output", "reasoning", "tiers", "source"]
                let rows = (table.userEntries + table.builtinEntries).map { e -> [String] in
                    func usd(_ pico: Int64) -> String { String(format: "%.6f", Double(pico) / 1_000_000) }
                    return [e.match, e.provider ?? "", e.effectiveFromUnixNano.map { RFC3339.format(unixNano: $0) } ?? "",
                            usd(e.input), usd(e.cachedInput), usd(e.cacheWrite), usd(e.output), usd(e.reasoning), e.tiersSummary,
                            { if case .file(let p) = e.source { return "\(p)#\(e.position)" } else { return "built-in" } }()]
                }
                if format == .csv {
                    print(TableText.csv(headers: headers, rows: rows), terminator: "")
                } else {
                    // Prices as numbers (USD per million tokens), the rest as strings.
                    let numeric: Set<String> = ["input", "cached_input", "cache_write", "output", "reasoning"]
                    let objects = rows.map { row in
                        Dictionary(uniqueKeysWithValues: zip(headers, row).map { k, v -> (String, Any) in
                            numeric.contains(k) ? (k, Double(v) ?? 0) : (k, v)
                        })
                    }
                    let data = try JSONSerialization.data(withJSONObject: ["entries": objects], options: [.sortedKeys, .withoutEscapingSlashes])
                    print(String(decoding: data, as: UTF8.self))
                }
                return
            }
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
