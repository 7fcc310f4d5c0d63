import DurableFiles
import LedgerCore
import Logging
import NIOCore
import DequeModule
import ServiceLifecycle
import Synchronization
import TraceAssembly

/// Runs the ledger's clock: releases traces as they fall due (every 10 ms at most, every
/// tick at least) and flushes on the flush interval. On graceful shutdown (after the receivers have stopped) it releases every
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
    /// Above this share of the cores used in about the last second, by the daemon or by the
    /// whole machine, flushes run at normal priority (at half of maximum throughput the
    /// daemon uses about 55%).
    static let idleFlushMaxCPUShare = 0.75

    public init(ledger: Ledger, logger: Logger) {
        self.ledger = ledger
        self.logger = logger
    }

    /// Chunks attributed at once while release lags (`parallelReleaseLagNano`): enough
    /// that both cores have one to work on whenever the actor is busy recording another
    /// or taking in requests.
    static let laggingPipelineDepth = 4

    /// Releases due traces in chunks: taken out of assembly on the actor, attributed in
    /// tasks of their own (off the actor, so requests keep both cores busy meanwhile),
    /// recorded on it in the order they were taken. Pipelined: while one chunk is
    /// recorded, the next are attributed.
    ///
    /// One chunk attributed at a time, unless release lags (`parallelReleaseLagNano`) or
    /// no request is arriving (`quietIngestNano`): then `laggingPipelineDepth`. A round of a tick's due traces attributed on both
    /// cores at once held every request arriving meanwhile, and at half load that was the
    /// ack latency's tail. With one round waiting for two chunks at a time before it took
    /// the next, a backlog drained at 1.3-1.5 cores: each wait for the slower of the two
    /// left a core idle.
    ///
    /// The first fill ignores the budget; after it no chunk is taken past `budget`, and
    /// the round returns once those taken are recorded, true when traces are still due:
    /// under sustained overload, when traces are always due, the clock still gets to flush.
    func releaseDue(budget: Duration = .seconds(3600)) async -> Bool {
        let deadline = ContinuousClock.now + budget
        var inFlight = Deque<Task<Ledger.PreparedChunk, Never>>()
        var more = true
        var firstFill = true
        func fill() async {
            let depth = depth() // as release lagged before this fill (a take updates the lag)
            while more && inFlight.count < depth && (firstFill || ContinuousClock.now < deadline) {
                let (toAttribute, released) = await ledger.takeDue(limit: Self.releaseChunk)
                more = released == Self.releaseChunk
                if !toAttribute.isEmpty { inFlight.append(Task { [ledger] in ledger.prepare(chunk: toAttribute) }) }
            }
            firstFill = false
        }
        while true {
            await fill()
            guard let next = inFlight.popFirst() else { break }
            let chunk = await next.value
            // Topped up before recording: the cores attribute the next chunks meanwhile.
            await fill()
            await ledger.commit(chunk)
        }
        return more
    }

    /// Moves an idle flush still running to normal priority before the clock waits for it:
    /// a flush not done when the next is due fell behind, and what waits for it (release,
    /// through it ingest, or shutdown) should not wait on idle CPU time. Where the process
    /// may not raise a thread's priority (no CAP_SYS_NICE, RLIMIT_NICE 0) the flush's
    /// writes not yet begun move to a normal-priority thread instead; logged once if even
    /// that is not possible.
    func promote(_ priority: IdlePriority?) async {
        switch priority?.promote() {
        case .promoted, .atNextStep: await ledger.notePromotedFlush()
        case .notPermitted:
            if !Self.promotionRefusalLogged.exchange(true, ordering: .relaxed) {
                logger.warning("an idle-priority flush fell behind and this process may not raise its priority (CAP_SYS_NICE or RLIMIT_NICE); it finishes on idle CPU time")
            }
        case .notRunning, nil: break
        }
    }

    static let promotionRefusalLogged = Atomic<Bool>(false)

    /// No batch for this long means no request waits on the cores (50 ms).
    static let quietIngestNano: UInt64 = 50_000_000

    /// Chunks to attribute at once: `laggingPipelineDepth` while release lags, or while no
    /// request is arriving (after a burst, the backlog left drained at one chunk at a time,
    /// 1.2-1.5 cores); one otherwise, for the latency of requests arriving meanwhile.
    func depth() -> Int {
        ledger.backlog.lagNano > Self.parallelReleaseLagNano || ledger.backlog.sinceLastBatchNano > Self.quietIngestNano
            ? Self.laggingPipelineDepth : 1
    }

    public func run() async throws {
        let tick = Duration.nanoseconds(Int64(ledger.configuration.tickIntervalNano))
        let flushEvery = Duration.nanoseconds(Int64(ledger.configuration.flushIntervalNano))
        let compactEvery = ledger.configuration.compactionIntervalNano
        let clock = ContinuousClock()
        var lastFlush = clock.now, lastCompaction = clock.now
        var flushing: Task<Bool, Never>?
        /// The last flush's idle scheduling, while it may still run (nil for one at normal priority).
        var flushPriority: IdlePriority?
        var merging: Task<Void, Never>?
        var lastFlushFailed = false
        var moreDue = false
        var cpu = ProcessCPUShare()
        var machine = MachineCPUShare()
        let warm = Task.detached { [ledger] in await ledger.warmQueryCache() }
        defer { warm.cancel() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // With a backlog the clock goes straight on; else it sleeps until the next
            // trace falls due (a tick at most). A tick is also the most one release round
            // takes before the flush and compaction timers are looked at.
            if !moreDue { try? await Task.sleep(for: .nanoseconds(Int64(await ledger.nanosUntilNextDue()))) }
            moreDue = await releaseDue(budget: tick)
            cpu.update()
            machine.update()
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
                await promote(flushPriority)
                if let previous = await flushing?.value { lastFlushFailed = !previous }
                if intervalUp || !lastFlushFailed {
                    lastFlush = clock.now
                    // On idle CPU time while the daemon has cores and memory to spare
                    // (requests sent during a flush then wait no longer than others); at
                    // normal priority when it is busy, assembly is half full, or it falls
                    // behind (the last flush was still running, or release lags): there an
                    // idle-priority flush is starved, and what waits for it holds memory.
                    // The machine counts too: other processes keeping the cores busy starve
                    // an idle flush as surely as the daemon's own work, and the next flush,
                    // and with it release, waits for it.
                    let headroom = await ledger.assemblyHasHeadroom
                    let idle = headroom && cpu.recent < Self.idleFlushMaxCPUShare && (machine.recent ?? 0) < Self.idleFlushMaxCPUShare
                        && clock.now - waitStart < Self.flushFellBehind && ledger.backlog.lagNano <= Self.parallelReleaseLagNano
                    let priority = idle ? IdlePriority() : nil
                    flushPriority = priority
                    flushing = Task { [ledger] in (try? await ledger.flush(idle: priority)) != nil }
                }
            }
            if compactEvery > 0 && clock.now - lastCompaction >= .nanoseconds(Int64(compactEvery)) {
                lastCompaction = clock.now
                await promote(flushPriority)
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
        await promote(flushPriority) // shutdown does not wait on idle time
        _ = await flushing?.value
        merging?.cancel() // finishes the pair being written, if any
        _ = await merging?.value
        ledger.backlog.open() // nothing releases on the clock from here on
        logger.info("releasing pending traces and flushing before exit")
        try await ledger.drain()
    }
}

