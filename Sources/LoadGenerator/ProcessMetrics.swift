#if canImport(Glibc)
import Glibc
#endif
import LedgerCore

/// CPU time and memory of a process, read from /proc (Linux).
public enum ProcessMetrics {
    /// User + system CPU seconds of `pid` (all threads).
    public static func cpuSeconds(pid: Int32) -> Double? {
        guard let stat = read("/proc/\(pid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the command: state(0) ppid(1) … utime(11) stime(12).
        guard fields.count > 12, let u = Double(fields[11]), let s = Double(fields[12]) else { return nil }
        return (u + s) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Peak resident set size (VmHWM) in bytes.
    public static func peakRSS(pid: Int32) -> Int? { residentMemory(pid: pid).peak }
    public static func currentRSS(pid: Int32) -> Int? { residentMemory(pid: pid).current }

    /// Resident memory now (VmRSS) and at its highest (VmHWM), in bytes, from one read of
    /// /proc/PID/status.
    public static func residentMemory(pid: Int32) -> (current: Int?, peak: Int?) {
        guard let text = read("/proc/\(pid)/status") else { return (nil, nil) }
        var out: (current: Int?, peak: Int?) = (nil, nil)
        for line in text.split(separator: "\n") {
            let isCurrent = line.hasPrefix("VmRSS:")
            guard isCurrent || line.hasPrefix("VmHWM:") else { continue }
            let parts = line.split(separator: " ", omittingEmptySubsequences: true)
            guard parts.count >= 2, let kb = Int(parts[1]) else { continue }
            if isCurrent { out.current = kb * 1024 } else { out.peak = kb * 1024 }
        }
        return out
    }

    /// CPU seconds used by this process (all threads) so far.
    public static func selfCPUSeconds() -> Double { WallClock.processCPUSeconds() }

    static func read(_ path: String) -> String? {
        guard let f = fopen(path, "r") else { return nil }
        defer { fclose(f) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buf, 1, buf.count, f)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Percentiles of a sample (nearest rank).
public func percentile(_ values: [Double], _ p: Double) -> Double {
    guard !values.isEmpty else { return .nan }
    let sorted = values.sorted()
    let rank = min(sorted.count - 1, max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1))
    return sorted[rank]
}
