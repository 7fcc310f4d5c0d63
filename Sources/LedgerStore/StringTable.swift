/// A segment's string table: workflow, model, service and span names stored once and
/// referenced by index (index 0 is always "").
struct StringTableBuilder {
    private(set) var strings: [String] = [""]
    private var indexes: [String: UInt32] = ["": 0]

    mutating func index(_ s: String) -> UInt32 {
        if let i = indexes[s] { return i }
        let i = UInt32(strings.count)
        strings.append(s)
        indexes[s] = i
        return i
    }
}

struct StringTable {
    var strings: [String] = []

    func string(_ index: UInt64, path: String) throws(StoreError) -> String {
        if index == 0 && strings.isEmpty { return "" }
        guard index < UInt64(strings.count) else { throw StoreError(path: path, message: "string index \(index) out of range") }
        return strings[Int(index)]
    }
}
