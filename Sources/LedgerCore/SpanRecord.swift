/// What the pipeline keeps of one span: identity, timing, and the attributes the
/// conventions (Schemas/conventions.md) give meaning to, already interpreted by the
/// decoder. Everything else on the span is dropped at decode time.
public struct SpanRecord: Sendable, Hashable {
    public enum Category: UInt8, Sendable {
        case other = 0
        case llm = 1
        case tool = 2
        case workflow = 3
    }

    // Stored in declaration order, largest alignment first: 88 bytes a record (it was
    // 152 with two boxes more per agent run, then 128 with three strings inline), most of
    // assembly's memory at full ingest.
    public var traceID: TraceID
    public var spanID: SpanID
    public var parentSpanID: SpanID
    /// The span's name, service and detail (`SpanLabels`), shared by every span that has
    /// the same three when the decoder interns them; nil when all three are empty.
    @usableFromInline var labels: SpanLabels?
    public var startUnixNano: Int64
    public var endUnixNano: Int64
    /// What few spans carry, out of line and nil for most: a buffered span is about 40%
    /// smaller, and a copy of it retains fewer references.
    @usableFromInline var rare: RareBox?
    /// Token counts as 32-bit numbers: an LLM call's counts fit, and a count that does
    /// not is kept whole in the box instead (`RareFields.wideUsage`).
    @usableFromInline var narrowUsage: NarrowUsage
    public var isError: Bool
    public var category: Category
    @usableFromInline var detailKind: DetailKind

    @usableFromInline enum DetailKind: UInt8, Sendable, Hashable {
        case none, model, genAIWorkflow, traceloopWorkflow, agent
    }

    public var name: String {
        @inlinable get { labels?.name ?? "" }
        set { labels = SpanLabels.make(name: newValue, service: service, detail: detail) }
    }
    public var service: String {
        @inlinable get { labels?.service ?? "" }
        set { labels = SpanLabels.make(name: name, service: newValue, detail: detail) }
    }
    /// The span's model when it has one (LLM calls), else the one workflow or agent name
    /// it carries when it carries exactly one (a workflow root, an agent span), as
    /// `detailKind` says: one slot for what a span rarely has both of, and no box for the
    /// name. Any other names are in the box (`store(model:names:)` keeps this canonical).
    @inlinable var detail: String { labels?.detail ?? "" }

    public var model: String {
        @inlinable get { detailKind == .model ? detail : "" }
        set { store(model: newValue, names: workflowNames) }
    }

    @usableFromInline struct NarrowUsage: Sendable, Hashable {
        @usableFromInline var input, cacheRead, cacheWrite, output, reasoning: Int32
        @usableFromInline static let zero = NarrowUsage(input: 0, cacheRead: 0, cacheWrite: 0, output: 0, reasoning: 0)

        @usableFromInline init(input: Int32, cacheRead: Int32, cacheWrite: Int32, output: Int32, reasoning: Int32) {
            (self.input, self.cacheRead, self.cacheWrite, self.output, self.reasoning) = (input, cacheRead, cacheWrite, output, reasoning)
        }

        /// Nil when a count does not fit in 32 bits.
        @inlinable init?(_ u: TokenUsage) {
            guard let i = Int32(exactly: u.input), let r = Int32(exactly: u.cacheRead), let w = Int32(exactly: u.cacheWrite),
                  let o = Int32(exactly: u.output), let z = Int32(exactly: u.reasoning) else { return nil }
            self.init(input: i, cacheRead: r, cacheWrite: w, output: o, reasoning: z)
        }

        @inlinable var wide: TokenUsage {
            TokenUsage(input: Int64(input), cacheRead: Int64(cacheRead), cacheWrite: Int64(cacheWrite), output: Int64(output), reasoning: Int64(reasoning))
        }
    }

