import FastpassAgent
import FastpassArbiter
import FastpassProtocol

/// The Fastpass hosts: the real arbiter core and one real agent core per host, fed by the
/// simulated fabric, their FCP bytes carried as control packets.
extension Simulation {
    /// Addresses: the arbiter's topology numbering (10.r.r.h+1); the arbiter itself 10.255.255.254.
    static let arbiterAddress: UInt32 = 0x0AFF_FFFE

    func startFastpass() throws(SimulationError) {
        let c = configuration
        var tc = TopologyConfiguration.regular(
            racks: c.racks, hostsPerRack: c.hostsPerRack, spines: c.spines, hostLinkGbps: c.hostLinkGbps,
            oversubscription: c.oversubscription)
        tc.slotBytes = c.mtuBytes + FabricConfiguration.framingBytes
        tc.timeslotNanoseconds = slotNanoseconds
        let topology: Topology
        do { topology = try Topology(tc) } catch { throw SimulationError(reason: error.description) }
        arbiterTopology = topology
        arbiter = try makeArbiter(topology)
        for h in 0..<hostCount {
            var s = EndpointSessionConfiguration()
            s.node = topology.nodeIDs[h]
            s.address = topology.addresses[h]
            let peers = (0..<hostCount).filter { $0 != h }.map {
                AgentPeer(address: topology.addresses[$0], node: topology.nodeIDs[$0])
            }
            // Every other host is a possible destination; the session's tables grow only
            // as far as the destinations actually used, so sizing them so costs nothing.
            s.maxDestinations = max(s.maxDestinations, peers.count)
            var ac = AgentConfiguration(session: s, address: topology.addresses[h], peers: peers)
            ac.slotBytes = c.mtuBytes
            ac.slotNanoseconds = UInt64(slotNanoseconds.rounded(.up))
            ac.packetCapacity = max(1024, c.agentWindowPackets * 64)
            ac.requestIntervalNanoseconds = c.requestIntervalNanoseconds
            ac.unreachableAfterNanoseconds = c.agentUnreachableAfterNanoseconds
            do { agents.append(AgentBox(try AgentCore(configuration: ac, now: now))) } catch {
                throw SimulationError(reason: error.description)
            }
        }
        agentWakeAt = [UInt64](repeating: .max, count: hostCount)
        metrics.packetsInAgentTo = [Int32](repeating: 0, count: hostCount * hostCount)
        metrics.firstDemandAt = [UInt64](repeating: 0, count: hostCount * hostCount)
        agentWakeGeneration = [UInt32](repeating: 0, count: hostCount)
    }

    func makeArbiter(_ topology: Topology) throws(SimulationError) -> ArbiterCore {
        // The arbiter hangs off rack 0's ToR: its FCP packets to and from the other racks
        // cross rack 0's uplinks, which the allocator keeps room on for them.
        var ac = ArbiterCoreConfiguration()
        ac.controlRack = configuration.racks > 1 ? 0 : nil
        ac.controlFramingBytes = 20 + FabricConfiguration.framingBytes
        ac.controlPacketsPerSecond = configuration.controlPacketsPerSecond
        // As many destinations per endpoint as the fabric has hosts (the core adds its slack).
        ac.session.maxDestinations = max(ac.session.maxDestinations, hostCount + 64)
        do { return try ArbiterCore(topology: topology, configuration: ac, now: now) } catch {
            throw SimulationError(reason: "arbiter: \(error)")
        }
    }

    // MARK: Fastpass glue

