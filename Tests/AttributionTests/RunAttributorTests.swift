import Attribution
import LedgerCore
import Testing

let tid = TraceID(high: 7, low: 7)

func s(_ id: UInt64, parent: UInt64 = 0, name: String = "span", start: Int64 = 0, end: Int64 = 1_000_000, category: SpanRecord.Category = .other,
       model: String = "", usage: TokenUsage = TokenUsage(), cost: Int64? = nil, names: WorkflowNames = WorkflowNames(),
       error: Bool = false, resend: Int64 = 0, verdict: Verdict? = nil, service: String = "") -> SpanRecord {
    SpanRecord(traceID: tid, spanID: SpanID(id), parentSpanID: SpanID(parent), name: name, service: service, startUnixNano: start, endUnixNano: end,
               isError: error, category: category, model: model, usage: usage, explicitCostMicros: cost, workflowNames: names,
               resendCount: resend, verdict: verdict)
}

let attributor = RunAttributor(prices: PriceTable(userEntries: [
    PriceEntry(match: "cheap", input: 1_000_000, output: 2_000_000),
]))

@Test func workflowNamePrecedence() {
    let byGenAI = attributor.attribute(traceID: tid, spans: [s(1, name: "root", names: WorkflowNames(genAIWorkflow: "g", traceloopWorkflow: "t", agent: "a"))])
    #expect(byGenAI.workflow == "g")
    let byTraceloop = attributor.attribute(traceID: tid, spans: [s(1, name: "root", names: WorkflowNames(traceloopWorkflow: "t", agent: "a"))])
    #expect(byTraceloop.workflow == "t")
    let byRootName = attributor.attribute(traceID: tid, spans: [s(1, name: "root-name")])
    #expect(byRootName.workflow == "root-name")
    // Root is a plain span; the shallowest agent span below names the workflow.
    let nested = attributor.attribute(traceID: tid, spans: [
        s(1, name: "http POST"),
        s(2, parent: 1, name: "agent", start: 10, category: .workflow, names: WorkflowNames(agent: "planner")),
        s(3, parent: 2, name: "sub-agent", start: 20, category: .workflow, names: WorkflowNames(agent: "researcher")),
    ])
    #expect(nested.workflow == "planner")
}

@Test func explicitCostWinsUnknownModelIsUnpriced() {
    let run = attributor.attribute(traceID: tid, spans: [
        s(1, name: "root", service: "api"),
        s(2, parent: 1, category: .llm, model: "cheap", usage: TokenUsage(input: 1000, output: 100)),
        s(3, parent: 1, category: .llm, model: "cheap", usage: TokenUsage(input: 1000, output: 100), cost: 777),
        s(4, parent: 1, category: .llm, model: "mystery", usage: TokenUsage(input: 40, output: 2)),
        s(5, parent: 1, category: .tool),
    ])
    #expect(run.calls.map(\.costMicros) == [1200, 777, 0])
    #expect(run.calls.map(\.priced) == [true, true, false])
    #expect(run.calls[2].unpricedTokens == 42)
    #expect(run.costMicros == 1977)
    #expect(run.toolCalls == 1)
    #expect(run.service == "api")
    #expect(run.models == ["cheap", "mystery"])
}

@Test func retriesFromResendCountAndFromErroredSiblings() {
    let run = attributor.attribute(traceID: tid, spans: [
        s(1, name: "root"),
        s(2, parent: 1, start: 10, category: .llm, model: "cheap", error: true),
        s(3, parent: 1, start: 20, category: .llm, model: "cheap"),              // retry of 2
        s(4, parent: 1, start: 30, category: .llm, model: "cheap"),              // previous (3) succeeded: not a retry
        s(5, parent: 1, start: 40, category: .llm, model: "other", resend: 1),   // resend count
        s(6, parent: 1, start: 50, category: .tool, error: true),
    ])
    #expect(run.calls.filter(\.isRetry).map(\.spanIndex) == [2, 4])
    #expect(run.calls.filter(\.isError).count == 1)
    #expect(run.otherErrors == 1)
}

