#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import LedgerCore

/// A parsed JSON document (RFC 8259) as a flat tape of tokens over the request's bytes.
///
/// One array for the whole document, no object per value: strings stay byte ranges until a
/// caller asks for a `String`, numbers stay text (so 64-bit integers lose nothing), and an
/// object's member is found by comparing key bytes. A container token records how many
/// children it has and where its subtree ends, so skipping a value is one lookup.
struct JSONToken {
    enum Kind: UInt8 { case null, `true`, `false`, number, string, escapedString, array, object }
    var kind: Kind
    /// Scalars: offset of the value's text (strings: after the opening quote).
    var start: UInt32
    /// Scalars: offset after the text (strings: at the closing quote). Containers: the token
    /// index after the last descendant.
    var end: UInt32
    /// Containers: members or items.
    var count: UInt32
}

struct JSONParseError: Error {
    var message: String
}

/// Builds the tape with a nesting limit, so hostile input (deeply nested arrays) fails
/// with an error instead of exhausting the stack. Every string's escapes are validated here;
/// decoding them waits until a string is read.
struct JSONTapeParser {
    let b: UnsafeBufferPointer<UInt8>
    var i = 0
    var tokens: [JSONToken] = []
    let maxDepth: Int

    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, maxDepth: Int) throws(JSONParseError) -> [JSONToken] {
        guard bytes.count < Int(UInt32.max) else { throw JSONParseError(message: "JSON document over 4 GiB") }
        var p = JSONTapeParser(b: bytes, maxDepth: maxDepth)
        p.tokens.reserveCapacity(bytes.count / 12 + 4)
        p.skipSpace()
        try p.value(depth: 0)
        p.skipSpace()
        guard p.i == bytes.count else { throw p.error("unexpected data after the JSON value") }
        return p.tokens
    }

    func error(_ m: String) -> JSONParseError { JSONParseError(message: "invalid JSON at byte \(i): \(m)") }

    mutating func skipSpace() {
        while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 }
    }

    mutating func value(depth: Int) throws(JSONParseError) {
        guard i < b.count else { throw error("unexpected end of input") }
        switch b[i] {
        case UInt8(ascii: "{"): try container(depth: depth, object: true)
        case UInt8(ascii: "["): try container(depth: depth, object: false)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"): try literal("true", .true)
        case UInt8(ascii: "f"): try literal("false", .false)
        case UInt8(ascii: "n"): try literal("null", .null)
        default: try number()
        }
    }

    mutating func container(depth: Int, object: Bool) throws(JSONParseError) {
        guard depth < maxDepth else { throw JSONParseError(message: "JSON nesting deeper than \(maxDepth) levels") }
        let at = tokens.count
        tokens.append(JSONToken(kind: object ? .object : .array, start: UInt32(i), end: 0, count: 0))
        let close = object ? UInt8(ascii: "}") : UInt8(ascii: "]")
        i += 1
        var n: UInt32 = 0
        skipSpace()
        if i < b.count, b[i] == close {
            i += 1
        } else {
            while true {
                skipSpace()
                if object {
                    guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw error("expected a member name") }
                    try string()
                    skipSpace()
                    guard i < b.count, b[i] == UInt8(ascii: ":") else { throw error("expected ':'") }
                    i += 1
                    skipSpace()
                }
                try value(depth: depth + 1)
                n += 1
                skipSpace()
                guard i < b.count else { throw error(object ? "unterminated object" : "unterminated array") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == close { i += 1; break }
                throw error(object ? "expected ',' or '}'" : "expected ',' or ']'")
            }
        }
        tokens[at].end = UInt32(tokens.count)
        tokens[at].count = n
    }

    mutating func literal(_ word: StaticString, _ kind: JSONToken.Kind) throws(JSONParseError) {
        let n = word.utf8CodeUnitCount
        guard b.count - i >= n else { throw error("unexpected end of input") }
        for k in 0..<n where b[i + k] != word.utf8Start[k] { throw error("unexpected character") }
        tokens.append(JSONToken(kind: kind, start: UInt32(i), end: UInt32(i + n), count: 0))
        i += n
    }

    mutating func digits() -> Int {
        let s = i
        while i < b.count, b[i] >= 0x30, b[i] <= 0x39 { i += 1 }
        return i - s
    }

    mutating func number() throws(JSONParseError) {
        let start = i
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        guard digits() > 0 else { i = start; throw error("unexpected character") }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { throw error("digits expected after '.'") }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw error("digits expected in exponent") }
        }
        tokens.append(JSONToken(kind: .number, start: UInt32(start), end: UInt32(i), count: 0))
    }

    mutating func string() throws(JSONParseError) {
        i += 1
        let start = i
        while i < b.count, b[i] != UInt8(ascii: "\""), b[i] != UInt8(ascii: "\\"), b[i] >= 0x20 { i += 1 }
        var escaped = false
        while true {
            guard i < b.count else { throw error("unterminated string") }
            let c = b[i]
            if c == UInt8(ascii: "\"") { break }
            guard c >= 0x20 else { throw error("control character in string") }
            i += 1
            guard c == UInt8(ascii: "\\") else { continue }
            escaped = true
            guard i < b.count else { throw error("unterminated escape") }
            switch b[i] {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
                 UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                i += 1
            case UInt8(ascii: "u"):
                guard let high = JSONDocument.hex4(b, at: i + 1) else { throw error("bad hex digit in unicode escape") }
                i += 5
                if high >= 0xD800 && high < 0xDC00 {
                    guard b.count - i >= 6, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") else { throw error("lone surrogate") }
                    guard let low = JSONDocument.hex4(b, at: i + 2) else { throw error("bad hex digit in unicode escape") }
                    guard low >= 0xDC00 && low < 0xE000 else { throw error("bad surrogate pair") }
                    i += 6
                } else if high >= 0xDC00 && high < 0xE000 {
                    throw error("invalid unicode escape")
                }
            default:
                throw error("invalid escape")
            }
        }
        tokens.append(JSONToken(kind: escaped ? .escapedString : .string, start: UInt32(start), end: UInt32(i), count: 0))
        i += 1
    }
}

