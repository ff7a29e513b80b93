import FastpassArbiter

/// The fabric model: ports with a priority and a normal queue, links with a delay, packets
/// kept in reusable slots, and the forwarding of hosts, ToRs and spines (ECMP or the spine
/// a packet was given).
extension Simulation {

    enum PortClass: Int, CaseIterable {
        case hostNIC, torDown, torUp, spineDown
        /// The ToR port towards the arbiter: control packets only.
        case arbiterDown
        var name: String { ["host_nic", "tor_down", "tor_up", "spine_down", "arbiter_down"][rawValue] }
    }

    struct Port {
        var to: Int32
        var cls: PortClass
        var picosecondsPerByte: UInt64
        /// Bytes held, the packet on the wire included.
        var bytes = 0
        var packets = 0
        var busy = false
        /// Whether the packet on the wire came from the priority queue.
        var inServiceHigh = false
        var inServiceBytes = 0
        /// Bytes of FCP packets held, the one on the wire included.
        var controlBytes = 0
        /// When the occupancy last changed; the run starts at `Simulation.origin`, not 0.
        var lastChange: UInt64 = Simulation.origin
        /// Fastpass checks: the last slot this port carried, and its source and destination.
        var lastSlot: UInt64 = .max
        var lastSource: Int32 = -1
        var lastDestination: Int32 = -1
    }

    enum PacketKind: UInt8 { case data, ack, control }

    struct Packet {
        var kind: PacketKind = .data
        var flow: Int32 = -1
        var sequence: Int32 = 0
        var source: Int32 = 0
        var destination: Int32 = 0
        var ipBytes: Int32 = 0
        var spine: Int16 = 0
        var congestionExperienced = false
        var echo = false
        var slot: UInt64 = .max
        var created: UInt64 = 0
        /// Index in the control byte arena (control packets).
        var control: Int32 = -1
    }

    func picoseconds(perByteAt gbps: Double) -> UInt64 { UInt64((8_000 / gbps).rounded()) }

    func addPort(to: Int, cls: PortClass, gbps: Double) -> Int {
        ports.append(Port(to: Int32(to), cls: cls, picosecondsPerByte: picoseconds(perByteAt: gbps)))
        highQueues.append(IndexFIFO())
        lowQueues.append(IndexFIFO())
        return ports.count - 1
    }

    func buildFabric() {
        let c = configuration
        // Endpoints: hosts, then the arbiter in rack 0.
        rackOfEndpoint = (0..<hostCount).map { $0 / c.hostsPerRack } + [0]
        func rate(_ e: Int) -> Double { e == arbiterNode ? c.arbiterLinkGbps : c.hostLinkGbps }
        for e in 0...hostCount {
            nicPort.append(addPort(to: torBase + rackOfEndpoint[e], cls: .hostNIC, gbps: rate(e)))
        }
        for e in 0...hostCount {
            torDownPort.append(addPort(to: e, cls: e == arbiterNode ? .arbiterDown : .torDown, gbps: rate(e)))
        }
        for _ in 0..<c.racks {
            for s in 0..<c.spines { torUpPort.append(addPort(to: spineBase + s, cls: .torUp, gbps: c.uplinkGbps)) }
        }
        for _ in 0..<c.spines {
            for r in 0..<c.racks { spineDownPort.append(addPort(to: torBase + r, cls: .spineDown, gbps: c.uplinkGbps)) }
        }
    }

    // MARK: Packets

    func newPacket(_ p: Packet) -> Int32 {
        if let i = freePackets.popLast() {
            packets[Int(i)] = p
            return i
        }
        packets.append(p)
        return Int32(packets.count - 1)
    }

    func freePacket(_ i: Int32) {
        let c = packets[Int(i)].control
        if c >= 0 { freeControl.append(c) }
        packets[Int(i)].control = -1
        freePackets.append(i)
    }

    func newControl(_ bytes: ArraySlice<UInt8>) -> Int32 {
        if let i = freeControl.popLast() {
            controlArena[Int(i)].replaceSubrange(0..., with: bytes)
            return i
        }
        controlArena.append(Array(bytes))
        return Int32(controlArena.count - 1)
    }

    @inline(__always)
    func wireBytes(_ ip: Int32) -> Int {
        max(FabricConfiguration.minimumFrameBytes, Int(ip) + FabricConfiguration.framingBytes)
    }

    /// Puts packet `i` into output port `q`: dropped if it does not fit (switch ports),
    /// marked if the queue is above the ECN threshold.
    func enqueue(_ i: Int32, port q: Int) {
        var port = ports[q]
        let p = packets[Int(i)]
        let size = Int(p.ipBytes)
        if port.cls != .hostNIC && port.bytes + size > configuration.portBufferBytes {
            metrics.drops &+= 1
            metrics.dropsByClass[port.cls.rawValue] &+= 1
            if p.kind == .control { metrics.controlDrops &+= 1 } else { metrics.dataDrops &+= 1 }
            freePacket(i)
            return
        }
        if port.cls != .hostNIC && p.kind == .data
            && port.bytes - port.inServiceBytes >= configuration.ecnThresholdBytes
        {
            packets[Int(i)].congestionExperienced = true
            metrics.ecnMarks &+= 1
        }
        if system == .fastpass && p.kind == .data && p.slot != .max && port.cls != .hostNIC {
            checkSlot(&port, p)
        }
        noteOccupancy(&port, q)
        port.bytes += size
        port.packets += 1
        if p.kind == .control { port.controlBytes += size }
        if p.kind == .control { highQueues[q].push(i) } else { lowQueues[q].push(i) }
        let waiting = port.bytes - port.inServiceBytes
        metrics.histograms[port.cls.rawValue].noteMaximum(
            bytes: waiting - (port.busy ? 0 : size), packets: port.packets - 1)
        ports[q] = port
        if !port.busy { startTransmission(q) }
    }

