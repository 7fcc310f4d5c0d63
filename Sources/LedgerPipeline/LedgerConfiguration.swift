import Rollups
import TraceAssembly

/// Settings of the ledger (assembly, attribution, rollups, store). Each names its
/// `serve` flag / config key; defaults in `.default`.
public struct LedgerConfiguration: Sendable {
    /// Data directory (`--data`, key `data`, default `./data`).
    public var dataDirectory: String = "./data"
    /// Trace assembly limits (`--trace-wait`, `--trace-max-age`, `--max-pending-traces`, `--max-pending-bytes`).
    public var assembly: TraceAssembler.Limits = .default
    /// How often unflushed rollups are written (`--flush-interval`, default 5 s).
    public var flushIntervalNano: UInt64 = 5_000_000_000
    /// A flush is also started, before the interval is up, once this many spans of
    /// released runs wait for one (default 200,000: about 14 MB of packed run trees, and
    /// as much again while they are written; under full ingest the interval alone let them
    /// reach hundreds of MB, and at 500,000 the trees and the index entries waiting for a
    /// flush took peak RSS at the default limits from about 270 to 300 MB).
    public var maxUnflushedSpans: Int = 200_000
    /// The longest the clock sleeps between release rounds (fixed, 100 ms). It wakes
    /// sooner when a trace falls due, though not within `minimumReleaseGapNano` of the
    /// last round: with a fixed tick a run reached the rollups up to 100 ms after its
    /// wait, and once a backlog was worked off the cores idled until the next tick.
    public var tickIntervalNano: UInt64 = 100_000_000
    /// The shortest sleep between release rounds (fixed, 10 ms): under load traces fall
    /// due all the time, and a round per trace would attribute them one by one.
    public var minimumReleaseGapNano: UInt64 = 10_000_000
    /// Ingest waits while the oldest due trace has waited longer than this for release
    /// (default 500 ms; 0 = never): past it clients are slowed to the rate runs are rolled
    /// up at, instead of the backlog and memory growing (`ReleaseBacklog`).
    public var maxReleaseLagNano: UInt64 = 500_000_000
    /// Run trees kept in memory for `trace` before falling back to disk (default 20,000).
    public var recentTreeCapacity: Int = 20_000
    /// Runs whose index entry is kept in memory (`--max-indexed-runs`, default 100,000:
    /// about 25 MB). Older runs are looked up on disk when a late span or verdict, a trace
    /// view or rework needs them, through Bloom filters of about 4 bytes a run.
    public var maxIndexedRuns: Int = 100_000
    /// Task-tagged runs listed in memory for rework (`--max-task-runs`, default 250,000:
    /// about 10 MB when tasks have several runs, up to about 40 MB with one conversation
    /// ID a run); runs past it are read from disk when their task runs again.
    public var maxTaskRuns: Int = 250_000
    /// Bytes of index files (parsed for lookup by trace ID, about 4.4 MB for a flush of
    /// 27,000 runs) and of run-tree files written before blocks kept for lookups of runs
    /// no longer in memory (`--lookup-cache-bytes`, default 64 MiB), dropped after 30 s
    /// unused; 0 keeps none.
    public var lookupCacheBytes: Int = 64 << 20
    /// Runs in one merged pair of index and run-tree files (`RunSegmentMergePlan`): a
    /// lookup of a run no longer in memory decodes one such file.
    public var maxRunsPerMergedSegment: Int = 50_000
    /// Run trees and index entries of runs that started longer ago than this are removed
    /// at compaction (`--trace-retention`, default 30 days; at least the correction
    /// window: a run's outcome can change only while its tree is kept). Rollups keep
    /// counting them until `--retention`.
    public var traceRetentionNano: Int64 = 30 * 86_400_000_000_000
    /// Verdicts for runs that started longer ago than this are refused (`--correction-window`, default 30 days).
    public var correctionWindowNano: Int64 = 30 * 86_400_000_000_000
    /// Verdicts held for traces not seen yet (`--max-held-verdicts`, default 1,000,000).
    public var maxHeldVerdicts: Int = 1_000_000

    /// Rollup aging (`--compact-hourly-after`, `--compact-daily-after`, `--retention`).
    public var compaction = CompactionPolicy()
    /// How often compaction runs (`--compaction-interval`, default 1 h; 0 = never).
    public var compactionIntervalNano: UInt64 = 3_600_000_000_000

    public init() {}
    public static let `default` = LedgerConfiguration()
}
