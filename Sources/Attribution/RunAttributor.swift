import LedgerCore

/// One LLM call priced: the unit the rollups split by model.
public struct AttributedCall: Sendable, Hashable {
    public var spanIndex: Int
    public var model: String
    public var usage: TokenUsage
    public var costMicros: Int64
    public var priced: Bool
    public var explicitCost: Bool
    public var isRetry: Bool
    public var isError: Bool
    /// The agent that made the call: the nearest enclosing agent span's `gen_ai.agent.name`
    /// ("" when no agent span encloses it).
    public var agent: String = ""

    /// Tokens counted as unpriced (input + output) when the call has no price.
    public var unpricedTokens: Int64 { priced ? 0 : usage.total }
}

/// A released trace turned into a run: workflow, outcome, priced calls
/// (../shared/DESIGN.md "Semantics that must hold"; Schemas/conventions.md).
public struct AttributedRun: Sendable {
    public var traceID: TraceID
    public var workflow: String
    public var service: String
    public var startUnixNano: Int64
    public var durationNano: Int64
    public var verdict: Verdict?
    public var incomplete: Bool
    public var spans: [SpanRecord]
    public var calls: [AttributedCall]
    public var toolCalls: Int64
    /// Errored spans that are not LLM calls (LLM-call errors are on `calls`).
    public var otherErrors: Int64
    /// The agent of each span (same order as `spans`; see `AttributedCall.agent`).
    public var spanAgents: [String] = []
    /// The task the run works on (Schemas/conventions.md "Rework").
    public var taskID: String?

    public init(traceID: TraceID, workflow: String, service: String, startUnixNano: Int64, durationNano: Int64, verdict: Verdict?,
                incomplete: Bool, spans: [SpanRecord], calls: [AttributedCall] = [], toolCalls: Int64 = 0, otherErrors: Int64 = 0) {
        self.traceID = traceID
        self.workflow = workflow
        self.service = service
        self.startUnixNano = startUnixNano
        self.durationNano = durationNano
        self.verdict = verdict
        self.incomplete = incomplete
        self.spans = spans
        self.calls = calls
        self.toolCalls = toolCalls
        self.otherErrors = otherErrors
    }

    public var outcome: Outcome { verdict?.outcome ?? .pending }
    public var costMicros: Int64 { calls.reduce(0) { $0 + $1.costMicros } }

    /// Models in first-call order; "" when the run made no LLM call.
    public var models: [String] {
        var seen: [String] = []
        seen.reserveCapacity(2)
        // By index in place: iterating `calls` copied each call, retaining its strings.
        calls.withUnsafeBufferPointer { calls in
            for i in calls.indices where !seen.contains(calls[i].model) { seen.append(calls[i].model) }
        }
        return seen
    }

    /// Agents whose spans made LLM or tool calls, in first-call order.
    public var agents: [String] {
        var seen: [String] = []
        seen.reserveCapacity(2)
        calls.withUnsafeBufferPointer { calls in
            for i in calls.indices where !seen.contains(calls[i].agent) { seen.append(calls[i].agent) }
        }
        for i in spans.indices where spans[i].category == .tool && i < spanAgents.count && !seen.contains(spanAgents[i]) { seen.append(spanAgents[i]) }
        return seen
    }
}

/// Turns the spans of one trace into an `AttributedRun`.
///
/// The helpers read spans through a buffer pointer, by index: iterating an array of
/// records, or reading one through an array subscript in a closure, copies the record,
/// and a copy retains and releases each of its strings (a few per cent of daemon CPU).
public struct RunAttributor: Sendable {
    public var prices: PriceTable

    typealias Spans = UnsafeBufferPointer<SpanRecord>

    public init(prices: PriceTable) {
        self.prices = prices
    }

    /// Attributes a whole trace. `incomplete` marks a trace released without its root.
    public func attribute(traceID: TraceID, spans records: [SpanRecord]) -> AttributedRun {
        var run = records.withUnsafeBufferPointer { spans in
            let root = Self.root(of: spans)
            // `root(of:)` returns a span without a parent whenever the trace has one.
            let hasRoot = root.map { spans[$0].isRoot } ?? false
            let workflowSpan = Self.workflowSpan(spans, root: root)
            let workflow = Self.workflowName(spans, workflowSpan: workflowSpan, root: root)
            var start = Int64.max
            var end = Int64.min
            if let root, hasRoot {
                start = spans[root].startUnixNano
                end = start + spans[root].durationNano
            } else {
                for i in spans.indices {
                    start = min(start, spans[i].startUnixNano)
                    end = max(end, spans[i].endUnixNano)
                }
                if spans.isEmpty { (start, end) = (0, 0) }
            }
            var run = AttributedRun(
                traceID: traceID, workflow: workflow, service: root.map { spans[$0].service } ?? "", startUnixNano: start, durationNano: max(0, end - start),
                verdict: Self.latestVerdict(spans), incomplete: !hasRoot, spans: records, calls: [], toolCalls: 0, otherErrors: 0)
            if let root, let task = spans[root].taskID {
                run.taskID = task
            } else {
                var first: Int?
                for i in spans.indices where spans[i].taskID != nil && (first == nil || spans[i].startUnixNano < spans[first!].startUnixNano) { first = i }
                run.taskID = first.flatMap { spans[$0].taskID }
            }
            return run
        }
        attributeCalls(&run)
        return run
    }

