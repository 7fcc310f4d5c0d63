import LedgerCore
import ProtoWire

/// The write-ahead log's record payload: one accepted batch of decoded spans in a compact
/// binary form. Replaying a record yields exactly the spans the receiver handed on,
/// whatever transport they came by.
///
/// Version 3: version byte, span count, the batch's string table (count, then each string
/// length-prefixed; index 0 is "" and not written), then per span two flag bytes, the
/// trace ID unless it is the previous span's, span and parent IDs as raw bytes, names as
/// indexes into the table, the start as a difference from the previous span's start, and
/// the rest as varints. A batch names its spans with a few strings and groups spans by
/// trace, so a span takes about 40 bytes instead of version 2's 105: the log writes, syncs
/// and checksums less than half as much.
/// Versions 1 and 2 (strings inline, every trace ID and start whole) still replay.
public enum SpanBatchCodec {
    /// 2 added a second flag byte per span (bit 1: the task ID follows; bit 0: then the
    /// traces a feedback span is about); 3 added the string table and bit 2 of that byte
    /// (the span is of the previous span's trace).
    static let version: UInt8 = 3

    public static func encode(_ records: [SpanRecord]) -> [UInt8] {
        // Spans are read in place, by index: iterating the array would copy each record,
        // retaining and releasing its strings.
        records.withUnsafeBufferPointer { spans in
            var strings = StringTableBuilder()
            // IDs, flags, name indexes and varints take under 64 bytes a span; a buffer that
            // has to grow copies itself into fresh pages, dear on this kind of VM.
            var capacity = 16
            for i in spans.indices { capacity += spans[i].hasRareFields ? 96 + 17 * spans[i].feedbackFor.count : 64 }
            var body = ProtoWriter(capacity: capacity)
            var previous: (trace: TraceID, start: Int64)?
            for i in spans.indices {
                write(spans, i, after: previous, strings: &strings, to: &body)
                previous = (spans[i].traceID, spans[i].startUnixNano)
            }
            let table = strings.strings
            var w = ProtoWriter(capacity: 16 + body.count + table.reduce(0) { $0 + $1.utf8.count + 2 })
            w.raw(version)
            w.varint(UInt64(spans.count))
            w.varint(UInt64(table.count - 1))
            for s in table.dropFirst() { w.lengthPrefixed(s) }
            w.append(body)
            return w.bytes
        }
    }

    // The record is read in place through the buffer: handed the record, or reading its
    // model and usage through their getters, this copied each record (its strings
    // retained, then released) to read a field.
    @inline(__always)
    private static func write(_ spans: UnsafeBufferPointer<SpanRecord>, _ i: Int, after previous: (trace: TraceID, start: Int64)?,
                              strings: inout StringTableBuilder, to w: inout ProtoWriter) {
        var flags: UInt8 = spans[i].category.rawValue & 0x3
        if spans[i].isError { flags |= 1 << 2 }
        // Each out-of-line attribute read once, and none for most spans.
        let rare = spans[i].hasRareFields
        let cost = rare ? spans[i].explicitCostMicros : nil, verdict = rare ? spans[i].verdict : nil
        let names = rare ? spans[i].workflowNames : WorkflowNames(), task = rare ? spans[i].taskID : nil
        let feedback = rare ? spans[i].feedbackFor : [], resends = rare ? spans[i].resendCount : 0
        if cost != nil { flags |= 1 << 3 }
        if verdict != nil { flags |= 1 << 4 }
        if names.genAIWorkflow != nil { flags |= 1 << 5 }
        if names.traceloopWorkflow != nil { flags |= 1 << 6 }
        if names.agent != nil { flags |= 1 << 7 }
        let sameTrace = previous?.trace == spans[i].traceID
        w.raw(flags)
        w.raw((feedback.isEmpty ? 0 : 1) | (task == nil ? 0 : 2) | (sameTrace ? 4 : 0))
        if !sameTrace {
            w.bigEndian64(spans[i].traceID.high)
            w.bigEndian64(spans[i].traceID.low)
        }
        w.bigEndian64(spans[i].spanID.value)
        w.bigEndian64(spans[i].parentSpanID.value)
        w.varint(UInt64(strings.index(spans[i].name)))
        w.varint(UInt64(strings.index(spans[i].service)))
        w.varint(UInt64(strings.index(spans.model(at: i))))
        w.varint(ProtoWriter.zigzag(spans[i].startUnixNano &- (previous?.start ?? 0)))
        w.varint(ProtoWriter.zigzag(spans[i].endUnixNano &- spans[i].startUnixNano))
        let usage = spans.usage(at: i)
        w.varint(ProtoWriter.zigzag(usage.input))
        w.varint(ProtoWriter.zigzag(usage.cacheRead))
        w.varint(ProtoWriter.zigzag(usage.cacheWrite))
        w.varint(ProtoWriter.zigzag(usage.output))
        w.varint(ProtoWriter.zigzag(usage.reasoning))
        w.varint(ProtoWriter.zigzag(resends))
        if let c = cost { w.varint(ProtoWriter.zigzag(c)) }
        if let v = verdict {
            w.raw(UInt8(v.outcome.rawValue))
            w.varint(ProtoWriter.zigzag(v.timeUnixNano))
        }
        if let n = names.genAIWorkflow { w.varint(UInt64(strings.index(n))) }
        if let n = names.traceloopWorkflow { w.varint(UInt64(strings.index(n))) }
        if let n = names.agent { w.varint(UInt64(strings.index(n))) }
        if let t = task { w.varint(UInt64(strings.index(t))) }
        if !feedback.isEmpty {
            w.varint(UInt64(feedback.count))
            for t in feedback {
                w.bigEndian64(t.high)
                w.bigEndian64(t.low)
            }
        }
    }

