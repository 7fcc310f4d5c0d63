import LedgerCore
import LedgerStore
import Rollups

extension Ledger {
    /// Compacts the rollups on disk through the last committed flush (README "Data
    /// directory"), then ages the in-memory table by the same policy: queries of old
    /// windows read hour and day buckets, and totals stay the same.
    public func compact() async throws -> DataDirectory.CompactionResult? {
        let through = lastCommittedFlush
        guard through > 0 else { return nil }
        let directory = self.directory
        let policy = configuration.compaction
        let now = wallNow() / 1_000_000_000
        let result = try await Self.runCompaction(directory, through: through, policy: policy, nowUnix: now)
        let before = table.count
        let (aged, dropped) = table.compacted(policy, nowUnix: now)
        table = aged
        stats.compactions += 1
        stats.compactedRecordsDropped += Int64(dropped)
        logger.info("rollups compacted", metadata: [
            "through_flush": "\(result.through)", "segments_replaced": "\(result.segmentsReplaced)",
            "records_on_disk": "\(result.recordsBefore) -> \(result.recordsAfter)", "expired": "\(result.recordsDropped)",
            "bytes_on_disk": "\(result.bytesBefore) -> \(result.bytesAfter)", "records_in_memory": "\(before) -> \(table.count)",
        ])
        expireRuns(nowUnixNano: wallNow())
        return result
    }

    /// A merge of small flushes' run files is running.
    public var isMergingRunSegments: Bool { mergingRunSegments }

    /// Merges runs of small flushes' index and run-tree files into one pair each
    /// (`RunSegmentMergePlan`, README "Data directory"), flushes compaction covers only;
    /// at most `maxBatches` pairs a call, stopping early when its task is cancelled (the
    /// service runs it after each compaction in a task of its own: a data directory with a
    /// long history of small flushes takes several rounds, and the clock must not wait).
    /// The files are written off the actor; the renames and the trace locator's update
    /// happen in one actor turn, so a lookup sees the flushes' files or the merged pair.
    public func mergeRunSegments(maxBatches: Int = 64) async {
        guard !mergingRunSegments else { return }
        mergingRunSegments = true
        defer { mergingRunSegments = false }
        let through = min(directory.compactSequences().last ?? 0, lastCommittedFlush)
        let batches = RunSegmentMergePlan.batches(locator.segments, through: through, maxRuns: configuration.maxRunsPerMergedSegment)
        for batch in batches.prefix(maxBatches) {
            guard !Task.isCancelled else { return }
            let directory = self.directory
            let now = wallNow() / 1_000_000
            do {
                let merged = try await Self.writeMerged(batch, in: directory, nowUnixMs: now)
                guard batch.allSatisfy({ locator.contains(sequence: $0) }) else {
                    directory.recoverRunSegmentMerge() // expired meanwhile: drop the merged files
                    continue
                }
                try directory.commitMerged(merged)
                locator.merge(sequences: batch, ids: merged.traceIDs, taskKeys: merged.taskKeys, newestStartUnixNano: merged.newestStartUnixNano)
                stats.runSegmentsMerged += Int64(batch.count)
                stats.mergedRunSegmentsWritten += 1
                logger.info("run trees and index entries of small flushes merged", metadata: [
                    "flushes": "\(batch.first ?? 0)-\(merged.key) (\(batch.count))", "index_entries": "\(merged.indexEntries)",
                    "tree_records": "\(merged.treeRecords)", "bytes_on_disk": "\(merged.bytesBefore) -> \(merged.bytesAfter)",
                ])
            } catch {
                directory.recoverRunSegmentMerge()
                stats.runSegmentMergeFailures += 1
                logger.error("merging flushes' run files failed; they stay as they are", metadata: ["error": "\(error)"])
                return
            }
        }
    }

    nonisolated static func writeMerged(_ batch: [UInt64], in directory: DataDirectory, nowUnixMs: Int64) async throws -> MergedRunSegments {
        try await BlockingThread.run(name: "spanledger-merge") { try directory.writeMerged(batch, nowUnixMs: nowUnixMs) }
    }

    /// Trace retention: removes the run trees and index entries of flushes whose runs all
    /// started before `--trace-retention`, once compacted rollups cover those flushes (the
    /// runs stay counted in the rollups), and lets their entries leave memory. Flushes that
    /// wrote no run go as soon as they are covered.
    func expireRuns(nowUnixNano: Int64) {
        let cutoff = nowUnixNano - configuration.traceRetentionNano
        let compacted = directory.compactSequences().last ?? 0
        var candidates = locator.sequences(allStartedBefore: cutoff)
        for seq in directory.sequences(.traceDetail) where seq <= compacted && seq < lastCommittedFlush && !locator.contains(sequence: seq) {
            if directory.flushHoldsNoRuns(seq) { candidates.append(seq) }
        }
        let removed = directory.expireRunSegments(candidates.sorted())
        stats.taskRunsExpired += Int64(tasks.prune(startedBefore: cutoff))
        guard !removed.isEmpty else { return }
        locator.remove(sequences: Set(removed))
        stats.runSegmentsExpired += Int64(removed.count)
        if flushesInProgress == 0 { evictOldRuns(startedBefore: cutoff) }
        logger.info("run trees and index entries past trace retention removed", metadata: [
            "flushes": "\(removed.count)", "started_before": "\(RFC3339.format(unixNano: cutoff))",
        ])
    }

    public func noteCompactionFailure() { stats.compactionFailures += 1 }

    /// Fills the query cache with the partial aggregates of every whole day for the
    /// common query shapes (what the dashboard and `top` ask), off the actor, so the
    /// first long-window query after a start is as fast as the next ones.
    public func warmQueryCache() async {
        let snapshot = table
        let cache = queryCache
        guard let first = snapshot.days.keys.min() else { return }
        let now = wallNow()
        let started = monotonicNow()
        for groupBy: [GroupDimension] in [[.workflow], [], [.model], [.outcome], [.workflow, .outcome], [.workflow, .model]] {
            let q = RollupQuery(fromUnixNano: first * 1_000_000_000, toUnixNano: now, groupBy: groupBy)
            _ = await Self.answer(q, snapshot, cache: cache)
        }
        stats.queryCacheWarmSeconds = Double(monotonicNow() - started) / 1e9
        logger.info("query cache warmed", metadata: ["days": "\(snapshot.days.count)", "records": "\(snapshot.count)",
                                                     "seconds": "\(Double(monotonicNow() - started) / 1e9)"])
    }

    nonisolated static func runCompaction(_ directory: DataDirectory, through: UInt64, policy: CompactionPolicy, nowUnix: Int64) async throws
        -> DataDirectory.CompactionResult {
        try directory.compact(through: through, policy: policy, nowUnix: nowUnix)
    }
}
