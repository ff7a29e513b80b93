@testable import FastpassProtocol

/// The arbiter side of the simulation: records demand per destination and allocates one
/// slot per timeslot (the source may send one packet per slot), round robin.
struct TestAllocator: ArbiterSessionHandler {
    var pending: [NodeID: UInt64] = [:]
    var order: [NodeID] = []
    var cursor = 0
    var resets = 0
    var registrations = 0
    var refuse: FCPRefusalReason?

    mutating func endpointReset() {
        pending.removeAll()
        resets += 1
    }

    mutating func registrationRequested(_ hello: FCPHello) -> FCPRegistrationDecision {
        registrations += 1
        if let refuse { return .refuse(refuse) }
        return .accept(hello.node ?? NodeID(0))
    }

    mutating func demandIncreased(destination: NodeID, by slots: UInt64) {
        if pending[destination] == nil { order.append(destination) }
        pending[destination, default: 0] += slots
    }

    mutating func withdrawalRequested(destination: NodeID, upTo slots: UInt64) -> UInt64 {
        let w = min(slots, pending[destination] ?? 0)
        pending[destination, default: 0] -= w
        return w
    }

    mutating func nextDestination() -> NodeID? {
        guard !order.isEmpty else { return nil }
        for k in 0..<order.count {
            let d = order[(cursor + k) % order.count]
            if (pending[d] ?? 0) > 0 {
                cursor = (cursor + k + 1) % order.count
                return d
            }
        }
        return nil
    }
}