    public var usage: TokenUsage {
        @inlinable get { rare?.fields.wideUsage ?? narrowUsage.wide }
        set {
            if let narrow = NarrowUsage(newValue) {
                narrowUsage = narrow
                if rare?.fields.wideCounts != nil { updateRare { $0.wideUsage = nil } }
            } else {
                narrowUsage = .zero
                updateRare { $0.wideUsage = newValue }
            }
        }
    }

    /// Explicit cost from the span, in micro-dollars (wins over the price table).
    @inlinable public var explicitCostMicros: Int64? {
        get { rare?.fields.explicitCostMicros }
        set { if newValue != nil || rare != nil { updateRare { $0.explicitCostMicros = newValue } } }
    }
    public var workflowNames: WorkflowNames {
        @inlinable get {
            switch detailKind {
            case .none, .model: rare?.fields.workflowNames ?? WorkflowNames()
            case .genAIWorkflow: WorkflowNames(genAIWorkflow: detail)
            case .traceloopWorkflow: WorkflowNames(traceloopWorkflow: detail)
            case .agent: WorkflowNames(agent: detail)
            }
        }
        set { store(model: model, names: newValue) }
    }

    /// `workflowNames.agent`, without building the other names.
    @inlinable public var agentName: String? {
        switch detailKind {
        case .agent: detail
        case .none, .model: rare?.fields.workflowNames.agent
        case .genAIWorkflow, .traceloopWorkflow: nil
        }
    }

    /// Places the model and the names: the model inline when there is one, else a single
    /// name inline, and the names not inline in the box. One place for each combination,
    /// so equal records are stored alike however they were built.
    @usableFromInline mutating func store(model: String, names: WorkflowNames) {
        let (kind, detail, boxed) = Self.place(model: model, names: names)
        detailKind = kind
        if detail != self.detail { labels = SpanLabels.make(name: name, service: service, detail: detail) }
        if (rare?.fields.workflowNames ?? WorkflowNames()) != boxed { updateRare { $0.workflowNames = boxed } }
    }

    /// Where `store(model:names:)` and `init` put the model and the names: what goes inline
    /// (`detailKind`, `detail`) and the names left for the box.
    @usableFromInline static func place(model: String, names: WorkflowNames) -> (DetailKind, String, boxed: WorkflowNames) {
        if !model.isEmpty { return (.model, model, names) }
        switch (names.genAIWorkflow, names.traceloopWorkflow, names.agent) {
        case (let n?, nil, nil): return (.genAIWorkflow, n, WorkflowNames())
        case (nil, let n?, nil): return (.traceloopWorkflow, n, WorkflowNames())
        case (nil, nil, let n?): return (.agent, n, WorkflowNames())
        default: return (.none, "", names)
        }
    }
    @inlinable public var resendCount: Int64 {
        get { rare?.fields.resendCount ?? 0 }
        set { if newValue != 0 || rare != nil { updateRare { $0.resendCount = newValue } } }
    }
    @inlinable public var verdict: Verdict? {
        get { rare?.fields.verdict }
        set { if newValue != nil || rare != nil { updateRare { $0.verdict = newValue } } }
    }
    /// For a feedback span (a span with a verdict and links): the traces its verdict is
    /// about. Its verdict applies to them, not to its own trace.
    @inlinable public var feedbackFor: [TraceID] {
        get { rare?.fields.feedbackFor ?? [] }
        set { if !newValue.isEmpty || rare != nil { updateRare { $0.feedbackFor = newValue } } }
    }
    /// The task the run works on (`outcome.task_id`, else `gen_ai.conversation.id`): runs of
    /// one task after a rejected or edited run of it are rework.
    @inlinable public var taskID: String? {
        get { rare?.fields.taskID }
        set { if newValue != nil || rare != nil { updateRare { $0.taskID = newValue } } }
    }

    /// False when none of the less common attributes is set (most spans): readers can
    /// skip them all at once.
    @inlinable public var hasRareFields: Bool { rare != nil || detailKind.rawValue > DetailKind.model.rawValue }

