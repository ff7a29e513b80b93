import FastpassProtocol

/// What an operator (or the daemon on its behalf) does to a running arbiter: look at a
/// session, remove a host that went away, take links and spines out of service.
extension ArbiterCore {
    /// The session of the host at `address`, if it has sent anything.
    public func session(forAddress address: UInt32) -> ArbiterSession? {
        topology.index(ofAddress: address).flatMap { sessions.contains($0) ? sessions[$0] : nil }
    }

    /// The host at `address` went away: its session ends, all demand from and to it is
    /// purged from the allocator, and demand towards it is withdrawn (and reported to its
    /// senders) until it is heard from again.
    public func removeHost(address: UInt32) {
        guard let host = topology.index(ofAddress: address) else { return }
        if sessions.contains(host) { budget.sessionEnded() }
        sessions.remove(host)
        removed[host] = true
        hold(host, false)
        holds.answered(host)
        timers.forget(host)
        flushPending()
        allocator.removeHost(host)
        // No session, no demand: nothing to pin until it speaks again.
        pinSource(host, false)
        dropRetries(host: host, both: true)
        // The other endpoints' demand towards it is gone from the allocator: their
        // sessions report it withdrawn, so no flow waits for slots that will not come.
        for s in 0..<hostCount where sessions.contains(s) {
            guard let node = nodeID(of: host, for: s) else { continue }
            if sessions[s].withdrawHeldDemand(towards: node) > 0 { sessionChanged(s) }
        }
    }

    /// Marks a ToR↔spine link down or up (from the next batch).
    /// Needs the inline allocator.
    public func setLink(rack: Int, spine: Int, up: Bool) throws(TopologyError) {
        topology = try allocator.setLink(rack: rack, spine: spine, up: up)
    }

    /// Marks a spine down or up (from the next batch).
    /// Needs the inline allocator.
    public func setSpine(_ spine: Int, up: Bool) throws(TopologyError) {
        topology = try allocator.setSpine(spine, up: up)
    }

    /// The allocator's counters.
    public var allocatorStatistics: TimeslotAllocatorStatistics { allocator.statistics }
}
