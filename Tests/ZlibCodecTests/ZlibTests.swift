import Testing
import ZlibCodec

let sample = Array((0..<50_000).map { UInt8(truncatingIfNeeded: $0 % 251) })

@Test(arguments: [Zlib.Format.zlib, .gzip])
func roundTrips(format: Zlib.Format) throws {
    let packed = try Zlib.compress(sample, format: format)
    #expect(packed.count < sample.count)
    #expect(try Zlib.decompress(packed, format: format, limit: sample.count) == sample)
}

@Test func outputOverTheLimitIsRefused() throws {
    let bomb = try Zlib.compress([UInt8](repeating: 0, count: 10 << 20), format: .gzip)
    #expect(bomb.count < 20_000)
    #expect(throws: ZlibError.self) { try Zlib.decompress(bomb, format: .gzip, limit: 1 << 20) }
    do {
        _ = try Zlib.decompress(bomb, format: .gzip, limit: 1 << 20)
    } catch {
        #expect(error.code == .outputLimitExceeded)
    }
}

@Test func truncatedStreamIsAnErrorNotAShortResult() throws {
    let packed = try Zlib.compress(sample, format: .gzip)
    for cut in [packed.count - 1, packed.count - 8, packed.count / 2, 10] {
        #expect(throws: ZlibError.self) { try Zlib.decompress(Array(packed.prefix(cut)), format: .gzip, limit: 1 << 20) }
    }
}

@Test func corruptStreamIsAnError() throws {
    var packed = try Zlib.compress(sample, format: .zlib)
    packed[packed.count / 2] ^= 0xFF
    packed[packed.count / 2 + 1] ^= 0x55
    #expect(throws: ZlibError.self) { try Zlib.decompress(packed, format: .zlib, limit: 1 << 20) }
}

@Test func crc32MatchesTheIEEECheckValue() {
    #expect(Zlib.crc32(Array("123456789".utf8)) == 0xCBF4_3926)
}

/// A segment is deflated as its pieces are written (Deflater): tiny pieces are staged,
/// pieces larger than the staging buffer are deflated in place, and the staging buffer
/// fills and drains many times. The stream must inflate to exactly the concatenation.
@Test func aStreamWrittenInPiecesInflatesToTheirConcatenation() throws {
    var rng = SystemRandomNumberGenerator()
    let sizes = [0, 1, 7, 300, 131_071, 131_072, 5, 400_000, 2, 90_000, 90_000, 1_000_003, 3]
    var expected: [UInt8] = []
    for format in [Zlib.Format.zlib, .gzip] {
        let d = try Deflater(format: format, level: 2)
        expected.removeAll()
        for (n, size) in sizes.enumerated() {
            // Half compressible text, half noise, so deflate's output is not trivial.
            let piece = (0..<size).map { i in n % 2 == 0 ? UInt8(truncatingIfNeeded: i % 251) : UInt8.random(in: 0...255, using: &rng) }
            expected += piece
            try d.write(piece)
        }
        #expect(d.totalIn == expected.count)
        let stream = try d.finish()
        #expect(try Zlib.decompress(stream, format: format, limit: expected.count) == expected)
    }
    // The one-shot form is the same stream written at once.
    let once = try Zlib.compress(expected, level: 2)
    #expect(try Zlib.decompress(once, limit: expected.count) == expected)
}

/// A gzip body is inflated straight into an array of the size its trailer declares
/// (ISIZE). That size is only a first allocation: a body whose trailer says less or more
/// than it inflates to still inflates exactly, the limit holds whatever it says, and a
/// declared size at the limit is exact.
@Test func aDeclaredSizeIsOnlyAFirstAllocation() throws {
    let packed = try Zlib.compress(sample, format: .gzip)
    #expect(try Zlib.decompress(packed, format: .gzip, limit: sample.count) == sample, "at the limit exactly")
    #expect(throws: ZlibError.self) { try Zlib.decompress(packed, format: .gzip, limit: sample.count - 1) }
    // The trailer's size is not covered by its CRC check until the end: lie in it.
    for declared in [1, sample.count / 2, sample.count - 1, sample.count + 1, 4 * sample.count, Int(UInt32.max)] {
        var lying = packed
        let n = lying.count
        for i in 0..<4 { lying[n - 4 + i] = UInt8(truncatingIfNeeded: declared >> (8 * i)) }
        // zlib checks ISIZE against what it produced: a lie is a corrupt stream, never a
        // wrong result, a crash or a buffer overrun.
        #expect(throws: ZlibError.self, "declared \(declared)") { try Zlib.decompress(lying, format: .gzip, limit: 1 << 20) }
    }
    // The caller's size (a segment's header), wrong both ways, on zlib streams.
    let z = try Zlib.compress(sample, format: .zlib)
    for expected in [1, sample.count - 1, sample.count, sample.count + 1, 10 * sample.count] {
        #expect(try Zlib.decompress(z, format: .zlib, limit: 1 << 20, expectedSize: expected) == sample, "expected \(expected)")
    }
    let big = [UInt8](repeating: 7, count: 3 << 20)
    let bomb = try Zlib.compress(big, format: .zlib)
    #expect(try Zlib.decompress(bomb, format: .zlib, limit: big.count, expectedSize: big.count) == big, "past the first allocation's cap")
    #expect(throws: ZlibError.self) { try Zlib.decompress(bomb, format: .zlib, limit: big.count - 1, expectedSize: big.count) }
}

/// Bytes written with `compressing: false` go out in stored blocks, as they are: a run
/// segment keeps its random IDs and times there. Runs of each kind, switched back and
/// forth with pieces on both sides of the staging size, inflate to their concatenation;
/// text that would compress to nothing takes its full size when stored.
@Test func storedRunsBetweenCompressedOnesInflateToTheirConcatenation() throws {
    let text = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 % 13) }
    func stream(_ runs: [(bytes: [UInt8], compressing: Bool)]) throws -> (stream: [UInt8], expected: [UInt8]) {
        let d = try Deflater(level: 2)
        var expected: [UInt8] = []
        for run in runs {
            expected += run.bytes
            try run.bytes.withUnsafeBytes { try d.write($0, compressing: run.compressing) }
        }
        #expect(d.totalIn == expected.count)
        return (try d.finish(), expected)
    }
    let runs: [(bytes: [UInt8], compressing: Bool)] = [
        (Array(text[..<10]), true), (Array(text[..<200_000]), false), (Array(text[..<5]), false), (text, true),
        (Array(text[..<7]), false), ([], true), (Array(text[..<140_000]), false), (Array(text[..<3]), true),
    ]
    let (mixed, expected) = try stream(runs)
    #expect(try Zlib.decompress(mixed, limit: expected.count) == expected)
    // The stored text (345,012 bytes) is all there; the compressed text nearly vanishes.
    let storedBytes = runs.filter { !$0.compressing }.reduce(0) { $0 + $1.bytes.count }
    #expect(mixed.count >= storedBytes && mixed.count < storedBytes + 5_000, "\(mixed.count) bytes for \(storedBytes) stored")
    let (allCompressed, _) = try stream(runs.map { ($0.bytes, true) })
    #expect(allCompressed.count < 5_000)
}
