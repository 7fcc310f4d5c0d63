import LedgerCore
import OTLPFixtures

/// A synthetic workload of multi-step agent runs (about 8 spans each: a workflow root,
/// an agent, LLM calls with token counts in GenAI conventions, tool calls, a verdict),
/// pre-encoded into OTLP/protobuf batches so a load test measures the daemon, not the
/// encoder. Deterministic for a given seed.
public struct AgentWorkload: Sendable {
    public var batches: [[UInt8]]
    /// The same batches in the OTLP JSON encoding.
    public var jsonBatches: [[UInt8]]
    public var spanCount: Int
    public var runCount: Int

    static let workflows = ["support-answer", "refund-triage", "lead-enrichment", "code-review", "doc-summarize", "sales-email",
                            "invoice-match", "faq-bot"]
    static let models = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4-20250514", "gemini-2.5-flash"]
    static let verdicts = ["accepted", "accepted", "accepted", "edited", "rejected", "escalated", ""]

    /// Builds `runs` runs packed into batches of about `batchSpans` spans, runs starting
    /// around `startUnixNano`; with `conversations` above 0, run r's root carries
    /// `gen_ai.conversation.id` conversation r mod `conversations` (a task, for rework).
    public static func make(runs: Int, batchSpans: Int = 512, startUnixNano: Int64, seed: UInt64 = 42, conversations: Int = 0) -> AgentWorkload {
        var rng = SplitMix64(seed: seed)
        var batches: [[UInt8]] = []
        var jsonBatches: [[UInt8]] = []
        var current: [FixtureSpan] = []
        var spans = 0
        for r in 0..<runs {
            // As SDKs make them: random trace and span IDs, nanosecond timestamps and
            // durations that differ from call to call (round numbers and small IDs would
            // flatter every compressed byte on disk).
            let trace = TraceID(high: rng.next() | 1, low: rng.next())
            func spanID() -> SpanID { SpanID(rng.next() | 1) }
            func jitter(_ upTo: Int64) -> Int64 { Int64(rng.next() % UInt64(upTo)) }
            let (root, agent) = (spanID(), spanID())
            // With conversations, a conversation's turns start in turn order (runs spread
            // over a minute in run order), as one conversation's runs do; without, runs
            // cycle through a minute every 600.
            let slot = conversations > 0 ? Int64(r) * 60_000_000_000 / Int64(max(1, runs)) : Int64(r % 600) * 100_000_000
            let start = startUnixNano + slot + jitter(100_000_000)
            let workflow = workflows[Int(rng.next() % UInt64(workflows.count))]
            let verdict = verdicts[Int(rng.next() % UInt64(verdicts.count))]
            var rootAttrs: [(String, FixtureValue)] = [("gen_ai.operation.name", .string("invoke_workflow")), ("gen_ai.workflow.name", .string(workflow))]
            if !verdict.isEmpty { rootAttrs.append(("outcome.verdict", .string(verdict))) }
            rootAttrs.append(("user.id", .string("user-\(rng.next() % 1000)")))
            if conversations > 0 { rootAttrs.append(("gen_ai.conversation.id", .string("conv-\(r % conversations)"))) }
            let agentEnd = start + 3_400_000_000 + jitter(400_000_000)
            current.append(FixtureSpan(traceID: trace, spanID: root, name: workflow, startUnixNano: start, endUnixNano: agentEnd + jitter(5_000_000),
                                       attributes: rootAttrs))
            current.append(FixtureSpan(traceID: trace, spanID: agent, parent: root, name: "invoke_agent planner", startUnixNano: start + jitter(2_000_000),
                                       endUnixNano: agentEnd,
                                       attributes: [("gen_ai.operation.name", .string("invoke_agent")), ("gen_ai.agent.name", .string("planner"))]))
            for step in 0..<4 {
                let model = models[Int(rng.next() % UInt64(models.count))]
                let input = Int64(500 + rng.next() % 4000)
                let t0 = start + Int64(step) * 800_000_000 + 5_000_000 + jitter(50_000_000)
                current.append(FixtureSpan(traceID: trace, spanID: spanID(), parent: agent, name: "chat \(model)",
                                           startUnixNano: t0, endUnixNano: t0 + 200_000_000 + jitter(500_000_000), isError: rng.next() % 50 == 0,
                                           attributes: [
                                               ("gen_ai.operation.name", .string("chat")), ("gen_ai.system", .string("openai")),
                                               ("gen_ai.request.model", .string(model)), ("gen_ai.response.model", .string(model)),
                                               ("gen_ai.usage.input_tokens", .int(input)), ("gen_ai.usage.output_tokens", .int(Int64(50 + rng.next() % 600))),
                                               ("gen_ai.usage.cache_read.input_tokens", .int(input / 4)), ("gen_ai.response.id", .string("resp-\(rng.next())")),
                                               ("server.address", .string("api.example.com")), ("gen_ai.request.temperature", .double(0.2)),
                                           ]))
            }
            for tool in 0..<2 {
                let t0 = start + Int64(tool) * 900_000_000 + 650_000_000 + jitter(100_000_000)
                current.append(FixtureSpan(traceID: trace, spanID: spanID(), parent: agent, name: "execute_tool search",
                                           startUnixNano: t0, endUnixNano: t0 + 20_000_000 + jitter(150_000_000),
                                           attributes: [("gen_ai.operation.name", .string("execute_tool")), ("gen_ai.tool.name", .string("search"))]))
            }
            if current.count >= batchSpans || r == runs - 1 {
                spans += current.count
                batches.append(OTLPFixtureEncoder.encode([("agent-service", current)]))
                jsonBatches.append(OTLPFixtureJSONEncoder.encode([("agent-service", current)]))
                current = []
            }
        }
        return AgentWorkload(batches: batches, jsonBatches: jsonBatches, spanCount: spans, runCount: runs)
    }

    public var bytes: Int { batches.reduce(0) { $0 + $1.count } }
}
