import Foundation
import Testing
import WriteAheadLog

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
