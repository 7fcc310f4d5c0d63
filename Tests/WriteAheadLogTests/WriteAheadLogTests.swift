import Foundation
import Testing
import WriteAheadLog
import DurableFiles

func walDir() -> String { NSTemporaryDirectory() + "spanledger-wal-" + UUID().uuidString }

func payload(_ i: Int) -> [UInt8] { Array("record-\(i)-".utf8) + [UInt8](repeating: UInt8(i % 251), count: 100 + i) }

func replayed(_ log: WriteAheadLog, from: UInt64 = 0, skip: UInt64? = nil) throws -> [(UInt64, [UInt8])] {
    var out: [(UInt64, [UInt8])] = []
    try log.replay(from: from, skip: skip) { out.append(($0, Array($1))) }
    return out
}

func segmentFiles(_ dir: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(".log") }.sorted()
}

@Test func appendedRecordsReplayInOrderAfterReopen() async throws {
    let dir = walDir()
    let (log, report) = try WriteAheadLog.open(.init(directory: dir))
    #expect(report.recordsAfterCheckpoint == 0)
    try log.start()
    var seqs: [UInt64] = []
    for i in 0..<20 { seqs.append(try await log.append(payload(i))) }
    #expect(seqs == Array(0..<20))
    log.close()
    let (again, r2) = try WriteAheadLog.open(.init(directory: dir))
    #expect(r2.recordsAfterCheckpoint == 20 && r2.corruptRecords == 0 && r2.tornBytesTruncated == 0)
    let records = try replayed(again)
    #expect(records.map(\.0) == seqs)
    #expect(records.map(\.1) == (0..<20).map(payload))
    #expect(again.upcomingSequence == 20)
}

@Test func concurrentAppendsShareFsyncsAndGetDistinctSequences() async throws {
    let (log, _) = try WriteAheadLog.open(.init(directory: walDir()))
    try log.start()
    let seqs = try await withThrowingTaskGroup(of: UInt64.self) { g in
        for i in 0..<200 { g.addTask { try await log.append(payload(i)) } }
        var all: [UInt64] = []
        for try await s in g { all.append(s) }
        return all
    }
    #expect(Set(seqs).count == 200 && seqs.max() == 199)
    let m = log.metrics
    #expect(m.recordsWritten == 200)
    #expect(m.fsyncs >= 1 && m.fsyncs <= 200, "group commit: one fsync covers every record waiting")
    log.close()
}

@Test func tornTailIsTruncatedAndEarlierRecordsSurvive() async throws {
    let dir = walDir()
    let (log, _) = try WriteAheadLog.open(.init(directory: dir))
    try log.start()
    for i in 0..<5 { _ = try await log.append(payload(i)) }
    log.close()
    let path = dir + "/" + segmentFiles(dir).last!
    let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
    let handle = FileHandle(forWritingAtPath: path)!
    try handle.truncate(atOffset: UInt64(size - 7))
    try handle.close()
    let (again, report) = try WriteAheadLog.open(.init(directory: dir))
    #expect(report.tornBytesTruncated > 0)
    #expect(try replayed(again).map(\.0) == [0, 1, 2, 3])
    // The log keeps working after the repair.
    try again.start()
    #expect(try await again.append(payload(9)) == 4)
    again.close()
    let (third, r3) = try WriteAheadLog.open(.init(directory: dir))
    #expect(r3.tornBytesTruncated == 0)
    #expect(try replayed(third).map(\.0) == [0, 1, 2, 3, 4])
}

@Test func corruptRecordInTheMiddleIsSkippedAndCounted() async throws {
    let dir = walDir()
    let (log, _) = try WriteAheadLog.open(.init(directory: dir))
    try log.start()
    for i in 0..<5 { _ = try await log.append(payload(i)) }
    log.close()
    let path = dir + "/" + segmentFiles(dir).last!
    var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    // Record 2's payload starts after two whole records and its own 22-byte header.
    let offset = (22 + payload(0).count) + (22 + payload(1).count) + 22 + 10
    bytes[offset] ^= 0x40
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    let (again, report) = try WriteAheadLog.open(.init(directory: dir))
    #expect(report.corruptRecords == 1)
    #expect(try replayed(again).map(\.0) == [0, 1, 3, 4])
}

/// A started log of ten records in segments of about three records each.
func tenRecordsInSmallSegments() async throws -> (WriteAheadLog, WriteAheadLog.Configuration, String) {
    let dir = walDir()
    var config = WriteAheadLog.Configuration(directory: dir)
    config.segmentBytes = 300
    let (log, _) = try WriteAheadLog.open(config)
    try log.start()
    for i in 0..<10 { _ = try await log.append(payload(i)) }
    return (log, config, dir)
}

