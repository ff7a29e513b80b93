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
/// differently.
struct AllocationSchedule {
    private var marked = RingBitmap256()
    private var slots = InlineArray<256, UInt64>(repeating: 0)
    private var starts = InlineArray<256, UInt64>(repeating: 0)
    private var deadlines = InlineArray<256, UInt64>(repeating: 0)
    private var nodes = InlineArray<256, UInt32>(repeating: 0)
    private var paths = InlineArray<256, UInt16>(repeating: 0)
    private(set) var count = 0

    @inline(__always)
    private static func index(_ slot: UInt64) -> Int { Int(truncatingIfNeeded: slot & 255) }

    @inline(__always)
    func contains(slot: UInt64) -> Bool { marked.contains(slot) && slots[Self.index(slot)] == slot }

    /// Whether the ring position of `slot` is free.
    @inline(__always)
    func isFree(slot: UInt64) -> Bool { !marked.contains(slot) }

    /// Inserts `a`, to be dropped as stale once `deadline` (ns) passes.
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
    }

    private func entry(_ i: Int) -> EndpointAllocation {
        EndpointAllocation(slot: slots[i], startNanoseconds: starts[i], destination: NodeID(nodes[i]), path: PathID(paths[i]))
    }

    /// The entry that starts first.
    func earliest() -> EndpointAllocation? {
        guard count > 0 else { return nil }
        var best = -1
        marked.forEachIndex { i in
            if best < 0 || starts[i] < starts[best] { best = i }
        }
        return best < 0 ? nil : entry(best)
    }

    /// Removes and returns one entry whose deadline is before `now`, if any.
    mutating func popExpired(before now: UInt64) -> EndpointAllocation? {
        guard count > 0 else { return nil }
        var found = -1
        marked.forEachIndex { i in
            if found < 0 && deadlines[i] < now { found = i }
        }
        guard found >= 0 else { return nil }
        let e = entry(found)
        marked.remove(e.slot)
        count -= 1
        return e
    }

    mutating func remove(slot: UInt64) {
        if slots[Self.index(slot)] == slot, marked.remove(slot) { count -= 1 }
    }

    mutating func removeAll() {
        marked.removeAll()
        count = 0
    }
}
