#if canImport(Glibc)
import Glibc
#endif

/// Reuses one `String` per distinct byte sequence for the few names that repeat across
/// nearly every span (span names, services, models, workflow and agent names, span kinds):
/// a hit costs a hash and a compare instead of a UTF-8 validation and a heap allocation,
/// and every later copy of the name is a retain of shared storage. Direct-mapped and
/// bounded: a colliding name replaces the slot's, so unique values (IDs) cannot grow it.
/// Not thread-safe: one per decoder.
final class StringInterner {
    private struct Slot {
        var hash: UInt64 = 0
        var bytes: [UInt8] = []
        var string: String = ""
    }

    /// Names longer than this are built directly (they are rarely the repeating kind).
    static let maxLength = 96
    private static let slotCount = 1024
    /// Used by one decoder at a time: no dynamic exclusivity check on each lookup.
    @exclusivity(unchecked) private var slots = [Slot](repeating: Slot(), count: StringInterner.slotCount)

    /// The string of a NUL-terminated C string.
    func string(_ cString: UnsafePointer<CChar>) -> String {
        let n = strnlen(cString, Self.maxLength + 1)
        guard n <= Self.maxLength else { return String(cString: cString) }
        return cString.withMemoryRebound(to: UInt8.self, capacity: n) { string(UnsafeBufferPointer(start: $0, count: n)) }
    }

    /// The string of UTF-8 bytes (invalid sequences repaired, as `String(decoding:as:)` does).
    func string(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard !bytes.isEmpty else { return "" }
        guard bytes.count <= Self.maxLength, let base = bytes.baseAddress else { return String(decoding: bytes, as: UTF8.self) }
        // FNV-1a: names are short, and this is cheaper than setting up a Hasher.
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        let i = Int(truncatingIfNeeded: h ^ (h >> 29)) & (Self.slotCount - 1)
        return slots.withUnsafeMutableBufferPointer { table in
            if table[i].hash == h, table[i].bytes.count == bytes.count,
               table[i].bytes.withUnsafeBufferPointer({ memcmp($0.baseAddress!, base, bytes.count) == 0 }) {
                return table[i].string
            }
            let s = String(decoding: bytes, as: UTF8.self)
            table[i] = Slot(hash: h, bytes: Array(bytes), string: s)
            return s
        }
    }
}
