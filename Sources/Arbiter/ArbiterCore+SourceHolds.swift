import FastpassProtocol

/// Sources the allocator treats apart: held back while they do not answer (inline
/// allocator), or pinned to their pinned spine while they cannot be told a path.
extension ArbiterCore {
    /// Holds `host` back from allocation, or lets it go (inline allocator only).
    func hold(_ host: Int, _ on: Bool) {
        guard holds.isHeld(host) != on, allocator.setSourceHeld(host, on) else { return }
        if on {
            statistics.sourcesHeld &+= 1
            holds.insert(host, now: clock)
        } else {
            holds.remove(host)
        }
    }

    /// Holds last at most this long (ns): 4 lookaheads, about 240 µs at 10 Gbit/s, beyond
    /// the 200 µs after which an endpoint's own unacknowledged packets time out and it
    /// speaks again anyway.
    var holdLimitNanoseconds: UInt64 { 4 &* UInt64(lookaheadCeiling) &* timeslotPicoseconds / 1000 }

    /// Ends the holds that reached their limit.
    func releaseExpiredHolds(now: UInt64) {
        while let host = holds.firstExpired(now: now, limit: holdLimitNanoseconds) { hold(host, false) }
    }

    /// The spine path selection books for a pinned source's allocation, or -1.
    func pinnedSpine(source: Int, destination: Int) -> Int {
        topology.pinnedSpine(
            sourceRack: Int(topology.rackOf[source]), destinationRack: Int(topology.rackOf[destination])) ?? -1
    }

    /// Tells the allocator whether `host`'s inter-rack allocations are pinned to their
    /// pinned spine, when that changed: inline, from the next batch; to the allocator
    /// threads through the command ring, in order with the demand and purges sent.
    func pinSource(_ host: Int, _ on: Bool) {
        guard pinned[host] != on else { return }
        pinned[host] = on
        allocator.setSourcePinned(host, on)
    }
}
