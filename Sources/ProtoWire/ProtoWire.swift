/// Minimal protobuf wire-format writer and reader (https://protobuf.dev/programming-guides/encoding/)
/// for SpanLedger's own segment messages and small responses, where building
/// protobuf-c structs from Swift would cost more code than it saves.
public struct ProtoWriter: ~Copyable, @unchecked Sendable {
    // A buffer of its own rather than an array: an array append checks uniqueness and
    // capacity and ends a mutation per byte, and encoding appends a byte or two at a time
    // (a fifth of the cost of packing a run tree or a log record). Not copyable, so the
    // buffer has one owner and needs no copy on write; `bytes` copies it out once.
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var used: Int
    @usableFromInline var capacity: Int

    public init(capacity: Int = 256) {
        self.capacity = max(16, capacity)
        base = .allocate(capacity: self.capacity)
        used = 0
    }

    deinit { base.deallocate() }

    /// The bytes written so far, as an array of exactly their size.
    public var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: used) { buffer, count in
            if used > 0 { buffer.baseAddress!.initialize(from: base, count: used) }
            count = used
        }
    }

    /// How many bytes are written.
    public var count: Int { used }

    /// The bytes written so far, lent without copying them out.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: used))
    }

    /// Empties the writer, keeping its buffer (one writer reused for many small pieces).
    public mutating func removeAll() { used = 0 }

    /// Room for `n` more bytes.
    @inlinable @inline(__always)
    mutating func reserve(_ n: Int) {
        if capacity - used < n { grow(n) }
    }

    @usableFromInline mutating func grow(_ n: Int) {
        let newCapacity = max(used + n, capacity * 2)
        let fresh = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        fresh.initialize(from: base, count: used)
        base.deallocate()
        (base, capacity) = (fresh, newCapacity)
    }

    @inlinable @inline(__always)
    mutating func put(_ byte: UInt8) {
        base[used] = byte
        used += 1
    }

    @inlinable
    public mutating func varint(_ value: UInt64) {
        reserve(10)
        var v = value
        while v >= 0x80 {
            put(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        put(UInt8(v))
    }

    @inlinable
    public mutating func tag(_ field: Int, _ wireType: Int) { varint(UInt64(field << 3 | wireType)) }

    /// Appends 8 bytes, most significant first (IDs in wire order).
    @inlinable
    public mutating func bigEndian64(_ v: UInt64) {
        reserve(8)
        UnsafeMutableRawPointer(base + used).storeBytes(of: v.bigEndian, as: UInt64.self)
        used += 8
    }

    /// Appends bytes as they are (no tag, no length).
    public mutating func raw(_ value: [UInt8]) { value.withUnsafeBufferPointer { raw($0) } }
    @inlinable
    public mutating func raw(_ byte: UInt8) {
        reserve(1)
        put(byte)
    }

    public mutating func raw(_ p: UnsafeBufferPointer<UInt8>) {
        guard let from = p.baseAddress, p.count > 0 else { return }
        reserve(p.count)
        (base + used).initialize(from: from, count: p.count)
        used += p.count
    }

    /// Appends what another writer holds.
    public mutating func append(_ other: borrowing ProtoWriter) {
        raw(UnsafeBufferPointer(start: other.base, count: other.used))
    }

    /// A varint length followed by the UTF-8 bytes (no tag).
    public mutating func lengthPrefixed(_ s: String) {
        // In place for native strings (nearly all): `withUTF8` would need a mutable copy.
        if s.utf8.withContiguousStorageIfAvailable({ lengthPrefixed($0) }) == nil {
            var copy = s
            copy.withUTF8 { lengthPrefixed($0) }
        }
    }

    /// A varint length followed by the bytes (no tag).
    public mutating func lengthPrefixed(_ p: UnsafeBufferPointer<UInt8>) {
        varint(UInt64(p.count))
        raw(p)
    }

    @inlinable
    public mutating func uint(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        tag(field, 0)
        varint(value)
    }

    @inlinable
    public mutating func int(_ field: Int, _ value: Int64) {
        guard value != 0 else { return }
        tag(field, 0)
        varint(UInt64(bitPattern: value))
    }

    @inlinable
    public mutating func sint(_ field: Int, _ value: Int64) {
        guard value != 0 else { return }
        tag(field, 0)
        varint(Self.zigzag(value))
    }

    @inlinable
    public mutating func bool(_ field: Int, _ value: Bool) {
        guard value else { return }
        tag(field, 0)
        raw(1)
    }

    public mutating func fixed64(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        tag(field, 1)
        rawFixed64(value)
    }

    /// Writes 8 little-endian bytes with no tag (the payload after `tag(field, 1)`).
    public mutating func rawFixed64(_ value: UInt64) {
        reserve(8)
        UnsafeMutableRawPointer(base + used).storeBytes(of: value.littleEndian, as: UInt64.self)
        used += 8
    }

    public mutating func bytesField(_ field: Int, _ value: [UInt8], always: Bool = false) {
        guard always || !value.isEmpty else { return }
        tag(field, 2)
        varint(UInt64(value.count))
        raw(value)
    }

    public mutating func string(_ field: Int, _ value: String, always: Bool = false) {
        guard always || !value.isEmpty else { return }
        tag(field, 2)
        lengthPrefixed(value)
    }

    /// Writes a nested message built by `build`, in place: one length byte is set aside
    /// and widened afterwards when the message turns out to be 128 bytes or longer (a
    /// move of the message, cheaper than building it in a buffer of its own and copying).
    public mutating func message(_ field: Int, always: Bool = true, _ build: (inout ProtoWriter) -> Void) {
        let mark = used
        tag(field, 2)
        let lengthAt = used
        raw(0)
        let start = used
        build(&self)
        let length = used - start
        if length == 0 && !always {
            used = mark
            return
        }
        if length < 0x80 {
            base[lengthAt] = UInt8(length)
            return
        }
        var width = 1
        var rest = length >> 7
        while rest > 0 { width += 1; rest >>= 7 }
        reserve(width - 1)
        (base + start + width - 1).update(from: base + start, count: length)
        used += width - 1
        var v = UInt64(length)
        for i in 0..<width {
            base[lengthAt + i] = UInt8(truncatingIfNeeded: v) | (i < width - 1 ? 0x80 : 0)
            v >>= 7
        }
    }

    /// A bytes field of one big-endian 8-byte word (a span ID in wire order), without
    /// building an array for it.
    @inlinable
    public mutating func bigEndianWords(_ field: Int, _ word: UInt64) {
        tag(field, 2)
        raw(8)
        bigEndian64(word)
    }

    /// A bytes field of two big-endian 8-byte words (a trace ID in wire order).
    @inlinable
    public mutating func bigEndianWords(_ field: Int, _ high: UInt64, _ low: UInt64) {
        tag(field, 2)
        raw(16)
        bigEndian64(high)
        bigEndian64(low)
    }

    public mutating func packedSInt(_ field: Int, _ values: [Int64]) {
        guard !values.isEmpty else { return }
        var inner = ProtoWriter(capacity: values.count * 2)
        for v in values { inner.varint(Self.zigzag(v)) }
        tag(field, 2)
        varint(UInt64(inner.count))
        append(inner)
    }

    /// Bytes `varint(v)` writes.
    @inlinable
    public static func varintSize(_ v: UInt64) -> Int { v < 0x80 ? 1 : (70 - v.leadingZeroBitCount) / 7 }

    @inlinable
    public static func zigzag(_ v: Int64) -> UInt64 { UInt64(bitPattern: (v << 1) ^ (v >> 63)) }
    public static func unzigzag(_ v: UInt64) -> Int64 { Int64(bitPattern: v >> 1) ^ -Int64(bitPattern: v & 1) }
}

public struct ProtoDecodeError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "protobuf decode error: \(message)" }
}

