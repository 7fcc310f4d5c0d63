import Foundation
import LedgerCore
import Synchronization

/// Prices of each token type, in pico-dollars per token (= USD per million tokens × 10⁶).
public struct PriceRates: Sendable, Hashable {
    public var input: Int64
    public var cachedInput: Int64
    public var cacheWrite: Int64
    public var output: Int64
    public var reasoning: Int64

    public init(input: Int64, cachedInput: Int64, cacheWrite: Int64, output: Int64, reasoning: Int64) {
        self.input = input
        self.cachedInput = cachedInput
        self.cacheWrite = cacheWrite
        self.output = output
        self.reasoning = reasoning
    }

    /// Cost of one call in micro-dollars, rounded half up from exact pico-dollars.
    public func costMicros(for usage: TokenUsage) -> Int64 { costMicros(normalized: usage.normalized()) }

    func costMicros(normalized u: TokenUsage) -> Int64 {
        let uncachedInput = max(0, u.input - u.cacheRead - u.cacheWrite)
        let plainOutput = max(0, u.output - u.reasoning)
        // Straight-line (no array of pairs per call): this runs for every priced call.
        var pico: Int64 = 0
        func add(_ tokens: Int64, _ price: Int64) {
            let (p, o1) = tokens.multipliedReportingOverflow(by: price)
            let (s, o2) = pico.addingReportingOverflow(p)
            pico = (o1 || o2) ? Int64.max : s
        }
        add(uncachedInput, input)
        add(u.cacheRead, cachedInput)
        add(u.cacheWrite, cacheWrite)
        add(plainOutput, output)
        add(u.reasoning, reasoning)
        if pico == Int64.max { return Int64.max / 1_000_000 }
        return (pico + 500_000) / 1_000_000
    }
}

/// A higher (or lower) rate for large prompts: it prices the whole call when the call's input
/// tokens (cache reads and writes included) are strictly above `aboveInputTokens`.
public struct PriceTier: Sendable, Hashable {
    public var aboveInputTokens: Int64
    /// The tier's prices in pico-dollars per token; nil: the base entry's corresponding price.
    public var input: Int64?
    public var cachedInput: Int64?
    public var cacheWrite: Int64?
    public var output: Int64?
    public var reasoning: Int64?

    public init(aboveInputTokens: Int64, input: Int64? = nil, cachedInput: Int64? = nil, cacheWrite: Int64? = nil,
                output: Int64? = nil, reasoning: Int64? = nil) {
        self.aboveInputTokens = aboveInputTokens
        self.input = input
        self.cachedInput = cachedInput
        self.cacheWrite = cacheWrite
        self.output = output
        self.reasoning = reasoning
    }
}

/// Prices of one model pattern, in pico-dollars per token (= USD per million tokens × 10⁶),
/// so any price with up to six decimals is exact.
public struct PriceEntry: Sendable, Hashable {
    public enum Source: Sendable, Hashable {
        case builtin
        case file(String)
    }

    public var match: String
    public var provider: String?
    public var effectiveFromUnixNano: Int64?
    public var input: Int64
    public var cachedInput: Int64
    public var cacheWrite: Int64
    public var output: Int64
    public var reasoning: Int64
    /// Prompt-size tiers, ascending by threshold (Schemas/prices.md "Tiers").
    public var tiers: [PriceTier]
    public var source: Source
    /// 1-based position of the entry in its file's `models` array.
    public var position: Int

    /// Non-wildcard characters of the pattern: more means more specific.
    public var specificity: Int { match.filter { $0 != "*" && $0 != "?" }.count }

    public init(match: String, provider: String? = nil, effectiveFromUnixNano: Int64? = nil, input: Int64, cachedInput: Int64? = nil,
                cacheWrite: Int64? = nil, output: Int64, reasoning: Int64? = nil, tiers: [PriceTier] = [], source: Source = .builtin,
                position: Int = 0) {
        self.match = match
        self.provider = provider
        self.effectiveFromUnixNano = effectiveFromUnixNano
        self.input = input
        self.cachedInput = cachedInput ?? input
        self.cacheWrite = cacheWrite ?? input
        self.output = output
        self.reasoning = reasoning ?? output
        self.tiers = tiers.sorted { $0.aboveInputTokens < $1.aboveInputTokens }
        self.source = source
        self.position = position
    }

    /// The prices below the first tier.
    public var baseRates: PriceRates {
        PriceRates(input: input, cachedInput: cachedInput, cacheWrite: cacheWrite, output: output, reasoning: reasoning)
    }

