import FastpassArbiter
import FastpassProtocol
import TestSupport
import Testing

@testable import FastpassAgent

/// An IPv4 packet of `length` bytes from `source` to `destination`.
func ipv4(
    from source: UInt32 = 0x0A00_0001, to destination: UInt32, length: Int = 100, proto: UInt8 = 6, dscp: UInt8 = 0
) -> [UInt8] {
    var p = [UInt8](repeating: 0, count: length)
    p[0] = 0x45
    p[1] = dscp << 2
    p[2] = UInt8(length >> 8)
    p[3] = UInt8(length & 0xFF)
    p[8] = 64
    p[9] = proto
    for k in 0..<4 {
        p[12 + k] = UInt8((source >> UInt32(24 - 8 * k)) & 0xFF)
        p[16 + k] = UInt8((destination >> UInt32(24 - 8 * k)) & 0xFF)
    }
    return p
}

@Suite("Agent core")
struct AgentCoreTests {
    /// Agents for every host of `topology` and the arbiter core, on a control network with
    /// 2 µs of latency each way, stepped every `step` ns.
    struct Fabric {
        var core: ArbiterCore
        var agents: [AgentCore]
        let topology: Topology
        var now: UInt64 = 1_000_000_000
        var control = VirtualControlNetwork(latency: 2_000)
        var buffer = [UInt8](repeating: 0, count: 2048)
        /// What each host released: (host, release).
        var released: [(host: Int, release: AgentRelease, at: UInt64)] = []
        /// What each host sent unscheduled, and the state changes its core reported.
        var unscheduled: [(host: Int, release: AgentRelease, at: UInt64)] = []
        var transitions: [(host: Int, transition: AgentTransition, at: UInt64)] = []

        init(
            topology: Topology, lead: UInt64 = 0, slotBytes: Int = 1500, lateLimit: UInt64? = nil,
            unreachableAfter: UInt64? = nil, arbiter: ArbiterCoreConfiguration = .init()
        ) throws {
            self.topology = topology
            core = try ArbiterCore(topology: topology, configuration: arbiter, now: now)
            agents = []
            for h in 0..<topology.hostCount {
                var s = EndpointSessionConfiguration()
                s.node = topology.nodeIDs[h]
                s.address = topology.addresses[h]
                let peers = (0..<topology.hostCount).filter { $0 != h }.map {
                    AgentPeer(address: topology.addresses[$0], node: topology.nodeIDs[$0])
                }
                var c = AgentConfiguration(session: s, address: topology.addresses[h], peers: peers)
                c.releaseLeadNanoseconds = lead
                c.slotBytes = slotBytes
                c.lateReleaseLimitNanoseconds = lateLimit
                c.unreachableAfterNanoseconds = unreachableAfter
                agents.append(try AgentCore(configuration: c, now: now))
            }
        }

        /// Peer index of host `d` in host `h`'s configuration.
        func peer(_ d: Int, of h: Int) -> Int { d < h ? d : d - 1 }
        func host(peer p: Int, of h: Int) -> Int { p < h ? p : p + 1 }

        mutating func run(for duration: UInt64, step: UInt64 = 500) {
            let end = now + duration
            while now < end {
                now += step
                for p in control.deliver(upTo: now) {
                    p.bytes.withUnsafeBytes { raw in
                        if p.toArbiter {
                            core.receive(raw, from: topology.addresses[p.host], now: now)
                        } else {
                            agents[p.host].receive(raw, now: now)
                        }
                    }
                }
                core.advance(now: now)
                while let (address, length) = buffer.withUnsafeMutableBytes({ core.nextPacket(now: now, into: $0) }) {
                    let h = topology.index(ofAddress: address)!
                    control.send(Array(buffer[0..<length]), from: .arbiter, to: .host(h), now: now)
                }
                for h in 0..<agents.count {
                    agents[h].advance(now: now)
                    if let t = agents[h].takeTransition() { transitions.append((h, t, now)) }
                    if let t = agents[h].checkReachability(now: now) { transitions.append((h, t, now)) }
                    if agents[h].sendsUnscheduled {
                        while let r = agents[h].takeUnscheduled() { unscheduled.append((h, r, now)) }
                    }
                    while let n = buffer.withUnsafeMutableBytes({ agents[h].nextControlPacket(now: now, into: $0) }) {
                        control.send(Array(buffer[0..<n]), from: .host(h), to: .arbiter, now: now)
                    }
                    while let r = agents[h].nextRelease(now: now) { released.append((h, r, now)) }
                }
            }
        }
    }