/// The byte-level reads `ProtoReader` and `RawFieldScanner` share, over any bytes indexed
/// by Int (an array slice, a raw buffer): inlined and specialized at each use, so neither
/// reader pays for the other's storage.
@usableFromInline enum WireBytes {
    /// A varint at `position`, which it advances.
    @inlinable static func varint<Bytes: RandomAccessCollection>(_ bytes: Bytes, at position: inout Int) throws(ProtoDecodeError) -> UInt64
    where Bytes.Element == UInt8, Bytes.Index == Int {
        var result: UInt64 = 0, shift: UInt64 = 0
        while position < bytes.endIndex {
            let b = bytes[position]
            position += 1
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw ProtoDecodeError("varint too long") }
        }
        throw ProtoDecodeError("truncated varint")
    }

    /// The 8 bytes at `position` as a big-endian word (an ID in wire order); advances it.
    @inlinable static func bigEndian64<Bytes: RandomAccessCollection>(_ bytes: Bytes, at position: inout Int) throws(ProtoDecodeError) -> UInt64
    where Bytes.Element == UInt8, Bytes.Index == Int {
        guard bytes.endIndex - position >= 8 else { throw ProtoDecodeError("truncated 8-byte word") }
        var v: UInt64 = 0
        for i in 0..<8 { v = v << 8 | UInt64(bytes[position + i]) }
        position += 8
        return v
    }
}

