import LedgerCore
import ProtoWire
import Rollups

/// Encodes a RollupTable as a spanledger.v1.RollupSegment (Schemas/spanledger/v1/rollup.proto).
public enum RollupSegmentCodec {
    public static let formatVersion: UInt64 = 1

    /// `replacesThrough`: for a compacted segment, the highest flush sequence whose rollup
    /// segment it replaces (field 5).
    public static func encode(_ table: RollupTable, createdUnixMs: Int64, replacesThrough: UInt64 = 0) -> [UInt8] {
        var strings = StringTableBuilder()
        var records = ProtoWriter(capacity: table.count * 48)
        for (key, m) in table.records.sorted(by: { $0.key < $1.key }) {
            let w = strings.index(key.workflow), mo = strings.index(key.model), s = strings.index(key.service)
            records.message(4) { r in
                r.int(1, key.bucketStartUnix)
                r.uint(2, UInt64(key.resolutionSeconds))
                r.uint(3, UInt64(w))
                r.uint(4, UInt64(mo))
                r.uint(5, UInt64(key.outcome.rawValue))
                r.uint(6, UInt64(s))
                r.bool(7, key.runLevel)
                if let agent = key.agent {
                    r.uint(8, UInt64(strings.index(agent)))
                    r.bool(9, true)
                }
                r.sint(10, m.runs)
                r.sint(11, m.incompleteRuns)
                r.sint(12, m.toolCalls)
                if !m.latency.isEmpty {
                    r.message(13) { l in
                        let ordered = Array(m.latency.orderedBuckets)
                        l.packedSInt(1, ordered.map { Int64($0.0) })
                        l.packedSInt(2, ordered.map(\.1))
                        l.sint(3, m.latency.zeroCount)
                    }
                }
                r.sint(20, m.llmCalls)
                r.sint(21, m.inputTokens)
                r.sint(22, m.cachedInputTokens)
                r.sint(23, m.cacheWriteTokens)
                r.sint(24, m.outputTokens)
                r.sint(25, m.reasoningTokens)
                r.sint(26, m.unpricedTokens)
                r.sint(27, m.costMicros)
                r.sint(28, m.retries)
                r.sint(29, m.errors)
                r.sint(30, m.reworkRuns)
                r.sint(31, m.reworkCostMicros)
            }
        }
        var w = ProtoWriter(capacity: records.count + 256)
        w.uint(1, formatVersion)
        w.int(2, createdUnixMs)
        w.uint(5, replacesThrough)
        for s in strings.strings { w.string(3, s, always: true) }
        w.append(records)
        return w.bytes
    }

    public static func decode(_ bytes: [UInt8], path: String) throws(StoreError) -> RollupTable {
        var table = RollupTable()
        var strings = StringTable()
        var rawRecords: [ArraySlice<UInt8>] = []
        try StoreError.decoding(path) {
            var r = ProtoReader(bytes)
            while let (field, value) = try r.next() {
                switch field {
                case 3: strings.strings.append(value.string)
                case 4: rawRecords.append(value.slice)
                default: break
                }
            }
            for raw in rawRecords {
                // The key's fields gathered first and the key made once (a key rehashes on
                // every field set).
                var bucket: Int64 = 0, resolution: UInt32 = 60, workflow = "", model = "", outcome = Outcome.pending, service = ""
                var runLevel = false
                var m = RollupMeasures()
                var agentName = ""
                var agentRecord = false
                var rr = ProtoReader(raw)
                while let (field, v) = try rr.next() {
                    switch field {
                    case 1: bucket = v.int64
                    case 2: resolution = UInt32(truncatingIfNeeded: v.uint64)
                    case 3: workflow = try strings.string(v.uint64, path: path)
                    case 4: model = try strings.string(v.uint64, path: path)
                    case 5: outcome = Outcome(rawValue: Int(v.uint64)) ?? .pending
                    case 6: service = try strings.string(v.uint64, path: path)
                    case 7: runLevel = v.bool
                    case 8: agentName = try strings.string(v.uint64, path: path)
                    case 9: agentRecord = v.bool
                    case 10: m.runs = v.sint64
                    case 11: m.incompleteRuns = v.sint64
                    case 12: m.toolCalls = v.sint64
                    case 13: m.latency = try decodeSketch(v.slice)
                    case 20: m.llmCalls = v.sint64
                    case 21: m.inputTokens = v.sint64
                    case 22: m.cachedInputTokens = v.sint64
                    case 23: m.cacheWriteTokens = v.sint64
                    case 24: m.outputTokens = v.sint64
                    case 25: m.reasoningTokens = v.sint64
                    case 26: m.unpricedTokens = v.sint64
                    case 27: m.costMicros = v.sint64
                    case 28: m.retries = v.sint64
                    case 29: m.errors = v.sint64
                    case 30: m.reworkRuns = v.sint64
                    case 31: m.reworkCostMicros = v.sint64
                    default: break
                    }
                }
                table.add(RollupKey(bucketStartUnix: bucket, resolutionSeconds: resolution, workflow: workflow, model: model, outcome: outcome,
                                    service: service, runLevel: runLevel, agent: agentRecord ? agentName : nil), m)
            }
        }
        return table
    }

    static func decodeSketch(_ bytes: ArraySlice<UInt8>) throws(ProtoDecodeError) -> LatencySketch {
        var indexes: [Int64] = []
        var counts: [Int64] = []
        var zero: Int64 = 0
        var r = ProtoReader(bytes)
        while let (field, v) = try r.next() {
            switch field {
            case 1: indexes = try ProtoReader.packedVarints(v.slice).map(ProtoWriter.unzigzag)
            case 2: counts = try ProtoReader.packedVarints(v.slice).map(ProtoWriter.unzigzag)
            case 3: zero = v.sint64
            default: break
            }
        }
        guard indexes.count == counts.count else { throw ProtoDecodeError("latency sketch index/count length mismatch") }
        var buckets: [Int32: Int64] = [:]
        for (i, c) in zip(indexes, counts) { buckets[Int32(truncatingIfNeeded: i), default: 0] += c }
        return LatencySketch(buckets: buckets, zeroCount: zero)
    }
}
