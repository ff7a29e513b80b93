/// An allocation an endpoint accepted: at `slot` (starting at `startNanoseconds` on the
/// endpoint's clock) it may send one packet to `destination` over `path`.
public struct EndpointAllocation: Sendable, Hashable {
    public var slot: UInt64
    public var startNanoseconds: UInt64
    public var destination: NodeID
    public var path: PathID
}

/// Accepted allocations waiting for their slot: a ring of 256 slots, enough for any
/// acceptance window (the reference's is 16 late + 64 early). Ordered and expired by
/// time rather than slot number, because reference and announced-clock slots count
/// differently. Within one numbering start and deadline grow with the slot, so the entry
/// that starts first is also the next to expire, and after it leaves the next one is the
/// next mark in the ring: every operation is O(1) (a few word scans).
struct AllocationSchedule {
    private var marked = RingBitmap256()
    private var slots = InlineArray<256, UInt64>(repeating: 0)
    private var starts = InlineArray<256, UInt64>(repeating: 0)
    private var deadlines = InlineArray<256, UInt64>(repeating: 0)
    private var nodes = InlineArray<256, UInt32>(repeating: 0)
    private var paths = InlineArray<256, UInt16>(repeating: 0)
    private(set) var count = 0
    /// Ring index of the entry that starts first, or -1 when empty.
    private var earliestIndex = -1

    @inline(__always)
    private static func index(_ slot: UInt64) -> Int { Int(truncatingIfNeeded: slot & 255) }

    @inline(__always)
    func contains(slot: UInt64) -> Bool { marked.contains(slot) && slots[Self.index(slot)] == slot }

    /// Whether the ring position of `slot` is free.
    @inline(__always)
    func isFree(slot: UInt64) -> Bool { !marked.contains(slot) }

    /// Inserts `a`, to be dropped as stale once `deadline` (ns) passes. The caller checked
    /// ``isFree(slot:)``.
    mutating func insert(_ a: EndpointAllocation, deadline: UInt64) {
        let i = Self.index(a.slot)
        let inserted = marked.insert(a.slot)
        precondition(inserted, "schedule position taken")
        slots[i] = a.slot
        starts[i] = a.startNanoseconds
        deadlines[i] = deadline
        nodes[i] = a.destination.rawValue
        paths[i] = a.path.rawValue
        count += 1
        if earliestIndex < 0 || a.startNanoseconds < starts[earliestIndex] { earliestIndex = i }
    }

    private func entry(_ i: Int) -> EndpointAllocation {
        EndpointAllocation(
            slot: slots[i], startNanoseconds: starts[i], destination: NodeID(nodes[i]), path: PathID(paths[i]))
    }

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
        if slots[i] == slot && marked.contains(slot) { removeAt(i) }
    }

    private mutating func removeAt(_ i: Int) {
        let slot = slots[i]
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