/// Read access to a parsed tape. Token indices stand for values; both buffers belong to
/// the caller and outlive the document.
struct JSONDocument {
    let bytes: UnsafeBufferPointer<UInt8>
    let tokens: UnsafeBufferPointer<JSONToken>

    static let root = 0

    func kind(_ t: Int) -> JSONToken.Kind { tokens[t].kind }

    /// The token after `t`'s whole subtree.
    func next(_ t: Int) -> Int {
        let k = tokens[t].kind
        return k == .array || k == .object ? Int(tokens[t].end) : t + 1
    }

    func isString(_ t: Int) -> Bool { tokens[t].kind == .string || tokens[t].kind == .escapedString }

    /// The raw bytes of a scalar's text (a string's without its quotes, escapes undecoded).
    func raw(_ t: Int) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(rebasing: bytes[Int(tokens[t].start)..<Int(tokens[t].end)])
    }

    /// The children of an array (items) or an object (member values), in order.
    struct Children: Sequence, IteratorProtocol {
        let doc: JSONDocument
        var t: Int
        var remaining: Int
        let object: Bool
        mutating func next() -> Int? {
            guard remaining > 0 else { return nil }
            remaining -= 1
            let value = object ? t + 1 : t
            t = doc.next(value)
            return value
        }

        /// The same sequence with nothing left (an absent array).
        var emptied: Children {
            var c = self
            c.remaining = 0
            return c
        }
    }

    func items(_ array: Int) -> Children {
        Children(doc: self, t: array + 1, remaining: Int(tokens[array].count), object: false)
    }

    /// Each member's key token is its value token minus one.
    func memberValues(_ object: Int) -> Children {
        Children(doc: self, t: object + 1, remaining: Int(tokens[object].count), object: true)
    }

    /// The first member named `key`, if any. `object` must be an object token.
    func member(_ object: Int, _ key: StaticString) -> Int? {
        for v in memberValues(object) where equals(v - 1, key) { return v }
        return nil
    }

    func equals(_ t: Int, _ s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount
        if tokens[t].kind == .escapedString {
            return string(t).utf8.elementsEqual(UnsafeBufferPointer(start: s.utf8Start, count: n))
        }
        let r = raw(t)
        return r.count == n && (n == 0 || memcmp(r.baseAddress!, s.utf8Start, n) == 0)
    }

    /// A string token's value, escapes decoded (invalid UTF-8 replaced, as `String(decoding:)` does).
    func string(_ t: Int) -> String {
        let r = raw(t)
        guard tokens[t].kind == .escapedString else { return String(decoding: r, as: UTF8.self) }
        return String(decoding: unescaped(r), as: UTF8.self)
    }

    /// A string's length in UTF-8 bytes once decoded.
    func utf8Count(_ t: Int) -> Int {
        tokens[t].kind == .escapedString ? unescaped(raw(t)).count : raw(t).count
    }

    /// Decodes escapes the parser already validated.
    func unescaped(_ r: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(r.count)
        var i = 0
        while i < r.count {
            let c = r[i]
            i += 1
            guard c == UInt8(ascii: "\\") else { out.append(c); continue }
            let e = r[i]
            i += 1
            switch e {
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = Self.hex4(r, at: i) ?? 0xFFFD
                i += 4
                if scalar >= 0xD800 && scalar < 0xDC00, let low = Self.hex4(r, at: i + 2) {
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                }
                out.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
            default: out.append(e)  // \" \\ \/
            }
        }
        return out
    }

    static func hex4(_ b: UnsafeBufferPointer<UInt8>, at i: Int) -> UInt32? {
        guard i >= 0, b.count - i >= 4 else { return nil }
        var v: UInt32 = 0
        for k in 0..<4 {
            let c = b[i + k]
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x37)
            case 0x61...0x66: d = UInt32(c - 0x57)
            default: return nil
            }
            v = v << 4 | d
        }
        return v
    }

    /// Decimal digits with an optional leading '-' as an Int64, without building a String;
    /// nil when the text is anything else or out of range (callers fall back to slower parses).
    static func plainInt64(_ r: UnsafeBufferPointer<UInt8>) -> Int64? {
        var i = 0
        let negative = r.count > 0 && r[0] == UInt8(ascii: "-")
        if negative { i = 1 }
        guard r.count > i, r.count - i <= 18 else { return nil }
        var v: Int64 = 0
        while i < r.count {
            let d = r[i] &- 0x30
            guard d < 10 else { return nil }
            v = v * 10 + Int64(d)
            i += 1
        }
        return negative ? -v : v
    }

    /// `2 * words.count * 8` hex digits (either case) as big-endian words; nil if any is not hex.
    static func hexWords(_ r: UnsafeBufferPointer<UInt8>, words: Int) -> (UInt64, UInt64)? {
        guard r.count == words * 16 else { return nil }
        var out: (UInt64, UInt64) = (0, 0)
        for w in 0..<words {
            var v: UInt64 = 0
            for k in 0..<16 {
                guard let n = HexCodec.nibble(r[w * 16 + k]) else { return nil }
                v = v << 4 | n
            }
            if w == 0 { out.0 = v } else { out.1 = v }
        }
        return out
    }
}
