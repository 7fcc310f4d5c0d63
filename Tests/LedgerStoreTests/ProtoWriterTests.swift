import ProtoWire
import Testing

/// The wire writer every segment, log record and packed tree goes through: its own
/// growable buffer, and nested messages whose length prefix widens after the fact.
@Suite struct ProtoWriterTests {
    @Test func writesPastItsInitialCapacityAndReadsBack() throws {
        var w = ProtoWriter(capacity: 1)
        let values: [UInt64] = (0..<5_000).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 >> UInt64($0 % 64) }
        for (n, v) in values.enumerated() { w.uint(n % 200 + 1, v) }
        w.bigEndianWords(201, 0x0102_0304_0506_0708, 0x1112_1314_1516_1718)
        w.fixed64(202, 0xAABB_CCDD_EEFF_0011)
        let bytes = w.bytes
        #expect(bytes.count == w.count)
        #expect(bytes.capacity < bytes.count + 32, "bytes are copied out at their size")

        var r = ProtoReader(bytes)
        var read: [UInt64] = []
        var words: [UInt8] = []
        var fixed: UInt64 = 0
        while let (field, value) = try r.next() {
            switch field {
            case 201: words = Array(value.slice)
            case 202: fixed = value.uint64
            default: read.append(value.uint64)
            }
        }
        #expect(read == values.filter { $0 != 0 })
        #expect(words == [1, 2, 3, 4, 5, 6, 7, 8, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18])
        #expect(fixed == 0xAABB_CCDD_EEFF_0011)
    }

    @Test(arguments: [0, 1, 127, 128, 300, 16_383, 16_384, 70_000])
    func nestedMessageLengthsWidenInPlace(length: Int) throws {
        var w = ProtoWriter(capacity: 8)
        w.uint(1, 7)
        w.message(2) { m in
            m.message(3) { inner in
                inner.lengthPrefixed(String(repeating: "x", count: length))
            }
        }
        w.uint(4, 9)
        var r = ProtoReader(w.bytes)
        var fields: [Int] = []
        var text = ""
        while let (field, value) = try r.next() {
            fields.append(field)
            if field == 2 {
                var m = ProtoReader(value.slice)
                let (f, inner) = try #require(try m.next())
                #expect(f == 3)
                // The inner payload is a varint length, then the text.
                var prefix = 0, shift = 0, at = inner.slice.startIndex
                while true {
                    let b = inner.slice[at]
                    prefix |= Int(b & 0x7F) << shift
                    at += 1
                    if b < 0x80 { break }
                    shift += 7
                }
                #expect(prefix == length)
                text = String(decoding: inner.slice[at...], as: UTF8.self)
                #expect(try m.next() == nil)
            }
        }
        #expect(fields == [1, 2, 4])
        #expect(text == String(repeating: "x", count: length))
    }

    @Test func varintSizeIsWhatVarintWrites() {
        var values: [UInt64] = [0, 1, 0x7F, 0x80, 0x3FFF, 0x4000, UInt64.max, UInt64.max >> 1, 1 << 63]
        for bit in 0..<64 { values += [1 << UInt64(bit), (1 << UInt64(bit)) - 1] }
        for v in values {
            var w = ProtoWriter()
            w.varint(v)
            #expect(ProtoWriter.varintSize(v) == w.count, "\(v)")
        }
    }

    @Test func anEmptyOptionalMessageLeavesNothingAndWritersAppend() {
        var w = ProtoWriter()
        w.uint(1, 5)
        let before = w.bytes
        w.message(2, always: false) { _ in }
        #expect(w.bytes == before)
        w.message(2) { _ in }
        #expect(w.bytes == before + [0x12, 0])

        var other = ProtoWriter()
        other.string(3, "ab")
        w.append(other)
        #expect(w.bytes == before + [0x12, 0, 0x1A, 2, 0x61, 0x62])
        w.removeAll()
        #expect(w.bytes.isEmpty && w.count == 0)
    }

    /// The in-place scanner start-up reads index summaries with: the fields it reads equal
    /// what `ProtoReader` reads, every wire type it skips is skipped whole, and a cut or
    /// malformed message is an error, never a read past the end.
    @Test func theRawFieldScannerReadsAndSkipsEveryWireTypeInPlace() throws {
        // One field a writer, so the message's field boundaries are known.
        let fields: [(inout ProtoWriter) -> Void] = [
            { $0.uint(1, 300) }, { $0.fixed64(2, 0x0102_0304_0506_0708) }, { $0.tag(3, 5); $0.raw([9, 8, 7, 6]) },
            { $0.bytesField(4, [0xAA, 0xBB, 0xCC], always: true) }, { $0.bigEndianWords(5, 0x1122_3344_5566_7788, 7) }, { $0.uint(6, 1 << 40) },
        ]
        var bytes: [UInt8] = []
        var boundaries: Set<Int> = [0]
        for write in fields {
            var w = ProtoWriter()
            write(&w)
            bytes += w.bytes
            boundaries.insert(bytes.count)
        }
        var seen: [(Int, UInt64)] = []
        try bytes.withUnsafeBytes { raw in
            var r = RawFieldScanner(raw)
            while let field = try r.nextField() {
                switch field {
                case 1, 6: seen.append((field, try r.varint()))
                case 4: seen.append((field, UInt64(Array(try r.bytes()).reduce(0) { $0 << 8 | Int($1) })))
                case 5:
                    var words = RawFieldScanner(try r.bytes())
                    seen.append((field, try words.nextBigEndian64()))
                    seen.append((field, try words.nextBigEndian64()))
                    #expect(words.isAtEnd)
                default: try r.skip() // fixed64 and fixed32
                }
            }
            #expect(r.isAtEnd)
        }
        #expect(seen.map(\.0) == [1, 4, 5, 5, 6])
        #expect(seen.map(\.1) == [300, 0xAABBCC, 0x1122_3344_5566_7788, 7, 1 << 40])

        func scanAll(_ b: [UInt8]) throws {
            try b.withUnsafeBytes { raw in
                var r = RawFieldScanner(raw)
                while try r.nextField() != nil { try r.skip() }
            }
        }
        try scanAll(bytes)
        // Every cut inside a field fails cleanly; a cut between fields is a shorter message.
        for cut in 1..<bytes.count {
            let whole = (try? scanAll(Array(bytes.prefix(cut)))) != nil
            #expect(whole == boundaries.contains(cut), "a cut at \(cut) of \(bytes.count)")
        }
        #expect(throws: ProtoDecodeError.self) { try scanAll([0x00]) }                  // field number 0
        #expect(throws: ProtoDecodeError.self) { try scanAll([0x0B]) }                  // wire type 3
        #expect(throws: ProtoDecodeError.self) { try scanAll([0x08] + [UInt8](repeating: 0xFF, count: 10) + [0x01]) } // varint too long
        try [UInt8]([0x08, 0x01]).withUnsafeBytes { raw in
            var wrongType = RawFieldScanner(raw)
            _ = try wrongType.nextField()
            #expect(throws: ProtoDecodeError.self) { _ = try wrongType.bytes() }
        }
    }
}
