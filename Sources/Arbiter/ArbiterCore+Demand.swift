import FastpassProtocol

/// Demand between the sessions and the allocator: gathered from a packet and handed over
/// at once, kept when the pair table refuses it and offered again, asked for again when an
/// allocation could not be used, forgotten with a reset or a removed host.
extension ArbiterCore {
    /// Queues demand for the allocator (handed over by ``flushPending()``).
    func offer(source: Int, destination: Int, slots: UInt32) {
        if pending.isFull { flushPending() }
        pending.append(DemandRequest(source: source, destination: destination, slots: slots))
    }

    /// Hands the queued demand to the allocator; what it refuses is kept for later.
    func flushPending() {
        guard !pending.isEmpty else { return }
        allocator.offer(pending.takeAll(), refusalsTo: self)
    }

    /// Keeps demand the pair table refused, to offer it again on every advance.
    func keepRefused(source: Int, destination: Int, slots: UInt32, again: Bool = false) {
        if !again { statistics.allocatorRefusals &+= 1 }
        if !refused.append(source: source, destination: destination, slots: slots) {
            statistics.demandDropped &+= UInt64(slots)
        }
    }

    func retryRefused() {
        // Allocator threads take it all: a refusal comes back as an event and is kept again.
        refused.removeAll { s, d, slots in allocator.offerAgain(source: s, destination: d, slots: slots) }
    }

    /// Reports as withdrawn the demand `host`'s session just handed over towards removed
    /// hosts.
    func withdrawRefused(_ host: Int) {
        guard !refusedTowards.isEmpty else { return }
        guard sessions.contains(host) else { return }
        for node in refusedTowards { sessions[host].withdrawHeldDemand(towards: node) }
        refusedTowards.removeAll(keepingCapacity: true)
    }

    /// Forgets waiting demand from `host`, or (`both`) from and to it.
    func dropRetries(host: Int, both: Bool) {
        refused.removeAll { s, d, _ in s == host || (both && d == host) }
    }

    /// Offers one slot of `source`'s demand towards `destination` to the allocator again
    /// (an allocation that could not be used); `batch` is the threads' batch it came from.
    func requestAgain(source: Int, destination: Int, batch: UInt64) {
        allocator.requestAgain(source: source, destination: destination, batch: batch)
    }

    /// Withdraws `source`'s pending allocations for slots before `limit` (the session's
    /// numbering) and offers their demand to the allocator again.
    func expireUnsent(_ source: Int, before limit: UInt64) {
        // Inline allocator only. Turned off for allocator threads when it was suspected of
        // a stall under a flood of resets (an endpoint short of ~10 slots for good); that
        // stall came from purges instead (see ``AllocationStage``'s `purgedLater`), but
        // this is not measured with the threads since: there late allocations are sent
        // (and refused, and asked for again by the endpoint) as before.
        guard !allocator.isThreaded else { return }
        let state = sessions[source].schedulingState()
        expiredTowards.removeAll(keepingCapacity: true)
        let expired = sessions[source].expirePendingAllocations(before: limit) { expiredTowards.append($0) }
        guard expired > 0 else { return }
        statistics.allocationsExpiredUnsent &+= UInt64(expired)
        let batch: UInt64 = 0  // inline allocator: no batch numbers
        for node in expiredTowards {
            guard let d = numbering.host(named: node, extended: state.extended) else { continue }
            requestAgain(source: source, destination: d, batch: batch)
        }
    }
}
