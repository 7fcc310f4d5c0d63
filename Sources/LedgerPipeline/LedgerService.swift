import LedgerCore
import Logging
import NIOCore
import ServiceLifecycle
import TraceAssembly

/// Runs the ledger's clock: releases due traces every tick and flushes on the flush
/// interval. On graceful shutdown (after the receivers have stopped) it releases every
/// pending trace and writes the last flush.
public struct LedgerService: Service {
    let ledger: Ledger
    let logger: Logger

    /// Traces attributed per actor turn when many are due at once. Recording 512 runs held
    /// the actor 4-10 ms, and every export waiting on it saw that as latency.
    static let releaseChunk = 128
    /// Release lag over which due traces are attributed on both cores (250 ms).
    static let parallelReleaseLagNano: UInt64 = 250_000_000
    /// Waiting this long for the previous flush means flushes fall behind (awaiting a
    /// finished one takes microseconds).
    static let flushFellBehind = Duration.milliseconds(1)
    /// Above this share of the cores used in about the last second, flushes run at normal
    /// priority (at half of maximum throughput the daemon uses about 55%).
    static let idleFlushMaxCPUShare = 0.75

    public init(ledger: Ledger, logger: Logger) {
        self.ledger = ledger
        self.logger = logger
    }

    /// Releases due traces in chunks: taken out of assembly on the actor, attributed here
    /// (off it, so requests keep both cores busy meanwhile), recorded on it. Pipelined:
    /// while the chunks taken last are recorded, the ones taken now are attributed, two
    /// at a time on both cores; a backlog built up under full ingest drains at the rate
    /// of both cores, not of one task alternating between attributing and recording.
    /// Returns after `budget` with traces still due (true), so that under sustained
    /// overload, when traces are always due, the clock still gets to flush.
    ///
    /// Two chunks at a time only while release lags (`parallelReleaseLagNano`): a round of
    /// a tick's due traces attributed on both cores at once held every request arriving
    /// meanwhile, and at half load that was the ack latency's tail. Without a backlog one
    /// chunk is attributed while the last one is recorded, and requests keep a core.
    func releaseDue(budget: Duration = .seconds(3600)) async -> Bool {
        let deadline = ContinuousClock.now + budget
        var ready: [Ledger.PreparedChunk] = []
        var more = false
        while true {
            let take = ledger.backlog.lagNano > Self.parallelReleaseLagNano ? Self.releaseChunk * 2 : Self.releaseChunk
            let (toAttribute, released) = await ledger.takeDue(limit: take)
            async let prepared = Self.prepare(toAttribute, ledger: ledger)
            for chunk in ready { await ledger.commit(chunk) }
            ready = await prepared
            more = released == take
            if !more || ContinuousClock.now >= deadline { break }
        }
        for chunk in ready { await ledger.commit(chunk) }
        return more
    }

    /// Attributes up to two chunks' worth of released traces, the two halves in parallel.
    /// Chunks come back in release order, so they are recorded in that order.
    static func prepare(_ released: [TraceAssembler.Released], ledger: Ledger) async -> [Ledger.PreparedChunk] {
        if released.isEmpty { return [] }
        if released.count <= releaseChunk { return [ledger.prepare(chunk: released)] }
        let mid = released.count / 2
        async let first = ledger.prepare(chunk: Array(released[..<mid]))
        let second = ledger.prepare(chunk: Array(released[mid...]))
        return [await first, second]
    }

