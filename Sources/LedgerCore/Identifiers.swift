/// A 16-byte OTLP trace ID held as two words, so it hashes and compares without allocation.
public struct TraceID: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// Reads 16 big-endian bytes; nil for any other length.
    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 16 else { return nil }
        self.high = Self.readBigEndian(bytes, at: 0)
        self.low = Self.readBigEndian(bytes, at: 8)
    }

    public init?(bytes: [UInt8]) {
        guard let id = bytes.withUnsafeBytes({ TraceID(bytes: $0) }) else { return nil }
        self = id
    }

    /// Parses 32 hex digits, either case.
    public init?(hex: some StringProtocol) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 32, let hi = HexCodec.parseWord(utf8[0..<16]), let lo = HexCodec.parseWord(utf8[16..<32]) else { return nil }
        self.high = hi
        self.low = lo
    }

    public var isZero: Bool { high == 0 && low == 0 }
    public var hex: String { HexCodec.word(high) + HexCodec.word(low) }
    public var description: String { hex }
    public var bytes: [UInt8] { HexCodec.bigEndianBytes(high) + HexCodec.bigEndianBytes(low) }

    public static func < (a: TraceID, b: TraceID) -> Bool { (a.high, a.low) < (b.high, b.low) }

    // Dictionaries and sets of trace IDs are on every span's path (assembly, the run index,
    // rollups of late spans): a keyed multiply-xorshift mix of the two words instead of
    // SipHash over them. Trace IDs are random by the W3C spec; the seed (per table) enters
    // before the words are combined, so IDs crafted to collide in one table do not
    // collide by construction in another.
    public func hash(into hasher: inout Hasher) { hasher.combine(IDHash.mix(high, low, seed: 0)) }
    public func _rawHashValue(seed: Int) -> Int { Int(truncatingIfNeeded: IDHash.mix(high, low, seed: seed)) }

    static func readBigEndian(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<8 { value = value << 8 | UInt64(bytes[offset + i]) }
        return value
    }
}

/// An 8-byte OTLP span ID; zero means "none" (an empty parent_span_id).
public struct SpanID: Hashable, Sendable, CustomStringConvertible {
    public var value: UInt64
    public init(_ value: UInt64) { self.value = value }

    public init?(bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 8 else { return nil }
        self.value = TraceID.readBigEndian(bytes, at: 0)
    }

    public init?(bytes: [UInt8]) {
        guard let id = bytes.withUnsafeBytes({ SpanID(bytes: $0) }) else { return nil }
        self = id
    }

    public init?(hex: some StringProtocol) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 16, let v = HexCodec.parseWord(utf8[0..<16]) else { return nil }
        self.value = v
    }

    public static let none = SpanID(0)

    /// As `TraceID`'s: a keyed mix, not SipHash (span IDs key the agent and parent lookups).
    public func hash(into hasher: inout Hasher) { hasher.combine(value) }
    public func _rawHashValue(seed: Int) -> Int { Int(truncatingIfNeeded: IDHash.mix(value, 0, seed: seed)) }
    public var isNone: Bool { value == 0 }
    public var hex: String { HexCodec.word(value) }
    public var description: String { hex }
    public var bytes: [UInt8] { HexCodec.bigEndianBytes(value) }
}

/// The mix behind `TraceID` and `SpanID` hashing: the seed is folded into the first word
/// and multiplied through before the second is added, then the bits are avalanched
/// (the finaliser of SplitMix64), so every output bit depends on every input bit.
@usableFromInline enum IDHash {
    @inline(__always) @usableFromInline static func mix(_ a: UInt64, _ b: UInt64, seed: Int) -> UInt64 {
        var x = (a ^ UInt64(bitPattern: Int64(seed)) ^ 0x9E37_79B9_7F4A_7C15) &* 0xBF58_476D_1CE4_E5B9
        x = (x ^ (x >> 31) ^ b) &* 0x94D0_49BB_1331_11EB
        x = (x ^ (x >> 29)) &* 0xBF58_476D_1CE4_E5B9
        return x ^ (x >> 32)
    }
}

public enum HexCodec {
    static let digits = Array("0123456789abcdef".utf8)

    public static func word(_ value: UInt64) -> String {
        var out = [UInt8](repeating: 0, count: 16)
        var v = value
        for i in stride(from: 15, through: 0, by: -1) {
            out[i] = digits[Int(v & 0xF)]
            v >>= 4
        }
        return String(decoding: out, as: UTF8.self)
    }

    public static func bigEndianBytes(_ value: UInt64) -> [UInt8] {
        (0..<8).map { UInt8(truncatingIfNeeded: value >> (56 - 8 * $0)) }
    }

    public static func nibble(_ c: UInt8) -> UInt64? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt64(c - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt64(c - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt64(c - UInt8(ascii: "A") + 10)
        default: nil
        }
    }

    static func parseWord(_ chars: ArraySlice<UInt8>) -> UInt64? {
        var value: UInt64 = 0
        for c in chars {
            guard let n = nibble(c) else { return nil }
            value = value << 4 | n
        }
        return value
    }

    public static func encode(_ bytes: [UInt8]) -> String {
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
