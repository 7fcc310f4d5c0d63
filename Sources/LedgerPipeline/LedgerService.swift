import Logging
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

    public init(ledger: Ledger, logger: Logger) {
        self.ledger = ledger
        self.logger = logger
    }

    /// Releases due traces in chunks: taken out of assembly on the actor, attributed here
    /// (off it, so requests keep both cores busy meanwhile), recorded on it. Pipelined:
    /// while the chunks taken last are recorded, the ones taken now are attributed, two
    /// at a time on both cores; a backlog built up under full ingest drains at the rate
    /// of both cores, not of one task alternating between attributing and recording.
    func releaseDue() async {
        let take = Self.releaseChunk * 2
        var ready: [Ledger.PreparedChunk] = []
        while true {
            let (toAttribute, released) = await ledger.takeDue(limit: take)
            async let prepared = Self.prepare(toAttribute, ledger: ledger)
            for chunk in ready { await ledger.commit(chunk) }
            ready = await prepared
            if released < take { break }
        }
        for chunk in ready { await ledger.commit(chunk) }
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
        let tick = ledger.configuration.tickIntervalNano
        let flushEvery = ledger.configuration.flushIntervalNano
        var sinceFlush: UInt64 = 0
        let compactEvery = ledger.configuration.compactionIntervalNano
        var sinceCompaction: UInt64 = 0
        var flushing: Task<Void, Never>?
        let warm = Task.detached { [ledger] in await ledger.warmQueryCache() }
        defer { warm.cancel() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(nanoseconds: tick)
            await releaseDue()
            sinceFlush += tick
            sinceCompaction += tick
            if sinceFlush >= flushEvery {
                sinceFlush = 0
                // In its own task: compressing and syncing a flush takes hundreds of ms
                // under load, and releases paused that long came out as one burst that
                // held the actor. One flush at a time.
                await flushing?.value
                flushing = Task { [ledger] in try? await ledger.flush() }
            }
            if compactEvery > 0 && sinceCompaction >= compactEvery {
                sinceCompaction = 0
                await flushing?.value
                do {
                    _ = try await ledger.compact()
                } catch {
                    await ledger.noteCompactionFailure()
                    logger.error("rollup compaction failed; the segments stay as they are and the next run retries", metadata: ["error": "\(error)"])
                }
            }
        }
        await flushing?.value
        logger.info("releasing pending traces and flushing before exit")
        try await ledger.drain()
    }
}
