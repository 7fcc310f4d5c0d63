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