@Test func checkpointDropsSegmentsBelowItAndReplayStartsThere() async throws {
    let (log, config, dir) = try await tenRecordsInSmallSegments()
    #expect(segmentFiles(dir).count > 3)
    try log.checkpoint(WALCheckpoint(walSequence: 8, flushSequence: 1))
    log.close()
    let (again, report) = try WriteAheadLog.open(config)
    #expect(report.checkpoint == WALCheckpoint(walSequence: 8, flushSequence: 1))
    #expect(segmentFiles(dir).count <= 3)
    #expect(try replayed(again, from: 8).map(\.0) == [8, 9])
}

@Test func checkpointsTakenOffTheActorNeverMoveBack() async throws {
    // Flushes checkpoint from a task of their own; a slower, older one finishing second
    // must not move the checkpoint back below segments a newer one already dropped.
    let (log, config, _) = try await tenRecordsInSmallSegments()
    try log.checkpoint(WALCheckpoint(walSequence: 8, flushSequence: 2))
    try log.checkpoint(WALCheckpoint(walSequence: 5, flushSequence: 1))
    log.close()
    let (again, report) = try WriteAheadLog.open(config)
    #expect(report.checkpoint == WALCheckpoint(walSequence: 8, flushSequence: 2))
    #expect(try replayed(again, from: report.checkpoint.walSequence).map(\.0) == [8, 9])
}

@Test func aRecordThatCrashedReplayIsQuarantinedAtTheNextStart() async throws {
    let dir = walDir()
    let (log, _) = try WriteAheadLog.open(.init(directory: dir))
    try log.start()
    for i in 0..<3 { _ = try await log.append(payload(i)) }
    log.close()
    // A replay that dies once on record 1 (it may have been killed from outside) keeps it.
    try Data("1 1\n".utf8).write(to: URL(fileURLWithPath: dir + "/replaying"))
    let (once, onceReport) = try WriteAheadLog.open(.init(directory: dir))
    #expect(onceReport.quarantined == nil)
    // Replay dies on it again: the marker now counts two attempts.
    struct Crash: Error {}
    var markerWhenDying = ""
    #expect(throws: Crash.self) {
        try once.replay(from: 0, skip: nil) { seq, _ in
            if seq == 1 {
                markerWhenDying = (try? String(contentsOfFile: dir + "/replaying", encoding: .utf8)) ?? ""
                throw Crash()
            }
        }
    }
    #expect(markerWhenDying == "1 2\n")
    // The process dies there, leaving that marker behind.
    try Data(markerWhenDying.utf8).write(to: URL(fileURLWithPath: dir + "/replaying"))
    let (again, report) = try WriteAheadLog.open(.init(directory: dir))
    #expect(report.quarantined == 1)
    #expect(FileManager.default.fileExists(atPath: dir + "/quarantine/record-1.bin"))
    #expect(try replayed(again, skip: report.quarantined).map(\.0) == [0, 2])
}

@Test func batchAndNoneDurabilityStillAcknowledgeInOrder() async throws {
    for mode in [Durability.batch(intervalNano: 5_000_000), .none] {
        var config = WriteAheadLog.Configuration(directory: walDir())
        config.durability = mode
        let (log, _) = try WriteAheadLog.open(config)
        try log.start()
        for i in 0..<10 { #expect(try await log.append(payload(i)) == UInt64(i)) }
        log.close()
        let (again, _) = try WriteAheadLog.open(config)
        #expect(try replayed(again).count == 10)
    }
}

@Test func segmentsFilledWithoutFsyncRotateAndKeepEveryRecord() async throws {
    // Under batch and none a full segment is synced and closed off the append path.
    for mode in [Durability.batch(intervalNano: 1_000_000_000), .none] {
        let dir = walDir()
        var config = WriteAheadLog.Configuration(directory: dir)
        config.durability = mode
        config.segmentBytes = 300
        let (log, _) = try WriteAheadLog.open(config)
        try log.start()
        for i in 0..<12 { #expect(try await log.append(payload(i)) == UInt64(i)) }
        #expect(segmentFiles(dir).count >= 4)
        log.close()
        let (again, report) = try WriteAheadLog.open(config)
        #expect(report.corruptRecords == 0 && report.tornBytesTruncated == 0)
        let records = try replayed(again)
        #expect(records.map(\.0) == Array(0..<12))
        #expect(records.map(\.1) == (0..<12).map(payload))
    }
}

@Test func aLargeSegmentBelowTheCheckpointIsRemovedWhole() async throws {
    // Segments past 4 MiB are cut down in steps before they are unlinked.
    let dir = walDir()
    var config = WriteAheadLog.Configuration(directory: dir)
    config.segmentBytes = 9 << 20
    let (log, _) = try WriteAheadLog.open(config)
    try log.start()
    let big = [UInt8](repeating: 7, count: 1 << 20)
    for _ in 0..<12 { _ = try await log.append(big) }
    let before = segmentFiles(dir)
    #expect(before.count == 2)
    try log.checkpoint(WALCheckpoint(walSequence: 11, flushSequence: 1))
    #expect(segmentFiles(dir) == [before[1]])
    let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".tmp") }
    #expect(leftovers.isEmpty)
    log.close()
    let (again, report) = try WriteAheadLog.open(config)
    #expect(report.corruptRecords == 0 && report.removedTemporaryFiles == 0)
    #expect(try replayed(again, from: 11).map(\.0) == [11])
}

