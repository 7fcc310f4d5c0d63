import ProtoWire

struct StringTable {
    var strings: [String] = []

    func string(_ index: UInt64, path: String) throws(StoreError) -> String {
        if index == 0 && strings.isEmpty { return "" }
        guard index < UInt64(strings.count) else { throw StoreError(path: path, message: "string index \(index) out of range") }
        return strings[Int(index)]
    }
}
