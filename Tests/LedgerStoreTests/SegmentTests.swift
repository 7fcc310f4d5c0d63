import Foundation
import LedgerCore
import LedgerStore
import ProtoWire
import Rollups
import Testing

func tempDir() -> String {
    let p = NSTemporaryDirectory() + "spanledger-test-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
    return p
}

func sampleTable() -> RollupTable {
    var t = RollupTable()
    for i in 0..<50 {
        var m = RollupMeasures()
        m.runs = Int64(i % 3)
        m.llmCalls = Int64(i)
        m.costMicros = Int64(i * 1000 - 7)
        m.inputTokens = Int64(i * 100)
        m.cachedInputTokens = -Int64(i)
        m.latency.add(milliseconds: Double(i * 17 + 1))
        m.latency.add(milliseconds: 0)
        t.add(RollupKey(bucketStartUnix: Int64(i / 10) * 60, workflow: "wf-\(i % 4)", model: i % 2 == 0 ? "" : "model-\(i % 5)",
                        outcome: Outcome(rawValue: i % 5)!, service: "svc", runLevel: i % 2 == 0), m)
    }
    return t
}

@Test func rollupSegmentRoundTrips() throws {
    let t = sampleTable()
    let framed = try SegmentFrame.encode(kind: .rollup, message: RollupSegmentCodec.encode(t, createdUnixMs: 1))
    let back = try RollupSegmentCodec.decode(try SegmentFrame.decode(framed, expecting: .rollup, path: "x"), path: "x")
    #expect(back.records == t.records)
}

@Test func traceIndexAndDetailRoundTrip() throws {
    let id = TraceID(high: 1, low: 2)
    let entry = TraceIndexEntry(traceID: id, workflow: "wf", service: "svc", startUnixNano: 123, durationNano: 456, outcome: .edited, costMicros: -5,
                                llmCalls: 3, inputTokens: 10, outputTokens: 20, unpricedTokens: 1, spanCount: 4, incomplete: true,
                                models: ["a", "", "b"], toolCalls: 2, retries: 1, errors: 1)
    let index = try TraceIndexCodec.decode(TraceIndexCodec.encode([entry], createdUnixMs: 0), path: "x")
    #expect(index == [entry])
    let span = StoredSpan(spanID: SpanID(9), parentSpanID: SpanID(8), name: "chat", kind: .llm, model: "m", startOffsetNano: 5, durationNano: 6,
                          usage: TokenUsage(input: 1, cacheRead: 2, cacheWrite: 3, output: 4, reasoning: 5), costMicros: 7, priced: true,
                          error: true, retry: true, explicitCost: false)
    let other = TraceDetail(traceID: TraceID(high: 3, low: 3), spans: [span])
    let details = [TraceDetail(traceID: id, spans: [span]), other]
    let encoded = TraceDetailCodec.encode(details, createdUnixMs: 0)
    #expect(try TraceDetailCodec.decode(encoded, path: "x") == details)
    #expect(try TraceDetailCodec.decode(encoded, path: "x", only: other.traceID) == [other])
}

@Test func damagedSegmentsAreDetected() throws {
    let framed = try SegmentFrame.encode(kind: .rollup, message: RollupSegmentCodec.encode(sampleTable(), createdUnixMs: 1))
    var flipped = framed
    flipped[framed.count - 3] ^= 0x10
    #expect(throws: StoreError.self) { try SegmentFrame.decode(flipped, expecting: .rollup, path: "x") }
    #expect(throws: StoreError.self) { try SegmentFrame.decode(Array(framed.dropLast(5)), expecting: .rollup, path: "x") }
    #expect(throws: StoreError.self) { try SegmentFrame.decode(framed, expecting: .traceIndex, path: "x") }
}

