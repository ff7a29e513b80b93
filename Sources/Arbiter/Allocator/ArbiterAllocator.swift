/// The arbiter core's allocator, inline or on threads, chosen once when the core is
/// made: an enum rather than an existential, so that the core's calls are switched, not
/// dispatched through a witness table, and each case's calls into the core stay
/// specialised.
enum ArbiterAllocator: AllocatorBackend {
    case inline(InlineAllocator)
    case threaded(ThreadedAllocator)

    /// The threaded allocator, if that is the one (tests step it).
    var threaded: ThreadedAllocator? {
        if case .threaded(let t) = self { return t }
        return nil
    }

    var isThreaded: Bool {
        switch self {
        case .inline(let a): a.isThreaded
        case .threaded(let t): t.isThreaded
        }
    }

    var statistics: TimeslotAllocatorStatistics {
        switch self {
        case .inline(let a): a.statistics
        case .threaded(let t): t.statistics
        }
    }

    var nextSlot: UInt64 {
        switch self {
        case .inline(let a): a.nextSlot
        case .threaded(let t): t.nextSlot
        }
    }

    @inline(__always)
    func offer<R: AllocationReceiver>(_ demand: UnsafeMutableBufferPointer<DemandRequest>, refusalsTo receiver: R) {
        switch self {
        case .inline(let a): a.offer(demand, refusalsTo: receiver)
        case .threaded(let t): t.offer(demand, refusalsTo: receiver)
        }
    }

    func offerAgain(source: Int, destination: Int, slots: UInt32) -> Bool {
        switch self {
        case .inline(let a): a.offerAgain(source: source, destination: destination, slots: slots)
        case .threaded(let t): t.offerAgain(source: source, destination: destination, slots: slots)
        }
    }

    func withdraw(source: Int, destination: Int, slots: UInt64) -> UInt64 {
        switch self {
        case .inline(let a): a.withdraw(source: source, destination: destination, slots: slots)
        case .threaded(let t): t.withdraw(source: source, destination: destination, slots: slots)
        }
    }

    func resetSource(_ host: Int) {
        switch self {
        case .inline(let a): a.resetSource(host)
        case .threaded(let t): t.resetSource(host)
        }
    }

    func removeHost(_ host: Int) {
        switch self {
        case .inline(let a): a.removeHost(host)
        case .threaded(let t): t.removeHost(host)
        }
    }

    @inline(__always)
    func requestAgain(source: Int, destination: Int, batch: UInt64) {
        switch self {
        case .inline(let a): a.requestAgain(source: source, destination: destination, batch: batch)
        case .threaded(let t): t.requestAgain(source: source, destination: destination, batch: batch)
        }
    }

    func setSourcePinned(_ host: Int, _ on: Bool) {
        switch self {
        case .inline(let a): a.setSourcePinned(host, on)
        case .threaded(let t): t.setSourcePinned(host, on)
        }
    }

    func setSourceHeld(_ host: Int, _ on: Bool) -> Bool {
        switch self {
        case .inline(let a): a.setSourceHeld(host, on)
        case .threaded(let t): t.setSourceHeld(host, on)
        }
    }

    func advance<R: AllocationReceiver>(now: UInt64, current: UInt64, lookahead: Int, receiver: R) {
        switch self {
        case .inline(let a): a.advance(now: now, current: current, lookahead: lookahead, receiver: receiver)
        case .threaded(let t): t.advance(now: now, current: current, lookahead: lookahead, receiver: receiver)
        }
    }

    func nextDeadline(batchDue: UInt64) -> UInt64 {
        switch self {
        case .inline(let a): a.nextDeadline(batchDue: batchDue)
        case .threaded(let t): t.nextDeadline(batchDue: batchDue)
        }
    }

    // MARK: Inline only

    /// Marks a ToR↔spine link down or up (from the next batch); the topology as it is now.
    func setLink(rack: Int, spine: Int, up: Bool) throws(TopologyError) -> Topology {
        guard case .inline(let a) = self else {
            throw TopologyError(field: "pipeline", reason: "link changes need the inline allocator")
        }
        try a.allocator.setLink(rack: rack, spine: spine, up: up)
        return a.allocator.topology
    }

    /// Marks a spine down or up (from the next batch); the topology as it is now.
    func setSpine(_ spine: Int, up: Bool) throws(TopologyError) -> Topology {
        guard case .inline(let a) = self else {
            throw TopologyError(field: "pipeline", reason: "spine changes need the inline allocator")
        }
        try a.allocator.setSpine(spine, up: up)
        return a.allocator.topology
    }

    // MARK: Threads only

    /// Stops the allocator threads and waits for them; nothing inline.
    func stop() { threaded?.stop() }

    /// Allocator threads pinned to their CPUs, and those that failed to be.
    var pinning: (pinned: Int, failed: Int) { threaded?.pinning ?? (0, 0) }
}
