import LedgerCore
import Testing
@testable import LedgerStore
import ProtoWire

/// The run-tree segment's string table finds repeated names by the String's bits first
/// (StringTable.swift): equal names kept in other storage, and names that share a cache
/// slot, must still get one index each and decode back exactly.
@Suite struct StringTableTests {
    @Test func equalNamesInOtherStorageShareOneIndex() {
        var b = StringTableBuilder()
        let long = String(repeating: "agent-step-", count: 4)
        let copy = String(decoding: Array(long.utf8), as: UTF8.self) // same text, its own storage
        let i = b.index(long)
        #expect(b.index(copy) == i)
        #expect(b.index("chat") == b.index(String("c") + "hat"))
        #expect(b.index("") == 0)
        #expect(b.strings == ["", long, "chat"])
    }

    @Test func manyNamesSharingSlotsKeepTheirOwnIndexes() {
        // 300 distinct names over 64 slots, each asked for many times in a scattered
        // order: every slot is replaced many times, and each name keeps one index.
        let names = (0..<300).map { "span-name-\($0)-" + String(repeating: "x", count: $0 % 20) }
        var b = StringTableBuilder()
        var first: [String: UInt32] = [:]
        for round in 0..<6 {
            for k in 0..<300 {
                let name = names[(k * 37 + round * 11) % 300]
                let i = b.index(name)
                #expect(b.strings[Int(i)] == name)
                if let f = first[name] { #expect(f == i) } else { first[name] = i }
            }
        }
        #expect(b.strings.count == 301)
    }
}