@Test func aRemovalCutShortByACrashIsNotReadAsDamage() async throws {
    // A removal renames the segment to a temporary name before cutting it down: a crash
    // halfway leaves a shortened `.tmp` file, which the next open deletes.
    let (log, config, dir) = try await tenRecordsInSmallSegments()
    log.close()
    let first = dir + "/" + segmentFiles(dir)[0]
    try FileManager.default.moveItem(atPath: first, toPath: first + ".tmp")
    let handle = FileHandle(forWritingAtPath: first + ".tmp")!
    try handle.truncate(atOffset: 50)
    try handle.close()
    let (again, report) = try WriteAheadLog.open(config)
    #expect(report.removedTemporaryFiles == 1 && report.corruptRecords == 0 && report.tornBytesTruncated == 0)
    #expect(!FileManager.default.fileExists(atPath: first + ".tmp"))
    #expect(try replayed(again).map(\.0).last == 9)
}

// MARK: Preallocated segments

func preallocatedConfig(_ dir: String, segmentBytes: Int = 64 << 10) -> WriteAheadLog.Configuration {
    var config = WriteAheadLog.Configuration(directory: dir)
    config.preallocate = true
    config.segmentBytes = segmentBytes
    return config
}

func fileSize(_ path: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? -1 }

/// Waits (bounded) until the log has a zero-filled spare to move into. The filler's
/// writes and sync compete with the other suites' disk work, once for over 5 s.
func waitForSpare(_ log: WriteAheadLog) async throws {
    for _ in 0..<3000 where !log.spareReady { try await Task.sleep(for: .milliseconds(10)) }
    #expect(log.spareReady, "no spare segment within 30 s")
}

/// A directory on a file system on disk: preallocation is off on tmpfs, which TMPDIR may be.
func diskWALDir() -> String {
    let dir = walDir()
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    if FileIO.isMemoryBacked(dir) { return FileManager.default.currentDirectoryPath + "/.build/test-wal-" + UUID().uuidString }
    return dir
}