@Test func dataDirectoryMergesFlushesSkipsDamageAndRemovesTemporaries() throws {
    let dir = DataDirectory(path: tempDir())
    try dir.prepare()
    let t = sampleTable()
    try dir.writeFlush(sequence: 1, rollups: t, index: [], details: [], nowUnixMs: 0)
    try dir.writeFlush(sequence: 2, rollups: t, index: [], details: [], nowUnixMs: 0)
    // Flush 3 committed (trees file present) but its rollup file damaged.
    try dir.writeFlush(sequence: 3, rollups: t, index: [], details: [], nowUnixMs: 0)
    try Data("garbage".utf8).write(to: URL(fileURLWithPath: dir.file(.rollup, sequence: 3)))
    // Flush 4 interrupted before its commit mark, and a leftover temporary file.
    try dir.writeFlush(sequence: 4, rollups: t, index: [], details: [], nowUnixMs: 0)
    try FileManager.default.removeItem(atPath: dir.file(.traceDetail, sequence: 4))
    try Data("partial".utf8).write(to: URL(fileURLWithPath: dir.file(.rollup, sequence: 5) + ".tmp"))
    #expect(dir.loadRollups().table.records.values.reduce(0) { $0 + $1.llmCalls } == 2 * t.records.values.reduce(0) { $0 + $1.llmCalls },
            "readers ignore an uncommitted flush even before prepare removes it")
    let removed = try dir.prepare()
    #expect(removed.count == 2, "the temporary file and the uncommitted rollup file")
    #expect(!FileManager.default.fileExists(atPath: dir.file(.rollup, sequence: 4)))
    let (loaded, damaged) = dir.loadRollups()
    var twice = t
    twice.merge(t)
    #expect(loaded.records == twice.records)
    #expect(damaged.count == 1)
    #expect(dir.nextSequence() == 4)
    #expect(!FileManager.default.fileExists(atPath: dir.file(.rollup, sequence: 5) + ".tmp"))
}

@Test func flushedSpansAreFoundFromTheLogPositionOn() throws {
    let dir = DataDirectory(path: tempDir())
    try dir.prepare()
    func detail(_ n: UInt64) -> TraceDetail {
        TraceDetail(traceID: TraceID(high: 0, low: n), spans: [StoredSpan(
            spanID: SpanID(n), parentSpanID: .none, name: "s", kind: .other, model: "", startOffsetNano: 0, durationNano: 0,
            usage: TokenUsage(), costMicros: 0, priced: false, error: false, retry: false, explicitCost: false)])
    }
    try dir.writeFlush(sequence: 1, rollups: RollupTable(), index: [], details: [PackedTree(detail(1))], walSequenceMax: 10, nowUnixMs: 0)
    try dir.writeFlush(sequence: 2, rollups: RollupTable(), index: [], details: [PackedTree(detail(2))], walSequenceMax: 20, nowUnixMs: 0)
    try dir.writeFlush(sequence: 3, rollups: RollupTable(), index: [], details: [PackedTree(detail(3))], walSequenceMax: 30, nowUnixMs: 0)
    let keys = dir.flushedSpans(sinceWALSequence: 15)
    #expect(keys == [SpanKey(traceID: TraceID(high: 0, low: 2), spanID: SpanID(2)), SpanKey(traceID: TraceID(high: 0, low: 3), spanID: SpanID(3))])
    #expect(dir.flushedSpans(sinceWALSequence: 31).isEmpty)
}

/// Nested messages are written in place with one length byte set aside and widened when
/// the message is longer: traces of one span (< 128 bytes), a few (two length bytes) and
/// thousands (three) must all come back whole, next to each other.
@Test func runTreesOfEverySizeRoundTrip() throws {
    func tree(_ n: Int, trace: UInt64) -> TraceDetail {
        var spans: [StoredSpan] = []
        for i in 0..<n {
            let usage = TokenUsage(input: Int64(i * 31), cacheRead: 0, cacheWrite: 0, output: Int64(i * 7), reasoning: 0)
            let kind: StoredSpan.Kind = i % 3 == 0 ? .tool : .llm
            let model = i % 2 == 0 ? "gpt-4o" : "claude-sonnet-4"
            let agent = i % 4 == 0 ? "" : "planner"
            spans.append(StoredSpan(spanID: SpanID(UInt64(i + 1)), parentSpanID: SpanID(i == 0 ? 0 : 1), name: "step \(i % 7)", kind: kind,
                                    model: model, startOffsetNano: Int64(i) * 1_000_003, durationNano: 999_983, usage: usage,
                                    costMicros: Int64(i * 13), priced: i % 5 != 0, error: i % 11 == 0, retry: i % 13 == 0, explicitCost: false,
                                    agent: agent))
        }
        return TraceDetail(traceID: TraceID(high: trace, low: ~trace), spans: spans)
    }
    let details = [tree(1, trace: 1), tree(5, trace: 2), tree(3_000, trace: 3), tree(0, trace: 4), tree(2, trace: 5)]
    let encoded = TraceDetailCodec.encode(details, createdUnixMs: 42, walSequenceMax: 7)
    #expect(try TraceDetailCodec.decode(encoded, path: "x") == details)
    #expect(try TraceDetailCodec.decode(encoded, path: "x", only: details[2].traceID) == [details[2]])
    #expect(try TraceDetailCodec.decode(encoded, path: "x", only: details[4].traceID) == [details[4]])
    #expect(TraceDetailCodec.walSequenceMax(encoded) == 7)
    var entry = TraceIndexEntry(traceID: TraceID(high: 9, low: 9), workflow: "wf", service: "svc", startUnixNano: 1, durationNano: 2, outcome: .accepted,
                                costMicros: 3, llmCalls: 4, inputTokens: 5, outputTokens: 6, unpricedTokens: 0, spanCount: 7, incomplete: false,
                                models: (0..<200).map { "model-\($0)" }, toolCalls: 0, retries: 0, errors: 0)
    entry.agents = ["", "planner", "critic"]
    let bare = TraceIndexEntry(traceID: TraceID(high: 8, low: 8), workflow: "", service: "", startUnixNano: 0, durationNano: 0, outcome: .pending,
                               costMicros: 0, llmCalls: 0, inputTokens: 0, outputTokens: 0, unpricedTokens: 0, spanCount: 0, incomplete: true,
                               models: [], toolCalls: 0, retries: 0, errors: 0)
    #expect(try TraceIndexCodec.decode(TraceIndexCodec.encode([entry, bare], createdUnixMs: 0), path: "x") == [entry, bare])
    // Start-up's summaries carry the same trace, start and task as the whole entries.
    entry.taskID = "ticket-42"
    entry.startUnixNano = 1_700_000_000_000_000_000
    var tasked = bare
    tasked.traceID = TraceID(high: 7, low: 7)
    tasked.taskID = "ticket-42"
    tasked.startUnixNano = -5
    let entries = [entry, bare, tasked]
    let summaries = try TraceIndexCodec.decodeSummaries(TraceIndexCodec.encode(entries, createdUnixMs: 0), path: "x")
    #expect(summaries == entries.map { TraceIndexSummary(traceID: $0.traceID, startUnixNano: $0.startUnixNano, taskID: $0.taskID, outcome: $0.outcome) })
}

