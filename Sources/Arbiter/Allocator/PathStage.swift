/// Path selection for whole batches: gathers each slot's inter-rack allocations, has a
/// ``PathSelector`` assign spines, and writes them back into the ``BatchAllocations``.
/// The pipeline runs it on its own thread; the inline allocator calls it directly.
public final class PathStage: @unchecked Sendable {
    public let selector: PathSelector
    let hostCount: Int
    let rackOf: UnsafeMutablePointer<UInt16>
    let gatheredSources: UnsafeMutablePointer<UInt16>
    let gatheredDestinations: UnsafeMutablePointer<UInt16>
    let gatheredIndex: UnsafeMutablePointer<Int32>
    let assigned: UnsafeMutablePointer<Int16>
    /// Per source host: whether its inter-rack allocations are pinned to their pinned spine.
    let pinned: UnsafeMutablePointer<Bool>
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
        rackOf = .allocate(capacity: hostCount)
        rackOf.initialize(from: topology.rackOf, count: hostCount)
        gatheredSources = .allocate(capacity: hostCount)
        gatheredDestinations = .allocate(capacity: hostCount)
        gatheredIndex = .allocate(capacity: hostCount)
        assigned = .allocate(capacity: hostCount)
        pinned = .allocate(capacity: hostCount)
        pinned.initialize(repeating: false, count: hostCount)
    }

    deinit {
        rackOf.deallocate()
        gatheredSources.deallocate()
        gatheredDestinations.deallocate()
        gatheredIndex.deallocate()
        assigned.deallocate()
        pinned.deallocate()
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
                entries: batch.entries, count: batch.totalCount, rackOf: rackOf, firstSlot: batch.firstSlot,
                batchSize: batch.batchSize, spinesOut: batch.spines,
                pinned: pinnedCount > 0 ? UnsafePointer(pinned) : nil)
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
                sources: UnsafeBufferPointer(start: gatheredSources, count: n),
                destinations: UnsafeBufferPointer(start: gatheredDestinations, count: n),
                slot: batch.firstSlot &+ UInt64(slot),
                spinesOut: UnsafeMutableBufferPointer(start: assigned, count: n))
            for e in 0..<n {
                let spine = assigned[e]
                batch.spines[Int(gatheredIndex[e])] = spine < 0 ? BatchAllocations.unroutable : spine
            }
        }
        return failedHere
    }
}