    @usableFromInline struct RareFields: Sendable, Hashable {
        @usableFromInline var explicitCostMicros: Int64?
        @usableFromInline var workflowNames = WorkflowNames()
        @usableFromInline var resendCount: Int64 = 0
        @usableFromInline var verdict: Verdict?
        @usableFromInline var feedbackFor: [TraceID] = []
        @usableFromInline var taskID: String?
        /// Token counts too large for `narrowUsage`, as an array: 8 bytes in every box
        /// rather than the 41 of an optional `TokenUsage`, for what almost none has.
        @usableFromInline var wideCounts: [Int64]?
        @inlinable var wideUsage: TokenUsage? {
            get { wideCounts.map { TokenUsage(input: $0[0], cacheRead: $0[1], cacheWrite: $0[2], output: $0[3], reasoning: $0[4]) } }
            set { wideCounts = newValue.map { [$0.input, $0.cacheRead, $0.cacheWrite, $0.output, $0.reasoning] } }
        }
        @usableFromInline init() {}
        /// None set: a record keeps no box for these. Field by field (comparing with an
        /// empty box cost the decode stage 5%); every field is listed, as the
        /// `SpanRecord` tests check.
        @inlinable var isEmpty: Bool {
            explicitCostMicros == nil && workflowNames.isEmpty && resendCount == 0 && verdict == nil && feedbackFor.isEmpty
                && taskID == nil && wideCounts == nil
        }
    }

    /// Copy on write: mutated only while uniquely referenced (`updateRare`), so sharing
    /// it between copies of a record, and threads, is safe.
    @usableFromInline final class RareBox: @unchecked Sendable, Hashable {
        // Only mutated by `updateRare` while uniquely referenced: no dynamic exclusivity
        // check is needed on every read of a span's attributes.
        @exclusivity(unchecked) @usableFromInline var fields: RareFields
        @usableFromInline init(_ fields: RareFields) { self.fields = fields }
        @usableFromInline static func == (a: RareBox, b: RareBox) -> Bool { a === b || a.fields == b.fields }
        @usableFromInline func hash(into h: inout Hasher) { h.combine(fields) }
    }

    @usableFromInline mutating func updateRare(_ change: (inout RareFields) -> Void) {
        if rare == nil {
            rare = RareBox(RareFields())
        } else if !isKnownUniquelyReferenced(&rare) {
            rare = RareBox(rare!.fields)
        }
        change(&rare!.fields)
        // Back to none when the last one is cleared: a record equals one that never had them.
        if rare!.fields.isEmpty { rare = nil }
    }

    public init(
        traceID: TraceID, spanID: SpanID, parentSpanID: SpanID = .none, name: String, service: String = "",
        startUnixNano: Int64, endUnixNano: Int64, isError: Bool = false, category: Category = .other,
        model: String = "", usage: TokenUsage = TokenUsage(), explicitCostMicros: Int64? = nil,
        workflowNames: WorkflowNames = WorkflowNames(), resendCount: Int64 = 0, verdict: Verdict? = nil, taskID: String? = nil,
        labelCache: SpanLabelCache? = nil
    ) {
        self.traceID = traceID
        self.spanID = spanID
        self.parentSpanID = parentSpanID
        self.startUnixNano = startUnixNano
        self.endUnixNano = endUnixNano
        self.isError = isError
        self.category = category
        // Every field placed once, where `place(model:names:)` and the `usage` setter put
        // them, with one box at most (run by the decoder for every span).
        var fields = RareFields()
        if let narrow = NarrowUsage(usage) {
            narrowUsage = narrow
        } else {
            narrowUsage = .zero
            fields.wideUsage = usage
        }
        let detail: String
        (detailKind, detail, fields.workflowNames) = Self.place(model: model, names: workflowNames)
        labels = labelCache.map { $0.labels(name: name, service: service, detail: detail) } ?? SpanLabels.make(name: name, service: service, detail: detail)
        fields.explicitCostMicros = explicitCostMicros
        fields.resendCount = resendCount
        fields.verdict = verdict
        fields.taskID = taskID
        rare = fields.isEmpty ? nil : RareBox(fields)
    }

