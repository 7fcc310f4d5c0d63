/// Parses durations such as `300ms`, `5s`, `10m`, `1h`, `7d`, `1h30m` into nanoseconds.
public enum DurationText {
    public static func nanoseconds(_ text: String) -> Int64? {
        var total: Int64 = 0
        var number: Int64 = 0
        var haveNumber = false
        var chars = Array(text.trimmingWhitespace().utf8)[...]
        guard !chars.isEmpty else { return nil }
        while let c = chars.first {
            if c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") {
                let (m, o1) = number.multipliedReportingOverflow(by: 10)
                let (n, o2) = m.addingReportingOverflow(Int64(c - UInt8(ascii: "0")))
                guard !o1, !o2 else { return nil }
                number = n
                haveNumber = true
                chars = chars.dropFirst()
                continue
            }
            guard haveNumber else { return nil }
            let unit: Int64
            if chars.starts(with: Array("ms".utf8)) { unit = 1_000_000; chars = chars.dropFirst(2) }
            else if chars.starts(with: Array("us".utf8)) { unit = 1_000; chars = chars.dropFirst(2) }
            else if chars.starts(with: Array("ns".utf8)) { unit = 1; chars = chars.dropFirst(2) }
            else {
                switch c {
                case UInt8(ascii: "s"): unit = 1_000_000_000
                case UInt8(ascii: "m"): unit = 60_000_000_000
                case UInt8(ascii: "h"): unit = 3_600_000_000_000
                case UInt8(ascii: "d"): unit = 86_400_000_000_000
                case UInt8(ascii: "w"): unit = 7 * 86_400_000_000_000
                default: return nil
                }
                chars = chars.dropFirst()
            }
            let (p, o) = number.multipliedReportingOverflow(by: unit)
            guard !o else { return nil }
            total += p
            number = 0
            haveNumber = false
        }
        return haveNumber ? nil : total
    }
}

extension String {
    public func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s = s.dropFirst() }
        while let l = s.last, l.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
