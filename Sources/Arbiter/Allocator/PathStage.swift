/// Path selection for whole batches: gathers each slot's inter-rack allocations, has a
/// ``PathSelector`` assign spines, and writes them back into the ``BatchAllocations``.
/// The pipeline runs it on its own thread; the inline allocator calls it directly.
public final class PathStage: @unchecked Sendable {
    public private(set) var selector: PathSelector
    let hostCount: Int
    let rackOf: UnsafeMutablePointer<UInt16>
    let gatheredSources: UnsafeMutablePointer<UInt16>
    let gatheredDestinations: UnsafeMutablePointer<UInt16>
    let gatheredIndex: UnsafeMutablePointer<Int32>
    let assigned: UnsafeMutablePointer<Int16>
    /// Allocations that could not be routed, in total.
    public private(set) var unroutable: UInt64 = 0
    /// Inter-rack allocations routed, in total.
    public private(set) var routed: UInt64 = 0

    public init(topology: Topology) {
        selector = PathSelector(topology: topology)
        hostCount = topology.hostCount
        rackOf = .allocate(capacity: hostCount)
        rackOf.initialize(from: topology.rackOf, count: hostCount)
        gatheredSources = .allocate(capacity: hostCount)
        gatheredDestinations = .allocate(capacity: hostCount)
        gatheredIndex = .allocate(capacity: hostCount)
        assigned = .allocate(capacity: hostCount)
    }

    deinit {
        rackOf.deallocate()
        gatheredSources.deallocate()
        gatheredDestinations.deallocate()
        gatheredIndex.deallocate()
        assigned.deallocate()
    }

    /// Takes links and spines as `topology` now has them (not on the hot path: it
    /// rebuilds the selector).
    public func update(_ topology: Topology) {
        selector.update(topology)
    }

    /// Assigns a spine to every allocation of `batch` (``BatchAllocations/intraRack`` when
    /// none is needed, ``BatchAllocations/unroutable`` when no spine has room). Returns the
    /// number of unroutable allocations in the batch.
    @discardableResult
    public func route(_ batch: BatchAllocations) -> Int {
        precondition(batch.hostCount == hostCount)
        var unroutableHere = 0
        var routedHere = 0
        batch.groupBySlot()
        for slot in 0..<batch.batchSize {
            let base = batch.slotStart[slot]
            let count = batch.slotStart[slot &+ 1] &- base
            var n = 0
            for i in 0..<count {
                let hosts = batch.grouped[base &+ i]
                let sr = rackOf[Int(hosts & 0xFFFF)]
                let dr = rackOf[Int(hosts >> 16)]
                if sr == dr {
                    batch.spines[base &+ i] = BatchAllocations.intraRack
                } else {
                    gatheredSources[n] = sr
                    gatheredDestinations[n] = dr
                    gatheredIndex[n] = Int32(truncatingIfNeeded: i)
                    n &+= 1
                }
            }
            guard n > 0 else { continue }
            let failed = selector.assign(
                sources: UnsafeBufferPointer(start: gatheredSources, count: n),
                destinations: UnsafeBufferPointer(start: gatheredDestinations, count: n),
                slot: batch.firstSlot &+ UInt64(slot),
                spinesOut: UnsafeMutableBufferPointer(start: assigned, count: n))
            unroutableHere &+= failed
            routedHere &+= n &- failed
            for e in 0..<n {
                let spine = assigned[e]
                batch.spines[base &+ Int(gatheredIndex[e])] = spine < 0 ? BatchAllocations.unroutable : spine
            }
        }
        unroutable &+= UInt64(unroutableHere)
        routed &+= UInt64(routedHere)
        batch.unroutableCount = unroutableHere
        return unroutableHere
    }
}