/// A share (0...1) as it stood lately: each sample moves `recent` toward the share measured
/// since the previous one by the time passed over `window`, so `recent` follows about the
/// last second (idle time before a burst of load does not hide the burst).
struct RecentShare {
    static let window = 1.0
    /// 0 until the first sample, which is taken whole.
    private(set) var recent = 0.0
    private var measured = false

    mutating func add(_ share: Double, over seconds: Double) {
        recent = measured ? recent + (share - recent) * min(1, seconds / Self.window) : share
        measured = true
    }
}

/// The share of the machine's cores the process used lately, updated every clock round
/// (a few a second).
struct ProcessCPUShare {
    private var lastCPU = WallClock.processCPUSeconds()
    private var lastWall = ContinuousClock.now
    /// Cores the process may use: a cgroup CPU quota or cpuset counts (a container given two
    /// CPUs of a large host is busy at two), not every online CPU.
    static let cores = Double(max(1, System.coreCount))
    private var share = RecentShare()
    var recent: Double { share.recent }

    mutating func update() {
        let (cpu, wall) = (WallClock.processCPUSeconds(), ContinuousClock.now)
        let seconds = (wall - lastWall) / .seconds(1)
        guard seconds > 0 else { return }
        share.add((cpu - lastCPU) / seconds / Self.cores, over: seconds)
        (lastCPU, lastWall) = (cpu, wall)
    }
}

/// How busy the machine's CPUs were lately, every process counted: the time not idle (nor
/// waiting on I/O) over all time, from the first line of /proc/stat, followed as
/// `ProcessCPUShare` is. nil where /proc/stat cannot be read. On a shared host (or with
/// another tenant on the cores) the daemon's own share can be low while nothing is idle.
struct MachineCPUShare {
    private var last: (busy: UInt64, total: UInt64)?
    private var lastWall = ContinuousClock.now
    private var share = RecentShare()
    /// /proc/stat is read at most this often: with a backlog the clock's rounds follow each
    /// other directly, and a one-second average needs no more samples than this.
    static let minimumInterval = Duration.milliseconds(100)

    init() { last = Self.read() }

    var recent: Double? { last == nil ? nil : share.recent }

    mutating func update() {
        let wall = ContinuousClock.now
        guard wall - lastWall >= Self.minimumInterval, let now = Self.read() else { return }
        defer { (last, lastWall) = (now, wall) }
        guard let before = last, now.total > before.total, now.busy >= before.busy else { return }
        let seconds = (wall - lastWall) / .seconds(1)
        share.add(min(1, Double(now.busy - before.busy) / Double(now.total - before.total)), over: seconds)
    }

    /// (busy, total) clock ticks of all CPUs since boot: `cpu  user nice system idle iowait
    /// irq softirq steal …` (guest time is already inside user and nice).
    static func read(path: String = "/proc/stat") -> (busy: UInt64, total: UInt64)? {
        guard let bytes = try? FileIO.readAll(path) else { return nil }
        return parse(bytes[...])
    }

    static func parse(_ bytes: ArraySlice<UInt8>) -> (busy: UInt64, total: UInt64)? {
        let line = bytes.prefix { $0 != UInt8(ascii: "\n") }.split(separator: UInt8(ascii: " "))
        guard line.first.map({ Array($0) }) == Array("cpu".utf8), line.count >= 5 else { return nil }
        let fields = line.dropFirst().prefix(8).compactMap { UInt64(String(decoding: $0, as: UTF8.self)) }
        guard fields.count >= 4 else { return nil }
        let total = fields.reduce(0, +)
        let idle = fields[3] + (fields.count > 4 ? fields[4] : 0)
        return (total - idle, total)
    }
}