@Test func recordsGoIntoZeroFilledSegmentsWhoseZerosReadAsTheEnd() async throws {
    let dir = diskWALDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let config = preallocatedConfig(dir)
    let (log, _) = try WriteAheadLog.open(config)
    try log.start()
    #expect(try await log.append(payload(0)) == 0)
    // The log starts in a file it grows and moves into the spare once one is ready: at the
    // next append, or already at this one when the fill (a few ms) finished first, which
    // left no spare to wait for until the segment is half full.
    if log.metrics.preallocatedSegments == 0 { try await waitForSpare(log) }
    // The next append moves the log into the spare (or stays in it); 1.1 KB records fill
    // 64 KiB segments.
    let big = { (i: Int) in payload(i) + [UInt8](repeating: 3, count: 1000) }
    #expect(try await log.append(big(1)) == 1)
    #expect(log.metrics.preallocatedSegments == 1)
    #expect(!FileManager.default.fileExists(atPath: dir + "/wal-spare"), "the next spare is not filled before the segment is half full")
    // Past half a segment the next spare is filled; the test waits for it there, so every
    // move finds one ready. It stops with the last segment past half and room left.
    var expected = [payload(0), big(1)]
    func fill() -> Int64 { log.metrics.segmentBytes }
    let half = Int64(config.segmentBytes / 2)
    while expected.count < 150 || fill() < half || fill() > Int64(config.segmentBytes - 4096) {
        if fill() >= half { try await waitForSpare(log) }
        #expect(try await log.append(big(expected.count)) == UInt64(expected.count))
        expected.append(big(expected.count))
    }
    try await waitForSpare(log)
    let m = log.metrics
    #expect(m.preallocatedSegments >= 2 && m.preallocationFailures == 0)
    let segments = segmentFiles(dir)
    // Every segment but the first (the log's start, a file it grows unless the spare was
    // ready first) is the preallocated size: no record ran past the zeros.
    #expect(segments.count >= 3)
    for name in segments.dropFirst() { #expect(fileSize(dir + "/" + name) == config.segmentBytes, "\(name)") }
    #expect(FileManager.default.fileExists(atPath: dir + "/wal-spare"))
    log.close()
    #expect(!FileManager.default.fileExists(atPath: dir + "/wal-spare"), "close removes the unused spare")

    let (again, report) = try WriteAheadLog.open(config)
    #expect(report.corruptRecords == 0 && report.tornBytesTruncated == 0 && report.removedTemporaryFiles == 0)
    #expect(try replayed(again).map(\.1) == expected)
    // Appends continue after the last record, inside the last segment's zeros.
    let last = dir + "/" + segments.last!
    try again.start()
    #expect(try await again.append(payload(500)) == UInt64(expected.count))
    again.close()
    #expect(fileSize(last) == config.segmentBytes && segmentFiles(dir) == segments)
    let (third, r3) = try WriteAheadLog.open(config)
    #expect(r3.corruptRecords == 0 && r3.tornBytesTruncated == 0)
    #expect(try replayed(third).map(\.1) == expected + [payload(500)])
}

/// Records 0-3 written into a preallocated segment (the log closed); the segment's path.
func fourRecordsInAPreallocatedSegment(_ config: WriteAheadLog.Configuration) async throws -> String {
    let (log, _) = try WriteAheadLog.open(config)
    try log.start()
    try await waitForSpare(log)
    for i in 0..<4 { _ = try await log.append(payload(i)) }
    #expect(log.metrics.preallocatedSegments == 1)
    log.close()
    return config.directory + "/" + segmentFiles(config.directory).last!
}

@Test func aTornRecordInAPreallocatedSegmentIsClearedAndItsPlaceReused() async throws {
    let dir = diskWALDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let config = preallocatedConfig(dir)
    let path = try await fourRecordsInAPreallocatedSegment(config)
    // A crash mid-write: the last record's header and the first part of its payload
    // reached the disk, the rest of its extent is still zeros.
    let extents = (0..<4).map { WALRecordFrame.headerSize + payload($0).count }
    let lastStart = extents.dropLast().reduce(0, +)
    let handle = FileHandle(forWritingAtPath: path)!
    try handle.seek(toOffset: UInt64(lastStart + WALRecordFrame.headerSize + 20))
    try handle.write(contentsOf: [UInt8](repeating: 0, count: extents[3] - WALRecordFrame.headerSize - 20))
    try handle.close()

    let (again, report) = try WriteAheadLog.open(config)
    #expect(report.tornBytesTruncated == extents[3] && report.corruptRecords == 0)
    #expect(fileSize(path) == config.segmentBytes, "the segment stays preallocated")
    #expect(try replayed(again).map(\.0) == [0, 1, 2])
    try again.start()
    // The torn record was never acknowledged: its sequence and its place are reused.
    #expect(try await again.append(payload(77)) == 3)
    again.close()
    let (third, r3) = try WriteAheadLog.open(config)
    #expect(r3.tornBytesTruncated == 0 && r3.corruptRecords == 0)
    #expect(try replayed(third).map(\.1) == [payload(0), payload(1), payload(2), payload(77)])
}

@Test func aDamagedRecordBeforeOthersIsStillSkippedAndCountedInAPreallocatedSegment() async throws {
    let dir = diskWALDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let config = preallocatedConfig(dir)
    let path = try await fourRecordsInAPreallocatedSegment(config)
    let handle = FileHandle(forUpdatingAtPath: path)!
    let at = UInt64(WALRecordFrame.headerSize + payload(0).count + WALRecordFrame.headerSize + 5)
    try handle.seek(toOffset: at)
    let byte = try handle.read(upToCount: 1)![0]
    try handle.seek(toOffset: at)
    try handle.write(contentsOf: [byte ^ 0x40])
    try handle.close()
    let (again, report) = try WriteAheadLog.open(config)
    #expect(report.corruptRecords == 1 && report.tornBytesTruncated == 0)
    #expect(try replayed(again).map(\.0) == [0, 2, 3])
}

@Test func zerosWhereAHeaderWouldBeEndTheSegment() {
    var bytes: [UInt8] = []
    WALRecordFrame.encode(sequence: 4, payload: payload(1), into: &bytes)
    let size = bytes.count
    bytes += [UInt8](repeating: 0, count: 100)
    guard case .record(4, _, size) = WALRecordFrame.parse(bytes, at: 0) else { Issue.record("first record not read"); return }
    guard case .end = WALRecordFrame.parse(bytes, at: size) else { Issue.record("zeros not read as the end"); return }
    // Fewer zeros than a header, at the end of a file, are the end too; other short tails are not.
    guard case .end = WALRecordFrame.parse(bytes, at: bytes.count - 5) else { Issue.record("short zeros"); return }
    guard case .truncated = WALRecordFrame.parse(Array(bytes[0..<10]), at: 0) else { Issue.record("a cut header is not truncated"); return }
}

@Test func aRecordHoldingMiBsOfZerosStillReadsWholeFromAPreallocatedSegment() async throws {
    // Opening reads a preallocated segment only up to its first whole MiB of zeros; a
    // record with that many zeros inside must not be taken for the end (nor cut as torn).
    let dir = diskWALDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let config = preallocatedConfig(dir, segmentBytes: 8 << 20)
    let (log, _) = try WriteAheadLog.open(config)
    try log.start()
    try await waitForSpare(log)
    let zeros = payload(1) + [UInt8](repeating: 0, count: 3 << 20) + payload(2)
    let records = [payload(0), zeros, payload(3)]
    for r in records { _ = try await log.append(r) }
    log.close()
    #expect(fileSize(dir + "/" + segmentFiles(dir).last!) == config.segmentBytes)
    let (again, report) = try WriteAheadLog.open(config)
    #expect(report.tornBytesTruncated == 0 && report.corruptRecords == 0)
    #expect(try replayed(again).map(\.1) == records)
    #expect(again.upcomingSequence == 3)
}

@Test func aDamagedHeaderAfterTheRecordsCutsThePreallocatedTailAndCountsAllOfIt() async throws {
    // The start reads only a MiB into the zeros, yet the bytes reported cut are the file's.
    let dir = diskWALDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let config = preallocatedConfig(dir, segmentBytes: 4 << 20)
    let path = try await fourRecordsInAPreallocatedSegment(config)
    let end = (0..<4).reduce(0) { $0 + WALRecordFrame.headerSize + payload($1).count }
    let handle = FileHandle(forWritingAtPath: path)!
    try handle.seek(toOffset: UInt64(end))
    try handle.write(contentsOf: [UInt8](repeating: 0xA5, count: 10))
    try handle.close()
    let (again, report) = try WriteAheadLog.open(config)
    #expect(report.tornBytesTruncated == config.segmentBytes - end && report.corruptRecords == 0)
    #expect(fileSize(path) == end)
    #expect(try replayed(again).map(\.0) == [0, 1, 2, 3])
}

/// The spare is written with direct I/O where the size allows, and buffered where it does
/// not (a size that is no multiple of the disk's block): either way it is the segment's
/// size in zeros, and records written into it replay.
@Test(arguments: [64 << 10, (64 << 10) + 100])
func aSpareIsTheSegmentSizeInZerosWhetherWrittenDirectOrBuffered(segmentBytes: Int) async throws {
    let dir = diskWALDir()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let config = preallocatedConfig(dir, segmentBytes: segmentBytes)
    let (log, _) = try WriteAheadLog.open(config)
    try log.start()
    try await waitForSpare(log)
    let spare = try #require(FileManager.default.contents(atPath: dir + "/wal-spare"))
    #expect(spare.count == segmentBytes)
    #expect(spare.allSatisfy { $0 == 0 })
    #expect(log.metrics.preallocationFailures == 0)
    #expect(try await log.append(payload(0)) == 0)
    #expect(log.metrics.preallocatedSegments == 1)
    #expect(try await log.append(payload(1)) == 1)
    log.close()
    let (again, report) = try WriteAheadLog.open(config)
    #expect(report.corruptRecords == 0 && report.tornBytesTruncated == 0)
    #expect(try replayed(again).map(\.1) == [payload(0), payload(1)])
}
