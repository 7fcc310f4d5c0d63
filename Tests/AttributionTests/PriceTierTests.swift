import Attribution
import Foundation
import LedgerCore

import Testing

/// The error a price file is refused with, or nil if it loads.
func refusal(_ json: String) -> PriceFileError? {
    do {
        _ = try table(json)
        return nil
    } catch let e as PriceFileError {
        return e
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

let july2025 = RFC3339.parse("2025-07-01T00:00:00Z")!

// MARK: Tiered costs (expected values computed by hand: tokens × pico-dollars per token, then µ$ half up)

@Test func builtinGemini25ProTierStartsStrictlyAbove200kInputTokens() throws {
    let t = PriceTable()
    let e = try #require(t.entry(forModel: "gemini-2.5-pro", atUnixNano: july2025))
    #expect(e.tiers == [PriceTier(aboveInputTokens: 200_000, input: 2_500_000, cachedInput: 625_000, cacheWrite: 2_500_000, output: 15_000_000, reasoning: 15_000_000)])
    // At 200,000 the base rates apply: 200,000 × 1.25e6 + 1,000 × 10e6 = 2.5e11 + 1e10 pico = 260,000 µ$.
    #expect(e.tier(for: TokenUsage(input: 200_000, output: 1_000)) == nil)
    #expect(e.costMicros(for: TokenUsage(input: 200_000, output: 1_000)) == 260_000)
    // At 200,001 the tier prices the whole call: 200,001 × 2.5e6 + 1,000 × 15e6 = 500,002,500,000 + 15,000,000,000 pico
    // = 515,002.5 µ$ → 515,003.
    #expect(e.tier(for: TokenUsage(input: 200_001, output: 1_000))?.aboveInputTokens == 200_000)
    #expect(e.costMicros(for: TokenUsage(input: 200_001, output: 1_000)) == 515_003)
    // Cached tokens count toward the threshold and are priced at the tier's cached rate:
    // 100,000 × 2.5e6 + 100,001 × 625,000 = 2.5e11 + 62,500,625,000 pico = 312,500.625 µ$ → 312,501.
    #expect(e.costMicros(for: TokenUsage(input: 200_001, cacheRead: 100_001)) == 312_501)
    // Thinking tokens bill as output, at the tier's rate: 300,000 × 2.5e6 + 500 × 15e6 + 1,500 × 15e6
    // = 7.5e11 + 7.5e9 + 2.25e10 pico = 780,000 µ$.
    #expect(e.costMicros(for: TokenUsage(input: 300_000, output: 2_000, reasoning: 1_500)) == 780_000)
}

@Test func builtinClaudeSonnet4LongContextTierPricesCacheReadsWritesAndThinking() throws {
    let t = PriceTable()
    for model in ["claude-sonnet-4-20250514", "claude-sonnet-4-5-20250929", "anthropic/claude-sonnet-4-5"] {
        let e = try #require(t.entry(forModel: model, atUnixNano: july2025))
        #expect(e.match == "claude-sonnet-4*")
        // 250,000 input of which 200,000 cache read and 30,000 cache write; 2,000 output of which 500 thinking.
        // Only 20,000 are uncached, but the prompt is 250,000 > 200,000: the tier prices the whole call.
        // 20,000 × 6e6 + 200,000 × 0.6e6 + 30,000 × 7.5e6 + 1,500 × 22.5e6 + 500 × 22.5e6
        // = 1.2e11 + 1.2e11 + 2.25e11 + 3.375e10 + 1.125e10 pico = 510,000 µ$.
        #expect(e.costMicros(for: TokenUsage(input: 250_000, cacheRead: 200_000, cacheWrite: 30_000, output: 2_000, reasoning: 500)) == 510_000)
        // Exactly 200,000 input (all cached): base rates. 150,000 × 0.3e6 + 50,000 × 3.75e6 = 4.5e10 + 1.875e11 pico = 232,500 µ$.
        #expect(e.costMicros(for: TokenUsage(input: 200_000, cacheRead: 150_000, cacheWrite: 50_000)) == 232_500)
        // Cache reads reported exclusively of input (150,000 + 160,000 read = 310,000 prompt tokens): tier.
        // 150,000 × 6e6 + 160,000 × 0.6e6 = 9e11 + 9.6e10 pico = 996,000 µ$.
        #expect(e.costMicros(for: TokenUsage(input: 150_000, cacheRead: 160_000)) == 996_000)
    }
}

@Test func tierOmittedPricesDefaultToTheBaseEntrysCorrespondingPrice() throws {
    let t = try table("""
    {"models": [
      {"match": "m*", "input": 1, "output": 4, "reasoning": 5,
       "tiers": [{"above_input_tokens": 1000, "input": 2, "output": 8}]}
    ]}
    """)
    let e = try #require(t.entry(forModel: "m1", atUnixNano: 0))
    let tier = try #require(e.tiers.first)
    // cached_input and cache_write default to the base entry's (1.0, itself defaulted from input), not to the tier's input;
    // reasoning to the base entry's 5.0, not to the tier's output.
    #expect(e.rates(of: tier) == PriceRates(input: 2_000_000, cachedInput: 1_000_000, cacheWrite: 1_000_000, output: 8_000_000, reasoning: 5_000_000))
    // 2,000 input (500 cache read, 200 cache write), 300 output (100 reasoning):
    // 1,300 × 2e6 + 500 × 1e6 + 200 × 1e6 + 200 × 8e6 + 100 × 5e6 = 2.6e9 + 5e8 + 2e8 + 1.6e9 + 5e8 pico = 5,400 µ$.
    #expect(e.costMicros(for: TokenUsage(input: 2_000, cacheRead: 500, cacheWrite: 200, output: 300, reasoning: 100)) == 5_400)
    // Same tokens below the threshold: 1,000 input (500 read, 200 write) → 300 × 1e6 + 500 × 1e6 + 200 × 1e6 + 200 × 4e6
    // + 100 × 5e6 = 3e8 + 5e8 + 2e8 + 8e8 + 5e8 pico = 2,300 µ$.
    #expect(e.costMicros(for: TokenUsage(input: 1_000, cacheRead: 500, cacheWrite: 200, output: 300, reasoning: 100)) == 2_300)
}

@Test func theHighestThresholdTheCallExceedsWins() throws {
    // Tiers in any order in the file.
    let t = try table("""
    {"models": [
      {"match": "two*", "input": 1, "output": 2, "tiers": [
        {"above_input_tokens": 1000000, "input": 4, "output": 8},
        {"above_input_tokens": 128000, "input": 2, "output": 4}
      ]}
    ]}
    """)
    let e = try #require(t.entry(forModel: "two", atUnixNano: 0))
    #expect(e.tiers.map(\.aboveInputTokens) == [128_000, 1_000_000])
    #expect(e.tiersSummary == "128k+: 2.0/4.0, 1M+: 4.0/8.0")
    // 128,000 × 1e6 + 1,000 × 2e6 = 1.28e11 + 2e9 pico = 130,000 µ$ (base).
    #expect(e.costMicros(for: TokenUsage(input: 128_000, output: 1_000)) == 130_000)
    // 128,001 × 2e6 + 1,000 × 4e6 = 256,002,000,000 + 4e9 pico = 260,002 µ$ (first tier).
    #expect(e.costMicros(for: TokenUsage(input: 128_001, output: 1_000)) == 260_002)
    // 1,000,000 × 2e6 + 1,000 × 4e6 = 2e12 + 4e9 pico = 2,004,000 µ$ (first tier: not strictly above 1M).
    #expect(e.costMicros(for: TokenUsage(input: 1_000_000, output: 1_000)) == 2_004_000)
    // 1,000,001 × 4e6 + 1,000 × 8e6 = 4,000,004,000,000 + 8e9 pico = 4,008,004 µ$ (second tier).
    #expect(e.costMicros(for: TokenUsage(input: 1_000_001, output: 1_000)) == 4_008_004)
    #expect(e.tier(forInputTokens: 1_000_001)?.aboveInputTokens == 1_000_000)
}

@Test func attributedCallsUseTheTier() {
    let run = RunAttributor(prices: PriceTable()).attribute(traceID: tid, spans: [
        s(1, name: "root"),
        s(2, parent: 1, start: july2025, category: .llm, model: "gemini-2.5-pro", usage: TokenUsage(input: 200_000, output: 1_000)),
        s(3, parent: 1, start: july2025, category: .llm, model: "gemini-2.5-pro", usage: TokenUsage(input: 200_001, output: 1_000)),
    ])
    #expect(run.calls.map(\.costMicros) == [260_000, 515_003])
}

@Test func builtinTablePricesExistingModelsExactlyAsBefore() throws {
    let t = PriceTable()
    func cost(_ model: String, _ usage: TokenUsage, at: Int64 = july2025) throws -> Int64 {
        try #require(t.entry(forModel: model, atUnixNano: at)).costMicros(for: usage)
    }
    // gpt-4o: 6,000 × 2.5e6 + 4,000 × 1.25e6 + 1,000 × 10e6 = 1.5e10 + 5e9 + 1e10 pico = 30,000 µ$.
    #expect(try cost("gpt-4o-2024-08-06", TokenUsage(input: 10_000, cacheRead: 4_000, output: 1_000)) == 30_000)
    // claude-3-5-haiku: 2,000 × 0.8e6 + 2,000 × 0.08e6 + 1,000 × 1e6 + 700 × 4e6 = 1.6e9 + 1.6e8 + 1e9 + 2.8e9 pico = 5,560 µ$.
    #expect(try cost("claude-3-5-haiku-20241022", TokenUsage(input: 5_000, cacheRead: 2_000, cacheWrite: 1_000, output: 700)) == 5_560)
    // mistral-large: 1,234 × 2e6 + 567 × 6e6 = 2.468e9 + 3.402e9 pico = 5,870 µ$.
    #expect(try cost("mistral-large-latest", TokenUsage(input: 1_234, output: 567)) == 5_870)
    // o3 after 2025-06-10: 1,000 × 2e6 + 100 × 8e6 + 400 × 8e6 = 2e9 + 8e8 + 3.2e9 pico = 6,000 µ$; before: 30,000 µ$.
    #expect(try cost("o3", TokenUsage(input: 1_000, output: 500, reasoning: 400)) == 6_000)
    #expect(try cost("o3", TokenUsage(input: 1_000, output: 500, reasoning: 400), at: RFC3339.parse("2025-05-01")!) == 30_000)
    // The now-tiered entries below their threshold: claude-sonnet-4-5 200,000 × 3e6 + 1,000 × 15e6 = 6e11 + 1.5e10 pico = 615,000 µ$.
    #expect(try cost("claude-sonnet-4-5", TokenUsage(input: 200_000, output: 1_000)) == 615_000)
    let sonnet = try #require(t.entry(forModel: "claude-sonnet-4", atUnixNano: july2025))
    #expect(sonnet.baseRates == PriceRates(input: 3_000_000, cachedInput: 300_000, cacheWrite: 3_750_000, output: 15_000_000, reasoning: 15_000_000))
    #expect(sonnet.tiersSummary == "200k+: 6.0/22.5")
    #expect(t.entry(forModel: "gemini-2.5-pro", atUnixNano: july2025)?.tiersSummary == "200k+: 2.5/15.0")
    #expect(t.builtinEntries.filter { !$0.tiers.isEmpty }.map(\.match) == ["claude-sonnet-4*", "gemini-2.5-pro*"])
}

// MARK: Refusals

@Test func samePatternAndEffectiveDateIsRefusedAsAmbiguous() throws {
    let e = try #require(refusal("""
    {"models": [
      {"match": "gpt-4o*", "input": 1, "output": 1},
      {"match": "x*", "input": 1, "output": 1},
      {"match": "GPT-4o*", "input": 2, "output": 2}
    ]}
    """))
    #expect(e.line == 4)
    #expect(e.reason == #"models[2]: same match "gpt-4o*" and effective_from as models[0] (line 2): which price applies would be ambiguous"#)
    #expect(e.description == #"price file test.json:4: models[2]: same match "gpt-4o*" and effective_from as models[0] (line 2): which price applies would be ambiguous"#)

    // The same instant written two ways is the same effective_from.
    let dated = try #require(refusal("""
    {"models": [
      {"match": "a*", "effective_from": "2025-01-01", "input": 1, "output": 1},
      {"match": "a*", "effective_from": "2025-06-01", "input": 1, "output": 1},
      {"match": "a*",
       "effective_from": "2025-01-01T00:00:00Z", "input": 2, "output": 2}
    ]}
    """))
    #expect(dated.line == 4)
    #expect(dated.reason == #"models[2]: same match "a*" and effective_from as models[0] (line 2): which price applies would be ambiguous"#)

    // Same pattern with different dates, or different patterns of equal specificity: accepted.
    #expect(refusal(#"{"models":[{"match":"a*","input":1,"output":1},{"match":"a*","effective_from":"2025-01-01","input":2,"output":2}]}"#) == nil)
    #expect(refusal(#"{"models":[{"match":"gpt-4o-*","input":1,"output":1},{"match":"*4o-mini","input":2,"output":2}]}"#) == nil)
}

@Test func badTiersAreRefusedWithTheEntrysLine() throws {
    func refused(_ tiers: String) throws -> PriceFileError {
        try #require(refusal("""
        {"models": [
          {"match": "ok*", "input": 1, "output": 1},
          {"match": "tiered*", "input": 1, "output": 2,
           "tiers": \(tiers)}
        ]}
        """))
    }
    let zero = try refused(#"[{"above_input_tokens": 0, "input": 2}]"#)
    #expect(zero.line == 3)
    #expect(zero.reason == #"models[1]: tiers[0]: "above_input_tokens" must be a whole number of tokens from 1 to 1000000000000000"#)
    #expect(try refused(#"[{"above_input_tokens": -5, "input": 2}]"#).reason.contains("tiers[0]: \"above_input_tokens\""))
    #expect(try refused(#"[{"above_input_tokens": 1.5, "input": 2}]"#).reason.contains("whole number"))

    let repeated = try refused(#"[{"above_input_tokens": 200000, "input": 2}, {"above_input_tokens": 1000, "input": 3}, {"above_input_tokens": 200000, "output": 3}]"#)
    #expect(repeated.line == 3)
    #expect(repeated.reason == #"models[1]: tiers[2]: "above_input_tokens" 200000 repeats the threshold of tiers[0]; thresholds must be distinct"#)

    let negative = try refused(#"[{"above_input_tokens": 1000, "cached_input": -1}]"#)
    #expect(negative.line == 3)
    #expect(negative.reason == #"models[1]: tiers[0]: "cached_input" must be a non-negative price below 1000000"#)

    let empty = try refused(#"[{"above_input_tokens": 1000}]"#)
    #expect(empty.line == 3)
    #expect(empty.reason.hasPrefix("models[1]: tiers[0]: the tier sets no price"))

    let missing = try refused(#"[{"input": 2}]"#)
    #expect(missing.line == 3)
    #expect(missing.reason == #"models[1]: tiers[0]: "above_input_tokens" is required"#)

    let wrongType = try refused(#"[{"above_input_tokens": 1000, "output": "15"}]"#)
    #expect(wrongType.line == 3)
    #expect(wrongType.reason.hasPrefix("models[1]: tiers[0]: ") && wrongType.reason.hasSuffix("(output)"))

    #expect(refusal(#"{"models":[{"match":"a*","input":1,"output":1,"tiers":[]}]}"#) == nil)
}

// MARK: Precedence between equally specific patterns, and explanations

@Test func equallySpecificPatternsAreDecidedByPositionEarlierWins() throws {
    // "gpt-4o-*" and "*4o-mini" both have 7 literal characters and both match "gpt-4o-mini".
    let ab = try table(#"{"models":[{"match":"gpt-4o-*","input":1,"output":1},{"match":"*4o-mini","input":2,"output":2}]}"#)
    let ba = try table(#"{"models":[{"match":"*4o-mini","input":2,"output":2},{"match":"gpt-4o-*","input":1,"output":1}]}"#)
    for _ in 0..<3 {
        #expect(ab.entry(forModel: "gpt-4o-mini", atUnixNano: 0)?.match == "gpt-4o-*")
        #expect(ba.entry(forModel: "gpt-4o-mini", atUnixNano: 0)?.match == "*4o-mini")
    }
    let x = ab.explain(model: "gpt-4o-mini", atUnixNano: 0)
    #expect(x.candidates.prefix(2).map(\.status) == [.chosen, .laterInFile])
    #expect(x.candidates[0].reason.contains("the earlier entry in the file wins"))
    #expect(x.candidates[1].reason == "equally specific and effective as 'gpt-4o-*' (test.json #1), which is earlier in the file and wins")

    // A later effective_from beats position between equally specific patterns in force.
    let dated = try table(#"{"models":[{"match":"gpt-4o-*","input":1,"output":1},{"match":"*4o-mini","effective_from":"2025-01-01","input":2,"output":2}]}"#)
    #expect(dated.entry(forModel: "gpt-4o-mini", atUnixNano: july2025)?.match == "*4o-mini")
    #expect(dated.explain(model: "gpt-4o-mini", atUnixNano: july2025).candidates[1].status == .supersededByLaterEntry)
    #expect(dated.entry(forModel: "gpt-4o-mini", atUnixNano: RFC3339.parse("2024-12-31")!)?.match == "gpt-4o-*")
}

@Test func explanationListsUserEntriesFirstAndSaysWhyEachWasPassedOver() throws {
    let t = try table("""
    {"models": [
      {"match": "gpt4o*", "input": 9, "output": 9},
      {"match": "gpt-4o*", "input": 1, "output": 2}
    ]}
    """)
    let x = t.explain(model: "openai/GPT-4o-mini", atUnixNano: july2025)
    #expect(x.chosen == t.entry(forModel: "openai/GPT-4o-mini", atUnixNano: july2025))
    #expect(x.chosen?.match == "gpt-4o*")
    #expect(x.strippedPrefix == "openai/")
    #expect(x.candidates.count == t.userEntries.count + t.builtinEntries.count)
    #expect(x.candidates.prefix(2).map(\.entry.match) == ["gpt-4o*", "gpt4o*"])
    #expect(x.candidates[0].status == .chosen)
    #expect(x.candidates[0].matchedName == "gpt-4o-mini")
    #expect(x.candidates[0].reason == #"the most specific matching pattern in force (6 literal characters) (matched "gpt-4o-mini": prefix "openai/" stripped)"#)
    #expect(x.candidates[1].status == .noMatch)
    #expect(x.candidates[1].reason == #"pattern does not match "openai/gpt-4o-mini" or "gpt-4o-mini""#)
    // The more specific built-in entry is passed over: the user's file comes first.
    let builtinMini = try #require(x.candidates.first { $0.builtin && $0.entry.match == "gpt-4o-mini*" })
    #expect(builtinMini.status == .userEntryApplies)
    #expect(builtinMini.reason.hasPrefix("built-in entries are consulted only when no user entry matches; 'gpt-4o*' (test.json #2) matches and is in force"))
    // Matching built-in entries come first among the built-in ones, in the order consulted.
    #expect(x.candidates.filter { $0.builtin && $0.matched }.map(\.entry.match) == ["gpt-4o-mini*", "gpt-4o*"])

    let lines = x.lines()
    #expect(lines.first == #"  name tried as "openai/gpt-4o-mini" and, without the prefix "openai/", as "gpt-4o-mini""#)
    #expect(lines.contains { $0.hasPrefix("    chosen      'gpt-4o*' (test.json #2, always, 6 literal): the most specific") })
    #expect(lines.last == "    (\(t.builtinEntries.count - 2) other built-in entries do not match)")
}

@Test func explanationOfDatesSpecificityAndTiers() throws {
    let t = PriceTable()
    let early = t.explain(model: "o3", atUnixNano: RFC3339.parse("2025-05-01")!)
    #expect(early.chosen?.input == 10_000_000)
    let later = try #require(early.candidates.first { $0.entry.effectiveFromUnixNano == RFC3339.parse("2025-06-10") })
    #expect(later.status == .notYetEffective)
    #expect(later.reason == "not yet effective on 2025-05-01: effective from 2025-06-10")

    let july = t.explain(model: "o3", atUnixNano: july2025)
    #expect(july.chosen?.input == 2_000_000)
    #expect(july.candidates[0].reason.contains("of the equally specific ones it took effect last"))
    #expect(july.candidates[1].status == .supersededByLaterEntry)
    #expect(july.candidates[1].reason == "superseded by 'o3*' (built-in #13), equally specific and effective from 2025-06-10, later than this entry")

    let mini = t.explain(model: "gpt-4o-mini", atUnixNano: july2025)
    #expect(mini.candidates.prefix(2).map(\.status) == [.chosen, .lessSpecific])
    #expect(mini.candidates[1].reason == "less specific than 'gpt-4o-mini*' (built-in #9): 6 literal characters against 11")

    let gemini = t.explain(model: "gemini-2.5-pro", atUnixNano: july2025)
    #expect(gemini.tierLines == ["  above 200000 input tokens per call (the whole call): input 2.500000, cached input 0.625000, cache write 2.500000, output 15.000000, reasoning 15.000000"])

    let none = t.explain(model: "my-private-model", atUnixNano: july2025)
    #expect(none.chosen == nil)
    #expect(none.candidates.allSatisfy { $0.status == .noMatch })
    #expect(none.tierLines.isEmpty)
    #expect(t.explain(model: "", atUnixNano: 0).chosen == nil)
}

@Test func builtinEntriesApplyWhenNoUserEntryIsInForce() throws {
    let t = try table(#"{"models":[{"match":"gpt-4o*","effective_from":"2030-01-01","input":1,"output":1}]}"#)
    let x = t.explain(model: "gpt-4o", atUnixNano: july2025)
    #expect(x.candidates[0].status == .notYetEffective)
    #expect(x.chosen?.source == .builtin)
    #expect(x.candidates.first { $0.status == .chosen }?.reason.hasSuffix("; no user entry that matches is in force yet") == true)
    #expect(t.explain(model: "gpt-4o", atUnixNano: RFC3339.parse("2030-01-01")!).chosen?.source == .file("test.json"))
}

@Test func explanationAlwaysAgreesWithTheEntryUsedForPricing() throws {
    let t = try table("""
    {"models": [
      {"match": "gpt-4o-*", "input": 1, "output": 1},
      {"match": "*4o-mini", "input": 2, "output": 2},
      {"match": "claude-*", "effective_from": "2025-06-01", "input": 3, "output": 3},
      {"match": "o3*", "effective_from": "2025-05-01", "input": 4, "output": 4}
    ]}
    """)
    let models = ["gpt-4o-mini", "gpt-4o", "openai/gpt-4o-mini", "o3", "o3-mini", "claude-sonnet-4-5", "claude-3-haiku",
                  "gemini-2.5-pro", "vertex/google/gemini-2.5-flash-lite", "mistral-large", "unknown", ""]
    let times = ["2024-01-01", "2025-04-20", "2025-05-15", "2025-06-01", "2026-01-01"].map { RFC3339.parse($0)! }
    for m in models {
        for at in times {
            #expect(t.explain(model: m, atUnixNano: at).chosen == t.entry(forModel: m, atUnixNano: at), "\(m) at \(at)")
            #expect(t.explain(model: m, atUnixNano: at).candidates.filter { $0.status == .chosen }.count <= 1)
        }
    }
}