    @Test("packets reach their slot exactly once, in order, one slot per host per slot each way, never early")
    func endToEnd() throws {
        let topology = try Topology(TopologyConfiguration.regular(racks: 2, hostsPerRack: 4, spines: 2))
        let lead: UInt64 = 300
        var fabric = try Fabric(topology: topology, lead: lead)
        var random = TestRandom(seed: 11)
        var sent: [Int: [UInt32]] = [:]  // source * 64 + destination → handles in order
        var handle: UInt32 = 0
        for _ in 0..<3 {
            for h in 0..<topology.hostCount {
                for _ in 0..<40 {
                    var d = random.below(topology.hostCount - 1)
                    if d >= h { d += 1 }
                    // Mostly full-size packets, some small ones that share a slot.
                    let length = random.below(4) == 0 ? 40 + random.below(400) : 1500
                    let packet = ipv4(from: topology.addresses[h], to: topology.addresses[d], length: length)
                    let c = packet.withUnsafeBytes { fabric.agents[h].classify($0) }
                    #expect(c == .schedule(peer: fabric.peer(d, of: h)))
                    handle += 1
                    #expect(
                        fabric.agents[h].enqueue(handle: handle, length: length, peer: fabric.peer(d, of: h)) == .queued
                    )
                    sent[h * 64 + d, default: []].append(handle)
                }
            }
            fabric.run(for: 400_000)
        }
        fabric.run(for: 2_000_000)

        var got: [Int: [UInt32]] = [:]
        var sourceSlots: [UInt64: Int] = [:]  // slot << 8 | source → destination
        var destinationSlots: [UInt64: Int] = [:]  // slot << 8 | destination → source
        for (h, r, at) in fabric.released {
            let d = fabric.host(peer: r.peer, of: h)
            got[h * 64 + d, default: []].append(r.handle)
            // Never before the slot (minus the lead); one destination per source per slot,
            // one source per destination per slot.
            #expect(at + lead >= r.slotStart, "host \(h) released \(r.slotStart - at - lead) ns early")
            if let other = sourceSlots.updateValue(d, forKey: r.slot << 8 | UInt64(h)) {
                #expect(other == d, "host \(h) sends to \(other) and \(d) in slot \(r.slot)")
            }
            if let other = destinationSlots.updateValue(h, forKey: r.slot << 8 | UInt64(d)) {
                #expect(other == h, "host \(d) receives from \(other) and \(h) in slot \(r.slot)")
            }
            if topology.rackOf[h] != topology.rackOf[d] { #expect(Int(r.path.rawValue) < topology.spineCount) }
        }
        #expect(got == sent, "released \(got.values.map(\.count).reduce(0, +)) of \(handle) packets")
        for h in 0..<topology.hostCount {
            let s = fabric.agents[h].statistics
            #expect(fabric.agents[h].queuedPackets == 0)
            #expect(s.slotsRequested == s.slotsUsed, "host \(h): every slot asked for carried packets")
            #expect(s.allocationsUnused == 0 && s.allocationsForUnknownPeers == 0)
            #expect(s.packetsReleased == UInt64(sent.filter { $0.key / 64 == h }.map(\.value.count).reduce(0, +)))
            // Small packets share slots: fewer slots than packets.
            #expect(s.slotsUsed < s.packetsReleased)
            #expect(s.lateness.indices.map { s.lateness[$0] }.reduce(0, +) == s.packetsReleased)
        }
    }

