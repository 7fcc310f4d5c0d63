/// How rollups age (README "Data directory"): minute buckets older than `hourlyAfter`
/// merge into hour buckets, hour buckets older than `dailyAfter` into day buckets (UTC),
/// and buckets older than `retention` are dropped.
public struct CompactionPolicy: Sendable, Equatable {
    public var hourlyAfterSeconds: Int64 = 48 * 3_600
    public var dailyAfterSeconds: Int64 = 30 * 86_400
    public var retentionSeconds: Int64 = 400 * 86_400

    public init(hourlyAfterSeconds: Int64 = 48 * 3_600, dailyAfterSeconds: Int64 = 30 * 86_400, retentionSeconds: Int64 = 400 * 86_400) {
        self.hourlyAfterSeconds = hourlyAfterSeconds
        self.dailyAfterSeconds = dailyAfterSeconds
        self.retentionSeconds = retentionSeconds
    }

    /// The key a record has after compaction at `nowUnix`, or nil when it is past retention.
    /// Age is measured from the end of the record's bucket.
    public func compacted(_ key: RollupKey, nowUnix: Int64) -> RollupKey? {
        let end = key.bucketStartUnix + Int64(key.resolutionSeconds)
        if nowUnix - end > retentionSeconds { return nil }
        var k = key
        func floor(_ t: Int64, _ step: Int64) -> Int64 { t - ((t % step) + step) % step }
        if nowUnix - end > dailyAfterSeconds && k.resolutionSeconds < 86_400 {
            k.bucketStartUnix = floor(k.bucketStartUnix, 86_400)
            k.resolutionSeconds = 86_400
        } else if nowUnix - end > hourlyAfterSeconds && k.resolutionSeconds < 3_600 {
            k.bucketStartUnix = floor(k.bucketStartUnix, 3_600)
            k.resolutionSeconds = 3_600
        }
        return k
    }
}

extension RollupTable {
    /// The same totals with old buckets merged into coarser ones and expired ones dropped.
    public func compacted(_ policy: CompactionPolicy, nowUnix: Int64) -> (table: RollupTable, dropped: Int) {
        var out = RollupTable()
        var dropped = 0
        for (_, day) in days {
            for (k, m) in day {
                if let c = policy.compacted(k, nowUnix: nowUnix) { out.add(c, m) } else { dropped += 1 }
            }
        }
        return (out, dropped)
    }
}
