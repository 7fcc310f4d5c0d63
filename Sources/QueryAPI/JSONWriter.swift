import LedgerCore

/// Builds JSON text with keys in the order written, so answers are stable byte for byte.
public struct JSONWriter {
    public private(set) var text = ""
    var needsComma: [Bool] = [false]

    public init() {}

    mutating func separator() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }

    public mutating func key(_ k: String) {
        separator()
        // Field names are plain identifiers: no escaping to look for.
        if k.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || ($0 >= 0x30 && $0 <= 0x39) }) {
            text += "\"" + k + "\":"
        } else {
            text += JSONText.quote(k) + ":"
        }
        needsComma[needsComma.count - 1] = false
    }

    public mutating func objectStart() { valuePrefix(); text += "{"; needsComma.append(false) }
    public mutating func objectEnd() { text += "}"; needsComma.removeLast(); needsComma[needsComma.count - 1] = true }
    public mutating func arrayStart() { valuePrefix(); text += "["; needsComma.append(false) }
    public mutating func arrayEnd() { text += "]"; needsComma.removeLast(); needsComma[needsComma.count - 1] = true }

    mutating func valuePrefix() {
        if needsComma[needsComma.count - 1] { text += "," }
    }

    mutating func raw(_ s: String) { valuePrefix(); text += s; needsComma[needsComma.count - 1] = true }

    public mutating func string(_ s: String) { raw(JSONText.quote(s)) }
    public mutating func int(_ v: Int64) { raw(String(v)) }
    public mutating func bool(_ v: Bool) { raw(v ? "true" : "false") }
    public mutating func null() { raw("null") }
    /// A number written with `places` decimals (fixed point), or null.
    public mutating func fixed(_ v: Double?, places: Int) {
        guard let v, v.isFinite else { return null() }
        raw(Self.fixed(v, places: places))
    }
    public mutating func number(literal: String) { raw(literal) }

    public mutating func field(_ k: String, _ s: String) { key(k); string(s) }
    public mutating func field(_ k: String, _ v: Int64) { key(k); int(v) }
    public mutating func field(_ k: String, _ v: Bool) { key(k); bool(v) }

    public static func fixed(_ v: Double, places: Int) -> String {
        var scale = 1.0
        for _ in 0..<places { scale *= 10 }
        let scaled = (v * scale).rounded(.toNearestOrAwayFromZero)
        guard abs(scaled) < 9e18 else { return String(v) }
        let n = Int64(scaled)
        let sign = n < 0 ? "-" : ""
        let m = n.magnitude
        let unit = UInt64(scale)
        guard places > 0 else { return sign + String(m) }
        let frac = String(m % unit)
        return sign + String(m / unit) + "." + String(repeating: "0", count: places - frac.count) + frac
    }

}
