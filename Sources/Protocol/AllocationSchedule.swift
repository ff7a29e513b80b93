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
    private var marked = InlineArray<4, UInt64>(repeating: 0)
    private var slots = InlineArray<256, UInt64>(repeating: 0)
    private var starts = InlineArray<256, UInt64>(repeating: 0)
    private var deadlines = InlineArray<256, UInt64>(repeating: 0)
    private var nodes = InlineArray<256, UInt32>(repeating: 0)
    private var paths = InlineArray<256, UInt16>(repeating: 0)
    private(set) var count = 0

    @inline(__always)
    private static func position(_ slot: UInt64) -> (word: Int, bit: UInt64, index: Int) {
        let index = Int(truncatingIfNeeded: slot & 255)
        return (index >> 6, UInt64(index & 63), index)
    }

    func contains(slot: UInt64) -> Bool {
        let p = Self.position(slot)
        return marked[p.word] & (1 << p.bit) != 0 && slots[p.index] == slot
    }

    /// Whether the ring position of `slot` is free.
    func isFree(slot: UInt64) -> Bool {
        let p = Self.position(slot)
        return marked[p.word] & (1 << p.bit) == 0
    }

    /// Inserts `a`, to be dropped as stale once `deadline` (ns) passes.
    mutating func insert(_ a: EndpointAllocation, deadline: UInt64) {
        let p = Self.position(a.slot)
        precondition(marked[p.word] & (1 << p.bit) == 0)
        marked[p.word] |= 1 << p.bit
        slots[p.index] = a.slot
        starts[p.index] = a.startNanoseconds
        deadlines[p.index] = deadline
        nodes[p.index] = a.destination.rawValue
        paths[p.index] = a.path.rawValue
        count += 1
    }

    /// The entry that starts first.
    func earliest() -> EndpointAllocation? {
        guard count > 0 else { return nil }
        var best: EndpointAllocation?
        for word in 0..<4 {
            var bits = marked[word]
            while bits != 0 {
                let index = word * 64 + bits.trailingZeroBitCount
                bits &= bits &- 1
                let slot = slots[index]
                if let b = best, starts[index] >= b.startNanoseconds { continue }
                best = EndpointAllocation(
                    slot: slot, startNanoseconds: starts[index], destination: NodeID(nodes[index]),
                    path: PathID(paths[index]))
            }
        }
        return best
    }

    /// Removes and returns one entry whose deadline is before `now`, if any.
    mutating func popExpired(before now: UInt64) -> EndpointAllocation? {
        guard count > 0 else { return nil }
        for word in 0..<4 {
            var bits = marked[word]
            while bits != 0 {
                let index = word * 64 + bits.trailingZeroBitCount
                bits &= bits &- 1
                if deadlines[index] < now {
                    marked[word] &= ~(1 << UInt64(index & 63))
                    count -= 1
                    return EndpointAllocation(
                        slot: slots[index], startNanoseconds: starts[index], destination: NodeID(nodes[index]),
                        path: PathID(paths[index]))
                }
            }
        }
        return nil
    }

    mutating func remove(slot: UInt64) {
        let p = Self.position(slot)
        if marked[p.word] & (1 << p.bit) != 0 && slots[p.index] == slot {
            marked[p.word] &= ~(1 << p.bit)
            count -= 1
        }
    }

    mutating func removeAll() {
        marked = .init(repeating: 0)
        count = 0
    }
}
