import FixedStorage

/// What the allocator promises, checked after every batch in debug builds (the tests, the
/// simulator's tests, a debug daemon) rather than only by tests that know to look: no host
/// sends or receives twice in one timeslot, and every slot of demand is accounted for.
///
/// Each check costs in proportion to what the batch did (its allocations, the records it
/// carries on), so debug runs stay fast at any fabric size. Release builds leave it out.
struct AllocatorAudit: ~Copyable {
    /// Per host: the slots of the batch stamped in ``stamp`` it sends in, one bit per slot.
    private let sending: FixedBuffer<UInt64>
    /// Per host: the slots of that batch it receives in.
    private let receiving: FixedBuffer<UInt64>
    /// Per host: first slot + 1 of the batch its bits belong to (older bits are stale),
    /// so nothing is cleared per batch.
    private let stamp: FixedBuffer<UInt64>

    init(hostCount: Int) {
        sending = FixedBuffer(repeating: 0, count: hostCount)
        receiving = FixedBuffer(repeating: 0, count: hostCount)
        stamp = FixedBuffer(repeating: 0, count: hostCount)
    }

    /// Asserts that no host sends or receives twice in one slot of `batch` (batches are at
    /// most 64 slots: one bit each).
    func checkOnePerHostPerSlot(_ batch: BatchAllocations) {
        let current = batch.firstSlot &+ 1
        for i in 0..<batch.totalCount {
            let a = batch.allocation(i)
            let bit: UInt64 = 1 << UInt64(a.slot)
            startBatch(current, for: a.source)
            startBatch(current, for: a.destination)
            assert(
                sending[a.source] & bit == 0,
                "allocator: host \(a.source) sends twice in slot \(batch.firstSlot &+ UInt64(a.slot))")
            assert(
                receiving[a.destination] & bit == 0,
                "allocator: host \(a.destination) receives twice in slot \(batch.firstSlot &+ UInt64(a.slot))")
            sending[a.source] |= bit
            receiving[a.destination] |= bit
        }
    }

    private func startBatch(_ current: UInt64, for host: Int) {
        guard stamp[host] != current else { return }
        stamp[host] = current
        sending[host] = 0
        receiving[host] = 0
    }

    /// Asserts requested = allocated + pending + withdrawn + purged + lost, where pending is
    /// counted from where demand actually is: the records waiting for the next batch and
    /// the demand the pair words hold (kept as they change).
    static func checkAccounting(
        _ statistics: TimeslotAllocatorStatistics, waitingInPairWords: Int64, records: UnsafeBufferPointer<FlowRecord>,
        more: UnsafeBufferPointer<FlowRecord>, table: DemandTable
    ) {
        var pending = UInt64(truncatingIfNeeded: waitingInPairWords)
        for r in records where table.isCurrent(pair: r.pair) { pending &+= UInt64(r.demand) }
        for r in more where table.isCurrent(pair: r.pair) { pending &+= UInt64(r.demand) }
        let accounted =
            statistics.allocatedSlots &+ pending &+ statistics.withdrawnSlots &+ statistics.purgedSlots
            &+ statistics.lostSlots
        assert(
            statistics.requestedSlots == accounted,
            """
            allocator accounting: requested \(statistics.requestedSlots) ≠ allocated \(statistics.allocatedSlots) \
            + pending \(pending) + withdrawn \(statistics.withdrawnSlots) + purged \(statistics.purgedSlots) \
            + lost \(statistics.lostSlots)
            """)
    }
}