    /// A tier's prices, its omitted ones taken from the base entry's corresponding price.
    public func rates(of tier: PriceTier) -> PriceRates {
        PriceRates(input: tier.input ?? input, cachedInput: tier.cachedInput ?? cachedInput, cacheWrite: tier.cacheWrite ?? cacheWrite,
                   output: tier.output ?? output, reasoning: tier.reasoning ?? reasoning)
    }

    /// The tier with the highest threshold that `inputTokens` is strictly above, or nil (base prices).
    public func tier(forInputTokens inputTokens: Int64) -> PriceTier? {
        var best: PriceTier?
        for t in tiers where inputTokens > t.aboveInputTokens && t.aboveInputTokens > (best?.aboveInputTokens ?? .min) { best = t }
        return best
    }

    /// The tier that prices a call with `usage` (its input includes cache reads and writes), or nil.
    public func tier(for usage: TokenUsage) -> PriceTier? { tier(forInputTokens: usage.normalized().input) }

    /// The prices that apply to the whole of a call with `usage`.
    public func rates(for usage: TokenUsage) -> PriceRates { tier(for: usage).map(rates(of:)) ?? baseRates }

    /// Cost of one call in micro-dollars, rounded half up from exact pico-dollars; a tier the
    /// call's input exceeds prices the whole call.
    public func costMicros(for usage: TokenUsage) -> Int64 {
        let u = usage.normalized()
        return (tier(forInputTokens: u.input).map(rates(of:)) ?? baseRates).costMicros(normalized: u)
    }

    /// Tiers as `200k+: 2.5/15.0` (threshold: input/output USD per million tokens), comma-separated; "" without tiers.
    public var tiersSummary: String {
        tiers.map { t in
            let r = rates(of: t)
            return "\(Self.tokenCount(t.aboveInputTokens))+: \(Self.usdPerMillion(r.input))/\(Self.usdPerMillion(r.output))"
        }.joined(separator: ", ")
    }

    /// `200000` → "200k", `1000000` → "1M", others as digits.
    static func tokenCount(_ n: Int64) -> String {
        if n > 0 && n % 1_000_000 == 0 { return "\(n / 1_000_000)M" }
        if n > 0 && n % 1_000 == 0 { return "\(n / 1_000)k" }
        return "\(n)"
    }

    /// Pico-dollars per token as USD per million tokens with the fewest decimals (at least one): "2.5", "15.0", "0.625".
    static func usdPerMillion(_ pico: Int64) -> String {
        var s = Money.usdString(micros: pico)
        while s.hasSuffix("0") && !s.hasSuffix(".0") { s.removeLast() }
        return s
    }
}

public struct PriceFileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var line: Int?
    public var reason: String
    public var description: String { "price file \(path)\(line.map { ":\($0)" } ?? ""): \(reason)" }
}

/// The price table (../shared/DESIGN.md "Cost"; format in Schemas/prices.md): the user's
/// entries first, then the built-in table; most specific pattern, then latest effective date,
/// then the earlier entry in the file. `explain(model:atUnixNano:)` says why.
public struct PriceTable: Sendable {
    public private(set) var userEntries: [PriceEntry]
    public private(set) var builtinEntries: [PriceEntry]
    /// Entries matching each model name seen, most specific and latest first, per source:
    /// glob matching runs once per distinct model, not once per call.
    private let matches = MatchCache()

    public init(userEntries: [PriceEntry] = [], builtinEntries: [PriceEntry] = BuiltinPrices.entries) {
        self.userEntries = userEntries
        self.builtinEntries = builtinEntries
    }

    final class MatchCache: Sendable {
        static let capacity = 50_000
        let byModel = Mutex<[String: [[PriceEntry]]]>([:])
    }

