/// Money is integer micro-dollars everywhere (../shared/DESIGN.md "Cost"): sums never drift.
public enum Money {
    /// USD as a Double (explicit span cost) to micro-dollars, rounded half away from zero.
    public static func micros(fromUSD usd: Double) -> Int64? {
        guard usd.isFinite, abs(usd) < 9.0e12 else { return nil }
        return Int64((usd * 1_000_000).rounded(.toNearestOrAwayFromZero))
    }

    /// Micro-dollars as a decimal USD string with six places, e.g. 1234567 → "1.234567".
    public static func usdString(micros: Int64) -> String {
        let sign = micros < 0 ? "-" : ""
        let m = micros.magnitude
        let whole = m / 1_000_000
        let frac = String(m % 1_000_000)
        return sign + String(whole) + "." + String(repeating: "0", count: 6 - frac.count) + frac
    }
}
