/// An allocation an endpoint accepted: at `slot` (starting at `startNanoseconds` on the
/// endpoint's clock) it may send one packet to `destination` over `path`.
public struct EndpointAllocation: Sendable, Hashable {
    public var slot: UInt64
    public var startNanoseconds: UInt64
    public var destination: NodeID
    public var path: PathID
    /// When the endpoint accepted it (the time of the packet that carried it), so that the
    /// time from demand to allocation can be measured.
    public var admittedNanoseconds: UInt64 = 0
}

/// Accepted allocations waiting for their slot: a ring of 256 slots, enough for any
/// acceptance window (the reference's is 16 late + 64 early). Ordered and expired by
/// time rather than slot number, because reference and announced-clock slots count
/// differently. Within one numbering start and deadline grow with the slot, so the entry
/// that starts first is also the next to expire, and after it leaves the next one is the
/// next mark in the ring: every operation is O(1) (a few word scans).
struct AllocationSchedule {
    private var marked = RingBitmap256()
    /// One entry per ring position. On the heap (allocated once, with the session) rather
    /// inline: 10 KB inline made every session a value the compiler copied whole for
    /// plain reads; the simulator spent a third of its time in those copies.
    private var entries = [EndpointAllocation](
        repeating: EndpointAllocation(slot: 0, startNanoseconds: 0, destination: NodeID(0), path: .none), count: 256)
    private var deadlines = [UInt64](repeating: 0, count: 256)
    private(set) var count = 0
    /// Ring index of the entry that starts first, or -1 when empty.
    private var earliestIndex = -1

    @inline(__always)
    private static func index(_ slot: UInt64) -> Int { Int(truncatingIfNeeded: slot & 255) }

    @inline(__always)
    func contains(slot: UInt64) -> Bool { marked.contains(slot) && entries[Self.index(slot)].slot == slot }

    /// Whether the ring position of `slot` is free.
    @inline(__always)
    func isFree(slot: UInt64) -> Bool { !marked.contains(slot) }

    /// Inserts `a`, to be dropped as stale once `deadline` (ns) passes. The caller checked
    /// ``isFree(slot:)``.
    mutating func insert(_ a: EndpointAllocation, deadline: UInt64) {
        let i = Self.index(a.slot)
        let inserted = marked.insert(a.slot)
        precondition(inserted, "schedule position taken")
        entries[i] = a
        deadlines[i] = deadline
        count += 1
        if earliestIndex < 0 || a.startNanoseconds < entries[earliestIndex].startNanoseconds { earliestIndex = i }
    }

    private func entry(_ i: Int) -> EndpointAllocation { entries[i] }

    /// The entry that starts first.
    func earliest() -> EndpointAllocation? {
        earliestIndex < 0 ? nil : entry(earliestIndex)
    }

    /// Removes and returns the first entry if its deadline is before `now`.
    mutating func popExpired(before now: UInt64) -> EndpointAllocation? {
        guard earliestIndex >= 0, deadlines[earliestIndex] < now else { return nil }
        let e = entry(earliestIndex)
        removeAt(earliestIndex)
        return e
    }

    mutating func remove(slot: UInt64) {
        let i = Self.index(slot)
        if entries[i].slot == slot && marked.contains(slot) { removeAt(i) }
    }

    private mutating func removeAt(_ i: Int) {
        let slot = entries[i].slot
        marked.remove(slot)
        count -= 1
        guard i == earliestIndex else { return }
        if let next = marked.first(from: slot &+ 1, through: slot &+ 255) {
            earliestIndex = Self.index(next)
        } else {
            earliestIndex = -1
        }
    }

    mutating func removeAll() {
        marked.removeAll()
        count = 0
        earliestIndex = -1
    }
}