    /// A scheduled packet crossing a switch port: the one before it in the same slot must
    /// come from the same source to the same destination (several small packets may share
    /// a slot), or the slot was booked twice.
    func checkSlot(_ port: inout Port, _ p: Packet) {
        if port.lastSlot == p.slot && (port.lastSource != p.source || port.lastDestination != p.destination)
            && port.cls == .torDown
        {
            metrics.doubleBooked &+= 1
        }
        port.lastSlot = p.slot
        port.lastSource = p.source
        port.lastDestination = p.destination
    }

    func noteOccupancy(_ port: inout Port, _ q: Int) {
        let waitingBytes = port.bytes - port.inServiceBytes
        let waitingPackets = max(0, port.packets - (port.busy ? 1 : 0))
        metrics.histograms[port.cls.rawValue].add(
            bytes: waitingBytes, packets: waitingPackets, duration: now - port.lastChange)
        // Data alone: what the arbiter booked, without the FCP packets that share the port.
        let waitingData = port.bytes - port.controlBytes - (port.busy && !port.inServiceHigh ? port.inServiceBytes : 0)
        metrics.histograms[port.cls.rawValue].addData(bytes: waitingData, duration: now - port.lastChange)
        port.lastChange = now
    }

    func startTransmission(_ q: Int) {
        var port = ports[q]
        let high = highQueues[q].peek()
        guard let i = high ?? lowQueues[q].peek() else { return }
        noteOccupancy(&port, q)
        port.busy = true
        port.inServiceHigh = high != nil
        port.inServiceBytes = Int(packets[Int(i)].ipBytes)
        let duration = (UInt64(wireBytes(packets[Int(i)].ipBytes)) * port.picosecondsPerByte + 999) / 1000
        ports[q] = port
        events.schedule(.transmitted, at: now + duration, a: Int32(q))
    }

    func transmitted(_ q: Int) {
        var port = ports[q]
        noteOccupancy(&port, q)
        // The packet that was on the wire, even if a priority one arrived meanwhile.
        let i = port.inServiceHigh ? highQueues[q].pop()! : lowQueues[q].pop()!
        port.bytes -= Int(packets[Int(i)].ipBytes)
        if port.inServiceHigh { port.controlBytes -= Int(packets[Int(i)].ipBytes) }
        port.packets -= 1
        port.busy = false
        port.inServiceBytes = 0
        let to = port.to
        ports[q] = port
        events.schedule(.arrival, at: now + configuration.linkDelayNanoseconds, a: i, b: UInt32(to))
        startTransmission(q)
    }

    func arrive(_ i: Int32, at node: Int) {
        if !heldBack.isEmpty && heldBack.remove(i) != nil {
            enqueue(i, port: nicPort[node])
            return
        }
        let p = packets[Int(i)]
        if node <= hostCount {
            deliver(i, to: node)
            return
        }
        let c = configuration
        let dst = Int(p.destination)
        if node < spineBase {
            let rack = node - torBase
            if rackOfEndpoint[dst] == rack {
                enqueue(i, port: torDownPort[dst])
            } else {
                var s = Int(p.spine)
                if !spineUp[s] {
                    // The ToR's fast failover: ECMP over the spines still up. Scheduled
                    // packets land here only if their slot was allocated before the arbiter
                    // learnt of the failure; they are counted, as they may queue.
                    guard let alive = aliveSpine(hash: Int(p.flow)) else {
                        metrics.drops &+= 1
                        if p.kind == .control { metrics.controlDrops &+= 1 } else { metrics.dataDrops &+= 1 }
                        freePacket(i)
                        return
                    }
                    if p.kind == .data && p.slot != .max { metrics.reroutedScheduled &+= 1 }
                    s = alive
                }
                enqueue(i, port: torUpPort[rack * c.spines + s])
            }
        } else {
            if p.kind == .data { metrics.spinePackets[node - spineBase] &+= 1 }
            enqueue(i, port: spineDownPort[(node - spineBase) * c.racks + rackOfEndpoint[dst]])
        }
    }

    func aliveSpine(hash: Int) -> Int? {
        guard !aliveSpines.isEmpty else { return nil }
        return aliveSpines[abs(hash) % aliveSpines.count]
    }

    /// The spine a flow's packets take without the arbiter: a hash of the flow (ECMP).
    func ecmpSpine(_ flow: Int) -> Int16 {
        var x = UInt64(flow) &* 0x9E37_79B9_7F4A_7C15
        x ^= x >> 29
        return Int16(x % UInt64(configuration.spines))
    }

    func spineDown(_ s: Int) {
        spineUp[s] = false
        aliveSpines = (0..<configuration.spines).filter { spineUp[$0] }
        if let core = arbiter { try? core.setSpine(s, up: false) }
    }
}
