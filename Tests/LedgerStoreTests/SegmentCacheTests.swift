import DurableFiles
import Foundation
@testable import LedgerStore
import Synchronization
import Testing

/// The lookup cache serves a segment's message again only while the file is the one it
/// was read from, stays within its bytes (least recently used out) and lets go of what
/// was not used for its idle time.
@Test func segmentCacheServesUnchangedFilesAndForgetsReplacedEvictedAndIdleOnes() throws {
    let dir = NSTemporaryDirectory() + "segment-cache-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let clock = Atomic<UInt64>(1_000)
    let cache = SegmentCache(capacityBytes: 250, idleNano: 100, now: { clock.load(ordering: .relaxed) })
    let reads = Atomic<Int>(0)
    func lookup(_ name: String) throws -> [UInt8] {
        let p = dir + "/" + name
        return try cache.message(path: p) { () throws(StoreError) -> [UInt8] in
            reads.add(1, ordering: .relaxed)
            do throws(FileError) { return try FileIO.readAll(p) } catch { throw StoreError(error) }
        }
    }
    func write(_ name: String, _ bytes: [UInt8]) throws { try FileIO.writeAtomically(bytes, to: dir + "/" + name) }

    try write("a", [UInt8](repeating: 1, count: 100))
    try write("b", [UInt8](repeating: 2, count: 100))
    #expect(try lookup("a") == [UInt8](repeating: 1, count: 100))
    #expect(try lookup("a").count == 100)
    #expect(reads.load(ordering: .relaxed) == 1 && cache.stats == SegmentCache.Stats(hits: 1, misses: 1, bytes: 100, messages: 1))

    // Replaced under the same name and size (a merge rewrites a flush's file): read again.
    try write("a", [UInt8](repeating: 3, count: 100))
    #expect(try lookup("a") == [UInt8](repeating: 3, count: 100))
    #expect(reads.load(ordering: .relaxed) == 2)

    // Over 250 bytes the least recently used goes: b is kept, a read again later.
    clock.add(10, ordering: .relaxed)
    _ = try lookup("b")
    clock.add(10, ordering: .relaxed)
    _ = try lookup("a")
    try write("c", [UInt8](repeating: 4, count: 100))
    clock.add(10, ordering: .relaxed)
    _ = try lookup("c") // evicts b, the least recently used
    #expect(cache.stats.bytes == 200 && cache.stats.messages == 2)
    let before = reads.load(ordering: .relaxed)
    _ = try lookup("a")
    _ = try lookup("c")
    #expect(reads.load(ordering: .relaxed) == before)
    _ = try lookup("b")
    #expect(reads.load(ordering: .relaxed) == before + 1)

    // A message larger than the whole bound is not kept.
    try write("big", [UInt8](repeating: 5, count: 300))
    _ = try lookup("big")
    _ = try lookup("big")
    #expect(reads.load(ordering: .relaxed) == before + 3)

    // Unused for longer than the idle time: dropped.
    clock.add(1_000, ordering: .relaxed)
    cache.expire()
    #expect(cache.stats.bytes == 0 && cache.stats.messages == 0)

    // A missing file is an error, and nothing is kept for it.
    #expect(throws: StoreError.self) { try lookup("missing") }
}
