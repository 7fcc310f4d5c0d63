import LedgerCore

/// Why a model is priced by the entry it is, or by none (`spanledger prices check`): every
/// entry of the table, whether its pattern matches the model, and why it was chosen or
/// passed over. Built by `PriceTable.explain(model:atUnixNano:)`, which decides exactly as
/// `PriceTable.entry(forModel:atUnixNano:)` does.
public struct PriceExplanation: Sendable, Hashable {
    public enum Status: String, Sendable, Hashable {
        /// The entry that prices the call.
        case chosen
        /// The pattern matches neither the model name nor the name without its `provider/` prefix.
        case noMatch = "no_match"
        /// Matches, but its `effective_from` is after the call's start.
        case notYetEffective = "not_yet_effective"
        /// Matches and is in force, but the chosen pattern has more literal characters.
        case lessSpecific = "less_specific"
        /// Matches and is in force, equally specific as the chosen entry, which took effect later.
        case supersededByLaterEntry = "superseded"
        /// Matches and is in force, equally specific and effective as the chosen entry, which is earlier in the file.
        case laterInFile = "later_in_file"
        /// A built-in entry that matches and is in force, while a user entry applies.
        case userEntryApplies = "user_entry_applies"
    }

    public struct Candidate: Sendable, Hashable {
        public var entry: PriceEntry
        /// The name the pattern matched: the model name (lowercased) or, failing that, the name
        /// without its `provider/` prefix; nil when it matched neither.
        public var matchedName: String?
        public var status: Status
        /// One sentence for people, e.g. `less specific than 'gpt-4o-mini*' (built-in #9): 5 literal characters against 10`.
        public var reason: String
        /// From the built-in table (else from the user's file).
        public var builtin: Bool

        public var matched: Bool { matchedName != nil }
    }

    public var model: String
    public var atUnixNano: Int64
    /// The `provider/` prefix (everything up to the last `/`, lowercased) that is stripped to try
    /// the bare name; nil when the model name has no `/`.
    public var strippedPrefix: String?
    /// The user file's entries, then the built-in ones. Within each source: the matching entries in
    /// the order they are consulted (precedence), then the others in file order.
    public var candidates: [Candidate]

    /// The entry that prices the call, or nil (its tokens are counted as unpriced).
    public var chosen: PriceEntry? { candidates.first { $0.status == .chosen }?.entry }

    /// The chosen entry's tiers, one line each with all of their prices (USD per million tokens).
    public var tierLines: [String] {
        guard let e = chosen else { return [] }
        return e.tiers.map { t in
            let r = e.rates(of: t)
            return "  above \(t.aboveInputTokens) input tokens per call (the whole call): input \(Self.usd(r.input)), "
                + "cached input \(Self.usd(r.cachedInput)), cache write \(Self.usd(r.cacheWrite)), output \(Self.usd(r.output)), "
                + "reasoning \(Self.usd(r.reasoning))"
        }
    }

    /// Every candidate, one line each; built-in entries that do not match are counted rather than
    /// listed unless `includingUnmatchedBuiltins`.
    public func candidateLines(includingUnmatchedBuiltins: Bool = false) -> [String] {
        var out: [String] = []
        if let prefix = strippedPrefix {
            out.append("  name tried as \"\(model.lowercased())\" and, without the prefix \"\(prefix)\", as \"\(model.lowercased().dropFirst(prefix.count))\"")
        }
        out.append("  candidates, in the order consulted (user file first, then built-in):")
        var hidden = 0
        for c in candidates {
            if !c.matched && c.builtin && !includingUnmatchedBuiltins {
                hidden += 1
                continue
            }
            let label = switch c.status {
            case .chosen: "chosen     "
            case .noMatch: "no match   "
            default: "passed over"
            }
            let from = c.entry.effectiveFromUnixNano.map { "from \(Self.time($0))" } ?? "always"
            out.append("    \(label) '\(c.entry.match)' (\(Self.origin(c.entry)), \(from), \(c.entry.specificity) literal): \(c.reason)")
        }
        if hidden > 0 { out.append("    (\(hidden) other built-in entr\(hidden == 1 ? "y does" : "ies do") not match)") }
        return out
    }

    /// `tierLines` followed by `candidateLines`.
    public func lines(includingUnmatchedBuiltins: Bool = false) -> [String] {
        tierLines + candidateLines(includingUnmatchedBuiltins: includingUnmatchedBuiltins)
    }

    /// "built-in #7" or "prices.json #2".
    public static func origin(_ e: PriceEntry) -> String {
        switch e.source {
        case .builtin: "built-in #\(e.position)"
        case .file(let path): "\(path) #\(e.position)"
        }
    }