/// FNV-1a, to fingerprint a run.
struct TraceHash {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325
    mutating func add(_ bytes: some Sequence<UInt8>) {
        for b in bytes { value = (value ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
    }
    mutating func add(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { add($0) } }
}

/// One endpoint and its arbiter session exchanging real FCP bytes over two lossy
/// channels on a virtual clock, with demand, give-backs and forced resets from a seed.
struct SessionPairSimulation {
    struct Settings {
        var seed: UInt64
        var extended: Bool
        var authenticated = false
        var lossRate = 0.10
        var duplicationRate = 0.05
        var baseDelay: UInt64 = 3_000
        var jitter: UInt64 = 8_000
        /// Stop adding demand after this many packets have been sent in total.
        var packetTarget = 100_000
        var destinations = 24
        /// Mean time between forced resets (ns); 0 disables them.
        var meanResetInterval: UInt64 = 15_000_000
        var giveBackRate = 0.05
        var sendGap: UInt64 = 2_000
        var lookahead: UInt64 = 6
    }

    struct Outcome {
        var packets = 0
        var demandAdded: [NodeID: UInt64] = [:]
        var used: [NodeID: UInt64] = [:]
        var withdrawn: UInt64 = 0
        /// Slots the endpoint gave back (no longer needed).
        var gaveBack: [NodeID: UInt64] = [:]
        var resets = 0
        var doubleBookedSlots = 0
        var unfinishedDestinations: [NodeID] = []
        var endpointStatistics = EndpointSessionStatistics()
        var arbiterStatistics = ArbiterSessionStatistics()
        var endpointConnection = FCPConnectionStatistics()
        var arbiterConnection = FCPConnectionStatistics()
        var trace: UInt64 = 0
        var finishedAt: UInt64 = 0
        var negotiation: EndpointNegotiation = .reference
        /// Cross-checks between the two sides that failed (same reset epoch on both).
        var violations: [String] = []
    }

    static let start: UInt64 = 1_700_000_000_000_000_000
    static let key = FCPAuthenticator(hexKey: "000102030405060708090a0b0c0d0e0f")!

    static func run(_ s: Settings) -> Outcome {
        var random = SeededRandom(seed: s.seed)
        var now = start

        var epConfig = EndpointSessionConfiguration()
        epConfig.mode = s.extended ? .extended(fallbackToReference: false) : .reference
        epConfig.capabilities = s.authenticated ? .all : [.epochFencing, .announcedClock, .wideCounters, .giveBack]
        epConfig.node = NodeID(1000)
        if s.authenticated {
            epConfig.authenticator = key
            epConfig.requireAuthentication = true
        }
        var arConfig = ArbiterSessionConfiguration()
        arConfig.slotOrigin = start - 5_000_000_000
        arConfig.timeslotPicoseconds = 1_200_000
        arConfig.epoch = 7
        if s.authenticated {
            arConfig.authenticator = key
            arConfig.requireAuthentication = true
        }
        precondition(epConfig.problem == nil && arConfig.problem == nil)

        var endpoint = EndpointSession(configuration: epConfig, now: now)
        var arbiter = ArbiterSession(configuration: arConfig, now: now - 3_000_000_000)
        var allocator = TestAllocator()
        var toArbiter = LossyChannel(
            lossRate: s.lossRate, duplicationRate: s.duplicationRate, baseDelay: s.baseDelay, jitter: s.jitter)
        var toEndpoint = LossyChannel(
            lossRate: s.lossRate, duplicationRate: s.duplicationRate, baseDelay: s.baseDelay, jitter: s.jitter)
        var outcome = Outcome()
        var trace = TraceHash()
        var buffer = [UInt8](repeating: 0, count: 1500)
        var endpointNextSend: UInt64 = 0
        var arbiterNextSend: UInt64 = 0
        var nextAllocationSlot: UInt64 = 0
        var allocatingWithClock: Bool?
        var usedSlots = Set<UInt64>()
        var nextReset = s.meanResetInterval > 0 ? now + random.next() % (2 * s.meanResetInterval) : .max
        let step: UInt64 = 500
        let deadline = now + 2_000_000_000

        func arbiterSlot(_ now: UInt64, clock: Bool) -> UInt64 {
            clock
                ? (now - arConfig.slotOrigin) * 1000 / UInt64(arConfig.timeslotPicoseconds)
                : ReferenceTimeslot.slot(atNanoseconds: now)
        }

        while now < deadline {
            now += step
            for p in toArbiter.deliver(upTo: now) {
                _ = p.withUnsafeBytes { arbiter.receive($0, now: now, handler: &allocator) }
            }
            for p in toEndpoint.deliver(upTo: now) {
                _ = p.withUnsafeBytes { endpoint.receive($0, now: now) }
            }
            if let d = endpoint.timerDeadline, d <= now { endpoint.handleTimeout(now: now) }
            if let d = arbiter.timerDeadline, d <= now { arbiter.handleTimeout(now: now, handler: &allocator) }

            // Allocate the slots that came within the lookahead since the last step.
            let clock = arbiter.negotiation.granted.contains(.announcedClock)
            let current = arbiterSlot(now, clock: clock)
            if allocatingWithClock != clock {
                allocatingWithClock = clock
                nextAllocationSlot = current + s.lookahead
                usedSlots.removeAll()
            }
            while nextAllocationSlot <= current + s.lookahead {
                if let d = allocator.nextDestination(),
                    arbiter.recordAllocation(slot: nextAllocationSlot, destination: d, path: PathID(0))
                {
                    allocator.pending[d]! -= 1
                }
                nextAllocationSlot += 1
            }

            while let a = endpoint.takeAllocation(dueBy: now) {
                if !usedSlots.insert(a.slot).inserted { outcome.doubleBookedSlots += 1 }
                outcome.used[a.destination, default: 0] += 1
                trace.add(a.slot)
                trace.add(UInt64(a.destination.rawValue))
            }

            // When both sides are in the same epoch, the arbiter never knows of more demand
            // than the endpoint requested.
            if (now / step) % 32 == 0, outcome.violations.count < 20,
                endpoint.connection.lastResetTime == arbiter.connection.lastResetTime
            {
                for f in endpoint.flows {
                    let allocated = arbiter.destination(f.destination)?.allocated ?? 0
                    if f.received > allocated {
                        outcome.violations.append(
                            "t=\((now - start) / 1000)us \(f.destination): endpoint received \(f.received) > arbiter allocated \(allocated) (reported \(f.reported), requested \(f.requested))"
                        )
                    }
                }
                for a in arbiter.destinations {
                    let requested = endpoint.flow(to: a.destination)?.requested ?? 0
                    if a.requested > requested {
                        outcome.violations.append(
                            "t=\((now - start) / 1000)us \(a.destination): arbiter requested \(a.requested) > endpoint requested \(requested)"
                        )
                    }
                }
            }

            let packets = toArbiter.sent + toEndpoint.sent
            if packets < s.packetTarget && random.chance(0.02) {
                let d = NodeID(UInt32(1 + random.next() % UInt64(s.destinations)))
                let n = 1 + random.next() % 24
                if endpoint.addDemand(to: d, slots: n) { outcome.demandAdded[d, default: 0] += n }
            }
            if s.extended && packets < s.packetTarget && random.chance(s.giveBackRate * 0.02) {
                let d = NodeID(UInt32(1 + random.next() % UInt64(s.destinations)))
                let k = endpoint.withdrawDemand(to: d, slots: 1 + random.next() % 8)
                outcome.gaveBack[d, default: 0] += k
            }
            if now >= nextReset && packets < s.packetTarget {
                if random.chance(0.5) {
                    endpoint.forceReset(now: now)
                } else {
                    arbiter.forceReset(now: now, handler: &allocator)
                }
                outcome.resets += 1
                nextReset = now + 1 + random.next() % (2 * s.meanResetInterval)
            }

            if endpoint.wantsToSend && now >= endpointNextSend {
                let r = buffer.withUnsafeMutableBytes { endpoint.send(now: now, into: $0) }
                if case .success(let n) = r {
                    let bytes = Array(buffer[0..<n])
                    trace.add(bytes)
                    toArbiter.send(bytes, now: now, random: &random)
                }
                endpointNextSend = now + s.sendGap
            }
            if arbiter.wantsToSend && now >= arbiterNextSend {
                let r = buffer.withUnsafeMutableBytes { arbiter.send(now: now, into: $0) }
                if case .success(let n) = r {
                    let bytes = Array(buffer[0..<n])
                    trace.add(bytes)
                    toEndpoint.send(bytes, now: now, random: &random)
                }
                arbiterNextSend = now + s.sendGap
            }

            if packets >= s.packetTarget && (now / step) % 64 == 0 && endpoint.scheduledCount == 0
                && endpoint.flows.allSatisfy({ $0.need == 0 })
                && allocator.pending.values.allSatisfy({ $0 == 0 }) && arbiter.pendingAllocationCount == 0
            {
                break
            }
        }
        outcome.finishedAt = now
        outcome.packets = toArbiter.sent + toEndpoint.sent
        outcome.withdrawn = endpoint.statistics.slotsWithdrawn
        outcome.unfinishedDestinations = endpoint.flows.filter { $0.need > 0 }.map(\.destination)
        outcome.endpointStatistics = endpoint.statistics
        outcome.arbiterStatistics = arbiter.statistics
        outcome.endpointConnection = endpoint.connection.statistics
        outcome.arbiterConnection = arbiter.connection.statistics
        outcome.negotiation = endpoint.negotiation
        outcome.trace = trace.value
        return outcome
    }
}
