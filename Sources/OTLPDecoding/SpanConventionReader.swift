internal import CDecodeSupport
import LedgerCore

/// Applies Schemas/conventions.md to the attributes of one span: each measure keeps the
/// value of its highest-precedence attribute, whatever order attributes arrive in.
/// One reader serves every span of a decoder: `reset` clears only the slots the last
/// span touched, so no storage is allocated per span.
final class SpanConventionReader {
    /// The value read for one key id (only the field of the key's type is set).
    struct Slot {
        var int: Int64?
        var double: Double?
        var string: String?
    }

    /// Values by key id, in storage allocated once per reader (no exclusivity or
    /// uniqueness checks per attribute); the conventions' precedence is applied in `finish`.
    private let slots: UnsafeMutablePointer<Slot>
    // Read and written once or more per attribute, by one decoder at a time (the class is
    // not shared across threads): no dynamic exclusivity check on each access.
    @exclusivity(unchecked) private var touched: [Int] = []
    @exclusivity(unchecked) var verdict: Verdict?
    /// Repeating names (models, workflows, agents, kinds) share one String per decoder.
    let names = StringInterner()
    /// Records with the same name, service and model (or workflow or agent name) share one
    /// `SpanLabels` per decoder.
    let labels = SpanLabelCache()

    init() {
        let n = Int(SL_KEY_COUNT.rawValue)
        slots = .allocate(capacity: n)
        slots.initialize(repeating: Slot(), count: n)
        touched.reserveCapacity(64)
    }

    deinit {
        slots.deinitialize(count: Int(SL_KEY_COUNT.rawValue))
        slots.deallocate()
    }

    func reset() {
        for i in touched { slots[i] = Slot() }
        touched.removeAll(keepingCapacity: true)
        verdict = nil
    }

    /// A `gen_ai.evaluation.result` event's score label at its time; the latest wins.
    func evaluation(label: String, timeUnixNano: Int64) {
        guard let outcome = Outcome(label: label) else { return }
        verdict = Verdict(outcome: outcome, timeUnixNano: timeUnixNano).latest(verdict)
    }

    func read(_ key: sl_key, _ value: AttributeValue) {
        let i = Int(key.rawValue)
        touched.append(i)
        switch key {
        case SL_KEY_GEN_AI_OPERATION_NAME, SL_KEY_OPENINFERENCE_SPAN_KIND, SL_KEY_TRACELOOP_SPAN_KIND, SL_KEY_LLM_REQUEST_TYPE,
             SL_KEY_GEN_AI_RESPONSE_MODEL, SL_KEY_GEN_AI_REQUEST_MODEL, SL_KEY_LLM_MODEL_NAME, SL_KEY_LLM_RESPONSE_MODEL,
             SL_KEY_LLM_REQUEST_MODEL, SL_KEY_GEN_AI_WORKFLOW_NAME, SL_KEY_TRACELOOP_WORKFLOW_NAME, SL_KEY_GEN_AI_AGENT_NAME,
             SL_KEY_OUTCOME_VERDICT, SL_KEY_REVIEW_VERDICT, SL_KEY_EVALUATION_SCORE_LABEL:
            slots[i].string = value.string(interning: names)
        case SL_KEY_OUTCOME_TASK_ID, SL_KEY_GEN_AI_CONVERSATION_ID:
            // One per run or conversation: interning would only churn the table.
            slots[i].string = value.string
        case SL_KEY_COST_GEN_AI, SL_KEY_COST_LLM_TOTAL, SL_KEY_COST_LLM_PROMPT, SL_KEY_COST_LLM_COMPLETION:
            slots[i].double = value.double
        default:
            slots[i].int = value.int
        }
    }

    private func int(_ keys: sl_key...) -> Int64? {
        for k in keys { if let v = slots[Int(k.rawValue)].int { return v } }
        return nil
    }

    private func string(_ keys: sl_key...) -> String? {
        for k in keys { if let v = slots[Int(k.rawValue)].string, !v.isEmpty { return v } }
        return nil
    }

    private func double(_ k: sl_key) -> Double? { slots[Int(k.rawValue)].double }

