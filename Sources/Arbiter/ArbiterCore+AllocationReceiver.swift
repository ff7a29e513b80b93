import FastpassProtocol

// What the allocator's batches bring, handed back by either allocator.
extension ArbiterCore: AllocationReceiver {
    @inline(__always)
    func allocated(slot: UInt64, source: Int, destination: Int, spine: Int16, batch: UInt64) {
        record(slot: slot, source: source, destination: destination, spine: spine, batch: batch)
    }

    func withdrawn(source: Int, destination: Int, slots: UInt64) {
        guard sessions.contains(source), let node = nodeID(of: destination, for: source) else { return }
        sessions[source].recordWithdrawal(destination: node, slots: slots)
        sessionChanged(source)
    }

    func refused(source: Int, destination: Int, slots: UInt32, again: Bool) {
        keepRefused(source: source, destination: destination, slots: slots, again: again)
    }

    func offerRefusedAgain() {
        if !refused.isEmpty { retryRefused() }
    }

    func batchAllocated(unroutable: UInt64) {
        statistics.batchesAllocated &+= 1
        statistics.allocationsUnroutable &+= unroutable
    }

    func updateControlReservation(_ reservation: ControlReservation) {
        let batch = configuration.allocator.batchSize
        controlTraffic?.update(reservation, topology: topology, batchSize: batch, phase: lookaheadSlots % batch)
    }

    func slotsSkipped(_ slots: UInt64) {
        statistics.slotsSkipped &+= slots
    }

    func threadResults(purged: UInt64, late: UInt64, commandsDelayed: UInt64) {
        statistics.allocationsPurged &+= purged
        statistics.allocationsLate &+= late
        statistics.commandsDelayed = commandsDelayed
    }
}