/// A flush compresses its run trees while copying them in (no uncompressed segment is
/// built): the segment on disk must decode to the trees, framed with their length.
@Test func aFlushWritesItsTreesThroughTheDeflater() throws {
    let dir = DataDirectory(path: tempDir())
    try dir.prepare()
    func span(_ i: Int, of t: Int) -> StoredSpan {
        let usage = TokenUsage(input: Int64(t), output: Int64(i))
        return StoredSpan(spanID: SpanID(UInt64(i + 1)), parentSpanID: i == 0 ? .none : SpanID(1), name: "step \(i % 4)", kind: .llm,
                          model: "m-\(t % 3)", startOffsetNano: Int64(i * 1000), durationNano: 500, usage: usage, costMicros: Int64(t % 17),
                          priced: true, error: false, retry: false, explicitCost: false, agent: "a")
    }
    let trees = (0..<3_000).map { t in TraceDetail(traceID: TraceID(high: UInt64(t) + 1, low: 99), spans: (0..<(1 + t % 9)).map { span($0, of: t) }) }
    try dir.writeFlush(sequence: 1, rollups: RollupTable(), index: [], details: trees.map(PackedTree.init), walSequenceMax: 5, nowUnixMs: 7)
    let path = dir.file(.traceDetail, sequence: 1)
    let message = try SegmentFrame.decode(Array(FileManager.default.contents(atPath: path)!), expecting: .traceDetail, path: path)
    // The same fields as the unblocked message, laid out block by block.
    #expect(message.count == TraceDetailCodec.encode(trees, createdUnixMs: 7, walSequenceMax: 5).count)
    let decoded = try TraceDetailCodec.decode(message, path: path)
    #expect(decoded == trees, "compared as a whole: a failing #expect would diff megabytes")
    #expect(dir.loadDetail(trees[1234].traceID) == trees[1234].spans)
}