    /// Hands the agent of host `h` more packets of its flows, up to the window per flow.
    func feedAgent(_ h: Int) {
        var k = 0
        var list = pendingFlows[h]
        while k < list.count {
            let f = Int(list[k])
            var flow = flows[f]
            let peer = Int(flow.destination) < h ? Int(flow.destination) : Int(flow.destination) - 1
            guard Int(flow.inAgent) * 2 <= configuration.agentWindowPackets else {
                k += 1
                continue
            }
            while flow.queuedToAgent < flow.packetCount && Int(flow.inAgent) < configuration.agentWindowPackets {
                let seq = flow.queuedToAgent
                let i = newPacket(
                    Packet(
                        kind: .data, flow: Int32(f), sequence: seq, source: flow.source, destination: flow.destination,
                        ipBytes: ipBytes(flow: f, sequence: seq), created: now))
                if agents[h].core.enqueue(handle: UInt32(i), length: Int(packets[Int(i)].ipBytes), peer: peer)
                    == .dropped
                {
                    freePacket(i)
                    break
                }
                let pair = h * hostCount + Int(flow.destination)
                if metrics.packetsInAgentTo[pair] == 0 { metrics.firstDemandAt[pair] = now }
                metrics.packetsInAgentTo[pair] += 1
                flow.queuedToAgent += 1
                flow.inAgent += 1
            }
            flows[f] = flow
            if flow.queuedToAgent == flow.packetCount {
                list.swapAt(k, list.count - 1)
                list.removeLast()
            } else {
                k += 1
            }
        }
        pendingFlows[h] = list
    }

    func agentWake(_ h: Int) {
        agentWakeAt[h] = .max
        agents[h].core.advance(now: now)
        var refill = false
        noteTransition(agents[h].core.takeTransition())
        noteTransition(agents[h].core.checkReachability(now: now))
        // Falling back: what the agent holds leaves at once, on the flow's ECMP spine, as it
        // would without an arbiter.
        while agents[h].sendsUnscheduled, let r = agents[h].core.takeUnscheduled() {
            let i = Int32(r.handle)
            let f = Int(packets[Int(i)].flow)
            packets[Int(i)].spine = ecmpSpine(f)
            metrics.unscheduledPackets &+= 1
            metrics.packetsInAgentTo[h * hostCount + Int(packets[Int(i)].destination)] -= 1
            flows[f].inAgent -= 1
            if Int(flows[f].inAgent) * 2 <= configuration.agentWindowPackets { refill = true }
            enqueue(i, port: nicPort[h])
        }
        while let r = agents[h].core.nextRelease(now: now) {
            let i = Int32(r.handle)
            packets[Int(i)].spine = Int16(truncatingIfNeeded: r.path.rawValue)
            packets[Int(i)].slot = r.slot
            metrics.agentWaits.add(now - packets[Int(i)].created)
            let pair = h * hostCount + Int(packets[Int(i)].destination)
            metrics.packetsInAgentTo[pair] -= 1
            // The first allocation after demand to an idle destination: the arbiter's
            // response time, without the wait behind the host's own earlier demand.
            if metrics.firstDemandAt[pair] != 0 {
                if r.allocationAdmitted >= metrics.firstDemandAt[pair] {
                    metrics.requestToAllocation.add(r.allocationAdmitted - metrics.firstDemandAt[pair])
                } else {
                    metrics.requestToAllocationSkipped &+= 1
                }
                metrics.firstDemandAt[pair] = 0
            }
            let f = Int(packets[Int(i)].flow)
            flows[f].inAgent -= 1
            // Refilled by half a window at a time, so demand reaches the arbiter in a few
            // larger requests rather than one slot per packet.
            if Int(flows[f].inAgent) * 2 <= configuration.agentWindowPackets { refill = true }
            enqueue(i, port: nicPort[h])
        }
        if refill { feedAgent(h) }
        flushControl(h)
        scheduleAgentWake(h)
    }

    /// Sends whatever FCP packets the agent of host `h` has ready towards the arbiter.
    func flushControl(_ h: Int) {
        while let n = scratch.withUnsafeMutableBytes({ agents[h].core.nextControlPacket(now: now, into: $0) }) {
            sendControl(scratch[0..<n], from: h, to: arbiterNode)
        }
        scheduleAgentWake(h)
    }

