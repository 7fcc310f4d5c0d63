import Attribution
import Foundation
import LedgerCore
import Testing

func table(_ json: String) throws -> PriceTable {
    PriceTable(userEntries: try PriceTable.parse(Data(json.utf8), source: .file("test.json")))
}

@Test func mostSpecificPatternWinsAndPrefixIsStripped() throws {
    let t = PriceTable()
    #expect(t.entry(forModel: "gpt-4o-mini-2024-07-18", atUnixNano: 0)?.match == "gpt-4o-mini*")
    #expect(t.entry(forModel: "gpt-4o-2024-08-06", atUnixNano: 0)?.match == "gpt-4o*")
    #expect(t.entry(forModel: "openai/GPT-4o-mini", atUnixNano: 0)?.match == "gpt-4o-mini*")
    #expect(t.entry(forModel: "my-private-model", atUnixNano: 0) == nil)
    #expect(t.entry(forModel: "", atUnixNano: 0) == nil)
}

@Test func effectiveDatesSelectThePriceInForceAtTheCall() throws {
    let t = PriceTable()
    let before = RFC3339.parse("2025-05-01T00:00:00Z")!
    let after = RFC3339.parse("2025-07-01T00:00:00Z")!
    #expect(t.entry(forModel: "o3", atUnixNano: before)?.input == 10_000_000)
    #expect(t.entry(forModel: "o3", atUnixNano: after)?.input == 2_000_000)
    #expect(t.entry(forModel: "o3", atUnixNano: RFC3339.parse("2025-01-01")!) == nil, "no o3 price before its launch")
}

@Test func userEntriesOverrideTheBuiltInTable() throws {
    let t = try table(#"{"models":[{"match":"gpt-4o-mini*","input":1,"output":2}]}"#)
    #expect(t.entry(forModel: "gpt-4o-mini", atUnixNano: 0)?.input == 1_000_000)
    #expect(t.entry(forModel: "gpt-4o", atUnixNano: 0)?.input == 2_500_000, "other models still priced by the built-in table")
}

@Test func costIsExactPerTokenTypeWithoutDoubleCounting() throws {
    let e = PriceEntry(match: "m", input: 3_000_000, cachedInput: 300_000, cacheWrite: 3_750_000, output: 15_000_000, reasoning: 20_000_000)
    // 1000 input of which 600 cache read and 100 cache write; 500 output of which 200 reasoning.
    let usage = TokenUsage(input: 1000, cacheRead: 600, cacheWrite: 100, output: 500, reasoning: 200)
    // pico: 300×3e6 + 600×3e5 + 100×3.75e6 + 300×15e6 + 200×20e6 = 9.0e8+1.8e8+3.75e8+4.5e9+4.0e9 = 9.955e9 → 9955 µ$
    #expect(e.costMicros(for: usage) == 9955)
    // Exclusive reporting (cache read larger than input) adds rather than subtracts.
    #expect(TokenUsage(input: 100, cacheRead: 400, output: 10).normalized().input == 500)
    #expect(TokenUsage(input: 10, output: 5, reasoning: 20).normalized().output == 25)
}

@Test func roundsEachCallHalfUpToWholeMicroDollars() {
    let e = PriceEntry(match: "m", input: 150_000, output: 600_000)
    #expect(e.costMicros(for: TokenUsage(input: 10)) == 2) // 1.5 µ$ → 2
    #expect(e.costMicros(for: TokenUsage(input: 3)) == 0)  // 0.45 µ$ → 0
    #expect(e.costMicros(for: TokenUsage(output: 1)) == 1) // 0.6 µ$ → 1
}

@Test func badPriceFilesAreRefusedWithLineAndReason() throws {
    let json = """
    {"models": [
      {"match": "a*", "input": 1, "output": 1},
      {"match": "b*", "input": -1, "output": 1}
    ]}
    """
    do {
        _ = try table(json)
        Issue.record("negative price accepted")
    } catch let e as PriceFileError {
        #expect(e.line == 3)
        #expect(e.reason.contains("input"))
    }
    #expect(throws: PriceFileError.self) { try table(#"{"models":[{"match":"x","output":1}]}"#) }
    #expect(throws: PriceFileError.self) { try table(#"{"models":[{"match":"x","input":1,"output":1,"effective_from":"yesterday"}]}"#) }
    #expect(throws: PriceFileError.self) { try table("not json") }
    #expect(throws: PriceFileError.self) { try table(#"{"models":[{"match":"x","input":true,"output":1}]}"#) }
}

@Test func globMatchesWholeNamesCaseInsensitively() {
    #expect(Glob.matches("claude-3-5-sonnet*", "Claude-3-5-Sonnet-20241022"))
    #expect(Glob.matches("gpt-?o", "gpt-4o"))
    #expect(!Glob.matches("gpt-4o", "gpt-4o-mini"))
    #expect(Glob.matches("*mini*", "o4-mini-high"))
}