    public static func decode(_ bytes: ArraySlice<UInt8>) throws(ProtoDecodeError) -> [SpanRecord] {
        var r = ByteReader(bytes)
        let v = try r.byte()
        guard (1...version).contains(v) else { throw ProtoDecodeError("unknown span batch version \(v)") }
        let count = try r.varint()
        guard count <= UInt64(bytes.count) else { throw ProtoDecodeError("span count \(count) exceeds record size") }
        // Version 3's table; earlier versions write each string in place.
        var table: [String] = [""]
        if v >= 3 {
            let n = try r.varint()
            guard n <= UInt64(bytes.count) else { throw ProtoDecodeError("string count \(n) exceeds record size") }
            table.reserveCapacity(Int(n) + 1)
            for _ in 0..<n { table.append(try r.string()) }
        }
        func string() throws(ProtoDecodeError) -> String {
            guard v >= 3 else { return try r.string() }
            let i = try r.varint()
            guard i < UInt64(table.count) else { throw ProtoDecodeError("string index \(i) out of range") }
            return table[Int(i)]
        }
        var out: [SpanRecord] = []
        out.reserveCapacity(Int(count))
        var previous: (trace: TraceID, start: Int64)?
        // The table's strings are shared, so records with the same three share labels too.
        let labelCache = SpanLabelCache()
        for _ in 0..<count {
            // Version 3 puts the flags first (they say whether a trace ID follows).
            var flags: UInt8 = 0, flags2: UInt8 = 0
            if v >= 3 { (flags, flags2) = (try r.byte(), try r.byte()) }
            let trace: TraceID
            if v >= 3, flags2 & 4 != 0 {
                guard let p = previous else { throw ProtoDecodeError("first span refers to a previous trace") }
                trace = p.trace
            } else {
                guard let t = TraceID(bytes: try r.take(16)) else { throw ProtoDecodeError("bad span identity") }
                trace = t
            }
            guard let span = SpanID(bytes: try r.take(8)), let parent = SpanID(bytes: try r.take(8)) else {
                throw ProtoDecodeError("bad span identity")
            }
            if v < 3 { (flags, flags2) = (try r.byte(), v >= 2 ? try r.byte() : 0) }
            let name = try string(), service = try string(), model = try string()
            let start = ProtoWriter.unzigzag(try r.varint()) &+ (v >= 3 ? previous?.start ?? 0 : 0)
            let duration = ProtoWriter.unzigzag(try r.varint())
            var numbers: [Int64] = []
            for _ in 0..<6 { numbers.append(ProtoWriter.unzigzag(try r.varint())) }
            let cost: Int64? = flags & (1 << 3) != 0 ? ProtoWriter.unzigzag(try r.varint()) : nil
            var verdict: Verdict?
            if flags & (1 << 4) != 0 {
                let o = Outcome(rawValue: Int(try r.byte())) ?? .pending
                verdict = Verdict(outcome: o, timeUnixNano: ProtoWriter.unzigzag(try r.varint()))
            }
            let names = WorkflowNames(
                genAIWorkflow: flags & (1 << 5) != 0 ? try string() : nil,
                traceloopWorkflow: flags & (1 << 6) != 0 ? try string() : nil,
                agent: flags & (1 << 7) != 0 ? try string() : nil)
            var record = SpanRecord(
                traceID: trace, spanID: span, parentSpanID: parent, name: name, service: service, startUnixNano: start,
                endUnixNano: start &+ duration, isError: flags & (1 << 2) != 0, category: SpanRecord.Category(rawValue: flags & 0x3) ?? .other,
                model: model, usage: TokenUsage(input: numbers[0], cacheRead: numbers[1], cacheWrite: numbers[2], output: numbers[3], reasoning: numbers[4]),
                explicitCostMicros: cost, workflowNames: names, resendCount: numbers[5], verdict: verdict, labelCache: labelCache)
            if flags2 & 2 != 0 { record.taskID = try string() }
            if flags2 & 1 != 0 {
                let n = try r.varint()
                guard n <= 1024 else { throw ProtoDecodeError("feedback span links \(n) traces") }
                for _ in 0..<n {
                    guard let t = TraceID(bytes: try r.take(16)) else { throw ProtoDecodeError("bad linked trace ID") }
                    record.feedbackFor.append(t)
                }
            }
            out.append(record)
            previous = (trace, start)
        }
        return out
    }
}