/// A payload read as a plain sequence (a packed field's values, or bytes SpanLedger lays
/// out itself), not as tagged fields: what readers of such layouts need, whichever reader
/// holds the bytes.
public protocol PlainSequenceReader {
    mutating func nextVarint() throws(ProtoDecodeError) -> UInt64
    /// The next 8 bytes as a big-endian word (an ID in wire order).
    mutating func nextBigEndian64() throws(ProtoDecodeError) -> UInt64
    /// Whether every byte has been read.
    var isAtEnd: Bool { get }
}

/// Walks the fields of one serialized message in place, through a raw buffer the caller
/// keeps alive: no slice or value is made for a field it skips, so a pass that wants a
/// few fields of many rows (a start reading index summaries) costs only their bytes.
@frozen public struct RawFieldScanner {
    @usableFromInline let buffer: UnsafeRawBufferPointer
    @usableFromInline var position = 0
    /// The wire type of the field `nextField` returned last.
    @usableFromInline var type: UInt64 = 0
    @inlinable public var wireType: UInt64 { type }

    @inlinable public init(_ buffer: UnsafeRawBufferPointer) { self.buffer = buffer }

    @inlinable public var isAtEnd: Bool { position >= buffer.count }

    /// The next field's number; its payload must be read (`varint`, `bytes`) or `skip`ped.
    @inlinable public mutating func nextField() throws(ProtoDecodeError) -> Int? {
        guard position < buffer.count else { return nil }
        let key = try varint()
        guard key >> 3 > 0 else { throw ProtoDecodeError("field number 0 at offset \(position)") }
        type = key & 7
        return Int(truncatingIfNeeded: key >> 3)
    }

    @inlinable public mutating func varint() throws(ProtoDecodeError) -> UInt64 {
        try WireBytes.varint(buffer, at: &position)
    }

    /// A length-delimited payload, in place.
    @inlinable public mutating func bytes() throws(ProtoDecodeError) -> UnsafeRawBufferPointer {
        guard wireType == 2 else { throw ProtoDecodeError("wire type \(wireType) where length-delimited bytes were expected") }
        let len = try varint()
        guard len <= UInt64(buffer.count - position) else { throw ProtoDecodeError("length \(len) past end of message") }
        defer { position += Int(len) }
        return UnsafeRawBufferPointer(rebasing: buffer[position..<(position + Int(len))])
    }

    /// The next 8 bytes as a big-endian word (an ID in wire order), in a payload read as
    /// a plain sequence.
    @inlinable public mutating func nextBigEndian64() throws(ProtoDecodeError) -> UInt64 {
        try WireBytes.bigEndian64(buffer, at: &position)
    }

