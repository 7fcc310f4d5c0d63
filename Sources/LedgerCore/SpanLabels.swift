/// The three names of a span (`SpanRecord.name`, `.service` and the detail slot: model,
/// or the one workflow or agent name), held out of line: a record keeps one reference
/// instead of three strings (40 bytes less, in every record assembly buffers), and a copy
/// of the record retains one object instead of three strings. Immutable; records built by
/// one decoder share one object per distinct triple (`SpanLabelCache`).
public final class SpanLabels: Sendable, Hashable {
    public let name: String
    public let service: String
    public let detail: String
    /// UTF-8 bytes of the name and the detail, for `SpanRecord.approximateBytes`: read
    /// without retaining either string.
    public let textBytes: Int

    @usableFromInline init(name: String, service: String, detail: String) {
        self.name = name
        self.service = service
        self.detail = detail
        textBytes = name.utf8.count + detail.utf8.count
    }

    /// The labels for the three, or nil when all are empty (a record without labels holds
    /// no reference: see `TraceGroups`).
    @inlinable public static func make(name: String, service: String, detail: String) -> SpanLabels? {
        name.isEmpty && service.isEmpty && detail.isEmpty ? nil : SpanLabels(name: name, service: service, detail: detail)
    }

    public static func == (a: SpanLabels, b: SpanLabels) -> Bool {
        a === b || (a.name == b.name && a.service == b.service && a.detail == b.detail)
    }

    public func hash(into h: inout Hasher) {
        h.combine(name)
        h.combine(service)
        h.combine(detail)
    }
}

/// Hands out one `SpanLabels` per distinct (name, service, detail) among recent spans.
/// Two-way set-associative and bounded: the decoder's strings for
/// repeating names share storage, so a triple is recognised by the bits of its three
/// strings (equal bits are the same live strings, as the slot keeps its own alive) without
/// comparing characters; a triple whose two slots are taken replaces the second.
/// Not thread-safe: one per decoder.
public final class SpanLabelCache {
    private static let slotCount = 256
    @exclusivity(unchecked) private var slots = [SpanLabels?](repeating: nil, count: SpanLabelCache.slotCount)

    public init() {}

    @inline(__always) private static func bits(_ s: String) -> (UInt64, UInt64) {
        unsafeBitCast(s, to: (UInt64, UInt64).self)
    }

    public func labels(name: String, service: String, detail: String) -> SpanLabels? {
        let (n0, n1) = Self.bits(name), (s0, s1) = Self.bits(service), (d0, d1) = Self.bits(detail)
        var h = n0 &* 0x9E37_79B9_7F4A_7C15
        h = (h ^ n1 ^ (h >> 29)) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ s0 ^ (h >> 31)) &* 0x94D0_49BB_1331_11EB
        h = (h ^ s1 ^ (h >> 29)) &* 0x9E37_79B9_7F4A_7C15
        h = (h ^ d0 ^ (h >> 31)) &* 0xBF58_476D_1CE4_E5B9
        h = (h ^ d1 ^ (h >> 29)) &* 0x94D0_49BB_1331_11EB
        let i = Int(truncatingIfNeeded: h >> 40) & (Self.slotCount - 1)
        return slots.withUnsafeMutableBufferPointer { table in
            // Two ways (slots i and i ^ 1): two label sets that land on one slot (their
            // strings' addresses decide it, about once in 256 pairs) then both stay shared,
            // where one slot made spans alternating between them each build their own.
            func matches(_ l: SpanLabels?) -> Bool {
                guard let l else { return false }
                return Self.bits(l.name) == (n0, n1) && Self.bits(l.service) == (s0, s1) && Self.bits(l.detail) == (d0, d1)
            }
            if matches(table[i]) { return table[i] }
            if matches(table[i ^ 1]) { return table[i ^ 1] }
            let l = SpanLabels.make(name: name, service: service, detail: detail)
            if l != nil { table[table[i] == nil ? i : i ^ 1] = l }
            return l
        }
    }
}
