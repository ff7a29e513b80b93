/// What went into each packet still in the out-window, so that an acknowledgement or a
/// negative acknowledgement of sequence number `s` can be turned back into "these
/// counters reached / may not have reached the peer".
///
/// A ring of 256 records (the window holds 192 packets), each with room for
/// `entriesPerPacket` entries; allocated once, at start-up.
struct PacketRecords<Entry> {
    static var ringSize: Int { 256 }

    let entriesPerPacket: Int
    private var sequences: [UInt64]
    private var counts: [Int32]
    private var flags: [UInt8]
    private var entries: [Entry]

    init(entriesPerPacket: Int, filler: Entry) {
        self.entriesPerPacket = entriesPerPacket
        sequences = [UInt64](repeating: 0, count: Self.ringSize)
        counts = [Int32](repeating: -1, count: Self.ringSize)
        flags = [UInt8](repeating: 0, count: Self.ringSize)
        entries = [Entry](repeating: filler, count: Self.ringSize * entriesPerPacket)
    }

    @inline(__always)
    private static func slot(_ seq: UInt64) -> Int { Int(truncatingIfNeeded: seq & 255) }

    /// Starts the record of packet `seq`, replacing whatever that ring position held.
    mutating func begin(_ seq: UInt64, flags f: UInt8) {
        let s = Self.slot(seq)
        sequences[s] = seq
        counts[s] = 0
        flags[s] = f
    }

    /// Appends an entry to the record of `seq` (begun just before); false when full.
    @discardableResult
    mutating func append(_ seq: UInt64, _ entry: Entry) -> Bool {
        let s = Self.slot(seq)
        guard sequences[s] == seq, counts[s] >= 0, Int(counts[s]) < entriesPerPacket else { return false }
        entries[s * entriesPerPacket + Int(counts[s])] = entry
        counts[s] += 1
        return true
    }

    /// Flags of the record of `seq`; nil when the ring no longer holds it.
    func flags(_ seq: UInt64) -> UInt8? {
        let s = Self.slot(seq)
        return sequences[s] == seq && counts[s] >= 0 ? flags[s] : nil
    }

    /// Visits the entries of the record of `seq`, if the ring still holds it.
    func forEach(_ seq: UInt64, _ body: (Entry) -> Void) {
        let s = Self.slot(seq)
        guard sequences[s] == seq, counts[s] >= 0 else { return }
        let base = s * entriesPerPacket
        for i in 0..<Int(counts[s]) { body(entries[base + i]) }
    }

    /// Forgets every record (after a protocol reset no old sequence number is ever
    /// acknowledged).
    mutating func removeAll() {
        for i in 0..<Self.ringSize { counts[i] = -1 }
    }
}
