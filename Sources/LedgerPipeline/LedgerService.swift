import Logging
import ServiceLifecycle

/// Runs the ledger's clock: releases due traces every tick and flushes on the flush
/// interval. On graceful shutdown (after the receivers have stopped) it releases every
/// pending trace and writes the last flush.
public struct LedgerService: Service {
    let ledger: Ledger
    let logger: Logger

    /// Traces attributed per actor turn when many are due at once.
    static let releaseChunk = 512

    public init(ledger: Ledger, logger: Logger) {
        self.ledger = ledger
        self.logger = logger
    }

    /// Releases due traces in chunks: taken out of assembly on the actor, attributed here
    /// (off it, so requests keep both cores busy meanwhile), recorded on it.
    func releaseDue() async {
        while true {
            let (toAttribute, released) = await ledger.takeDue(limit: Self.releaseChunk)
            if !toAttribute.isEmpty {
                let prepared = toAttribute.map { ledger.prepare($0) }
                await ledger.commit(prepared)
            }
            if released < Self.releaseChunk { return }
        }
    }

    public func run() async throws {
        let tick = ledger.configuration.tickIntervalNano
        let flushEvery = ledger.configuration.flushIntervalNano
        var sinceFlush: UInt64 = 0
        let compactEvery = ledger.configuration.compactionIntervalNano
        var sinceCompaction: UInt64 = 0
        let warm = Task.detached { [ledger] in await ledger.warmQueryCache() }
        defer { warm.cancel() }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await Task.sleep(nanoseconds: tick)
            await releaseDue()
            sinceFlush += tick
            sinceCompaction += tick
            if sinceFlush >= flushEvery {
                sinceFlush = 0
                try? await ledger.flush()
            }
            if compactEvery > 0 && sinceCompaction >= compactEvery {
                sinceCompaction = 0
                do {
                    _ = try await ledger.compact()
                } catch {
                    await ledger.noteCompactionFailure()
                    logger.error("rollup compaction failed; the segments stay as they are and the next run retries", metadata: ["error": "\(error)"])
                }
            }
        }
        logger.info("releasing pending traces and flushing before exit")
        try await ledger.drain()
    }
}