    @inlinable public var isRoot: Bool { parentSpanID.isNone }
    @inlinable public var durationNano: Int64 { max(0, endUnixNano - startUnixNano) }

    /// Approximate memory a buffered span holds, for the assembly byte limit.
    /// From stored fields only (the labels' detail holds the model or the one inline name,
    /// the box any other names), so reading it in place copies no record and retains no string.
    @inlinable public var approximateBytes: Int {
        120 + (labels?.textBytes ?? 0) + (rare?.fields.workflowNames.approximateBytes ?? 0)
    }
}

extension UnsafeBufferPointer where Element == SpanRecord {
    /// The model of the record at `i`, read in place. `self[i].model` runs the getter on a
    /// copy of the whole record (every string in it retained, then released) to read one
    /// field: in the attributor's loops over a run's calls, that was 1–2% of daemon CPU.
    @inlinable public func model(at i: Int) -> String {
        self[i].detailKind == .model ? self[i].detail : ""
    }

    /// The token usage of the record at `i`, read in place (see `model(at:)`).
    @inlinable public func usage(at i: Int) -> TokenUsage {
        self[i].rare?.fields.wideUsage ?? self[i].narrowUsage.wide
    }
}

/// The three workflow-naming attributes a span may carry, kept apart so the attributor
/// can apply their precedence (gen_ai.workflow.name, traceloop.workflow.name, gen_ai.agent.name).
public struct WorkflowNames: Sendable, Hashable {
    public var genAIWorkflow: String?
    public var traceloopWorkflow: String?
    public var agent: String?

    public init(genAIWorkflow: String? = nil, traceloopWorkflow: String? = nil, agent: String? = nil) {
        self.genAIWorkflow = genAIWorkflow
        self.traceloopWorkflow = traceloopWorkflow
        self.agent = agent
    }

    @inlinable public var first: String? { genAIWorkflow ?? traceloopWorkflow ?? agent }
    @inlinable public var isEmpty: Bool { genAIWorkflow == nil && traceloopWorkflow == nil && agent == nil }
    @inlinable public var approximateBytes: Int { (genAIWorkflow?.utf8.count ?? 0) + (traceloopWorkflow?.utf8.count ?? 0) + (agent?.utf8.count ?? 0) }
}

/// Tokens of one LLM call by type. `input` includes cache reads and writes and `output`
/// includes reasoning, as in the GenAI conventions; `normalized()` enforces that.
public struct TokenUsage: Sendable, Hashable {
    public var input: Int64
    public var cacheRead: Int64
    public var cacheWrite: Int64
    public var output: Int64
    public var reasoning: Int64

    public init(input: Int64 = 0, cacheRead: Int64 = 0, cacheWrite: Int64 = 0, output: Int64 = 0, reasoning: Int64 = 0) {
        self.input = input
        self.cacheRead = cacheRead
        self.cacheWrite = cacheWrite
        self.output = output
        self.reasoning = reasoning
    }

    public var total: Int64 { input + output }
    public var isZero: Bool { input == 0 && output == 0 && cacheRead == 0 && cacheWrite == 0 && reasoning == 0 }

    /// Makes the parts subsets of the totals: a producer that reported cache or reasoning
    /// tokens exclusively (parts larger than the total) has them added to the total.
    public func normalized() -> TokenUsage {
        var u = self
        u.input = max(0, u.input)
        u.output = max(0, u.output)
        u.cacheRead = max(0, u.cacheRead)
        u.cacheWrite = max(0, u.cacheWrite)
        u.reasoning = max(0, u.reasoning)
        if u.cacheRead + u.cacheWrite > u.input { u.input += u.cacheRead + u.cacheWrite }
        if u.reasoning > u.output { u.output += u.reasoning }
        return u
    }
}
