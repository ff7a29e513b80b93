import FixedStorage

/// Path selection for whole batches: gathers each slot's inter-rack allocations, has a
/// ``PathSelector`` assign spines, and writes them back into the ``BatchAllocations``.
/// The pipeline runs it on its own thread; the inline allocator calls it directly.
public final class PathStage: @unchecked Sendable {
    public let selector: PathSelector
    let hostCount: Int
    let rackOf: FixedBuffer<UInt16>
    let gatheredSources: FixedBuffer<UInt16>
    let gatheredDestinations: FixedBuffer<UInt16>
    let gatheredIndex: FixedBuffer<Int32>
    let assigned: FixedBuffer<Int16>
    /// Per source host: whether its inter-rack allocations are pinned to their pinned spine.
    let pinned: FixedBuffer<Bool>
    /// Hosts pinned now: batches are coloured with pins only while there are any.
    public private(set) var pinnedCount = 0
    /// Allocations that could not be routed, in total.
    public private(set) var unroutable: UInt64 = 0
    /// Inter-rack allocations routed, in total.
    public private(set) var routed: UInt64 = 0

    /// - Parameter batchSize: the allocator's batch size (most slots per batch).
    public init(topology: Topology, batchSize: Int = 16, method: PathSelector.Method = .edgeColoring) {
        selector = PathSelector(topology: topology, method: method, slotsPerCall: batchSize)
        hostCount = topology.hostCount
        rackOf = FixedBuffer(repeating: 0, count: hostCount)
        rackOf.base.update(from: topology.rackOf, count: hostCount)
        gatheredSources = FixedBuffer(repeating: 0, count: hostCount)
        gatheredDestinations = FixedBuffer(repeating: 0, count: hostCount)
        gatheredIndex = FixedBuffer(repeating: 0, count: hostCount)
        assigned = FixedBuffer(repeating: 0, count: hostCount)
        pinned = FixedBuffer(repeating: false, count: hostCount)
    }

    /// Pins the inter-rack allocations of source `host` to their pinned spine (the lowest
    /// spine usable at both racks, ``Topology/pinnedSpine(sourceRack:destinationRack:)``),
    /// or frees them, from the next batch routed. For reference endpoints, which cannot be
    /// told a path: their packets go where the switches route them. Only on the thread that
    /// routes (the pipeline's path thread takes changes from the batches instead).
    public func setSourcePinned(_ host: Int, _ on: Bool) {
        precondition(host >= 0 && host < hostCount)
        guard pinned[host] != on else { return }
        pinned[host] = on
        pinnedCount += on ? 1 : -1
    }

    /// Whether source `host` is pinned.
    public func isSourcePinned(_ host: Int) -> Bool { pinned[host] }

    /// Takes links and spines as `topology` now has them (same racks and spines).
    public func update(_ topology: Topology) {
        selector.update(topology)
    }

    /// Assigns a spine to every allocation of `batch` (``BatchAllocations/intraRack`` when
    /// none is needed, ``BatchAllocations/unroutable`` when no spine has room), after
    /// applying the pin changes the batch carries. Returns the number of unroutable
    /// allocations in the batch.
    @discardableResult
    public func route(_ batch: BatchAllocations) -> Int {
        precondition(batch.hostCount == hostCount)
        for i in 0..<batch.pinChangeCount {
            let (host, on) = batch.pinChange(i)
            setSourcePinned(host, on)
        }
        let failed: Int
        if selector.colorsWholeBatches || pinnedCount > 0 {
            // Every slot of the batch at once, in the order the allocations were made.
            // Euler split knows no pinned edges: with any, the batch is edge-coloured.
            failed = selector.assignBatch(
                entries: batch.entries.base, count: batch.totalCount, rackOf: rackOf.base, firstSlot: batch.firstSlot,
                batchSize: batch.batchSize, spinesOut: batch.spines.base,
                pinned: pinnedCount > 0 ? UnsafePointer(pinned.base) : nil)
        } else {
            failed = routeSlotBySlot(batch)
        }
        unroutable &+= UInt64(failed)
        routed &+= UInt64(batch.totalCount &- failed)
        batch.unroutableCount = failed
        return failed
    }

    /// The per-slot interface of the selector (Euler split): group by slot, gather each
    /// slot's inter-rack allocations, assign, scatter.
    private func routeSlotBySlot(_ batch: BatchAllocations) -> Int {
        var failedHere = 0
        batch.groupBySlot()
        for slot in 0..<batch.batchSize {
            let base = batch.slotStart[slot]
            let count = batch.slotStart[slot &+ 1] &- base
            var n = 0
            for i in 0..<count {
                let index = Int(batch.grouped[base &+ i])
                let hosts = batch.entries[index]
                let sr = rackOf[Int(truncatingIfNeeded: hosts & 0xFFFF)]
                let dr = rackOf[Int(truncatingIfNeeded: (hosts >> 16) & 0xFFFF)]
                if sr == dr {
                    batch.spines[index] = BatchAllocations.intraRack
                } else {
                    gatheredSources[n] = sr
                    gatheredDestinations[n] = dr
                    gatheredIndex[n] = Int32(truncatingIfNeeded: index)
                    n &+= 1
                }
            }
            guard n > 0 else { continue }
            failedHere &+= selector.assign(
                sources: UnsafeBufferPointer(start: gatheredSources.base, count: n),
                destinations: UnsafeBufferPointer(start: gatheredDestinations.base, count: n),
                slot: batch.firstSlot &+ UInt64(slot),
                spinesOut: UnsafeMutableBufferPointer(start: assigned.base, count: n))
            for e in 0..<n {
                let spine = assigned[e]
                batch.spines[Int(gatheredIndex[e])] = spine < 0 ? BatchAllocations.unroutable : spine
            }
        }
        return failedHere
    }
}
