import LedgerCore
import ProtoWire
import Testing
@testable import LedgerStore

/// Run trees are packed once per run with their own names (TraceDetail.swift): memory
/// keeps the packed bytes, flushes copy them into segments, and segments written before
/// packing (one string table per segment) must still read back.
@Suite struct PackedTreeTests {
    static func span(_ n: Int, name: String, model: String = "", agent: String = "", kind: StoredSpan.Kind = .llm) -> StoredSpan {
        StoredSpan(spanID: SpanID(UInt64(n + 1)), parentSpanID: n == 0 ? .none : SpanID(1), name: name, kind: kind, model: model,
                   startOffsetNano: Int64(n) * 1_500_000, durationNano: 900_000 + Int64(n),
                   usage: TokenUsage(input: Int64(n * 100), cacheRead: Int64(n), cacheWrite: 0, output: Int64(n * 10), reasoning: Int64(n % 3)),
                   costMicros: Int64(n * 7), priced: n % 2 == 0, error: n % 5 == 4, retry: n % 7 == 6, explicitCost: n == 3, agent: agent)
    }

    @Test func aRunsNamesAreStoredOnceAndComeBack() throws {
        let model = String(decoding: Array("claude-sonnet-4".utf8), as: UTF8.self)
        let sameModelElsewhere = String(decoding: Array("claude-sonnet-4".utf8), as: UTF8.self) // equal text, its own storage
        let spans = (0..<8).map { n in
            Self.span(n, name: n == 0 ? "invoke_agent planner" : "chat", model: n == 0 ? "" : (n % 2 == 0 ? model : sameModelElsewhere),
                      agent: n == 0 ? "" : "planner", kind: n == 0 ? .workflow : .llm)
        }
        let packed = PackedTree(traceID: TraceID(high: 7, low: 8), spans: spans)
        #expect(packed.spanCount == 8)
        #expect(packed.unpack() == spans)
        let text = packed.bytes
        func occurrences(_ s: String) -> Int {
            let needle = Array(s.utf8)
            return (0...(text.count - needle.count)).filter { Array(text[$0..<($0 + needle.count)]) == needle }.count
        }
        #expect(occurrences("claude-sonnet-4") == 1)
        #expect(occurrences("planner") == 2) // "planner" and inside "invoke_agent planner"
        #expect(occurrences("chat") == 1)
        // In a segment, next to other runs, each keeps its own names.
        let other = PackedTree(traceID: TraceID(high: 9, low: 9), spans: [Self.span(0, name: "tool call", kind: .tool)])
        let segment = TraceDetailCodec.encode([packed, other], createdUnixMs: 5, walSequenceMax: 3)
        #expect(try TraceDetailCodec.decode(segment, path: "x") == [TraceDetail(traceID: packed.traceID, spans: spans),
                                                                   TraceDetail(traceID: other.traceID, spans: other.unpack())])
        #expect(try TraceDetailCodec.decode(segment, path: "x", only: other.traceID).map(\.spans) == [other.unpack()])
        #expect(TraceDetailCodec.walSequenceMax(segment) == 3)
    }

    @Test func aRunWithManyDistinctNamesSwitchesToALookupAndKeepsEveryName() {
        // More names than the linear search covers (16): indexes before and after the
        // switch must stay the ones already written.
        let spans = (0..<200).map { n in Self.span(n, name: "step-\(n % 45)", model: "model-\(n % 9)", agent: n % 4 == 0 ? "" : "agent-\(n % 13)") }
        let packed = PackedTree(traceID: TraceID(high: 1, low: 2), spans: spans)
        #expect(packed.unpack() == spans)
        var names = RunNames()
        let first = (0..<45).map { names.index("step-\($0)") }
        #expect(first == (1...45).map(UInt32.init))
        #expect((0..<45).map { names.index("step-\($0)") } == first)
        #expect(names.index("") == 0)
        #expect(names.strings.count == 45)
    }

    @Test func aPackedAgentRunIsAFractionOfItsSpans() {
        // A typical agent run: a workflow span, LLM calls and tools, three names and a model.
        let spans = (0..<8).map { n in
            Self.span(n, name: n == 0 ? "invoke_agent support" : (n % 3 == 0 ? "execute_tool search" : "chat"),
                      model: n % 3 == 0 || n == 0 ? "" : "gpt-4o-mini", agent: n == 0 ? "" : "support",
                      kind: n == 0 ? .workflow : (n % 3 == 0 ? .tool : .llm))
        }
        let packed = PackedTree(traceID: TraceID(high: 3, low: 4), spans: spans)
        let unpackedBytes = spans.count * MemoryLayout<StoredSpan>.stride
        #expect(packed.bytes.count * 2 < unpackedBytes, "packed \(packed.bytes.count) B, spans \(unpackedBytes) B")
        #expect(packed.bytes.capacity == packed.bytes.count || packed.bytes.capacity < packed.bytes.count + 32)
    }

    @Test func segmentsWrittenWithOneStringTableStillDecode() throws {
        // The layout flushes wrote before trees were packed per run: the names in the
        // segment's table (field 3, index 0 is ""), the traces referring to it.
        var w = ProtoWriter()
        w.uint(1, 1)
        w.int(2, 99)
        w.uint(5, 12)
        let trace = TraceID(high: 0xAB, low: 0xCD)
        w.message(4) { d in
            d.bigEndianWords(1, trace.high, trace.low)
            d.message(2) { s in
                s.bigEndianWords(1, 11)
                s.uint(3, 1) // "chat"
                s.uint(4, 1)
                s.uint(5, 2) // "gpt-4o"
                s.int(7, 5_000)
                s.sint(8, 120)
                s.sint(11, 30)
                s.sint(13, 42)
                s.bool(14, true)
                s.uint(18, 3) // "planner"
            }
            d.message(2) { s in
                s.bigEndianWords(1, 12)
                s.bigEndianWords(2, 11)
                s.uint(3, 3)
                s.uint(4, 3)
            }
        }
        for name in ["", "chat", "gpt-4o", "planner"] { w.string(3, name, always: true) }
        let decoded = try TraceDetailCodec.decode(w.bytes, path: "old")
        #expect(decoded == [TraceDetail(traceID: trace, spans: [
            StoredSpan(spanID: SpanID(11), parentSpanID: .none, name: "chat", kind: .llm, model: "gpt-4o", startOffsetNano: 0, durationNano: 5_000,
                       usage: TokenUsage(input: 120, output: 30), costMicros: 42, priced: true, error: false, retry: false, explicitCost: false,
                       agent: "planner"),
            StoredSpan(spanID: SpanID(12), parentSpanID: SpanID(11), name: "planner", kind: .workflow, model: "", startOffsetNano: 0, durationNano: 0,
                       usage: TokenUsage(), costMicros: 0, priced: false, error: false, retry: false, explicitCost: false),
        ])])
        #expect(TraceDetailCodec.walSequenceMax(w.bytes) == 12)
    }

    // MARK: shapes and stored parts (segments from 2026-12-06)

    static func randomSpan(_ id: UInt64, parent: UInt64, _ rng: inout SystemRandomNumberGenerator) -> StoredSpan {
        StoredSpan(spanID: SpanID(id), parentSpanID: SpanID(parent), name: ["chat", "execute_tool search", "invoke_agent a"].randomElement(using: &rng)!,
                   kind: StoredSpan.Kind(rawValue: UInt8.random(in: 0...3, using: &rng))!, model: ["", "gpt-4o", "o3"].randomElement(using: &rng)!,
                   startOffsetNano: Int64.random(in: -5_000...4_000_000_000, using: &rng), durationNano: Int64.random(in: 0...Int64.max, using: &rng),
                   usage: TokenUsage(input: Int64.random(in: -3...90_000, using: &rng), cacheRead: Int64.random(in: 0...9_000, using: &rng),
                                     cacheWrite: Int64.random(in: 0...90, using: &rng), output: Int64.random(in: 0...Int64.max, using: &rng),
                                     reasoning: Int64.random(in: Int64.min...0, using: &rng)),
                   costMicros: Int64.random(in: -100...1_000_000, using: &rng), priced: Bool.random(using: &rng), error: Bool.random(using: &rng),
                   retry: Bool.random(using: &rng), explicitCost: Bool.random(using: &rng), agent: ["", "planner", "critic"].randomElement(using: &rng)!)
    }

    @Test func parentsAreKeptInAnyOrderAndOutsideTheTreeToo() throws {
        var rng = SystemRandomNumberGenerator()
        // Children before their parents, two spans under a parent that never arrived
        // (stored once), one under another missing parent, a span that is its own parent.
        let spans = [
            Self.randomSpan(0xA2, parent: 0xA1, &rng), Self.randomSpan(0xA3, parent: 0xA2, &rng), Self.randomSpan(0xA1, parent: 0, &rng),
            Self.randomSpan(0xB1, parent: 0xDEAD, &rng), Self.randomSpan(0xB2, parent: 0xDEAD, &rng), Self.randomSpan(0xB3, parent: 0xBEEF, &rng),
            Self.randomSpan(0xC1, parent: 0xC1, &rng),
        ]
        let packed = PackedTree(traceID: TraceID(high: 1, low: 1), spans: spans)
        #expect(packed.unpack() == spans)
        // Stored: trace ID, 7 span IDs, 14 time varints (durations of up to 9 bytes), 2 outside parents.
        #expect(packed.stored.count >= 16 + 7 * 8 + 14 + 2 * 8 && packed.stored.count <= 16 + 7 * 8 + 14 * 10 + 2 * 8)
        let segment = TraceDetailCodec.encode([packed], createdUnixMs: 1)
        #expect(try TraceDetailCodec.decode(segment, path: "x") == [TraceDetail(traceID: packed.traceID, spans: spans)])
    }

    @Test func largeTreesFindParentsByLookupAsSmallOnesDo() throws {
        var rng = SystemRandomNumberGenerator()
        for size in [TreePacker.linearParents, TreePacker.linearParents + 1, 700] {
            let ids = (0..<size).map { _ in UInt64.random(in: 1...UInt64.max, using: &rng) }
            let spans = (0..<size).map { i in
                Self.randomSpan(ids[i], parent: i % 17 == 0 ? UInt64(i % 3) : (i % 11 == 0 ? 0xFFFF_0000 + UInt64(i % 4) : ids.randomElement(using: &rng)!), &rng)
            }
            let packed = PackedTree(traceID: TraceID(high: 2, low: UInt64(size)), spans: spans)
            #expect(packed.spanCount == size)
            #expect(packed.unpack() == spans, "\(size) spans")
        }
    }

    @Test func aPackerGivenMoreSpansThanExpectedGrows() {
        var rng = SystemRandomNumberGenerator()
        let spans = (0..<100).map { i in Self.randomSpan(UInt64(i + 1), parent: UInt64(i / 2), &rng) }
        var packer = TreePacker(traceID: TraceID(high: 4, low: 4), expectedSpans: 1)
        for s in spans { packer.add(s) }
        let packed = packer.finish()
        #expect(packed.spanCount == 100 && packed.unpack() == spans)
    }

    @Test func aFlushSegmentDeflatesShapesAndStoresIDsAndTimes() throws {
        var rng = SystemRandomNumberGenerator()
        // Agent runs: the same few names and kinds, token counts in a range; random IDs.
        let trees = (0..<500).map { r in
            let spans = (0..<8).map { i in
                var s = Self.span(i, name: i == 0 ? "invoke_agent planner" : "chat", model: i == 0 ? "" : "gpt-4o", agent: "planner")
                (s.spanID, s.parentSpanID) = (SpanID(rng.next() | 1), i == 0 ? .none : SpanID(rng.next() | 1))
                s.usage.input += Int64(r % 300)
                return s
            }
            return PackedTree(traceID: TraceID(high: UInt64(r + 1), low: rng.next()), spans: spans)
        }
        let file = try TraceDetailCodec.segment(trees, createdUnixMs: 9, walSequenceMax: 4)
        let message = try SegmentFrame.decode(file, expecting: .traceDetail, path: "t")
        // The message of the old layout, block by block (`BlockedTrees.treesPerBlock` trees each).
        var blocks = ProtoWriter()
        TraceDetailCodec.writeHeader(createdUnixMs: 9, walSequenceMax: 4) { piece, _ in blocks.raw(Array(piece)) }
        for start in stride(from: 0, to: trees.count, by: BlockedTrees.treesPerBlock) {
            TraceDetailCodec.writeTrees(Array(trees[start..<min(start + BlockedTrees.treesPerBlock, trees.count)])) { piece, _ in blocks.raw(Array(piece)) }
        }
        #expect(message == blocks.bytes)
        let decoded = try TraceDetailCodec.decode(message, path: "t")
        #expect(decoded == trees.map { TraceDetail(traceID: $0.traceID, spans: $0.unpack()) })
        #expect(try TraceDetailCodec.decode(message, path: "t", only: trees[321].traceID) == [decoded[321]])
        #expect(TraceDetailCodec.walSequenceMax(message) == 4)
        let stored = trees.reduce(0) { $0 + $1.stored.count }, shapes = trees.reduce(0) { $0 + $1.shape.count }
        // Written in two runs: every shape to be compressed, then every stored part (with
        // its field header) to be kept as it is.
        var kinds: [(compress: Bool, bytes: Int)] = []
        TraceDetailCodec.writeTrees(trees) { piece, compress in
            if kinds.last?.compress == compress { kinds[kinds.count - 1].bytes += piece.count } else { kinds.append((compress, piece.count)) }
        }
        #expect(kinds.map(\.compress) == [true, false])
        #expect(kinds.last!.bytes >= stored && kinds.last!.bytes <= stored + 3 * trees.count)
        // Stored parts are all there, shapes shrink.
        #expect(file.count > stored && file.count < stored + shapes / 2, "\(file.count) bytes: stored \(stored), shapes \(shapes)")
    }

    /// The layout flushes wrote from 2026-12-05 to 2026-12-06: TraceDetail messages
    /// (field 4) with span messages and their own names. A segment may hold both forms.
    @Test func segmentsOfTraceDetailMessagesStillDecodeBesideShapes() throws {
        var w = ProtoWriter()
        w.uint(1, 1)
        w.uint(5, 8)
        let old = TraceID(high: 0x11, low: 0x22)
        w.message(4) { d in
            d.bigEndianWords(1, old.high, old.low)
            d.message(2) { s in
                s.bigEndianWords(1, 21)
                s.bigEndianWords(2, 20)
                s.uint(3, 2) // "chat o3"
                s.uint(4, 1)
                s.uint(5, 1) // "o3"
                s.int(6, 1_000)
                s.int(7, 77)
                s.sint(8, 5)
                s.sint(13, 9)
                s.bool(16, true)
            }
            d.string(3, "o3")
            d.string(3, "chat o3")
        }
        let new = PackedTree(traceID: TraceID(high: 0x33, low: 0x44), spans: [Self.span(0, name: "tool", kind: .tool)])
        var bytes = w.bytes
        TraceDetailCodec.writeTrees([new]) { piece, _ in bytes.append(contentsOf: piece) }
        let decoded = try TraceDetailCodec.decode(bytes, path: "mixed")
        #expect(decoded == [
            TraceDetail(traceID: old, spans: [StoredSpan(spanID: SpanID(21), parentSpanID: SpanID(20), name: "chat o3", kind: .llm, model: "o3",
                                                         startOffsetNano: 1_000, durationNano: 77, usage: TokenUsage(input: 5), costMicros: 9,
                                                         priced: false, error: false, retry: true, explicitCost: false)]),
            TraceDetail(traceID: new.traceID, spans: new.unpack()),
        ])
        #expect(try TraceDetailCodec.decode(bytes, path: "mixed", only: old).map(\.traceID) == [old])
    }

    /// A damaged tree is an error naming the file, never a crash: counts and positions
    /// past what the bytes hold, parts without their pair, and random damage.
    @Test func damagedTreesAreErrorsNotCrashes() throws {
        var rng = SystemRandomNumberGenerator()
        func parent(_ i: Int) -> UInt64 { i == 0 ? 0 : (i == 5 ? 0xABC : UInt64(100 + i - 1)) }
        var spans: [StoredSpan] = []
        for i in 0..<6 { spans.append(Self.randomSpan(UInt64(100 + i), parent: parent(i), &rng)) }
        let tree = PackedTree(traceID: TraceID(high: 5, low: 6), spans: spans)
        func segment(shape: [UInt8], stored: [UInt8], pairs: (Int, Int) = (1, 1)) -> [UInt8] {
            var w = ProtoWriter()
            w.uint(1, 2)
            for _ in 0..<pairs.0 { w.bytesField(6, shape, always: true) }
            for _ in 0..<pairs.1 { w.bytesField(7, stored, always: true) }
            return w.bytes
        }
        let shape = Array(tree.shape), stored = Array(tree.stored)
        #expect(try TraceDetailCodec.decode(segment(shape: shape, stored: stored), path: "ok").count == 1)
        func expectDamaged(_ bytes: [UInt8], _ why: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(throws: StoreError.self, Comment(rawValue: why), sourceLocation: sourceLocation) { try TraceDetailCodec.decode(bytes, path: "damaged") }
        }
        func shapeWith(_ edit: (inout ProtoWriter) -> Void) -> [UInt8] {
            // The tree's own fields 2-5 after an edited field 1.
            var w = ProtoWriter()
            edit(&w)
            var r = ProtoReader(shape)
            while let (f, v) = try? r.next() {
                if f == 1 { continue }
                if f == 5 { w.uint(5, v.uint64) } else { w.bytesField(f, Array(v.slice), always: true) }
            }
            return w.bytes
        }
        expectDamaged(segment(shape: shape, stored: stored, pairs: (1, 0)), "a shape without its stored part")
        expectDamaged(segment(shape: shape, stored: stored, pairs: (2, 1)), "two shapes, one stored part")
        expectDamaged(segment(shape: shape, stored: Array(stored.prefix(15))), "stored part shorter than a trace ID")
        expectDamaged(segment(shape: shape, stored: stored.dropLast()), "stored part cut short")
        expectDamaged(segment(shape: shape, stored: stored + [0]), "stored part with a byte too many")
        expectDamaged(segment(shape: shapeWith { $0.uint(1, 7) }, stored: stored), "one span more than stored")
        expectDamaged(segment(shape: shapeWith { $0.uint(1, 1 << 40) }, stored: stored), "a huge span count")
        expectDamaged(segment(shape: shapeWith { $0.uint(1, 5) }, stored: stored), "one span fewer than stored")
        var badParent = ProtoWriter()
        badParent.uint(1, 6)
        var r = ProtoReader(shape)
        while let (f, v) = try r.next() {
            switch f {
            case 1: continue
            case 3: badParent.packedSInt(3, [0, 0, 0, 0, 0, Int64(-9)]) // zigzag(-9) = 17: past 6 spans and 1 outside parent
            case 5: badParent.uint(5, v.uint64)
            default: badParent.bytesField(f, Array(v.slice), always: true)
            }
        }
        expectDamaged(segment(shape: badParent.bytes, stored: stored), "a parent position past the tree")
        // Random damage to either part: an error or some tree, never a trap.
        for _ in 0..<2_000 {
            var (sh, st) = (shape, stored)
            let inShape = Bool.random(using: &rng)
            let i = Int.random(in: 0..<(inShape ? sh.count : st.count), using: &rng)
            if inShape { sh[i] = UInt8.random(in: 0...255, using: &rng) } else { st[i] = UInt8.random(in: 0...255, using: &rng) }
            _ = try? TraceDetailCodec.decode(segment(shape: sh, stored: st), path: "fuzz")
        }
    }
}