/// Index entries keep their trace ID, start and duration in the segment's stored part
/// (field 6), kept out of deflate; segments whose entries carry them (fields 1, 4, 5)
/// still read, and a stored part that does not fit its entries is an error.
@Test func indexEntriesKeepIDsAndTimesInTheStoredPart() throws {
    var rng = SystemRandomNumberGenerator()
    func entry(_ n: Int) -> TraceIndexEntry {
        var e = TraceIndexEntry(traceID: TraceID(high: rng.next(), low: rng.next()), workflow: "wf-\(n % 3)", service: "svc",
                                startUnixNano: Int64.random(in: Int64.min...Int64.max, using: &rng), durationNano: Int64.random(in: -9...Int64.max, using: &rng),
                                outcome: .accepted, costMicros: Int64(n), llmCalls: 2, inputTokens: 9, outputTokens: 1, unpricedTokens: 0, spanCount: 8,
                                incomplete: false, models: ["m"], toolCalls: 1, retries: 0, errors: 0)
        e.taskID = n % 2 == 0 ? "task-\(n)" : ""
        return e
    }
    let entries = (0..<300).map(entry)
    let file = try TraceIndexCodec.segment(entries, createdUnixMs: 3)
    let message = try SegmentFrame.decode(file, expecting: .traceIndex, path: "i")
    #expect(message == TraceIndexCodec.encode(entries, createdUnixMs: 3))
    #expect(try TraceIndexCodec.decode(message, path: "i") == entries)
    #expect(try TraceIndexCodec.decode(message, path: "i", only: entries[123].traceID) == [entries[123]])
    #expect(try TraceIndexCodec.decode(message, path: "i", only: TraceID(high: 1, low: 1)).isEmpty)
    // Looked up by trace ID through the parsed segment: the same entries, a trace with
    // two entries (a correction flushed with its run) in segment order, none for others.
    var withCorrection = entries
    var corrected = entries[7]
    corrected.outcome = .rejected
    corrected.corrections = 1
    withCorrection.append(corrected)
    let lookup = try TraceIndexCodec.Lookup(try SegmentFrame.decode(try TraceIndexCodec.segment(withCorrection, createdUnixMs: 3), expecting: .traceIndex, path: "i"),
                                            path: "i")
    for e in entries.dropFirst(8).prefix(50) { #expect(try lookup.entries(of: e.traceID, path: "i") == [e]) }
    #expect(try lookup.entries(of: entries[7].traceID, path: "i") == [entries[7], corrected])
    #expect(try lookup.entries(of: TraceID(high: 1, low: 1), path: "i").isEmpty)
    #expect(lookup.byteCount > message.count)
    #expect(try TraceIndexCodec.decodeSummaries(message, path: "i")
        == entries.map { TraceIndexSummary(traceID: $0.traceID, startUnixNano: $0.startUnixNano, taskID: $0.taskID, outcome: $0.outcome) })
    // The stored part is in the file as it is (the trace IDs are there byte for byte).
    let ids = entries[0].traceID.bytes + []
    #expect((0...(file.count - 16)).contains { Array(file[$0..<($0 + 16)]) == ids })

    // Entries with their own trace ID, start and duration (before 2026-12-06).
    var w = ProtoWriter()
    w.uint(1, 1)
    w.message(4) { e in
        e.bigEndianWords(1, 0xAA, 0xBB)
        e.uint(2, 1)
        e.int(4, 1_700_000_000_000_000_123)
        e.int(5, 4_567)
        e.uint(6, UInt64(Outcome.rejected.rawValue))
        e.sint(7, 250)
    }
    w.string(3, "", always: true)
    w.string(3, "old-flow", always: true)
    let old = try TraceIndexCodec.decode(w.bytes, path: "old")
    #expect(old.count == 1 && old[0].traceID == TraceID(high: 0xAA, low: 0xBB) && old[0].workflow == "old-flow")
    #expect(old[0].startUnixNano == 1_700_000_000_000_000_123 && old[0].durationNano == 4_567 && old[0].outcome == .rejected && old[0].costMicros == 250)
    #expect(try TraceIndexCodec.decodeSummaries(w.bytes, path: "old") == [TraceIndexSummary(traceID: old[0].traceID, startUnixNano: old[0].startUnixNano, taskID: "", outcome: old[0].outcome)])
    // Without a stored part the lookup walks the entries, as decoding did.
    #expect(try TraceIndexCodec.Lookup(w.bytes, path: "old").entries(of: old[0].traceID, path: "old") == old)

    // A stored part cut short, or longer than its entries.
    let two = TraceIndexCodec.encode(Array(entries.prefix(2)), createdUnixMs: 0)
    var r = ProtoReader(two)
    var body = ProtoWriter(), stored: [UInt8] = []
    while let (f, v) = try r.next() {
        switch f {
        case 1: body.uint(1, v.uint64)
        case 3: body.string(3, v.string, always: true)
        case 4: body.bytesField(4, Array(v.slice), always: true)
        case 6: stored = Array(v.slice)
        default: break
        }
    }
    for (part, why) in [(Array(stored.dropLast()), "cut short"), (stored + [0], "a byte too many"), (Array(stored.prefix(20)), "one entry's worth")] {
        var damaged = ProtoWriter()
        damaged.append(body)
        damaged.bytesField(6, part, always: true)
        #expect(throws: StoreError.self, Comment(rawValue: why)) { try TraceIndexCodec.decode(damaged.bytes, path: "damaged") }
        #expect(throws: StoreError.self, Comment(rawValue: why)) { try TraceIndexCodec.decodeSummaries(damaged.bytes, path: "damaged") }
    }
}
