/// The sender's window of the last 192 sequence numbers, with a mark on every packet still
/// waiting for an acknowledgement.
///
/// A 256-position ring: the 64 positions just outside the window are always clear, which
/// lets a 64-bit mask ending anywhere near the window be read with two word shifts.
struct FCPOutgoingWindow {
    /// Packets that may be unacknowledged at once (reference `FASTPASS_WND_LEN`).
    static let length: UInt64 = 192

    /// Highest sequence number committed.
    private(set) var head: UInt64
    private var marked = RingBitmap256()
    /// On the heap, allocated once (see `AllocationSchedule`).
    private var sentAt = [UInt64](repeating: 0, count: 256)
    /// Number of marked (unacknowledged) packets.
    private(set) var count: Int = 0

    init(head: UInt64) { self.head = head }

    /// Oldest sequence number inside the window.
    @inline(__always)
    var edge: UInt64 { head &- (Self.length - 1) }

    var isEmpty: Bool { count == 0 }

    mutating func reset(head: UInt64) {
        self.head = head
        marked.removeAll()
        count = 0
    }

    /// Whether `seq` is strictly older than the window.
    @inline(__always)
    func isBefore(_ seq: UInt64) -> Bool { Wrapping.before(seq, edge) }

    /// Whether `seq` (assumed inside the window) is waiting for an acknowledgement.
    @inline(__always)
    func isMarked(_ seq: UInt64) -> Bool { marked.contains(seq) }

    /// When packet `seq` (assumed marked) was sent.
    @inline(__always)
    func sentTime(_ seq: UInt64) -> UInt64 { sentAt[Int(truncatingIfNeeded: seq & 255)] }

    /// Advances the head by one and marks the new packet.
    /// The caller has cleared the position that leaves the window.
    @inline(__always)
    mutating func append(sentAt time: UInt64) -> UInt64 {
        head &+= 1
        marked.insert(head)
        sentAt[Int(truncatingIfNeeded: head & 255)] = time
        count += 1
        return head
    }

    @inline(__always)
    mutating func clear(_ seq: UInt64) {
        if marked.remove(seq) { count -= 1 }
    }

    /// Marks of `[pos-63, pos]` with bit i ↔ `pos-63+i`; positions outside the window read
    /// as clear.
    @inline(__always)
    func mask(endingAt pos: UInt64) -> UInt64 {
        if Wrapping.beforeOrEqual(pos, head &- Self.length) { return 0 }
        if Wrapping.afterOrEqual(pos, head &+ 64) { return 0 }
        return marked.bits(endingAt: pos)
    }

    /// The oldest marked sequence number at or after `seq` (searching from the window's
    /// edge when `seq` is older), if any.
    @inline(__always)
    func firstMarked(atOrAfter seq: UInt64) -> UInt64? {
        guard count > 0 else { return nil }
        return marked.first(from: Wrapping.before(seq, edge) ? edge : seq, through: head)
    }
}