    /// Skips the payload of the field `nextField` returned.
    @inlinable public mutating func skip() throws(ProtoDecodeError) {
        switch wireType {
        case 0: _ = try varint()
        case 1, 5:
            let n = wireType == 1 ? 8 : 4
            guard buffer.count - position >= n else { throw ProtoDecodeError("truncated fixed\(n * 8)") }
            position += n
        case 2: _ = try bytes()
        default: throw ProtoDecodeError("unsupported wire type \(wireType)")
        }
    }
}

extension RawFieldScanner: PlainSequenceReader {
    @inlinable public mutating func nextVarint() throws(ProtoDecodeError) -> UInt64 { try varint() }
}

/// Iterates the fields of one serialized message.
public struct ProtoReader: PlainSequenceReader {
    public enum Value {
        case varint(UInt64)
        case fixed64(UInt64)
        case bytes(ArraySlice<UInt8>)
        case fixed32(UInt32)
    }

    let data: ArraySlice<UInt8>
    var position: Int

    public init(_ data: ArraySlice<UInt8>) {
        self.data = data
        self.position = data.startIndex
    }

    public init(_ data: [UInt8]) { self.init(data[...]) }

    public mutating func next() throws(ProtoDecodeError) -> (field: Int, value: Value)? {
        guard position < data.endIndex else { return nil }
        let key = try readVarint()
        let field = Int(key >> 3)
        guard field > 0 else { throw ProtoDecodeError("field number 0 at offset \(position)") }
        switch key & 7 {
        case 0: return (field, .varint(try readVarint()))
        case 1:
            guard data.endIndex - position >= 8 else { throw ProtoDecodeError("truncated fixed64") }
            var v: UInt64 = 0
            for i in 0..<8 { v |= UInt64(data[position + i]) << (8 * i) }
            position += 8
            return (field, .fixed64(v))
        case 2:
            let len = try readVarint()
            guard len <= UInt64(data.endIndex - position) else { throw ProtoDecodeError("length \(len) past end of message") }
            let slice = data[position..<(position + Int(len))]
            position += Int(len)
            return (field, .bytes(slice))
        case 5:
            guard data.endIndex - position >= 4 else { throw ProtoDecodeError("truncated fixed32") }
            var v: UInt32 = 0
            for i in 0..<4 { v |= UInt32(data[position + i]) << (8 * i) }
            position += 4
            return (field, .fixed32(v))
        default:
            throw ProtoDecodeError("unsupported wire type \(key & 7)")
        }
    }

    mutating func readVarint() throws(ProtoDecodeError) -> UInt64 {
        try WireBytes.varint(data, at: &position)
    }

    /// Whether every byte has been read.
    public var isAtEnd: Bool { position >= data.endIndex }

    /// The next varint of a payload read as a plain sequence (a packed field's values or
    /// bytes SpanLedger lays out itself), not as tagged fields.
    public mutating func nextVarint() throws(ProtoDecodeError) -> UInt64 { try readVarint() }

    /// The next 8 bytes as a big-endian word (an ID in wire order).
    public mutating func nextBigEndian64() throws(ProtoDecodeError) -> UInt64 {
        try WireBytes.bigEndian64(data, at: &position)
    }

    /// Decodes a packed repeated varint field's payload.
    public static func packedVarints(_ slice: ArraySlice<UInt8>) throws(ProtoDecodeError) -> [UInt64] {
        var r = ProtoReader(slice)
        var out: [UInt64] = []
        while r.position < r.data.endIndex { out.append(try r.readVarint()) }
        return out
    }
}

extension ProtoReader.Value {
    public var uint64: UInt64 {
        switch self {
        case .varint(let v), .fixed64(let v): v
        case .fixed32(let v): UInt64(v)
        case .bytes: 0
        }
    }

    public var int64: Int64 { Int64(bitPattern: uint64) }
    public var sint64: Int64 { ProtoWriter.unzigzag(uint64) }
    public var bool: Bool { uint64 != 0 }
    public var slice: ArraySlice<UInt8> { if case .bytes(let b) = self { b } else { [] } }
    public var string: String { String(decoding: slice, as: UTF8.self) }
}