    @Test(
        "a budget of 1 000 packets/s per agent: agents keep to it, the arbiter counts nothing above it, every packet leaves"
    )
    func pacedByTheBudget() throws {
        let topology = try Topology(TopologyConfiguration.regular(racks: 2, hostsPerRack: 2, spines: 2))
        var arbiter = ArbiterCoreConfiguration()
        arbiter.controlPacketsPerSecond = 4_000
        var fabric = try Fabric(topology: topology, arbiter: arbiter)
        var handle: UInt32 = 0
        // 40 ms of packets to every other host every 100 µs: demand changes 30 000 times.
        for _ in 0..<400 {
            for h in 0..<topology.hostCount {
                for d in 0..<topology.hostCount where d != h {
                    handle += 1
                    let queued = fabric.agents[h].enqueue(handle: handle, length: 1500, peer: fabric.peer(d, of: h))
                    #expect(queued == .queued)
                }
            }
            fabric.run(for: 100_000)
        }
        fabric.run(for: 20_000_000)
        #expect(fabric.released.count == Int(handle), "every packet left in its slot")
        for h in 0..<topology.hostCount {
            #expect(fabric.agents[h].session.pacer.packetsPerSecond == 1_000)
            // 60 ms at 1 000 packets/s, plus the burst and the HELLO before the budget.
            #expect(fabric.agents[h].statistics.controlPacketsSent <= 60 + 8 + 2)
            #expect(fabric.agents[h].session.statistics.packetsAboveBudget == 0)
            let over = fabric.core.session(forAddress: topology.addresses[h])?.statistics.packetsOverBudget
            #expect(over == 0)
        }
    }

    @Test("queued bytes become slots: small packets share a slot while they fit, in arrival order")
    func slotPacking() throws {
        let topology = try Topology(TopologyConfiguration.regular(racks: 1, hostsPerRack: 3, spines: 1))
        let fabric = try Fabric(topology: topology)
        var agent = fabric.agents[0]
        // 700 + 700 share a slot; 200 starts a new one after 1400 + 200 > 1500; 1300 fits with it.
        for (k, length) in [700, 700, 200, 1300, 1500, 1].enumerated() {
            #expect(agent.enqueue(handle: UInt32(k), length: length, peer: 0) == .queued)
        }
        #expect(agent.queuedSlots(peer: 0) == 4)
        #expect(agent.statistics.slotsRequested == 4)
        #expect(agent.session.flow(to: topology.nodeIDs[1])?.need == 4)
        #expect(agent.queuedPackets(peer: 0) == 6)
    }

    @Test("full queues, full pool, oversize packets and malformed ones are dropped and counted")
    func drops() throws {
        let topology = try Topology(TopologyConfiguration.regular(racks: 1, hostsPerRack: 3, spines: 1))
        var s = EndpointSessionConfiguration()
        s.node = topology.nodeIDs[0]
        let peers = [1, 2].map { AgentPeer(address: topology.addresses[$0], node: topology.nodeIDs[$0]) }
        var c = AgentConfiguration(session: s, address: topology.addresses[0], peers: peers)
        c.packetCapacity = 5
        c.perDestinationPacketLimit = 3
        var agent = try AgentCore(configuration: c, now: 0)
        for k in 0..<4 { _ = agent.enqueue(handle: UInt32(k), length: 1000, peer: 0) }
        #expect(agent.statistics.droppedQueueFull == 1)
        for k in 0..<3 { _ = agent.enqueue(handle: UInt32(10 + k), length: 1000, peer: 1) }
        #expect(agent.statistics.droppedPoolFull == 1)
        #expect(agent.enqueue(handle: 99, length: 1501, peer: 1) == .dropped)
        #expect(agent.statistics.droppedOversize == 1)
        #expect(agent.queuedPackets == 5)
        // Demand only for what was queued.
        #expect(agent.statistics.slotsRequested == 5)

        let truncated = ipv4(to: topology.addresses[1])
        #expect(Array(truncated[0..<10]).withUnsafeBytes { agent.classify($0) } == .malformed(.truncated))
        var badIHL = ipv4(to: topology.addresses[1])
        badIHL[0] = 0x44
        #expect(badIHL.withUnsafeBytes { agent.classify($0) } == .malformed(.badHeaderLength))
        var badLength = ipv4(to: topology.addresses[1])
        badLength[3] = 99
        #expect(badLength.withUnsafeBytes { agent.classify($0) } == .malformed(.badTotalLength))
        #expect(agent.statistics.malformed[0] == 1 && agent.statistics.malformed[1] == 1)
        #expect(agent.statistics.malformed[2] == 1)
    }

