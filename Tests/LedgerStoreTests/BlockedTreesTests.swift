import DurableFiles
import Foundation
import LedgerCore
@testable import LedgerStore
import ProtoWire
import Testing
import ZlibCodec

/// Run-tree files with a block table: a lookup reads the table and the blocks of the
/// traces asked for, finds every record of a trace (in file order, across blocks and the
/// `add` calls of a merge), never serves a damaged block, and falls back for files
/// written before blocks.
@Test func blockedTreeFilesAnswerLookupsFromTheirBlocks() throws {
    let dir = NSTemporaryDirectory() + "blocked-trees-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    var rng = SystemRandomNumberGenerator()
    func span(_ i: Int, first: UInt64) -> StoredSpan {
        let usage = TokenUsage(input: Int64(100 + i), cacheRead: 0, cacheWrite: 0, output: 10, reasoning: 0)
        let parent: SpanID = i == 0 ? .none : SpanID(first)
        let kind: StoredSpan.Kind = i == 0 ? .other : .llm
        return StoredSpan(spanID: SpanID(first + UInt64(i)), parentSpanID: parent, name: i == 0 ? "invoke_agent planner" : "chat", kind: kind,
                          model: i == 0 ? "" : "gpt-4o", startOffsetNano: Int64(i) * 1_000, durationNano: 5_000, usage: usage,
                          costMicros: Int64(i), priced: true, error: false, retry: false, explicitCost: false, agent: "planner")
    }
    func tree(_ id: TraceID, spans: Int, first: UInt64) -> PackedTree {
        PackedTree(traceID: id, spans: (0..<spans).map { span($0, first: first) })
    }
    // 700 runs (six blocks), then in a second `add` (as a merge writes the next flush)
    // late spans of runs 5 and 650 and one more run; two traces share their high half.
    let ids = (0..<700).map { _ in TraceID(high: rng.next() | 1, low: rng.next()) }
    let twin = TraceID(high: ids[10].high, low: ids[10].low ^ 1)
    var first = ids.enumerated().map { tree($1, spans: 8, first: UInt64($0) * 100 + 1) }
    first.append(tree(twin, spans: 2, first: 900_000))
    let second = [tree(ids[5], spans: 1, first: 1_000_000), tree(ids[650], spans: 2, first: 1_000_100), tree(TraceID(high: 7, low: 7), spans: 3, first: 1_000_200)]
    let writer = try BlockedTrees.Writer(createdUnixMs: 1, walSequenceMax: 9)
    try writer.add(first)
    try writer.add(second)
    let bytes = Array(try writer.finish().joined())
    let directory = DataDirectory(path: dir)
    try directory.prepare()
    let path = directory.file(.traceDetail, sequence: 1)
    try FileIO.writeAtomically(bytes, to: path)

    // Whole-file readers see the same trees as ever.
    let message = try SegmentFrame.decode(bytes, expecting: .traceDetail, path: path)
    let all = try TraceDetailCodec.decode(message, path: path)
    #expect(all.count == 704 && TraceDetailCodec.walSequenceMax(message) == 9)
    #expect(all == (first + second).map { TraceDetail(traceID: $0.traceID, spans: $0.unpack()) })

    // Lookups: one trace, a trace with records in two blocks (in file order), the twin
    // sharing a high half, several at once, and one the file does not hold.
    #expect(try BlockedTrees.details(at: path, among: [ids[321]]) == [all[321]])
    #expect(try BlockedTrees.details(at: path, among: [ids[5]]) == [all[5], all[701]])
    #expect(try BlockedTrees.details(at: path, among: [ids[10]]) == [all[10]])
    #expect(try BlockedTrees.details(at: path, among: [twin]) == [all[700]])
    #expect(Set(try #require(try BlockedTrees.details(at: path, among: [ids[0], ids[699], ids[650]]))) == Set([all[0], all[699], all[650], all[702]]))
    #expect(try BlockedTrees.details(at: path, among: [TraceID(high: 8, low: 8)]) == [])
    // The data directory's lookup reads the blocks too.
    #expect(directory.loadDetail(ids[650], candidates: [1]) == all[650].spans + all[702].spans)

    // A damaged block is an error (the lookup skips the file), never wrong spans; the
    // other blocks still answer.
    var damaged = bytes
    let table = try BlockedTrees.BlockTable(Array(bytes[(SegmentFrame.headerSize + Int(SegmentFrame.readLE(bytes, 16, 4)))..<(bytes.count - 8)]), path: path,
                                            streamLength: Int(SegmentFrame.readLE(bytes, 16, 4)))
    let hit = try #require(table.blocks(of: ids[321]).first)
    damaged[SegmentFrame.headerSize + table.range(of: hit).lowerBound + 10] ^= 0xFF
    try FileIO.writeAtomically(damaged, to: path)
    #expect(throws: StoreError.self) { try BlockedTrees.details(at: path, among: [ids[321]]) }
    let elsewhere = try #require(ids.indices.first { table.blocks(of: ids[$0]) != [hit] && !table.blocks(of: ids[$0]).isEmpty })
    #expect(try BlockedTrees.details(at: path, among: [ids[elsewhere]])?.first == all[elsewhere])
    // A torn file (cut anywhere) is refused.
    try FileIO.writeAtomically(Array(bytes.dropLast(3)), to: path)
    #expect(throws: StoreError.self) { try BlockedTrees.details(at: path, among: [ids[1]]) }

    // A file written before blocks: nil, and the directory reads it whole.
    let old = try SegmentFrame.encode(kind: .traceDetail) { d in
        try TraceDetailCodec.write(first, createdUnixMs: 1, walSequenceMax: 9) { try d.write($0, compressing: $1) }
    }
    try FileIO.writeAtomically(old, to: path)
    #expect(try BlockedTrees.details(at: path, among: [ids[3]]) == nil)
    #expect(directory.loadDetail(ids[3], candidates: [1]) == all[3].spans)
}