/// The write-ahead log's record payload for verdicts that arrive on their own
/// (`POST /v1/outcomes`): a kind byte, the count, then per verdict the trace ID, outcome,
/// time, source, reviewer kind, reviewer and comment.
public enum OutcomeBatchCodec {
    /// Distinct from every span batch version, so replay tells the two apart by the first byte.
    static let kind: UInt8 = 0x4F

    public static func isOutcomeBatch(_ bytes: ArraySlice<UInt8>) -> Bool { bytes.first == kind }

    public static func encode(_ records: [OutcomeRecord]) -> [UInt8] {
        var w = ProtoWriter(capacity: records.count * 48 + 8)
        w.raw(kind)
        w.varint(UInt64(records.count))
        for o in records {
            w.bigEndian64(o.traceID.high)
            w.bigEndian64(o.traceID.low)
            w.raw(UInt8(o.outcome.rawValue))
            w.varint(ProtoWriter.zigzag(o.timeUnixNano))
            w.raw(o.source.rawValue)
            w.raw(o.reviewerKind.rawValue)
            w.lengthPrefixed(o.reviewer)
            w.lengthPrefixed(o.comment)
        }
        return w.bytes
    }

    public static func decode(_ bytes: ArraySlice<UInt8>) throws(ProtoDecodeError) -> [OutcomeRecord] {
        var r = ByteReader(bytes)
        guard try r.byte() == kind else { throw ProtoDecodeError("not an outcome batch") }
        let count = try r.varint()
        guard count <= UInt64(bytes.count) else { throw ProtoDecodeError("outcome count \(count) exceeds record size") }
        var out: [OutcomeRecord] = []
        for _ in 0..<count {
            guard let trace = TraceID(bytes: try r.take(16)) else { throw ProtoDecodeError("bad trace ID") }
            guard let outcome = Outcome(rawValue: Int(try r.byte())) else { throw ProtoDecodeError("bad outcome") }
            let time = ProtoWriter.unzigzag(try r.varint())
            let source = VerdictSource(rawValue: try r.byte()) ?? .api
            let kind = ReviewerKind(rawValue: try r.byte()) ?? .unknown
            out.append(OutcomeRecord(traceID: trace, outcome: outcome, timeUnixNano: time, source: source, reviewer: try r.string(),
                                     reviewerKind: kind, comment: try r.string()))
        }
        return out
    }
}

struct ByteReader {
    let data: ArraySlice<UInt8>
    var position: Int

    init(_ data: ArraySlice<UInt8>) {
        self.data = data
        position = data.startIndex
    }

    mutating func byte() throws(ProtoDecodeError) -> UInt8 {
        guard position < data.endIndex else { throw ProtoDecodeError("record ends early") }
        defer { position += 1 }
        return data[position]
    }

    mutating func take(_ n: Int) throws(ProtoDecodeError) -> [UInt8] {
        guard data.endIndex - position >= n else { throw ProtoDecodeError("record ends early") }
        defer { position += n }
        return Array(data[position..<(position + n)])
    }

    mutating func varint() throws(ProtoDecodeError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte()
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw ProtoDecodeError("varint too long") }
        }
    }

    mutating func string() throws(ProtoDecodeError) -> String {
        let n = try varint()
        guard n <= UInt64(data.endIndex - position) else { throw ProtoDecodeError("string past end of record") }
        return String(decoding: try take(Int(n)), as: UTF8.self)
    }
}