    func scheduleAgentWake(_ h: Int) {
        guard system == .fastpass, let d = agents[h].nextDeadline else { return }
        let t = max(d, now)
        guard t < agentWakeAt[h] else { return }
        agentWakeAt[h] = t
        agentWakeGeneration[h] &+= 1
        events.schedule(.agentWake, at: t, a: Int32(h), b: agentWakeGeneration[h])
    }

    func noteTransition(_ t: AgentTransition?) {
        switch t {
        case .unreachable?: metrics.agentUnreachableEvents &+= 1
        case .reachableAgain?: metrics.agentReachableAgainEvents &+= 1
        case .established?, nil: break
        }
    }

    func sendControl(_ bytes: ArraySlice<UInt8>, from: Int, to: Int) {
        let f = configuration.faults
        metrics.controlWireBytes &+= UInt64(wireBytes(Int32(bytes.count + 20)))
        if let o = f.arbiterOutage, from == arbiterNode || to == arbiterNode,
            now >= Self.origin + o.start, now < Self.origin + o.start + o.duration
        {
            metrics.controlLostInOutage &+= 1
            return
        }
        if f.controlLoss > 0 && random.unit() < f.controlLoss { return }
        let copies = f.controlDuplication > 0 && random.unit() < f.controlDuplication ? 2 : 1
        for _ in 0..<copies {
            let i = newPacket(
                Packet(
                    kind: .control, source: Int32(from), destination: Int32(to), ipBytes: Int32(bytes.count + 20),
                    spine: Int16(random.below(configuration.spines)), created: now, control: newControl(bytes)))
            if f.controlReordering > 0 && random.unit() < f.controlReordering {
                // Held back at the sender: later packets overtake it.
                events.schedule(.arrival, at: now + f.reorderDelayNanoseconds, a: i, b: UInt32(from))
                packets[Int(i)].created = now
                heldBack.insert(i)
            } else {
                enqueue(i, port: nicPort[from])
            }
        }
    }

    func agentReceive(_ i: Int32, host h: Int) {
        let c = Int(packets[Int(i)].control)
        controlArena[c].withUnsafeBytes { _ = agents[h].core.receive($0, now: now) }
        freePacket(i)
        agentWake(h)
    }

    func arbiterReceive(_ i: Int32) {
        if configuration.arbiterCPU.enabled {
            arbiterCPUArrival(i)
            return
        }
        cpu.received &+= 1
        let c = Int(packets[Int(i)].control)
        let from = arbiterTopology!.addresses[Int(packets[Int(i)].source)]
        controlArena[c].withUnsafeBytes { arbiter!.receive($0, from: from, now: now) }
        freePacket(i)
        arbiterWake()
    }

    func arbiterWake() {
        guard let core = arbiter else { return }
        arbiterWakeAt = .max
        advanceArbiterCore(gated: false)
        while let (address, n) = scratch.withUnsafeMutableBytes({ core.nextPacket(now: now, into: $0) }) {
            cpu.sent &+= 1
            guard let h = arbiterTopology!.index(ofAddress: address) else { continue }
            sendControl(scratch[0..<n], from: arbiterNode, to: h)
        }
        scheduleArbiterWake()
    }

    func scheduleArbiterWake() {
        guard let core = arbiter else { return }
        let t = configuration.arbiterCPU.enabled ? arbiterCPUWakeTime(core) : max(core.nextDeadline, now)
        guard t < arbiterWakeAt else { return }
        arbiterWakeAt = t
        arbiterWakeGeneration &+= 1
        events.schedule(.arbiterWake, at: t, b: arbiterWakeGeneration)
    }

    func restartArbiter() {
        guard let topology = arbiterTopology else { return }
        // A new process: every session and all demand are gone; endpoints notice through
        // the reset handshake and ask again.
        arbiter = try? makeArbiter(topology)
        resetArbiterCPUCounters()
        arbiterWakeAt = .max
        scheduleArbiterWake()
    }
}