    @Test("FCP, configured classes, other networks, this host and non-IPv4 bypass the queues")
    func bypass() throws {
        let own: UInt32 = 0x0A00_0001
        let peer: UInt32 = 0x0A00_0002
        var c = AgentConfiguration(
            session: EndpointSessionConfiguration(), address: own, peers: [AgentPeer(address: peer, node: NodeID(2))])
        c.bypassProtocols = [1]
        c.bypassDSCP = [46]
        let classifier = PacketClassifier(c)
        func classify(_ p: [UInt8]) -> AgentClassification { p.withUnsafeBytes { classifier.classify($0) } }
        #expect(classify(ipv4(to: peer, proto: 222)) == .bypass(.fcp))
        #expect(classify(ipv4(to: peer, proto: 1)) == .bypass(.configuredProtocol))
        #expect(classify(ipv4(to: peer, dscp: 46)) == .bypass(.configuredDSCP))
        #expect(classify(ipv4(to: 0x0B00_0001)) == .bypass(.outsideFabric))
        #expect(classify(ipv4(to: own)) == .bypass(.toSelf))
        var v6 = [UInt8](repeating: 0, count: 60)
        v6[0] = 0x60
        #expect(classify(v6) == .bypass(.notIPv4))
        #expect(classify(ipv4(to: peer, dscp: 10)) == .schedule(peer: 0))
        #expect(classify([]) == .malformed(.truncated))
    }

    @Test("random bytes never crash the classifier, and whatever it schedules is a well-formed packet to a peer")
    func classifierFuzz() throws {
        let peers = (2...40).map { AgentPeer(address: 0x0A00_0000 | UInt32($0), node: NodeID(UInt32($0))) }
        let classifier = PacketClassifier(
            AgentConfiguration(session: EndpointSessionConfiguration(), address: 0x0A00_0001, peers: peers))
        var random = TestRandom(seed: 5)
        var scheduled = 0
        for _ in 0..<200_000 {
            let n = random.below(80)
            var p = (0..<n).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            // Bias towards plausible headers so the deeper checks are reached.
            if n >= 20 && random.below(2) == 0 {
                p[0] = 0x45
                p[2] = UInt8(n >> 8)
                p[3] = UInt8(n & 0xFF)
                p[16] = 10
                p[17] = 0
                p[18] = 0
                p[19] = UInt8(random.below(48))
            }
            let c = p.withUnsafeBytes { classifier.classify($0) }
            if case .schedule(let i) = c {
                scheduled += 1
                #expect(n >= 20 && p[0] >> 4 == 4 && Int(p[2]) << 8 | Int(p[3]) == n)
                #expect(UInt32(p[19]) == peers[i].address & 0xFF && p[9] != 222)
            }
        }
        #expect(scheduled > 1000, "the fuzz reached the scheduling path \(scheduled) times")
    }