    /// Scratch space for one run's helpers, on the stack for a run of a few spans: each of
    /// them allocated an array per run (and the array's type metadata was looked up).
    typealias Scratch<T> = UnsafeMutableBufferPointer<T>

    /// The index of each span's parent within `spans`, into `out` (-1: root, or parent not
    /// in the slice). Runs are a handful of spans, where a linear scan beats hashing;
    /// large traces use a dictionary.
    static func parentIndexes(_ spans: Spans, into out: Scratch<Int>) {
        out.initialize(repeating: -1)
        if spans.count <= 32 {
            for i in spans.indices where !spans[i].isRoot {
                let parent = spans[i].parentSpanID
                for j in spans.indices where spans[j].spanID == parent { out[i] = j; break }
            }
            return
        }
        var indexByID: [SpanID: Int] = [:]
        indexByID.reserveCapacity(spans.count)
        for i in spans.indices where indexByID[spans[i].spanID] == nil { indexByID[spans[i].spanID] = i }
        for i in spans.indices where !spans[i].isRoot { out[i] = indexByID[spans[i].parentSpanID] ?? -1 }
    }

    /// The agent of each span: the nearest ancestor-or-self span that is an agent
    /// (category workflow with `gen_ai.agent.name`). A chain that leaves `spans` continues
    /// in `inherited` (agents of spans stored earlier, for late spans).
    public static func agents(of spans: [SpanRecord], inherited: [SpanID: String] = [:]) -> [String] {
        spans.withUnsafeBufferPointer { spans in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: spans.count) { parents in
                parentIndexes(spans, into: parents)
                return agents(of: spans, parents: UnsafeBufferPointer(parents), inherited: inherited)
            }
        }
    }

    static func agents(of spans: Spans, parents: UnsafeBufferPointer<Int>, inherited: [SpanID: String]) -> [String] {
        // Each span's agent is its own (an agent span's name) or its parent's: walked up
        // iteratively, the spans on the way given the answer, so every span is decided
        // once. At most 10,000 steps up (a parent cycle or a very deep tree gets ""); a
        // walk longer than the run has spans is a cycle, and gets "" too.
        var agents = [String](repeating: "", count: spans.count)
        withUnsafeTemporaryAllocation(of: Bool.self, capacity: spans.count) { decided in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: spans.count) { path in
                decided.initialize(repeating: false)
                for start in spans.indices where !decided[start] {
                    var length = 0
                    var i = start, depth = 0
                    var result = ""
                    while true {
                        if decided[i] { result = agents[i]; break }
                        guard length < path.count else { break }
                        path[length] = i
                        length += 1
                        if spans[i].category == .workflow, let name = spans[i].agentName, !name.isEmpty {
                            result = name
                            break
                        }
                        guard !spans[i].isRoot, depth < 10_000 else { break }
                        let p = parents[i]
                        if p >= 0, p != i {
                            i = p
                            depth += 1
                        } else {
                            result = inherited[spans[i].parentSpanID] ?? ""
                            break
                        }
                    }
                    for n in 0..<length where !decided[path[n]] { (agents[path[n]], decided[path[n]]) = (result, true) }
                }
            }
        }
        return agents
    }

    /// Prices calls, counts tools, retries and errors of `run.spans`.
    public func attributeCalls(_ run: inout AttributedRun, inheritedAgents: [SpanID: String] = [:]) {
        let records = run.spans
        records.withUnsafeBufferPointer { spans in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: spans.count) { parents in
                withUnsafeTemporaryAllocation(of: Bool.self, capacity: spans.count) { retries in
                    Self.parentIndexes(spans, into: parents)
                    Self.retryFlags(spans, into: retries)
                    run.spanAgents = Self.agents(of: spans, parents: UnsafeBufferPointer(parents), inherited: inheritedAgents)
                    priceCalls(spans, retries: UnsafeBufferPointer(retries), into: &run)
                }
            }
        }
    }

    private func priceCalls(_ spans: Spans, retries: UnsafeBufferPointer<Bool>, into run: inout AttributedRun) {
        run.calls = []
        // Room for every span: a run's calls are most of its spans, and growing from empty
        // reallocated the array two or three times per run.
        run.calls.reserveCapacity(spans.count)
        run.toolCalls = 0
        run.otherErrors = 0
        // Calls of a run mostly share a model: its price lookup is reused while the model repeats.
        var pricedModel: String?
        var pricedEntries: [[PriceEntry]] = []
        for i in spans.indices {
            switch spans[i].category {
            case .llm:
                let usage = spans.usage(at: i).normalized()
                let model = spans.model(at: i)
                var call = AttributedCall(spanIndex: i, model: model, usage: usage, costMicros: 0, priced: false,
                                          explicitCost: false, isRetry: retries[i], isError: spans[i].isError, agent: run.spanAgents[i])
                if let explicit = spans[i].explicitCostMicros {
                    call.costMicros = explicit
                    call.priced = true
                    call.explicitCost = true
                } else {
                    if pricedModel != model {
                        pricedModel = model
                        pricedEntries = prices.candidates(forModel: model)
                    }
                    if let entry = PriceTable.entry(in: pricedEntries, atUnixNano: spans[i].startUnixNano) {
                        call.costMicros = entry.costMicros(for: usage)
                        call.priced = true
                    }
                }
                run.calls.append(call)
            case .tool:
                run.toolCalls += 1
                if spans[i].isError { run.otherErrors += 1 }
            case .workflow, .other:
                if spans[i].isError { run.otherErrors += 1 }
            }
        }
    }

    /// The root: the span with no parent (earliest if several); else the earliest span
    /// whose parent is not in the trace.
    static func root(of spans: Spans) -> Int? {
        var best: Int?
        for i in spans.indices where spans[i].isRoot && (best == nil || spans[i].startUnixNano < spans[best!].startUnixNano) { best = i }
        if best != nil { return best }
        var ids = Set<SpanID>(minimumCapacity: spans.count)
        for i in spans.indices { ids.insert(spans[i].spanID) }
        for i in spans.indices where !ids.contains(spans[i].parentSpanID) && (best == nil || spans[i].startUnixNano < spans[best!].startUnixNano) { best = i }
        return best
    }

    /// The root if it is a workflow/agent span, else the shallowest such span (earliest first).
    static func workflowSpan(_ spans: Spans, root: Int?) -> Int? {
        guard let root else { return nil }
        if spans[root].category == .workflow { return root }
        var children: [SpanID: [Int]] = [:]
        for i in spans.indices where !spans[i].isRoot { children[spans[i].parentSpanID, default: []].append(i) }
        var level = [root]
        var visited: Set<SpanID> = [spans[root].spanID]
        while !level.isEmpty {
            var next: [Int] = []
            for i in level { next += children[spans[i].spanID] ?? [] }
            next = next.filter { visited.insert(spans[$0].spanID).inserted }.sorted { spans[$0].startUnixNano < spans[$1].startUnixNano }
            if let w = next.first(where: { spans[$0].category == .workflow }) { return w }
            level = next
        }
        return nil
    }

    static func workflowName(_ spans: Spans, workflowSpan: Int?, root: Int?) -> String {
        if let w = workflowSpan, let name = spans[w].workflowNames.first, !name.isEmpty { return name }
        if let r = root, let name = spans[r].workflowNames.first, !name.isEmpty { return name }
        return root.map { spans[$0].name } ?? ""
    }

    static func latestVerdict(_ spans: Spans) -> Verdict? {
        var best: Verdict?
        // Only spans with out-of-line attributes can have a verdict.
        for i in spans.indices where spans[i].hasRareFields {
            if let v = spans[i].verdict { best = best.map { $0.latest(v) } ?? v }
        }
        return best
    }

    /// Which spans are LLM calls that are retries: `http.request.resend_count` > 0, or the
    /// previous sibling call to the same model (same parent span ID, earlier start) ended
    /// in error. The parent itself need not be in the trace.
    static func retryFlags(_ spans: Spans, into out: Scratch<Bool>) {
        out.initialize(repeating: false)
        // Each call's sort key taken once: a comparison then reads no span.
        typealias Call = (parent: UInt64, start: Int64, index: Int)
        withUnsafeTemporaryAllocation(of: Call.self, capacity: spans.count) { scratch in
            var n = 0
            for i in spans.indices where spans[i].category == .llm {
                scratch.initializeElement(at: n, to: (spans[i].parentSpanID.value, spans[i].startUnixNano, i))
                n += 1
                if spans[i].hasRareFields && spans[i].resendCount > 0 { out[i] = true }
            }
            guard n > 1 else { return }
            var calls = UnsafeMutableBufferPointer(rebasing: scratch[0..<n])
            // Order calls by (parent, start, position): each parent's calls are then adjacent.
            calls.sort { a, b in (a.parent, a.start, a.index) < (b.parent, b.start, b.index) }
            var groupStart = 0
            for n in calls.indices {
                if n > 0 && calls[n - 1].parent != calls[n].parent { groupStart = n }
                // The previous call to the same model under the same parent.
                let i = calls[n].index
                var k = n - 1
                while k >= groupStart && spans.model(at: calls[k].index) != spans.model(at: i) { k -= 1 }
                if k >= groupStart && spans[calls[k].index].isError { out[i] = true }
            }
        }
    }
}
