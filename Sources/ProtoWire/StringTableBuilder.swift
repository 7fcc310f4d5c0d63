/// A string table being built: each distinct string stored once and referenced by index
/// (index 0 is ""). Index and rollup segments name workflows, models, services, agents,
/// reviewers and tasks through one; so does each write-ahead-log record of spans.
public struct StringTableBuilder {
    public private(set) var strings: [String] = [""]
    /// Non-empty strings only: "" is index 0 without a lookup.
    private var indexes: [String: UInt32] = [:]
    /// The names of a flush's entries and keys are a few strings shared by most of them
    /// (the decoder interns them): a direct-mapped cache keyed by the String's own bits
    /// (its storage reference, or the bytes of a small string) finds most without hashing
    /// the text.
    /// A slot holds its string, so the storage its bits point to stays alive and cannot
    /// be reused by another string; equal strings with other bits just miss.
    private var recent = [(bits: StringBits, index: UInt32, string: String)](repeating: (StringBits(""), 0, ""), count: 64)

    public init() {}

    public mutating func index(_ s: String) -> UInt32 {
        if s.isEmpty { return 0 }
        let bits = StringBits(s)
        let slot = bits.slot
        if recent[slot].bits == bits { return recent[slot].index }
        let i: UInt32
        if let found = indexes[s] {
            i = found
        } else {
            i = UInt32(strings.count)
            strings.append(s)
            indexes[s] = i
        }
        recent[slot] = (bits, i, s)
        return i
    }
}

/// The two words a `String` is made of (on 64-bit platforms): equal bits mean the same
/// storage, or the same small-string bytes, so an equal string.
public struct StringBits: Equatable {
    public let a: UInt64
    public let b: UInt64

    public init(_ s: String) {
        (a, b) = unsafeBitCast(s, to: (UInt64, UInt64).self)
    }

    /// One of 64 slots.
    public var slot: Int { Int(truncatingIfNeeded: ((a ^ b.byteSwapped) &* 0x9E37_79B9_7F4A_7C15) >> 58) }
}