    /// A date at midnight UTC as `YYYY-MM-DD`, other times as RFC 3339.
    static func time(_ unixNano: Int64) -> String {
        let s = RFC3339.format(unixNano: unixNano)
        return s.hasSuffix("T00:00:00Z") && unixNano % 1_000_000_000 == 0 ? String(s.prefix(10)) : s
    }

    static func usd(_ pico: Int64) -> String { Money.usdString(micros: pico) }
}

extension PriceTable {
    /// Explains which entry prices `model` for a call starting at `unixNano`, and why each other
    /// entry does not. `explain(...).chosen` is always `entry(forModel:atUnixNano:)`.
    public func explain(model: String, atUnixNano unixNano: Int64) -> PriceExplanation {
        let names = model.isEmpty ? [] : Self.candidateNames(model)
        let stripped = names.count > 1 ? String(names[0].dropLast(names[1].count)) : nil
        func matchedName(_ e: PriceEntry) -> String? { names.first { Glob.matches(e.match, $0) } }
        func inForce(_ e: PriceEntry) -> Bool { (e.effectiveFromUnixNano ?? .min) <= unixNano }
        func named(_ e: PriceEntry) -> String { "'\(e.match)' (\(PriceExplanation.origin(e)))" }
        let callTime = PriceExplanation.time(unixNano)

        var candidates: [PriceExplanation.Candidate] = []
        var applied: PriceEntry?
        var userMatched = false
        for (k, entries) in [userEntries, builtinEntries].enumerated() {
            let isBuiltin = k == 1
            let matched = Self.precedenceOrder(entries.filter { matchedName($0) != nil })
            let winner = applied == nil ? matched.first(where: inForce) : nil
            for e in matched {
                let name = matchedName(e)
                let status: PriceExplanation.Status
                var reason: String
                if !inForce(e) {
                    status = .notYetEffective
                    reason = "not yet effective on \(callTime): effective from \(PriceExplanation.time(e.effectiveFromUnixNano ?? 0))"
                } else if let user = applied {
                    status = .userEntryApplies
                    reason = "built-in entries are consulted only when no user entry matches; \(named(user)) matches and is in force"
                } else if let w = winner, w == e {
                    status = .chosen
                    reason = "the most specific matching pattern in force (\(e.specificity) literal characters)"
                    let rivals = matched.filter { $0 != e && inForce($0) && $0.specificity == e.specificity }
                    if rivals.contains(where: { ($0.effectiveFromUnixNano ?? .min) < (e.effectiveFromUnixNano ?? .min) }) {
                        reason += "; of the equally specific ones it took effect last"
                    }
                    if rivals.contains(where: { $0.effectiveFromUnixNano == e.effectiveFromUnixNano }) {
                        reason += "; equally specific and effective patterns are decided by position: the earlier entry in the file wins"
                    }
                    if isBuiltin && !userEntries.isEmpty {
                        reason += userMatched ? "; no user entry that matches is in force yet" : "; no user entry matches"
                    }
                } else if let w = winner, e.specificity < w.specificity {
                    status = .lessSpecific
                    reason = "less specific than \(named(w)): \(e.specificity) literal characters against \(w.specificity)"
                } else if let w = winner, (e.effectiveFromUnixNano ?? .min) < (w.effectiveFromUnixNano ?? .min) {
                    status = .supersededByLaterEntry
                    let wFrom = PriceExplanation.time(w.effectiveFromUnixNano ?? 0)
                    reason = "superseded by \(named(w)), equally specific and effective from \(wFrom), later than this entry"
                } else {
                    // Only reachable with a winner of equal specificity and effective date, earlier in the file.
                    status = .laterInFile
                    reason = winner.map { "equally specific and effective as \(named($0)), which is earlier in the file and wins" } ?? "passed over"
                }
                if let name, name != names.first, let stripped {
                    reason += " (matched \"\(name)\": prefix \"\(stripped)\" stripped)"
                }
                candidates.append(.init(entry: e, matchedName: name, status: status, reason: reason, builtin: isBuiltin))
            }
            for e in entries where matchedName(e) == nil {
                let reason = model.isEmpty ? "the call names no model"
                    : "pattern does not match " + names.map { "\"\($0)\"" }.joined(separator: " or ")
                candidates.append(.init(entry: e, matchedName: nil, status: .noMatch, reason: reason, builtin: isBuiltin))
            }
            if !isBuiltin { userMatched = !matched.isEmpty }
            if applied == nil { applied = winner }
        }
        return PriceExplanation(model: model, atUnixNano: unixNano, strippedPrefix: stripped, candidates: candidates)
    }
}
