/// The timeslot allocator run inline, on the thread that drives the arbiter core.
struct InlineAllocator: AllocatorBackend {
    let allocator: TimeslotAllocator
    let batchSize: Int

    init(_ allocator: TimeslotAllocator, batchSize: Int) {
        self.allocator = allocator
        self.batchSize = batchSize
    }

    var isThreaded: Bool { false }
    var statistics: TimeslotAllocatorStatistics { allocator.statistics }
    var nextSlot: UInt64 { allocator.nextSlot }

    func offer<R: AllocationReceiver>(_ demand: UnsafeMutableBufferPointer<DemandRequest>, refusalsTo receiver: R) {
        let refused = allocator.addDemand(demand)
        for i in 0..<refused {
            receiver.refused(
                source: Int(demand[i].source), destination: Int(demand[i].destination), slots: demand[i].slots,
                again: false)
        }
    }

    func offerAgain(source: Int, destination: Int, slots: UInt32) -> Bool {
        allocator.addDemand(source: source, destination: destination, slots: slots)
    }

    func withdraw(source: Int, destination: Int, slots: UInt64) -> UInt64 {
        allocator.withdraw(source: source, destination: destination, slots: slots)
    }

    func resetSource(_ host: Int) { allocator.resetSource(host) }

    func removeHost(_ host: Int) { allocator.removeHost(host) }

    func requestAgain(source: Int, destination: Int, batch: UInt64) {
        allocator.requestAgain(source: source, destination: destination, slots: 1)
    }

    func setSourcePinned(_ host: Int, _ on: Bool) { allocator.setSourcePinned(host, on) }

    func setSourceHeld(_ host: Int, _ on: Bool) -> Bool {
        allocator.setSourceHeld(host, on)
        return true
    }

    func advance<R: AllocationReceiver>(now: UInt64, current: UInt64, lookahead: Int, receiver: R) {
        receiver.offerRefusedAgain()
        // Slots already begun cannot be allocated any more: skip to the next batch.
        if allocator.nextSlot <= current {
            let batch = UInt64(batchSize)
            let next = (current + 1 + batch - 1) / batch * batch
            receiver.slotsSkipped(next - allocator.nextSlot)
            allocator.skip(to: next)
        }
        while allocator.nextSlot <= current + UInt64(lookahead) {
            allocateBatch(receiver)
        }
    }

    func nextDeadline(batchDue: UInt64) -> UInt64 { batchDue }

    private func allocateBatch<R: AllocationReceiver>(_ receiver: R) {
        receiver.updateControlReservation(allocator.controlReservation)
        let batch = allocator.allocateNextBatch()
        receiver.batchAllocated(unroutable: UInt64(batch.unroutableCount))
        // Withdrawals the allocator applied: the sessions report them.
        for w in 0..<batch.withdrawalCount {
            let (s, d, slots) = batch.withdrawal(w)
            receiver.withdrawn(source: s, destination: d, slots: UInt64(slots))
        }
        for i in 0..<batch.totalCount {
            let spine = batch.spine(i)
            guard spine != BatchAllocations.unroutable else { continue }  // requested again already
            let a = batch.allocation(i)
            receiver.allocated(
                slot: batch.firstSlot &+ UInt64(a.slot), source: a.source, destination: a.destination, spine: spine,
                batch: 0)
        }
    }
}
