import FastpassProtocol

/// The arbiter core's side of one session's requests: resets, registrations, demand and
/// withdrawals, passed on to the allocator. The session calls it back, in the order
/// reset, registration, demand; it must not look at the session, which is busy.
struct SessionRequestHandler: ArbiterSessionHandler {
    unowned let core: ArbiterCore
    let source: Int
    /// Whether the endpoint is registered: its destination ids are topology node ids.
    var extended: Bool

    mutating func endpointReset() {
        core.flushPending()
        extended = false
        // Back to reference until a HELLO registers it. Pinned before the purge, so
        // that no batch holds the new epoch's demand unpinned.
        core.pinSource(source, true)
        core.statistics.endpointResets &+= 1
        core.allocator.resetSource(source)
        core.dropRetries(host: source, both: false)
    }

    mutating func registrationRequested(_ hello: FCPHello) -> FCPRegistrationDecision {
        let decision = decide(hello)
        // Only WIDE-ALLOC names a path: anything else is pinned, decided before the
        // demand this packet may carry is handed over.
        var clock = false
        if case .accept = decision {
            clock = hello.capabilities.intersection(core.configuration.session.supportedCapabilities).contains(
                .announcedClock)
        }
        core.pinSource(source, !clock)
        return decision
    }

    private mutating func decide(_ hello: FCPHello) -> FCPRegistrationDecision {
        let t = core.topology
        // The endpoint is the host its packets come from; what it states must agree.
        extended = false
        if let node = hello.node {
            guard let h = t.index(of: node) else {
                core.statistics.refusals &+= 1
                return .refuse(.unknownIdentity)
            }
            guard h == source else {
                core.statistics.refusals &+= 1
                return .refuse(.identityMismatch)
            }
        }
        if let address = hello.address, address != t.addresses[source] {
            core.statistics.refusals &+= 1
            return .refuse(t.index(ofAddress: address) == nil ? .unknownIdentity : .identityMismatch)
        }
        // Without the announced clock the endpoint counts reference slots and reads
        // 16-bit destinations with a 2-bit path: only a fabric built for reference
        // endpoints can be told its allocations that way.
        let granted = hello.capabilities.intersection(core.configuration.session.supportedCapabilities)
        if !granted.contains(.announcedClock) && !core.numbering.referenceNumberingWorks {
            core.statistics.refusals &+= 1
            return .refuse(.unsupportedVersion)
        }
        core.statistics.registrations &+= 1
        extended = true
        return .accept(t.nodeIDs[source])
    }

    mutating func demandIncreased(destination: NodeID, by slots: UInt64) {
        guard let d = core.host(named: destination, extended: extended) else {
            core.statistics.demandToUnknownDestination &+= 1
            return
        }
        guard d != source else {
            core.statistics.demandToSelf &+= 1
            return
        }
        guard !core.removed[d] else {
            // Withdrawn (and reported) once the session is free: the host went away.
            core.statistics.demandToRemovedHost &+= slots
            core.refusedTowards.append(destination)
            return
        }
        // In parts the pair word can always take (its added field is 31 bits).
        var rest = slots
        while rest > 0 {
            let part = UInt32(min(rest, 1 << 30))
            core.offer(source: source, destination: d, slots: part)
            rest -= UInt64(part)
        }
    }

    mutating func withdrawalRequested(destination: NodeID, upTo slots: UInt64) -> UInt64 {
        guard let d = core.host(named: destination, extended: extended) else { return 0 }
        core.flushPending()
        // Allocator threads withdraw none at once: all of it is reported as they apply it.
        return core.allocator.withdraw(source: source, destination: d, slots: slots)
    }
}
