import ZlibCodec

/// One log record's frame: a 22-byte header — magic 0x534C ("SL"), payload length (u32),
/// sequence number (u64), payload CRC-32 (u32), header CRC-32 over the preceding 18 bytes
/// (u32) — then the payload. All integers little-endian. The header CRC lets a reader
/// trust the length of a record whose payload is damaged (skip just that record); a
/// damaged header at the end of the last segment is a torn write (truncate there).
public enum WALRecordFrame {
    public static let headerSize = 22
    static let magic: UInt16 = 0x534C
    /// Largest payload accepted (a corrupt length beyond it is treated as a damaged header).
    public static let maxPayload = 256 << 20

    public static func encode(sequence: UInt64, payload: [UInt8], into out: inout [UInt8]) {
        var header = [UInt8]()
        header.reserveCapacity(headerSize)
        put(&header, UInt64(magic), 2)
        put(&header, UInt64(payload.count), 4)
        put(&header, sequence, 8)
        put(&header, UInt64(Zlib.crc32(payload)), 4)
        put(&header, UInt64(Zlib.crc32(header)), 4)
        out += header
        out += payload
    }

    public enum Parse {
        /// A good record: its sequence, payload, and total size in bytes.
        case record(sequence: UInt64, payload: ArraySlice<UInt8>, size: Int)
        /// The header is sound but the payload CRC fails: skip `size` bytes.
        case corruptPayload(sequence: UInt64, size: Int)
        /// The header is damaged or incomplete: nothing after this offset can be trusted.
        case badHeader
        /// Fewer bytes than a full record remain (a torn write at the end).
        case truncated
        /// Zeros where the next header would be: the unwritten rest of a preallocated
        /// segment (a header always starts with the magic, so zeros are never a record).
        case end
    }

    public static func parse(_ bytes: [UInt8], at offset: Int) -> Parse {
        if endsAt(bytes, offset) { return .end }
        guard bytes.count - offset >= headerSize else { return .truncated }
        guard let length = payloadLength(bytes, at: offset) else { return .badHeader }
        let sequence = read(bytes, offset + 6, 8)
        let size = headerSize + length
        guard bytes.count - offset >= size else { return .truncated }
        let payload = bytes[(offset + headerSize)..<(offset + size)]
        guard UInt32(read(bytes, offset + 14, 4)) == Zlib.crc32(Array(payload)) else { return .corruptPayload(sequence: sequence, size: size) }
        return .record(sequence: sequence, payload: payload, size: size)
    }

    /// Whether only zeros stand where a header would start at `offset` (to the end of the
    /// bytes, if fewer than a header remain): the records have ended.
    static func endsAt(_ bytes: [UInt8], _ offset: Int) -> Bool {
        bytes[offset..<min(bytes.count, offset + headerSize)].allSatisfy { $0 == 0 }
    }

    /// The payload length a sound header at `offset` gives (nil for a damaged one).
    static func payloadLength(_ bytes: [UInt8], at offset: Int) -> Int? {
        guard bytes.count - offset >= headerSize, read(bytes, offset, 2) == UInt64(magic),
              UInt32(read(bytes, offset + 18, 4)) == Zlib.crc32(Array(bytes[offset..<(offset + 18)])) else { return nil }
        let length = Int(read(bytes, offset + 2, 4))
        return length <= maxPayload ? length : nil
    }

    static func put(_ out: inout [UInt8], _ v: UInt64, _ n: Int) {
        for i in 0..<n { out.append(UInt8(truncatingIfNeeded: v >> (8 * i))) }
    }

    static func read(_ b: [UInt8], _ at: Int, _ n: Int) -> UInt64 {
        var v: UInt64 = 0
        for i in 0..<n { v |= UInt64(b[at + i]) << (8 * i) }
        return v
    }
}