    @Test("a configuration that cannot work is refused with the field named")
    func invalidConfiguration() {
        let s = EndpointSessionConfiguration()
        let own: UInt32 = 0x0A00_0001
        func problem(_ edit: (inout AgentConfiguration) -> Void) -> String? {
            var c = AgentConfiguration(
                session: s, address: own,
                peers: [
                    AgentPeer(address: 0x0A00_0002, node: NodeID(2)), AgentPeer(address: 0x0A00_0003, node: NodeID(3)),
                ])
            edit(&c)
            do {
                _ = try AgentCore(configuration: c, now: 0)
                return nil
            } catch {
                return error.description
            }
        }
        #expect(problem { _ in } == nil)
        #expect(
            problem { $0.peers[1].address = 0x0A00_0002 }?.contains(
                "peers[1]: address 10.0.0.2 already used by peers[0]") == true)
        #expect(problem { $0.peers[1].node = NodeID(2) }?.contains("peers[1]: node") == true)
        #expect(problem { $0.peers[0].address = own }?.contains("this host's own") == true)
        #expect(problem { $0.slotBytes = 10 }?.contains("slotBytes") == true)
        #expect(problem { $0.packetCapacity = 0 }?.contains("packetCapacity") == true)
        #expect(problem { $0.bypassDSCP = [64] }?.contains("bypassDSCP") == true)
        #expect(problem { $0.session.maxDestinations = 1 }?.contains("maxDestinations") == true)
        #expect(
            problem {
                $0.session.mode = .reference; $0.peers[0].node = NodeID(0x4000)
            }?.contains("reference FCP") == true)
    }

    @Test("a pacer too slow for its slots: packets never leave past the late limit, the rest ask again, none lost")
    func lateReleaseLimit() throws {
        let topology = try Topology(TopologyConfiguration.regular(racks: 1, hostsPerRack: 3, spines: 1))
        let slot = UInt64((topology.timeslotNanoseconds).rounded(.up))
        // Limit 0: one timeslot. The fabric polls every 2.5 slots, so most slots are found
        // past their limit.
        var fabric = try Fabric(topology: topology, lateLimit: 0)
        var sent: [UInt32] = []
        for k in 0..<60 {
            let handle = UInt32(k)
            #expect(fabric.agents[0].enqueue(handle: handle, length: 1500, peer: 0) == .queued)
            sent.append(handle)
        }
        fabric.run(for: 3_000_000, step: slot * 5 / 2)
        let released = fabric.released.filter { $0.host == 0 }
        #expect(released.map(\.release.handle) == sent, "every packet once, in order")
        for r in released {
            #expect(r.at <= r.release.slotStart + slot, "released \(r.at - r.release.slotStart) ns into its slot")
        }
        let s = fabric.agents[0].statistics
        #expect(s.slotsMissed > 0, "polling slower than the slots misses some")
        #expect(s.slotsRequested == s.slotsUsed + s.slotsMissed, "each slot asked for is used or asked for again")
        #expect(s.allocationsUnused == 0 && fabric.agents[0].queuedPackets == 0)
        #expect(fabric.agents[0].session.flow(to: topology.nodeIDs[1])?.need == 0)
    }

    @Test("falling back: queued packets leave unscheduled, queue by queue; later allocations give the demand back")
    func unscheduled() throws {
        let topology = try Topology(TopologyConfiguration.regular(racks: 1, hostsPerRack: 3, spines: 1))
        var fabric = try Fabric(topology: topology)
        // Two slots towards peer 0 (one of two small packets), one towards peer 1.
        for (handle, length, peer) in [(1, 1500, 0), (2, 700, 0), (3, 700, 0), (4, 1500, 1)] {
            #expect(fabric.agents[0].enqueue(handle: UInt32(handle), length: length, peer: peer) == .queued)
        }
        var order: [UInt32] = []
        while let r = fabric.agents[0].takeUnscheduled() { order.append(r.handle) }
        // Head slot of queue 0, head slot of queue 1, then the rest of queue 0.
        #expect(order == [1, 4, 2, 3])
        #expect(fabric.agents[0].queuedPackets == 0 && fabric.agents[0].statistics.packetsUnscheduled == 4)
        // The demand stayed with the session; the arbiter serves it and the allocations
        // find nothing to send: counted, and what is left is given back.
        fabric.run(for: 2_000_000)
        let s = fabric.agents[0].statistics
        #expect(fabric.released.filter { $0.host == 0 }.isEmpty)
        #expect(s.allocationsUnused > 0 && s.allocationsUnused + s.slotsGivenBack == 3)
        #expect(fabric.agents[0].session.flow(to: topology.nodeIDs[1])?.need == 0)
        #expect(fabric.agents[0].session.flow(to: topology.nodeIDs[2])?.need == 0)
    }

    @Test("a control packet that cannot be built waits like a sent one: the next deadline is not left in the past")
    func controlEncodeFailureBacksOff() throws {
        let topology = try Topology(TopologyConfiguration.regular(racks: 1, hostsPerRack: 3, spines: 1))
        var fabric = try Fabric(topology: topology)
        #expect(fabric.agents[0].enqueue(handle: 1, length: 1500, peer: 0) == .queued)
        let now = fabric.now
        var tiny = [UInt8](repeating: 0, count: 4)
        let n = tiny.withUnsafeMutableBytes { fabric.agents[0].nextControlPacket(now: now, into: $0) }
        #expect(n == nil)
        #expect(fabric.agents[0].statistics.controlEncodeFailures == 1)
        let deadline = try #require(fabric.agents[0].nextDeadline)
        #expect(deadline > now, "a deadline at or before now makes a sleeping pacer spin")
    }

    @Test("a forced reset with no demand outstanding still reaches the arbiter: HELLO until answered")
    func forceResetWithoutDemand() throws {
        let topology = try Topology(TopologyConfiguration.regular(racks: 1, hostsPerRack: 3, spines: 1))
        var fabric = try Fabric(topology: topology)
        fabric.run(for: 1_000_000)
        guard case .established = fabric.agents[0].session.negotiation else {
            Issue.record("no session after 1 ms: \(fabric.agents[0].session.negotiation)")
            return
        }
        #expect(!fabric.agents[0].session.wantsToSend, "idle: nothing to send before the reset")
        let welcomes = fabric.agents[0].session.statistics.welcomesReceived
        fabric.agents[0].forceReset(now: fabric.now)
        #expect(fabric.agents[0].session.wantsToSend)
        fabric.run(for: 1_000_000)
        #expect(fabric.agents[0].session.statistics.welcomesReceived > welcomes)
        guard case .established = fabric.agents[0].session.negotiation else {
            Issue.record("not established again: \(fabric.agents[0].session.negotiation)")
            return
        }
    }

    @Test(
        "an arbiter outage: waiting packets make it unreachable, they leave unscheduled, a new epoch's HELLO finds it again, and only the completed handshake schedules again"
    )
    func arbiterOutage() throws {
        let topology = try Topology(TopologyConfiguration.regular(racks: 1, hostsPerRack: 3, spines: 1))
        let limit: UInt64 = 200_000
        var fabric = try Fabric(topology: topology, unreachableAfter: limit)
        fabric.run(for: 1_000_000)
        #expect(fabric.agents[0].state == .scheduled)
        #expect(fabric.transitions.contains { $0.host == 0 && $0.transition == .established })
        // Idle, nothing waits: silence alone is no outage.
        fabric.control.partitioned = true
        fabric.run(for: 2 * limit)
        #expect(fabric.agents[0].state == .scheduled && fabric.agents[0].unreachableEvents == 0)
        // Packets wait past the limit with no answer.
        let resets = fabric.agents[0].session.connection.statistics.forcedResets
        let hellos = fabric.agents[0].session.statistics.hellosSent
        #expect(fabric.agents[0].enqueue(handle: 7, length: 1500, peer: 0) == .queued)
        let queuedAt = fabric.now
        fabric.run(for: 2 * limit)
        let down = try #require(fabric.transitions.first { $0.host == 0 && $0.at > queuedAt })
        guard case .unreachable(let silent, .fallback) = down.transition else {
            Issue.record("expected unreachable, fallback: \(down.transition)")
            return
        }
        #expect(down.at > queuedAt + limit && down.at <= queuedAt + limit + 1_000)
        #expect(silent != nil)
        #expect(fabric.agents[0].state == .fallback && fabric.agents[0].sendsUnscheduled)
        #expect(fabric.unscheduled.map(\.release.handle) == [7])
        // A new reset epoch: its HELLO goes out (and again until answered), demand or not.
        let forcedResets = fabric.agents[0].session.connection.statistics.forcedResets
        let hellosSent = fabric.agents[0].session.statistics.hellosSent
        #expect(forcedResets == resets + 1)
        #expect(hellosSent > hellos)
        // The link comes back: scheduled again once the new handshake completes, not before.
        fabric.control.partitioned = false
        let healedAt = fabric.now
        fabric.run(for: 1_000_000)
        let up = try #require(fabric.transitions.first { $0.host == 0 && $0.at > healedAt })
        #expect(up.transition == .reachableAgain)
        #expect(fabric.agents[0].state == .scheduled && fabric.agents[0].reachableAgainEvents == 1)
        guard case .established = fabric.agents[0].session.negotiation else {
            Issue.record("scheduled again without a completed handshake: \(fabric.agents[0].session.negotiation)")
            return
        }
        // Hosts that had nothing waiting never left the schedule.
        #expect(fabric.agents[1].unreachableEvents == 0 && fabric.agents[2].unreachableEvents == 0)
    }

    @Test("lateness buckets double from 128 ns")
    func latenessBuckets() {
        #expect(AgentCore.latenessBucket(0) == 0)
        #expect(AgentCore.latenessBucket(127) == 0)
        #expect(AgentCore.latenessBucket(128) == 1)
        #expect(AgentCore.latenessBucket(255) == 1)
        #expect(AgentCore.latenessBucket(256) == 2)
        #expect(AgentCore.latenessBucket(.max) == 15)
    }
}