    public func run() async throws {
        let tick = Duration.nanoseconds(Int64(ledger.configuration.tickIntervalNano))
        let flushEvery = Duration.nanoseconds(Int64(ledger.configuration.flushIntervalNano))
        let compactEvery = ledger.configuration.compactionIntervalNano
        let clock = ContinuousClock()
        var lastFlush = clock.now, lastCompaction = clock.now
        var flushing: Task<Bool, Never>?
        var merging: Task<Void, Never>?
        var lastFlushFailed = false
        var moreDue = false
        var cpu = ProcessCPUShare()
        let warm = Task.detached { [ledger] in await ledger.warmQueryCache() }
        defer { warm.cancel() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // With a backlog the clock goes straight on; a tick is also the most one
            // release round takes before the flush and compaction timers are looked at.
            if !moreDue { try? await Task.sleep(for: tick) }
            moreDue = await releaseDue(budget: tick)
            cpu.update()
            // Early when many spans of released runs wait, unless the last flush failed:
            // a failing disk is retried on the interval, not on every round.
            let intervalUp = clock.now - lastFlush >= flushEvery
            let unflushed = lastFlushFailed ? 0 : await ledger.unflushedSpans
            if intervalUp || unflushed >= ledger.configuration.maxUnflushedSpans {
                // In its own task: compressing and syncing a flush takes hundreds of ms
                // under load, and releases paused that long came out as one burst that
                // held the actor. One flush at a time: waiting for the last one is also
                // what holds release, and through it ingest, back when flushes fall behind.
                let waitStart = clock.now
                if let previous = await flushing?.value { lastFlushFailed = !previous }
                if intervalUp || !lastFlushFailed {
                    lastFlush = clock.now
                    // On idle CPU time while the daemon has cores and memory to spare
                    // (requests sent during a flush then wait no longer than others); at
                    // normal priority when it is busy, assembly is half full, or it falls
                    // behind (the last flush was still running, or release lags): there an
                    // idle-priority flush is starved, and what waits for it holds memory.
                    let headroom = await ledger.assemblyHasHeadroom
                    let idle = headroom && cpu.recent < Self.idleFlushMaxCPUShare && clock.now - waitStart < Self.flushFellBehind
                        && ledger.backlog.lagNano <= Self.parallelReleaseLagNano
                    flushing = Task { [ledger] in (try? await ledger.flush(idle: idle)) != nil }
                }
            }
            if compactEvery > 0 && clock.now - lastCompaction >= .nanoseconds(Int64(compactEvery)) {
                lastCompaction = clock.now
                if let previous = await flushing?.value { lastFlushFailed = !previous }
                do {
                    _ = try await ledger.compact()
                    // Off the clock: merging small flushes' run files may take a while.
                    if await !ledger.isMergingRunSegments { merging = Task { [ledger] in await ledger.mergeRunSegments() } }
                } catch {
                    await ledger.noteCompactionFailure()
                    logger.error("rollup compaction failed; the segments stay as they are and the next run retries", metadata: ["error": "\(error)"])
                }
            }
        }
        _ = await flushing?.value
        merging?.cancel() // finishes the pair being written, if any
        _ = await merging?.value
        ledger.backlog.open() // nothing releases on the clock from here on
        logger.info("releasing pending traces and flushing before exit")
        try await ledger.drain()
    }
}

/// The share of the machine's cores the process used lately: each `update` (every clock
/// round, a few a second) measures the share since the previous one and moves `recent`
/// toward it by the time passed over `window`, so `recent` follows about the last second
/// (idle time before a burst of load does not hide the burst).
struct ProcessCPUShare {
    private var lastCPU = WallClock.processCPUSeconds()
    private var lastWall = ContinuousClock.now
    /// Cores the process may use: a cgroup CPU quota or cpuset counts (a container given two
    /// CPUs of a large host is busy at two), not every online CPU.
    static let cores = Double(max(1, System.coreCount))
    static let window = 1.0
    /// 0 until the first `update`.
    private(set) var recent = 0.0
    private var measured = false

    mutating func update() {
        let (cpu, wall) = (WallClock.processCPUSeconds(), ContinuousClock.now)
        let seconds = (wall - lastWall) / .seconds(1)
        guard seconds > 0 else { return }
        let share = (cpu - lastCPU) / seconds / Self.cores
        recent = measured ? recent + (share - recent) * min(1, seconds / Self.window) : share
        measured = true
        (lastCPU, lastWall) = (cpu, wall)
    }
}