    /// Loads the built-in table plus the user's file, if any.
    public static func load(userFile: String?) throws -> PriceTable {
        guard let path = userFile else { return PriceTable() }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw PriceFileError(path: path, line: nil, reason: "cannot read the file")
        }
        return PriceTable(userEntries: try parse(data, source: .file(path)))
    }

    /// The entry that prices `model` for a call starting at `unixNano`, or nil (unpriced).
    public func entry(forModel model: String, atUnixNano unixNano: Int64) -> PriceEntry? {
        Self.entry(in: candidates(forModel: model), atUnixNano: unixNano)
    }

    /// The entries that may price `model` (user's, then built-in), each list in precedence
    /// order; `entry(in:atUnixNano:)` picks the one in effect at a time.
    public func candidates(forModel model: String) -> [[PriceEntry]] {
        model.isEmpty ? [] : matching(model)
    }

    public static func entry(in candidates: [[PriceEntry]], atUnixNano unixNano: Int64) -> PriceEntry? {
        for ordered in candidates {
            // Ordered most specific first, then latest effective date, then first in the file.
            if let e = ordered.first(where: { ($0.effectiveFromUnixNano ?? .min) <= unixNano }) { return e }
        }
        return nil
    }

    /// The user's and the built-in entries whose pattern matches `model`, each list in
    /// precedence order.
    func matching(_ model: String) -> [[PriceEntry]] {
        if let hit = matches.byModel.withLock({ $0[model] }) { return hit }
        let names = Self.candidateNames(model)
        let found = [userEntries, builtinEntries].map { Self.precedenceOrder($0.filter { e in names.contains { Glob.matches(e.match, $0) } }) }
        matches.byModel.withLock { cache in
            if cache.count >= MatchCache.capacity { cache.removeAll(keepingCapacity: true) }
            cache[model] = found
        }
        return found
    }

    /// Entries of one source, most specific pattern first; between equally specific patterns the
    /// latest `effective_from` first (absent: earliest); then the earlier entry in the file first.
    /// Ties end at the position, so the order never depends on the sort algorithm.
    static func precedenceOrder(_ entries: [PriceEntry]) -> [PriceEntry] {
        entries.enumerated().sorted { a, b in
            let (x, y) = (a.element, b.element)
            if x.specificity != y.specificity { return x.specificity > y.specificity }
            let (fx, fy) = (x.effectiveFromUnixNano ?? .min, y.effectiveFromUnixNano ?? .min)
            if fx != fy { return fx > fy }
            return (x.position, a.offset) < (y.position, b.offset)
        }.map(\.element)
    }

    static func candidateNames(_ model: String) -> [String] {
        let lower = model.lowercased()
        if let slash = lower.lastIndex(of: "/") { return [lower, String(lower[lower.index(after: slash)...])] }
        return [lower]
    }

    /// Parses a price file (Schemas/prices.md). Errors name the entry's line in the file.
    public static func parse(_ data: Data, source: PriceEntry.Source) throws -> [PriceEntry] {
        let path: String = if case .file(let p) = source { p } else { "<builtin>" }
        let lines = EntryLines(data: data)
        let file: PriceFileJSON
        do {
            file = try JSONDecoder().decode(PriceFileJSON.self, from: data)
        } catch let DecodingError.dataCorrupted(ctx) where ctx.codingPath.isEmpty {
            throw PriceFileError(path: path, line: nil, reason: "not valid JSON: \(ctx.debugDescription)")
        } catch let e as DecodingError {
            let (ctx, what): (DecodingError.Context, String) = switch e {
            case .keyNotFound(let k, let c): (c, "\"\(k.stringValue)\" is required")
            case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): (c, c.debugDescription)
            @unknown default: (DecodingError.Context(codingPath: [], debugDescription: "\(e)"), "\(e)")
            }
            let keys = ctx.codingPath
            let index = keys.first(where: { $0.intValue != nil })?.intValue
            let field = keys.last.map { $0.intValue == nil ? " (\($0.stringValue))" : "" } ?? ""
            let tier = keys.indices.dropLast().first { keys[$0].stringValue == "tiers" && keys[$0].intValue == nil }
                .flatMap { keys[$0 + 1].intValue }
            throw PriceFileError(path: path, line: index.flatMap(lines.line(ofEntry:)),
                                 reason: (index.map { "models[\($0)]: " } ?? "") + (tier.map { "tiers[\($0)]: " } ?? "") + what + field)
        }
        var out: [PriceEntry] = []
        var firstIndex: [EntryKey: Int] = [:]
        for (i, m) in file.models.enumerated() {
            func fail(_ reason: String) -> PriceFileError { PriceFileError(path: path, line: lines.line(ofEntry: i), reason: "models[\(i)]: \(reason)") }
            guard !m.match.isEmpty else { throw fail("\"match\" (a model-name pattern) must not be empty") }
            func pico(_ key: String, _ value: Double?, tier: Int? = nil) throws -> Int64? {
                guard let value else { return nil }
                guard value.isFinite, value >= 0, value < 1_000_000 else {
                    throw fail((tier.map { "tiers[\($0)]: " } ?? "") + "\"\(key)\" must be a non-negative price below 1000000")
                }
                return Int64((value * 1_000_000).rounded())
            }
            var effective: Int64?
            if let text = m.effective_from {
                guard let t = RFC3339.parse(text) else { throw fail("\"effective_from\" must be YYYY-MM-DD or an RFC 3339 time") }
                effective = t
            }
            var tiers: [PriceTier] = []
            for (j, t) in (m.tiers ?? []).enumerated() {
                guard t.above_input_tokens.isFinite, t.above_input_tokens >= 1, t.above_input_tokens <= 1e15,
                      t.above_input_tokens == t.above_input_tokens.rounded() else {
                    throw fail("tiers[\(j)]: \"above_input_tokens\" must be a whole number of tokens from 1 to 1000000000000000")
                }
                let above = Int64(t.above_input_tokens)
                if let k = tiers.firstIndex(where: { $0.aboveInputTokens == above }) {
                    throw fail("tiers[\(j)]: \"above_input_tokens\" \(above) repeats the threshold of tiers[\(k)]; thresholds must be distinct")
                }
                guard t.input != nil || t.cached_input != nil || t.cache_write != nil || t.output != nil || t.reasoning != nil else {
                    throw fail("tiers[\(j)]: the tier sets no price (input, cached_input, cache_write, output or reasoning)")
                }
                tiers.append(PriceTier(
                    aboveInputTokens: above, input: try pico("input", t.input, tier: j), cachedInput: try pico("cached_input", t.cached_input, tier: j),
                    cacheWrite: try pico("cache_write", t.cache_write, tier: j), output: try pico("output", t.output, tier: j),
                    reasoning: try pico("reasoning", t.reasoning, tier: j)))
            }
            let match = m.match.lowercased()
            let key = EntryKey(match: match, effectiveFromUnixNano: effective)
            if let k = firstIndex[key] {
                throw fail("same match \"\(match)\" and effective_from as models[\(k)]\(lines.line(ofEntry: k).map { " (line \($0))" } ?? ""): "
                           + "which price applies would be ambiguous")
            }
            firstIndex[key] = i
            out.append(PriceEntry(
                match: match, provider: m.provider, effectiveFromUnixNano: effective,
                input: try pico("input", m.input)!, cachedInput: try pico("cached_input", m.cached_input),
                cacheWrite: try pico("cache_write", m.cache_write), output: try pico("output", m.output)!,
                reasoning: try pico("reasoning", m.reasoning), tiers: tiers, source: source, position: i + 1))
        }
        return out
    }

    /// Two entries with the same key would be equally preferred for every call.
    struct EntryKey: Hashable {
        var match: String
        var effectiveFromUnixNano: Int64?
    }
}

