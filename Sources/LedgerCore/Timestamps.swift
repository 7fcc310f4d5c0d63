/// RFC 3339 (UTC) formatting and parsing, and `YYYY-MM-DD` dates, without Foundation.
public enum RFC3339 {
    /// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
    public static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146097 + doe - 719468
    }

    public static func civilFromDays(_ z0: Int) -> (year: Int, month: Int, day: Int) {
        let z = z0 + 719468
        let era = (z >= 0 ? z : z - 146096) / 146097
        let doe = z - era * 146097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (m <= 2 ? 1 : 0), m, d)
    }

    /// `2026-11-23T01:02:03Z` (or with milliseconds when `fractional`).
    public static func format(unixNano: Int64, fractional: Bool = false) -> String {
        let secs = unixNano >= 0 ? unixNano / 1_000_000_000 : (unixNano - 999_999_999) / 1_000_000_000
        let days = Int(secs >= 0 ? secs / 86400 : (secs - 86399) / 86400)
        let sod = Int(secs - Int64(days) * 86400)
        let (y, m, d) = civilFromDays(days)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var s = "\(y)-\(two(m))-\(two(d))T\(two(sod / 3600)):\(two(sod / 60 % 60)):\(two(sod % 60))"
        if fractional {
            let ms = Int((unixNano - secs * 1_000_000_000) / 1_000_000)
            s += "." + (ms < 10 ? "00" : ms < 100 ? "0" : "") + "\(ms)"
        }
        return s + "Z"
    }

    /// Parses `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` (a space may replace `T`).
    public static func parse(_ text: String) -> Int64? {
        let c = Array(text.trimmingWhitespace().utf8)
        func num(_ from: Int, _ len: Int) -> Int? {
            guard from + len <= c.count else { return nil }
            var v = 0
            for i in from..<(from + len) {
                guard c[i] >= 48 && c[i] <= 57 else { return nil }
                v = v * 10 + Int(c[i] - 48)
            }
            return v
        }
        guard let y = num(0, 4), c.count >= 10, c[4] == UInt8(ascii: "-"), let mo = num(5, 2), c[7] == UInt8(ascii: "-"),
              let d = num(8, 2), (1...12).contains(mo), (1...31).contains(d) else { return nil }
        let days = Int64(daysFromCivil(year: y, month: mo, day: d))
        if c.count == 10 { return days * 86_400_000_000_000 }
        guard c.count >= 20, c[10] == UInt8(ascii: "T") || c[10] == UInt8(ascii: "t") || c[10] == UInt8(ascii: " "),
              let h = num(11, 2), c[13] == UInt8(ascii: ":"), let mi = num(14, 2), c[16] == UInt8(ascii: ":"),
              let s = num(17, 2), h < 24, mi < 60, s < 61 else { return nil }
        var i = 19
        var fracNano: Int64 = 0
        if i < c.count, c[i] == UInt8(ascii: ".") {
            i += 1
            var digits = 0
            while i < c.count, c[i] >= 48, c[i] <= 57 {
                if digits < 9 { fracNano = fracNano * 10 + Int64(c[i] - 48); digits += 1 }
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<9 { fracNano *= 10 }
        }
        guard i < c.count else { return nil }
        var offsetSeconds: Int64 = 0
        if c[i] == UInt8(ascii: "Z") || c[i] == UInt8(ascii: "z") {
            guard i + 1 == c.count else { return nil }
        } else if c[i] == UInt8(ascii: "+") || c[i] == UInt8(ascii: "-") {
            guard i + 6 == c.count, let oh = num(i + 1, 2), c[i + 3] == UInt8(ascii: ":"), let om = num(i + 4, 2) else { return nil }
            offsetSeconds = Int64(oh * 3600 + om * 60) * (c[i] == UInt8(ascii: "+") ? 1 : -1)
        } else {
            return nil
        }
        let secs = days * 86400 + Int64(h * 3600 + mi * 60 + s) - offsetSeconds
        return secs * 1_000_000_000 + fracNano
    }
}

/// Time arguments of queries: RFC 3339, a date, `now`, or a relative duration back from now (`24h`, `7d`).
public enum TimeArgument {
    public static func resolve(_ text: String, now: Int64) -> Int64? {
        let t = text.trimmingWhitespace()
        if t == "now" { return now }
        if let d = DurationText.nanoseconds(t) { return now - d }
        return RFC3339.parse(t)
    }
}
