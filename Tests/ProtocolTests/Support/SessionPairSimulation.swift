import TestSupport

@testable import FastpassProtocol

/// A direct pair's endpoint and arbiter sessions exchanging real FCP bytes over a lossy,
/// duplicating, reordering control network, with demand, give-backs and forced resets from
/// a seed.
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

    static let start = DirectPair.t0
    static let key = FCPAuthenticator(hexKey: "000102030405060708090a0b0c0d0e0f")!

    static func run(_ s: Settings) -> Outcome {
        // The network's generator drives the whole run: demand, resets, loss and jitter
        // draw from one stream, so a seed replays all of it. This suite's seeds are the
        // generator's raw state.
        var network = VirtualControlNetwork(
            latency: s.baseDelay, jitter: s.jitter, lossRate: s.lossRate, duplicationRate: s.duplicationRate,
            random: TestRandom(state: s.seed))
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
        var pair = DirectPair(endpoint: epConfig, arbiter: arConfig)
        var outcome = Outcome()
        var trace = TraceHash()
        var endpointNextSend: UInt64 = 0
        var arbiterNextSend: UInt64 = 0
        var nextAllocationSlot: UInt64 = 0
        var allocatingWithClock: Bool?
        var usedSlots = Set<UInt64>()
        var nextReset = s.meanResetInterval > 0 ? now + network.random.next() % (2 * s.meanResetInterval) : .max
        let step: UInt64 = 500
        let deadline = now + 2_000_000_000

        func arbiterSlot(_ now: UInt64, clock: Bool) -> UInt64 {
            clock
                ? (now - arConfig.slotOrigin) * 1000 / UInt64(arConfig.timeslotPicoseconds)
                : ReferenceTimeslot.slot(atNanoseconds: now)
        }

        while now < deadline {
            now += step
            pair.now = now
            for p in network.deliver(upTo: now, where: { $0 == .arbiter }) { pair.deliverToArbiter(p.bytes) }
            for p in network.deliver(upTo: now, where: { $0 == .host(0) }) { pair.deliverToEndpoint(p.bytes) }
            if let d = pair.endpoint.timerDeadline, d <= now { pair.endpoint.handleTimeout(now: now) }
            if let d = pair.arbiter.timerDeadline, d <= now {
                pair.arbiter.handleTimeout(now: now, handler: &pair.handler)
            }

            // Allocate the slots that came within the lookahead since the last step.
            let clock = pair.arbiter.negotiation.granted.contains(.announcedClock)
            let current = arbiterSlot(now, clock: clock)
            if allocatingWithClock != clock {
                allocatingWithClock = clock
                nextAllocationSlot = current + s.lookahead
                usedSlots.removeAll()
            }
            while nextAllocationSlot <= current + s.lookahead {
                if let d = pair.handler.nextDestination(),
                    pair.arbiter.recordAllocation(slot: nextAllocationSlot, destination: d, path: PathID(0))
                {
                    pair.handler.pending[d]! -= 1
                }
                nextAllocationSlot += 1
            }

            while let a = pair.endpoint.takeAllocation(dueBy: now) {
                if !usedSlots.insert(a.slot).inserted { outcome.doubleBookedSlots += 1 }
                outcome.used[a.destination, default: 0] += 1
                trace.add(a.slot)
                trace.add(UInt64(a.destination.rawValue))
            }

            // When both sides are in the same epoch, the arbiter never knows of more demand
            // than the endpoint requested.
            if (now / step) % 32 == 0, outcome.violations.count < 20,
                pair.endpoint.connection.lastResetTime == pair.arbiter.connection.lastResetTime
            {
                for f in pair.endpoint.flows {
                    let allocated = pair.arbiter.destination(f.destination)?.allocated ?? 0
                    if f.received > allocated {
                        outcome.violations.append(
                            "t=\((now - start) / 1000)us \(f.destination): endpoint received \(f.received) > arbiter allocated \(allocated) (reported \(f.reported), requested \(f.requested))"
                        )
                    }
                }
                for a in pair.arbiter.destinations {
                    let requested = pair.endpoint.flow(to: a.destination)?.requested ?? 0
                    if a.requested > requested {
                        outcome.violations.append(
                            "t=\((now - start) / 1000)us \(a.destination): arbiter requested \(a.requested) > endpoint requested \(requested)"
                        )
                    }
                }
            }

            let packets = network.sent
            if packets < s.packetTarget && network.random.chance(0.02) {
                let d = NodeID(UInt32(1 + network.random.next() % UInt64(s.destinations)))
                let n = 1 + network.random.next() % 24
                if pair.endpoint.addDemand(to: d, slots: n) { outcome.demandAdded[d, default: 0] += n }
            }
            if s.extended && packets < s.packetTarget && network.random.chance(s.giveBackRate * 0.02) {
                let d = NodeID(UInt32(1 + network.random.next() % UInt64(s.destinations)))
                let k = pair.endpoint.withdrawDemand(to: d, slots: 1 + network.random.next() % 8)
                outcome.gaveBack[d, default: 0] += k
            }
            if now >= nextReset && packets < s.packetTarget {
                if network.random.chance(0.5) {
                    pair.endpoint.forceReset(now: now)
                } else {
                    pair.arbiter.forceReset(now: now, handler: &pair.handler)
                }
                outcome.resets += 1
                nextReset = now + 1 + network.random.next() % (2 * s.meanResetInterval)
            }

            if pair.endpoint.wantsToSend && now >= endpointNextSend {
                if case .success(let bytes) = pair.endpointSend() {
                    trace.add(bytes)
                    network.send(bytes, from: .host(0), to: .arbiter, now: now)
                }
                endpointNextSend = now + s.sendGap
            }
            if pair.arbiter.wantsToSend && now >= arbiterNextSend {
                if case .success(let bytes) = pair.arbiterSend() {
                    trace.add(bytes)
                    network.send(bytes, from: .arbiter, to: .host(0), now: now)
                }
                arbiterNextSend = now + s.sendGap
            }

            if packets >= s.packetTarget && (now / step) % 64 == 0 && pair.endpoint.scheduledCount == 0
                && pair.endpoint.flows.allSatisfy({ $0.need == 0 })
                && pair.handler.pending.values.allSatisfy({ $0 == 0 }) && pair.arbiter.pendingAllocationCount == 0
            {
                break
            }
        }
        outcome.finishedAt = now
        outcome.packets = network.sent
        outcome.withdrawn = pair.endpoint.statistics.slotsWithdrawn
        outcome.unfinishedDestinations = pair.endpoint.flows.filter { $0.need > 0 }.map(\.destination)
        outcome.endpointStatistics = pair.endpoint.statistics
        outcome.arbiterStatistics = pair.arbiter.statistics
        outcome.endpointConnection = pair.endpoint.connection.statistics
        outcome.arbiterConnection = pair.arbiter.connection.statistics
        outcome.negotiation = pair.endpoint.negotiation
        outcome.trace = trace.value
        return outcome
    }
}