/// The price file's JSON shape (Schemas/prices.md).
struct PriceFileJSON: Decodable {
    struct Model: Decodable {
        var match: String
        var provider: String?
        var effective_from: String?
        var input: Double
        var cached_input: Double?
        var cache_write: Double?
        var output: Double
        var reasoning: Double?
        var tiers: [Tier]?
    }

    struct Tier: Decodable {
        var above_input_tokens: Double
        var input: Double?
        var cached_input: Double?
        var cache_write: Double?
        var output: Double?
        var reasoning: Double?
    }

    var version: Int?
    var models: [Model]
}

/// Finds the line on which the i-th object of the `models` array starts, for error messages.
struct EntryLines {
    var starts: [Int] = []

    init(data: Data) {
        let bytes = [UInt8](data)
        guard let modelsKey = Self.find(Array("\"models\"".utf8), in: bytes) else { return }
        var depth = 0
        var line = 1 + bytes[..<modelsKey].filter { $0 == 10 }.count
        var inString = false
        var escaped = false
        var i = modelsKey
        var arrayDepth = -1
        while i < bytes.count {
            let c = bytes[i]
            if c == 10 { line += 1 }
            if inString {
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
            } else if c == UInt8(ascii: "\"") {
                inString = true
            } else if c == UInt8(ascii: "[") || c == UInt8(ascii: "{") {
                if c == UInt8(ascii: "[") && arrayDepth < 0 { arrayDepth = depth + 1 }
                else if c == UInt8(ascii: "{") && depth == arrayDepth { starts.append(line) }
                depth += 1
            } else if c == UInt8(ascii: "]") || c == UInt8(ascii: "}") {
                depth -= 1
                if depth < arrayDepth && arrayDepth >= 0 { break }
            }
            i += 1
        }
    }

    func line(ofEntry i: Int) -> Int? { i < starts.count ? starts[i] : nil }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard needle.count <= hay.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i..<(i + needle.count)].elementsEqual(needle) { return i }
        return nil
    }
}

/// Case-insensitive glob over the whole string: `*` any run, `?` one character.
public enum Glob {
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        let p = Array(pattern.lowercased().utf8)
        let t = Array(text.lowercased().utf8)
        var pi = 0, ti = 0, star = -1, mark = 0
        while ti < t.count {
            if pi < p.count && (p[pi] == UInt8(ascii: "?") || p[pi] == t[ti]) {
                pi += 1; ti += 1
            } else if pi < p.count && p[pi] == UInt8(ascii: "*") {
                star = pi; mark = ti; pi += 1
            } else if star >= 0 {
                pi = star + 1; mark += 1; ti = mark
            } else {
                return false
            }
        }
        while pi < p.count && p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.count
    }
}