@Test func retriesAreJudgedPerParentAndModelWhateverTheArrivalOrder() {
    // Two parents; spans arrive out of order; the same model under another parent is
    // not a sibling.
    let run = attributor.attribute(traceID: tid, spans: [
        s(13, parent: 2, start: 30, category: .llm, model: "cheap"),               // previous cheap under 2 (12) errored: retry
        s(1, name: "root"),
        s(11, parent: 1, start: 10, category: .llm, model: "cheap", error: true),
        s(2, parent: 1, start: 5, category: .workflow, names: WorkflowNames(agent: "a")),
        s(12, parent: 2, start: 20, category: .llm, model: "cheap", error: true),  // first cheap under 2: not a retry
        s(14, parent: 1, start: 40, category: .llm, model: "other"),                // other model: not a retry of 11
        s(15, parent: 1, start: 50, category: .llm, model: "cheap"),                // previous cheap under 1 (11) errored: retry
    ])
    let retried = Set(run.calls.filter(\.isRetry).map { run.spans[$0.spanIndex].spanID.value })
    #expect(retried == [13, 15])
    #expect(run.calls.filter { $0.agent == "a" }.count == 2)
}

@Test func largeTracesFindParentsAndAgentsTheSameWay() {
    // Over 32 spans the parent lookup is hashed rather than scanned: same answers.
    var spans = [s(1, name: "root"), s(2, parent: 1, category: .workflow, names: WorkflowNames(agent: "crew"))]
    for i in 0..<40 { spans.append(s(UInt64(100 + i), parent: 2, start: Int64(i), category: .llm, model: "cheap", error: i == 0)) }
    let run = attributor.attribute(traceID: tid, spans: spans.reversed())
    #expect(run.calls.count == 40)
    #expect(run.calls.allSatisfy { $0.agent == "crew" })
    #expect(run.calls.filter(\.isRetry).map { run.spans[$0.spanIndex].spanID.value } == [101])
}

@Test func agentsAreTheNearestAgentSpanAboveEvenThroughDeepChainsAndCycles() {
    // A chain 500 deep below an agent span, another agent nested in it, a call whose
    // parents form a cycle (no agent: ""), and a call whose parent is in no tree here.
    var spans = [s(1, name: "root"), s(2, parent: 1, category: .workflow, names: WorkflowNames(agent: "outer"))]
    for i in 0..<500 { spans.append(s(UInt64(1_000 + i), parent: i == 0 ? 2 : UInt64(999 + i))) }
    spans.append(s(3, parent: 1_499, start: 1, category: .llm, model: "cheap"))
    spans.append(s(4, parent: 1_200, category: .workflow, names: WorkflowNames(agent: "inner")))
    spans.append(s(5, parent: 4, start: 2, category: .llm, model: "cheap"))
    spans.append(s(6, parent: 7))
    spans.append(s(7, parent: 6))
    spans.append(s(8, parent: 6, start: 3, category: .llm, model: "cheap"))
    spans.append(s(9, parent: 77, start: 4, category: .llm, model: "cheap"))
    let byID = { (run: AttributedRun) in
        Dictionary(uniqueKeysWithValues: run.calls.map { (run.spans[$0.spanIndex].spanID.value, $0.agent) })
    }
    for order in [spans, spans.reversed()] {
        let run = attributor.attribute(traceID: tid, spans: order)
        #expect(byID(run) == [3: "outer", 5: "inner", 8: "", 9: ""])
    }
    // A late call whose parent is an agent's span of the recorded run inherits its agent.
    var late = AttributedRun(traceID: tid, workflow: "w", service: "", startUnixNano: 0, durationNano: 0, verdict: nil, incomplete: false,
                             spans: [s(10, parent: 2, category: .llm, model: "cheap")], calls: [], toolCalls: 0, otherErrors: 0)
    attributor.attributeCalls(&late, inheritedAgents: [SpanID(2): "outer"])
    #expect(late.calls.map(\.agent) == ["outer"])
}

@Test func latestVerdictOnTheTreeDecidesTheOutcome() {
    let run = attributor.attribute(traceID: tid, spans: [
        s(1, name: "root", verdict: Verdict(outcome: .rejected, timeUnixNano: 10)),
        s(2, parent: 1, verdict: Verdict(outcome: .edited, timeUnixNano: 20)),
    ])
    #expect(run.outcome == .edited)
    #expect(attributor.attribute(traceID: tid, spans: [s(1)]).outcome == .pending)
}

@Test func runWithoutRootIsIncompleteAndUsesItsSpansExtent() {
    let run = attributor.attribute(traceID: tid, spans: [
        s(2, parent: 1, name: "orphan-a", start: 1_000, end: 5_000),
        s(3, parent: 2, name: "orphan-b", start: 2_000, end: 9_000),
    ])
    #expect(run.incomplete)
    #expect(run.workflow == "orphan-a")
    #expect(run.startUnixNano == 1_000 && run.durationNano == 8_000)
}