    func finish(traceID: TraceID, spanID: SpanID, parent: SpanID, name: String, service: String, start: Int64, end: Int64, isError: Bool) -> SpanRecord {
        let model = string(SL_KEY_GEN_AI_RESPONSE_MODEL, SL_KEY_GEN_AI_REQUEST_MODEL, SL_KEY_LLM_MODEL_NAME, SL_KEY_LLM_RESPONSE_MODEL, SL_KEY_LLM_REQUEST_MODEL)
        var input = int(SL_KEY_INPUT_GEN_AI, SL_KEY_INPUT_GEN_AI_PROMPT, SL_KEY_INPUT_OPENINFERENCE, SL_KEY_INPUT_LLM_USAGE)
        let output = int(SL_KEY_OUTPUT_GEN_AI, SL_KEY_OUTPUT_GEN_AI_COMPLETION, SL_KEY_OUTPUT_OPENINFERENCE, SL_KEY_OUTPUT_LLM_USAGE)
        if input == nil, output == nil, let total = int(SL_KEY_TOTAL_OPENINFERENCE) { input = total }
        let usage = TokenUsage(
            input: input ?? 0,
            cacheRead: int(SL_KEY_CACHE_READ_GEN_AI, SL_KEY_CACHE_READ_OPENLLMETRY, SL_KEY_CACHE_READ_OPENINFERENCE) ?? 0,
            cacheWrite: int(SL_KEY_CACHE_WRITE_GEN_AI, SL_KEY_CACHE_WRITE_OPENLLMETRY, SL_KEY_CACHE_WRITE_OPENINFERENCE) ?? 0,
            output: output ?? 0,
            reasoning: int(SL_KEY_REASONING_GEN_AI, SL_KEY_REASONING_GEN_AI_FLAT, SL_KEY_REASONING_OPENINFERENCE) ?? 0)
        var cost: Int64?
        if let usd = double(SL_KEY_COST_GEN_AI) ?? double(SL_KEY_COST_LLM_TOTAL) {
            cost = Money.micros(fromUSD: usd)
        } else if double(SL_KEY_COST_LLM_PROMPT) != nil || double(SL_KEY_COST_LLM_COMPLETION) != nil {
            cost = Money.micros(fromUSD: (double(SL_KEY_COST_LLM_PROMPT) ?? 0) + (double(SL_KEY_COST_LLM_COMPLETION) ?? 0))
        }
        let hasTokens = input != nil || output != nil
        let category = Self.category(
            operation: string(SL_KEY_GEN_AI_OPERATION_NAME), openInference: string(SL_KEY_OPENINFERENCE_SPAN_KIND),
            traceloop: string(SL_KEY_TRACELOOP_SPAN_KIND), llmRequestType: slots[Int(SL_KEY_LLM_REQUEST_TYPE.rawValue)].string != nil,
            modelAndTokens: model != nil && hasTokens)
        var verdict = self.verdict
        if let label = string(SL_KEY_OUTCOME_VERDICT, SL_KEY_REVIEW_VERDICT, SL_KEY_EVALUATION_SCORE_LABEL), let outcome = Outcome(label: label) {
            verdict = Verdict(outcome: outcome, timeUnixNano: end).latest(verdict)
        }
        return SpanRecord(
            traceID: traceID, spanID: spanID, parentSpanID: parent, name: name, service: service, startUnixNano: start,
            endUnixNano: end, isError: isError, category: category, model: category == .llm ? (model ?? "") : "",
            usage: category == .llm ? usage : TokenUsage(), explicitCostMicros: category == .llm ? cost : nil,
            workflowNames: WorkflowNames(
                genAIWorkflow: string(SL_KEY_GEN_AI_WORKFLOW_NAME), traceloopWorkflow: string(SL_KEY_TRACELOOP_WORKFLOW_NAME),
                agent: string(SL_KEY_GEN_AI_AGENT_NAME)),
            resendCount: int(SL_KEY_HTTP_RESEND_COUNT) ?? 0, verdict: verdict, taskID: string(SL_KEY_OUTCOME_TASK_ID, SL_KEY_GEN_AI_CONVERSATION_ID),
            labelCache: labels)
    }

    /// Classifies a span (Schemas/conventions.md "What a span is").
    static func category(operation: String?, openInference: String?, traceloop: String?, llmRequestType: Bool, modelAndTokens: Bool) -> SpanRecord.Category {
        switch operation {
        case "chat", "text_completion", "generate_content", "embeddings": return .llm
        case "execute_tool": return .tool
        case "invoke_workflow", "invoke_agent", "create_agent": return .workflow
        default: break
        }
        switch openInference?.uppercased() {
        case "LLM", "EMBEDDING": return .llm
        case "TOOL": return .tool
        case "AGENT", "CHAIN": return .workflow
        default: break
        }
        switch traceloop?.lowercased() {
        case "llm": return .llm
        case "tool": return .tool
        case "workflow", "agent": return .workflow
        default: break
        }
        if llmRequestType || modelAndTokens { return .llm }
        return .other
    }
}
