/// The sender's window of the last 192 sequence numbers, with a mark on every packet still
/// waiting for an acknowledgement.
///
/// Stored as a 256-bit ring so that the 64 positions outside the window are always clear:
/// that lets a 64-bit mask ending anywhere near the window be read with two word shifts.
struct FCPOutgoingWindow {
    /// Packets that may be unacknowledged at once (reference `FASTPASS_WND_LEN`).
    static let length: UInt64 = 192

    /// Highest sequence number committed.
    private(set) var head: UInt64
    private var marked: InlineArray<4, UInt64> = .init(repeating: 0)
    private var sentAt: InlineArray<256, UInt64> = .init(repeating: 0)
    /// Number of marked (unacknowledged) packets.
    private(set) var count: Int = 0

    init(head: UInt64) { self.head = head }

    /// Oldest sequence number inside the window.
    var edge: UInt64 { head &- (Self.length - 1) }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private static func slot(_ seq: UInt64) -> (word: Int, bit: UInt64) {
        let index = Int(truncatingIfNeeded: seq & 255)
        return (index >> 6, UInt64(index & 63))
    }

    mutating func reset(head: UInt64) {
        self.head = head
        marked = .init(repeating: 0)
        count = 0
    }

    /// Whether `seq` is strictly older than the window.
    func isBefore(_ seq: UInt64) -> Bool { Wrapping.before(seq, edge) }

    /// Whether `seq` (assumed inside the window) is waiting for an acknowledgement.
    func isMarked(_ seq: UInt64) -> Bool {
        let s = Self.slot(seq)
        return marked[s.word] & (1 << s.bit) != 0
    }

    /// When packet `seq` (assumed marked) was sent.
    func sentTime(_ seq: UInt64) -> UInt64 { sentAt[Int(truncatingIfNeeded: seq & 255)] }

    /// Advances the head by one and marks the new packet.
    /// The caller has cleared the position that leaves the window.
    mutating func append(sentAt time: UInt64) -> UInt64 {
        head &+= 1
        let s = Self.slot(head)
        marked[s.word] |= 1 << s.bit
        sentAt[Int(truncatingIfNeeded: head & 255)] = time
        count += 1
        return head
    }

    mutating func clear(_ seq: UInt64) {
        let s = Self.slot(seq)
        if marked[s.word] & (1 << s.bit) != 0 {
            marked[s.word] &= ~(1 << s.bit)
            count -= 1
        }
    }

    /// Marks of `[pos-63, pos]` with bit i ↔ `pos-63+i`; positions outside the window read
    /// as clear.
    func mask(endingAt pos: UInt64) -> UInt64 {
        if Wrapping.beforeOrEqual(pos, head &- Self.length) { return 0 }
        if Wrapping.afterOrEqual(pos, head &+ 64) { return 0 }
        let index = Int(truncatingIfNeeded: pos & 255)
        let word = index >> 6
        let offset = UInt64(index & 63)
        if offset == 63 { return marked[word] }
        return (marked[word] << (63 - offset)) | (marked[(word + 3) & 3] >> (offset + 1))
    }

    /// The oldest marked sequence number at or after `seq` (searching from the window's
    /// edge when `seq` is older), if any.
    func firstMarked(atOrAfter seq: UInt64) -> UInt64? {
        guard count > 0 else { return nil }
        var s = Wrapping.before(seq, edge) ? edge : seq
        while Wrapping.beforeOrEqual(s, head) {
            let index = Int(truncatingIfNeeded: s & 255)
            let bits = marked[index >> 6] >> UInt64(index & 63)
            if bits != 0 {
                let found = s &+ UInt64(bits.trailingZeroBitCount)
                return Wrapping.beforeOrEqual(found, head) ? found : nil
            }
            s &+= UInt64(64 - (index & 63))
        }
        return nil
    }
}
