import Attribution
import LedgerCore
@testable import LedgerPipeline
import LedgerStore
import OTLPDecoding
import OTLPFixtures
import Rollups
import Testing
import TraceAssembly

/// A prepared run is packed and rolled up straight from its attributed spans; late spans,
/// verdict changes and rework rebuild the same from stored trees. Both must agree.
@Suite struct PreparedRunTests {
    /// A run with every kind of span the records tell apart: two agents, a priced call, an
    /// unpriced model, a failed call and its retry, an explicit cost, tools (one failing),
    /// a failing span that is neither, and a call outside any agent.
    func mixedRun() throws -> TraceAssembler.Released {
        let trace = TraceID(high: 7, low: 99)
        let t = minute0 + 5_000_000_000
        func span(_ id: UInt64, _ parent: UInt64?, _ name: String, at offset: Int64, error: Bool = false,
                  _ attributes: [(String, FixtureValue)]) -> FixtureSpan {
            FixtureSpan(traceID: trace, spanID: SpanID(id), parent: parent.map { SpanID($0) } ?? .none, name: name, startUnixNano: t + offset,
                        endUnixNano: t + offset + 1_000_000, isError: error, attributes: attributes)
        }
        func chat(_ model: String, input: Int64, output: Int64) -> [(String, FixtureValue)] {
            [("gen_ai.operation.name", .string("chat")), ("gen_ai.request.model", .string(model)),
             ("gen_ai.usage.input_tokens", .int(input)), ("gen_ai.usage.output_tokens", .int(output))]
        }
        let spans = [
            FixtureSpan(traceID: trace, spanID: SpanID(1), name: "triage", startUnixNano: t, endUnixNano: t + 3_000_000_000,
                        attributes: [("gen_ai.workflow.name", .string("triage")), ("outcome.verdict", .string("accepted"))]),
            span(2, 1, "invoke_agent planner", at: 1, [("gen_ai.operation.name", .string("invoke_agent")), ("gen_ai.agent.name", .string("planner"))]),
            span(3, 1, "invoke_agent writer", at: 2, [("gen_ai.operation.name", .string("invoke_agent")), ("gen_ai.agent.name", .string("writer"))]),
            span(10, 2, "chat small", at: 10, chat("small", input: 1_000, output: 200)),
            span(11, 2, "chat small", at: 20, error: true, chat("small", input: 500, output: 0)),
            span(12, 2, "chat small", at: 30, chat("small", input: 500, output: 100)),
            span(13, 3, "chat mystery-model", at: 40, chat("mystery-model", input: 300, output: 30)),
            span(14, 3, "chat large", at: 50, chat("large", input: 100, output: 10) + [("gen_ai.usage.cost", .double(0.25))]),
            span(15, 1, "chat large", at: 60, chat("large", input: 1_000, output: 100)),
            span(20, 2, "execute_tool search", at: 70, [("gen_ai.operation.name", .string("execute_tool"))]),
            span(21, 3, "execute_tool fetch", at: 80, error: true, [("gen_ai.operation.name", .string("execute_tool"))]),
            span(30, 1, "cache lookup", at: 90, error: true, []),
        ]
        let decoded = try OTLPProtobufDecoder().decode(OTLPFixtureEncoder.encode([("triage-service", spans)])).spans
        var assembler = TraceAssembler()
        _ = assembler.ingest(decoded, of: trace, late: false, now: 0)
        return try #require(assembler.releaseAll().first)
    }

    func byKey(_ records: [RunRecord]) -> [RollupKey: RollupMeasures] {
        Dictionary(records.map { ($0.key, $0.measures) }, uniquingKeysWith: { a, b in var m = a; m.merge(b); return m })
    }

    @Test func aRunsRecordsFromItsSpansMatchThoseFromItsStoredTree() throws {
        let attributor = RunAttributor(prices: prices)
        let prepared = Ledger.prepare(try mixedRun(), attributor: attributor)
        let tree = prepared.packed.unpack()
        #expect(tree.count == 12)

        for rework in [false, true] {
            var entry = prepared.entry
            entry.rework = rework
            let fromRun = byKey(Ledger.runRecords(entry, run: prepared.run))
            let fromTree = byKey(Ledger.runRecords(entry, tree: tree))
            #expect(fromRun == fromTree)
            #expect(fromRun.count == 1 + 3 + 3) // run level; small, mystery-model, large; planner, writer, ""
        }

        let records = byKey(prepared.records)
        func model(_ name: String) -> RollupMeasures? { records.first { $0.key.model == name && !$0.key.runLevel && $0.key.agent == nil }?.value }
        func agent(_ name: String) -> RollupMeasures? { records.first { $0.key.agent == name }?.value }
        let runLevel = try #require(records.first { $0.key.runLevel }?.value)
        #expect(runLevel.runs == 1 && runLevel.toolCalls == 2 && runLevel.errors == 2) // the failing tool and the failing other span
        let small = try #require(model("small"))
        #expect(small.llmCalls == 3 && small.errors == 1 && small.retries == 1 && small.inputTokens == 2_000 && small.unpricedTokens == 0)
        #expect(small.costMicros == 2_000 + 1_200) // 2,000 input at $1/M, 300 output at $4/M
        #expect(try #require(model("mystery-model")).unpricedTokens == 330)
        let large = try #require(model("large"))
        #expect(large.llmCalls == 2 && large.costMicros == 250_000 + 10_000 + 3_000)
        #expect(try #require(agent("planner")).llmCalls == 3 && agent("planner")?.toolCalls == 1)
        #expect(try #require(agent("writer")).llmCalls == 2 && agent("writer")?.toolCalls == 1)
        #expect(try #require(agent("")).llmCalls == 1 && agent("")?.costMicros == 13_000)
    }

    @Test func aRunsPackedTreeIsItsStoredTree() throws {
        let prepared = Ledger.prepare(try mixedRun(), attributor: RunAttributor(prices: prices))
        let tree = Ledger.tree(prepared.run)
        #expect(prepared.packed == PackedTree(traceID: prepared.run.traceID, spans: tree))
        #expect(prepared.packed.unpack() == tree)
        let byID = Dictionary(tree.map { ($0.spanID.value, $0) }, uniquingKeysWith: { a, _ in a })
        #expect(byID[12]?.retry == true && byID[11]?.error == true && byID[11]?.retry == false)
        #expect(byID[13]?.priced == false && byID[13]?.model == "mystery-model" && byID[13]?.agent == "writer")
        #expect(byID[14]?.explicitCost == true && byID[14]?.costMicros == 250_000)
        #expect(byID[15]?.agent == "" && byID[15]?.costMicros == 13_000 && byID[15]?.startOffsetNano == 60)
        #expect(byID[20]?.kind == .tool && byID[20]?.agent == "planner" && byID[1]?.parentSpanID.isNone == true)
    }
}
