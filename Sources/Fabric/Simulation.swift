import FastpassAgent
import FastpassArbiter
import FastpassProtocol
import Foundation

/// A discrete-event simulation of a leaf–spine fabric running one system: the real
/// arbiter core and real agent cores exchanging real FCP bytes across the simulated
/// switches (`.fastpass`), or hosts sending with a DCTCP-style transport (`.baseline`).
///
/// Deterministic: the same configuration and seed give the same results, byte for byte.
///
/// Single-threaded, so the hottest tables skip the runtime's dynamic exclusivity checks
/// (`@exclusivity(unchecked)`): with them the simulator spent a quarter of its time there.
public final class Simulation {
    public let configuration: FabricConfiguration
    public let system: SimulatedSystem
    /// Called every 2^16 events with the fraction of the simulated time done, for a
    /// progress display.
    public var progress: ((Double) -> Void)?

    // MARK: Fabric

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

    let hostCount: Int
    /// Node numbering: hosts, then the arbiter (fastpass), then ToRs, then spines.
    let arbiterNode: Int
    let torBase: Int
    let spineBase: Int
    @exclusivity(unchecked) var ports: [Port] = []
    /// Each port's queues, kept apart from `ports` so that copying a `Port` out and back
    /// never duplicates a queue's storage: FCP packets first, then the rest.
    @exclusivity(unchecked) var highQueues: [IndexFIFO] = []
    @exclusivity(unchecked) var lowQueues: [IndexFIFO] = []
    /// Output port of each node towards each next hop: host → NIC; ToR → per host / per
    /// spine; spine → per rack.
    var nicPort: [Int] = []
    var torDownPort: [Int] = []  // by destination endpoint (host or arbiter)
    var torUpPort: [Int] = []  // rack * spines + spine
    var spineDownPort: [Int] = []  // spine * racks + rack
    var rackOfEndpoint: [Int] = []
    var spineUp: [Bool]
    var aliveSpines: [Int] = []

    @exclusivity(unchecked) var packets: [Packet] = []
    var freePackets: [Int32] = []
    var controlArena: [[UInt8]] = []
    var freeControl: [Int32] = []

    @exclusivity(unchecked) var events: EventQueue
    /// Virtual time starts here rather than at 0: FCP compares reset timestamps within a
    /// window of seconds, as a host's clock long after boot would allow.
    static let origin: UInt64 = 10_000_000_000
    var now: UInt64 = Simulation.origin
    var random: SimulationRandom

    // MARK: Flows

    struct Flow {
        var source: Int32
        var destination: Int32
        var bytes: Int
        var packetCount: Int32
        var start: UInt64
        var finish: UInt64 = 0
        var spine: Int16
        // Receiver.
        var expected: Int32 = 0
        /// Fastpass: packets after `expected` that arrived ahead of it (bit k: expected + 1 + k).
        var aheadMask: UInt64 = 0
        // Baseline sender.
        var cwnd: Double = 10
        var ssthresh: Double = 1e9
        // As Linux starts it (dctcp_alpha_on_init): the first marked window halves cwnd,
        // so a flow in slow start backs off at once rather than after many marked windows.
        var alpha: Double = 1
        var unacknowledged: Int32 = 0
        var nextToSend: Int32 = 0
        var duplicateAcks = 0
        var windowEnd: Int32 = 0
        var ackedInWindow = 0
        var markedInWindow = 0
        var timerGeneration: UInt32 = 0
        var timerArmed = false
        var rto: UInt64 = 0
        // Fastpass sender: packets handed to the agent, and still in it.
        var queuedToAgent: Int32 = 0
        var inAgent: Int32 = 0
    }

    @exclusivity(unchecked) var flows: [Flow] = []
    /// Fastpass: flows of each host with packets not yet handed to its agent.
    var pendingFlows: [[Int32]] = []

    // MARK: Fastpass

    var arbiter: ArbiterCore?
    /// Boxed: an `AgentCore` is several kilobytes, and reaching one inside an array from
    /// this module copied it on every call (a third of the run time went to memmove).
    final class AgentBox {
        var core: AgentCore
        init(_ core: AgentCore) { self.core = core }
    }
    @exclusivity(unchecked) var agents: [AgentBox] = []
    var agentWakeAt: [UInt64] = []
    var agentWakeGeneration: [UInt32] = []
    var arbiterWakeAt: UInt64 = .max
    var arbiterWakeGeneration: UInt32 = 0
    var arbiterTopology: Topology?
    var scratch = [UInt8](repeating: 0, count: 4096)
    let slotNanoseconds: Double

    // MARK: Measurements

    @exclusivity(unchecked) var histograms: [OccupancyHistogram]
    var drops: UInt64 = 0
    var dropsByClass = [UInt64](repeating: 0, count: PortClass.allCases.count)
    var dataDrops: UInt64 = 0
    var controlDrops: UInt64 = 0
    var ecnMarks: UInt64 = 0
    var deliveredPayload: UInt64 = 0
    var deliveredInterRackPayload: UInt64 = 0
    /// Fastpass data packets that arrived before an earlier packet of their flow, and those
    /// too far ahead (64 packets) for the receiver to hold.
    var reorderedPackets: UInt64 = 0
    var reorderedBeyondWindow: UInt64 = 0
    var controlWireBytes: UInt64 = 0
    var agentWaits = DurationHistogram()
    var requestToAllocation = DurationHistogram()
    var requestToAllocationSkipped: UInt64 = 0
    /// Per (source, destination): packets in the source's agent, and when demand to an idle
    /// destination was raised (0: measured already).
    var packetsInAgentTo: [Int32] = []
    var firstDemandAt: [UInt64] = []
    var doubleBooked: UInt64 = 0
    var reroutedScheduled: UInt64 = 0
    var spinePackets: [UInt64]
    var timeouts: UInt64 = 0
    var processed: UInt64 = 0
    var timeline: [[Double]] = []
    var busiestPort = -1

    public init(configuration: FabricConfiguration, system: SimulatedSystem) throws(SimulationError) {
        if let p = configuration.problem { throw SimulationError(reason: p) }
        self.configuration = configuration
        self.system = system
        hostCount = configuration.hostCount
        arbiterNode = hostCount
        torBase = hostCount + 1
        spineBase = torBase + configuration.racks
        spineUp = [Bool](repeating: true, count: configuration.spines)
        spinePackets = [UInt64](repeating: 0, count: configuration.spines)
        events = EventQueue(capacity: 1 << 16)
        random = SimulationRandom(seed: configuration.seed)
        histograms = PortClass.allCases.map { _ in OccupancyHistogram() }
        slotNanoseconds =
            Double((configuration.mtuBytes + FabricConfiguration.framingBytes) * 8) / configuration.hostLinkGbps
            * (1 + configuration.slotHeadroom)
        buildFabric()
        if system == .fastpass { try startFastpass() }
        pendingFlows = [[Int32]](repeating: [], count: hostCount)
    }

    private func picoseconds(perByteAt gbps: Double) -> UInt64 { UInt64((8_000 / gbps).rounded()) }

    private func addPort(to: Int, cls: PortClass, gbps: Double) -> Int {
        ports.append(Port(to: Int32(to), cls: cls, picosecondsPerByte: picoseconds(perByteAt: gbps)))
        highQueues.append(IndexFIFO())
        lowQueues.append(IndexFIFO())
        return ports.count - 1
    }

    private func buildFabric() {
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

    /// Addresses: the arbiter's topology numbering (10.r.r.h+1); the arbiter itself 10.255.255.254.
    static let arbiterAddress: UInt32 = 0x0AFF_FFFE

    private func startFastpass() throws(SimulationError) {
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
            var ac = AgentConfiguration(session: s, address: topology.addresses[h], peers: peers)
            ac.slotBytes = c.mtuBytes
            ac.slotNanoseconds = UInt64(slotNanoseconds.rounded(.up))
            ac.packetCapacity = max(1024, c.agentWindowPackets * 64)
            ac.requestIntervalNanoseconds = c.requestIntervalNanoseconds
            do { agents.append(AgentBox(try AgentCore(configuration: ac, now: now))) } catch {
                throw SimulationError(reason: error.description)
            }
        }
        agentWakeAt = [UInt64](repeating: .max, count: hostCount)
        packetsInAgentTo = [Int32](repeating: 0, count: hostCount * hostCount)
        firstDemandAt = [UInt64](repeating: 0, count: hostCount * hostCount)
        agentWakeGeneration = [UInt32](repeating: 0, count: hostCount)
    }

    private func makeArbiter(_ topology: Topology) throws(SimulationError) -> ArbiterCore {
        // The arbiter hangs off rack 0's ToR: its FCP packets to and from the other racks
        // cross rack 0's uplinks, which the allocator keeps room on for them.
        var ac = ArbiterCoreConfiguration()
        ac.controlRack = configuration.racks > 1 ? 0 : nil
        ac.controlFramingBytes = 20 + FabricConfiguration.framingBytes
        do { return try ArbiterCore(topology: topology, configuration: ac, now: now) } catch {
            throw SimulationError(reason: "arbiter: \(error)")
        }
    }

    // MARK: Packets

    private func newPacket(_ p: Packet) -> Int32 {
        if let i = freePackets.popLast() {
            packets[Int(i)] = p
            return i
        }
        packets.append(p)
        return Int32(packets.count - 1)
    }

    private func freePacket(_ i: Int32) {
        let c = packets[Int(i)].control
        if c >= 0 { freeControl.append(c) }
        packets[Int(i)].control = -1
        freePackets.append(i)
    }

    private func newControl(_ bytes: ArraySlice<UInt8>) -> Int32 {
        if let i = freeControl.popLast() {
            controlArena[Int(i)].replaceSubrange(0..., with: bytes)
            return i
        }
        controlArena.append(Array(bytes))
        return Int32(controlArena.count - 1)
    }

    @inline(__always)
    private func wireBytes(_ ip: Int32) -> Int {
        max(FabricConfiguration.minimumFrameBytes, Int(ip) + FabricConfiguration.framingBytes)
    }

    /// Puts packet `i` into output port `q`: dropped if it does not fit (switch ports),
    /// marked if the queue is above the ECN threshold.
    private func enqueue(_ i: Int32, port q: Int) {
        var port = ports[q]
        let p = packets[Int(i)]
        let size = Int(p.ipBytes)
        if port.cls != .hostNIC && port.bytes + size > configuration.portBufferBytes {
            drops &+= 1
            dropsByClass[port.cls.rawValue] &+= 1
            if p.kind == .control { controlDrops &+= 1 } else { dataDrops &+= 1 }
            freePacket(i)
            return
        }
        if port.cls != .hostNIC && p.kind == .data
            && port.bytes - port.inServiceBytes >= configuration.ecnThresholdBytes
        {
            packets[Int(i)].congestionExperienced = true
            ecnMarks &+= 1
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
        histograms[port.cls.rawValue].noteMaximum(bytes: waiting - (port.busy ? 0 : size), packets: port.packets - 1)
        ports[q] = port
        if !port.busy { startTransmission(q) }
    }

    /// A scheduled packet crossing a switch port: the one before it in the same slot must
    /// come from the same source to the same destination (several small packets may share
    /// a slot), or the slot was booked twice.
    private func checkSlot(_ port: inout Port, _ p: Packet) {
        if port.lastSlot == p.slot && (port.lastSource != p.source || port.lastDestination != p.destination)
            && port.cls == .torDown
        {
            doubleBooked &+= 1
        }
        port.lastSlot = p.slot
        port.lastSource = p.source
        port.lastDestination = p.destination
    }

    private func noteOccupancy(_ port: inout Port, _ q: Int) {
        let waitingBytes = port.bytes - port.inServiceBytes
        let waitingPackets = max(0, port.packets - (port.busy ? 1 : 0))
        histograms[port.cls.rawValue].add(bytes: waitingBytes, packets: waitingPackets, duration: now - port.lastChange)
        // Data alone: what the arbiter booked, without the FCP packets that share the port.
        let waitingData = port.bytes - port.controlBytes - (port.busy && !port.inServiceHigh ? port.inServiceBytes : 0)
        histograms[port.cls.rawValue].addData(bytes: waitingData, duration: now - port.lastChange)
        port.lastChange = now
    }

    private func startTransmission(_ q: Int) {
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

    private func transmitted(_ q: Int) {
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

    private func arrive(_ i: Int32, at node: Int) {
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
                        drops &+= 1
                        if p.kind == .control { controlDrops &+= 1 } else { dataDrops &+= 1 }
                        freePacket(i)
                        return
                    }
                    if p.kind == .data && p.slot != .max { reroutedScheduled &+= 1 }
                    s = alive
                }
                enqueue(i, port: torUpPort[rack * c.spines + s])
            }
        } else {
            if p.kind == .data { spinePackets[node - spineBase] &+= 1 }
            enqueue(i, port: spineDownPort[(node - spineBase) * c.racks + rackOfEndpoint[dst]])
        }
    }

    private func aliveSpine(hash: Int) -> Int? {
        guard !aliveSpines.isEmpty else { return nil }
        return aliveSpines[abs(hash) % aliveSpines.count]
    }

    /// The spine a flow's packets take without the arbiter: a hash of the flow (ECMP).
    private func ecmpSpine(_ flow: Int) -> Int16 {
        var x = UInt64(flow) &* 0x9E37_79B9_7F4A_7C15
        x ^= x >> 29
        return Int16(x % UInt64(configuration.spines))
    }

    // MARK: Running

    public func run() -> SystemResult {
        let started = Date()
        scheduleTraffic()
        if system == .fastpass {
            scheduleArbiterWake()
            for h in 0..<hostCount { scheduleAgentWake(h) }
        }
        if let t = configuration.faults.arbiterRestartAt, system == .fastpass {
            events.schedule(.arbiterRestart, at: Self.origin + t)
        }
        if let (s, t) = configuration.faults.spineDown { events.schedule(.spineDown, at: Self.origin + t, a: Int32(s)) }
        let end = Self.origin + configuration.traffic.durationNanoseconds
        events.schedule(.end, at: end)
        var nextSample: UInt64 = 0
        while let e = events.pop() {
            now = e.time
            processed &+= 1
            if processed & 0xFFFF == 0, let report = progress {
                report(Double(now - Self.origin) / Double(configuration.traffic.durationNanoseconds))
            }
            if now >= nextSample {
                sampleTimeline()
                nextSample = now + 10_000
            }
            switch e.kind {
            case .end: break
            case .flowArrival: startFlow(Int(e.a))
            case .transmitted: transmitted(Int(e.a))
            case .arrival: arrive(e.a, at: Int(e.b))
            case .retransmissionTimeout: retransmissionTimeout(Int(e.a), generation: e.b)
            case .agentWake: if e.b == agentWakeGeneration[Int(e.a)] { agentWake(Int(e.a)) }
            case .arbiterWake: if e.b == arbiterWakeGeneration { arbiterWake() }
            case .arbiterRestart: restartArbiter()
            case .spineDown: spineDown(Int(e.a))
            }
            if e.kind == .end { break }
        }
        for q in ports.indices { noteOccupancy(&ports[q], q) }
        return result(wallSeconds: Date().timeIntervalSince(started))
    }

    private func sampleTimeline() {
        // Host 0's downlink: the receiver under incast, an ordinary host otherwise.
        if busiestPort < 0 { busiestPort = torDownPort[0] }
        let p = ports[busiestPort]
        timeline.append([Double(now - Self.origin) / 1000, Double(p.bytes - p.inServiceBytes)])
    }

    /// Flow arrivals for the whole run, drawn up front so both systems see the same flows.
    private func scheduleTraffic() {
        let c = configuration
        let end = c.traffic.durationNanoseconds
        var arrivals: [(UInt64, Int, Int, Int)] = []
        switch c.traffic.pattern {
        case .poisson(let distribution, let load):
            let bytesPerNanosecond = load * c.hostLinkGbps / 8 * Double(hostCount)
            let meanGap = distribution.meanBytes / bytesPerNanosecond
            var t = random.exponential(mean: meanGap)
            while UInt64(t) < end {
                let s = random.below(hostCount)
                var d = random.below(hostCount - 1)
                if d >= s { d += 1 }
                let size = max(1, Int(distribution.size(at: random.unit()).rounded()))
                arrivals.append((Self.origin + UInt64(t), s, d, size))
                t += random.exponential(mean: meanGap)
            }
        case .incast(let senders, let bytes):
            // Senders are the hosts after the receiver (host 0), spread over the racks.
            for k in 1...senders { arrivals.append((Self.origin + 1_000, k, 0, bytes)) }
        case .permutation(let bytes):
            var order = Array(0..<hostCount)
            for i in stride(from: hostCount - 1, to: 0, by: -1) { order.swapAt(i, random.below(i + 1)) }
            for s in 0..<hostCount {
                var d = order[s]
                if d == s { d = order[(s + 1) % hostCount] }
                arrivals.append((Self.origin + 1_000, s, d, bytes))
            }
        case .allToAll(let bytes):
            for s in 0..<hostCount {
                for d in 0..<hostCount where d != s { arrivals.append((Self.origin + 1_000, s, d, bytes)) }
            }
        }
        let payload = configuration.mtuBytes - 40
        for (t, s, d, size) in arrivals {
            let n = Int32((size + payload - 1) / payload)
            let f = flows.count
            var flow = Flow(
                source: Int32(s), destination: Int32(d), bytes: size, packetCount: n, start: t, spine: ecmpSpine(f))
            flow.cwnd = Double(c.baseline.initialWindow)
            flow.rto = c.baseline.minimumRetransmissionTimeoutNanoseconds
            flows.append(flow)
            events.schedule(.flowArrival, at: t, a: Int32(f))
        }
    }

    private func ipBytes(flow f: Int, sequence: Int32) -> Int32 {
        let payload = configuration.mtuBytes - 40
        let last = Int(flows[f].packetCount) - 1
        let size = Int(sequence) == last ? flows[f].bytes - last * payload : payload
        return Int32(size + 40)
    }

    private func startFlow(_ f: Int) {
        switch system {
        case .baseline: sendWindow(f)
        case .fastpass:
            let h = Int(flows[f].source)
            pendingFlows[h].append(Int32(f))
            feedAgent(h)
            scheduleAgentWake(h)
            flushControl(h)
        }
    }

    private func deliver(_ i: Int32, to node: Int) {
        let p = packets[Int(i)]
        if node == arbiterNode {
            if p.kind == .control { arbiterReceive(i) } else { freePacket(i) }
            return
        }
        switch p.kind {
        case .control: agentReceive(i, host: node)
        case .data: receiveData(i)
        case .ack: receiveAck(i)
        }
    }

    private func receiveData(_ i: Int32) {
        let p = packets[Int(i)]
        let f = Int(p.flow)
        if p.sequence == flows[f].expected {
            deliverInOrder(f, sequence: p.sequence)
            // Packets that came ahead of this one, now in order behind it.
            while flows[f].aheadMask & 1 != 0 {
                flows[f].aheadMask >>= 1
                deliverInOrder(f, sequence: flows[f].expected)
            }
            flows[f].aheadMask >>= 1
        } else if system == .fastpass && p.sequence > flows[f].expected {
            // Consecutive slots of one flow may take different spines, and a packet that
            // waits behind another for part of a slot can arrive after the next slot's.
            // The receiver's TCP holds it until the gap fills (Fastpass data is never
            // retransmitted, so without this one late packet stalled its flow for good:
            // 175 329 packets arrived ahead of their turn at 3:1 and went uncounted).
            let distance = Int(p.sequence - flows[f].expected) - 1
            reorderedPackets &+= 1
            if distance < 64 {
                flows[f].aheadMask |= 1 << UInt64(distance)
            } else {
                reorderedBeyondWindow &+= 1
            }
        }
        if system == .baseline {
            // A cumulative acknowledgement per packet, echoing the mark.
            let a = newPacket(
                Packet(
                    kind: .ack, flow: p.flow, sequence: flows[f].expected, source: p.destination,
                    destination: p.source, ipBytes: 40, spine: flows[f].spine, echo: p.congestionExperienced,
                    created: now))
            enqueue(a, port: nicPort[Int(p.destination)])
        }
        freePacket(i)
    }

    // MARK: Baseline transport

    private func sendWindow(_ f: Int) {
        var flow = flows[f]
        while flow.nextToSend < flow.packetCount && Double(flow.nextToSend - flow.unacknowledged) < flow.cwnd {
            let seq = flow.nextToSend
            let i = newPacket(
                Packet(
                    kind: .data, flow: Int32(f), sequence: seq, source: flow.source, destination: flow.destination,
                    ipBytes: ipBytes(flow: f, sequence: seq), spine: flow.spine, created: now))
            flow.nextToSend += 1
            flows[f] = flow
            enqueue(i, port: nicPort[Int(flow.source)])
            flow = flows[f]
        }
        if !flow.timerArmed && flow.unacknowledged < flow.nextToSend {
            flow.timerArmed = true
            flow.timerGeneration &+= 1
            events.schedule(.retransmissionTimeout, at: now + flow.rto, a: Int32(f), b: flow.timerGeneration)
        }
        flows[f] = flow
    }

    /// Counts packet `sequence` of flow `f` as delivered in order.
    private func deliverInOrder(_ f: Int, sequence: Int32) {
        flows[f].expected += 1
        let payload = UInt64(ipBytes(flow: f, sequence: sequence) - 40)
        deliveredPayload &+= payload
        if rackOfEndpoint[Int(flows[f].source)] != rackOfEndpoint[Int(flows[f].destination)] {
            deliveredInterRackPayload &+= payload
        }
        if flows[f].expected == flows[f].packetCount { flows[f].finish = now }
    }

    private func receiveAck(_ i: Int32) {
        let p = packets[Int(i)]
        let f = Int(p.flow)
        freePacket(i)
        var flow = flows[f]
        let ack = p.sequence
        let b = configuration.baseline
        if ack > flow.unacknowledged {
            let newly = Int(ack - flow.unacknowledged)
            flow.unacknowledged = ack
            if flow.nextToSend < ack { flow.nextToSend = ack }
            flow.duplicateAcks = 0
            flow.ackedInWindow += newly
            if p.echo { flow.markedInWindow += newly }
            if ack >= flow.windowEnd {
                let fraction = flow.ackedInWindow > 0 ? Double(flow.markedInWindow) / Double(flow.ackedInWindow) : 0
                flow.alpha = (1 - b.gain) * flow.alpha + b.gain * fraction
                if flow.markedInWindow > 0 {
                    flow.cwnd = max(1, flow.cwnd * (1 - flow.alpha / 2))
                    flow.ssthresh = flow.cwnd
                }
                flow.ackedInWindow = 0
                flow.markedInWindow = 0
                flow.windowEnd = flow.nextToSend
            }
            if flow.cwnd < flow.ssthresh { flow.cwnd += Double(newly) } else { flow.cwnd += Double(newly) / flow.cwnd }
            flow.rto = b.minimumRetransmissionTimeoutNanoseconds
            flow.timerGeneration &+= 1
            flow.timerArmed = false
        } else if ack == flow.unacknowledged && flow.nextToSend > flow.unacknowledged {
            flow.duplicateAcks += 1
            if flow.duplicateAcks == 3 {
                flow.ssthresh = max(flow.cwnd / 2, 2)
                flow.cwnd = flow.ssthresh
                flow.nextToSend = flow.unacknowledged
                flow.timerGeneration &+= 1
                flow.timerArmed = false
            }
        }
        flows[f] = flow
        if flow.unacknowledged < flow.packetCount { sendWindow(f) }
    }

    private func retransmissionTimeout(_ f: Int, generation: UInt32) {
        var flow = flows[f]
        guard flow.timerArmed && generation == flow.timerGeneration && flow.unacknowledged < flow.packetCount else {
            return
        }
        timeouts &+= 1
        flow.ssthresh = max(flow.cwnd / 2, 2)
        flow.cwnd = 1
        flow.nextToSend = flow.unacknowledged
        flow.duplicateAcks = 0
        flow.rto = min(flow.rto * 2, configuration.baseline.maximumRetransmissionTimeoutNanoseconds)
        flow.timerArmed = false
        flows[f] = flow
        sendWindow(f)
    }

    // MARK: Fastpass glue

    /// Hands the agent of host `h` more packets of its flows, up to the window per flow.
    private func feedAgent(_ h: Int) {
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
                if packetsInAgentTo[pair] == 0 { firstDemandAt[pair] = now }
                packetsInAgentTo[pair] += 1
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

    private func agentWake(_ h: Int) {
        agentWakeAt[h] = .max
        agents[h].core.advance(now: now)
        var refill = false
        while let r = agents[h].core.nextRelease(now: now) {
            let i = Int32(r.handle)
            packets[Int(i)].spine = Int16(truncatingIfNeeded: r.path.rawValue)
            packets[Int(i)].slot = r.slot
            agentWaits.add(now - packets[Int(i)].created)
            let pair = h * hostCount + Int(packets[Int(i)].destination)
            packetsInAgentTo[pair] -= 1
            // The first allocation after demand to an idle destination: the arbiter's
            // response time, without the wait behind the host's own earlier demand.
            if firstDemandAt[pair] != 0 {
                if r.allocationAdmitted >= firstDemandAt[pair] {
                    requestToAllocation.add(r.allocationAdmitted - firstDemandAt[pair])
                } else {
                    requestToAllocationSkipped &+= 1
                }
                firstDemandAt[pair] = 0
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
    private func flushControl(_ h: Int) {
        while let n = scratch.withUnsafeMutableBytes({ agents[h].core.nextControlPacket(now: now, into: $0) }) {
            sendControl(scratch[0..<n], from: h, to: arbiterNode)
        }
        scheduleAgentWake(h)
    }

    private func scheduleAgentWake(_ h: Int) {
        guard system == .fastpass, let d = agents[h].core.nextDeadline else { return }
        let t = max(d, now)
        guard t < agentWakeAt[h] else { return }
        agentWakeAt[h] = t
        agentWakeGeneration[h] &+= 1
        events.schedule(.agentWake, at: t, a: Int32(h), b: agentWakeGeneration[h])
    }

    private func sendControl(_ bytes: ArraySlice<UInt8>, from: Int, to: Int) {
        let f = configuration.faults
        controlWireBytes &+= UInt64(wireBytes(Int32(bytes.count + 20)))
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

    /// Control packets held back for reordering: on their "arrival" at their own sender
    /// they enter its NIC.
    var heldBack: Set<Int32> = []

    private func agentReceive(_ i: Int32, host h: Int) {
        let c = Int(packets[Int(i)].control)
        controlArena[c].withUnsafeBytes { _ = agents[h].core.receive($0, now: now) }
        freePacket(i)
        agentWake(h)
    }

    private func arbiterReceive(_ i: Int32) {
        let c = Int(packets[Int(i)].control)
        let from = arbiterTopology!.addresses[Int(packets[Int(i)].source)]
        controlArena[c].withUnsafeBytes { arbiter!.receive($0, from: from, now: now) }
        freePacket(i)
        arbiterWake()
    }

    private func arbiterWake() {
        guard let core = arbiter else { return }
        arbiterWakeAt = .max
        core.advance(now: now)
        while let (address, n) = scratch.withUnsafeMutableBytes({ core.nextPacket(now: now, into: $0) }) {
            guard let h = arbiterTopology!.index(ofAddress: address) else { continue }
            sendControl(scratch[0..<n], from: arbiterNode, to: h)
        }
        scheduleArbiterWake()
    }

    private func scheduleArbiterWake() {
        guard let core = arbiter else { return }
        let t = max(core.nextDeadline, now)
        guard t < arbiterWakeAt else { return }
        arbiterWakeAt = t
        arbiterWakeGeneration &+= 1
        events.schedule(.arbiterWake, at: t, b: arbiterWakeGeneration)
    }

    private func restartArbiter() {
        guard let topology = arbiterTopology else { return }
        // A new process: every session and all demand are gone; endpoints notice through
        // the reset handshake and ask again.
        arbiter = try? makeArbiter(topology)
        arbiterWakeAt = .max
        scheduleArbiterWake()
    }

    private func spineDown(_ s: Int) {
        spineUp[s] = false
        aliveSpines = (0..<configuration.spines).filter { spineUp[$0] }
        if let core = arbiter { try? core.setSpine(s, up: false) }
    }

    // MARK: Results

    private func result(wallSeconds: Double) -> SystemResult {
        let c = configuration
        let seconds = Double(c.traffic.durationNanoseconds) / 1e9
        var all = OccupancyHistogram()
        for cls in [PortClass.torDown, .torUp, .spineDown] {
            let h = histograms[cls.rawValue]
            for k in h.bytes.indices { all.bytes[k] &+= h.bytes[k] }
            for k in h.dataBytes.indices { all.dataBytes[k] &+= h.dataBytes[k] }
            for k in h.packets.indices { all.packets[k] &+= h.packets[k] }
            all.noteMaximum(bytes: h.maxBytes, packets: h.maxPackets)
        }
        let summary = all.summary()
        var queues: [String: QueueSummary] = [:]
        for cls in [PortClass.torDown, .torUp, .spineDown] { queues[cls.name] = histograms[cls.rawValue].summary() }

        let rate = c.hostLinkGbps
        let hopsDelay = Double(c.linkDelayNanoseconds)
        var buckets: [(String, Int, Int)] = [
            ("small (< 100 KB)", 0, 100_000), ("medium (100 KB – 10 MB)", 100_000, 10_000_000),
            ("large (≥ 10 MB)", 10_000_000, Int.max),
        ]
        var fct = [[Double]](repeating: [], count: buckets.count)
        var slow = [[Double]](repeating: [], count: buckets.count)
        var completed = 0
        var started = 0
        var rates: [Double] = []
        var interRackOffered = 0
        for flow in flows where flow.start < Self.origin + c.traffic.durationNanoseconds {
            started += 1
            if rackOfEndpoint[Int(flow.source)] != rackOfEndpoint[Int(flow.destination)] {
                interRackOffered += flow.bytes
            }
            guard flow.finish > 0 else { continue }
            completed += 1
            let duration = Double(flow.finish - flow.start)
            let sameRack = rackOfEndpoint[Int(flow.source)] == rackOfEndpoint[Int(flow.destination)]
            let hops = sameRack ? 2.0 : 4.0
            let wire = Double(flow.bytes + Int(flow.packetCount) * (40 + FabricConfiguration.framingBytes))
            let ideal = wire * 8 / rate + (hops - 1) * slotNanoseconds + hops * hopsDelay
            let b = buckets.firstIndex { flow.bytes >= $0.1 && flow.bytes < $0.2 } ?? 0
            fct[b].append(duration / 1000)
            slow[b].append(max(1, duration / ideal))
            rates.append(Double(flow.bytes) / duration)
        }
        var flowBuckets: [FlowSummary] = []
        for k in buckets.indices {
            fct[k].sort()
            slow[k].sort()
            flowBuckets.append(
                FlowSummary(
                    bucket: buckets[k].0, flows: fct[k].count, fctP50Microseconds: percentile(fct[k], 0.5),
                    fctP99Microseconds: percentile(fct[k], 0.99), slowdownP50: percentile(slow[k], 0.5),
                    slowdownP99: percentile(slow[k], 0.99)))
        }
        buckets.removeAll()
        let throughput = Double(deliveredPayload) * 8 / seconds / 1e9
        let capacity = Double(hostCount) * rate
        return SystemResult(
            system: system.rawValue, simulatedMilliseconds: seconds * 1000, queueP50Bytes: summary.p50Bytes,
            queueP99Bytes: summary.p99Bytes, queueMaxBytes: summary.maxBytes, queueP99Packets: summary.p99Packets,
            queueMaxPackets: summary.maxPackets, queues: queues, drops: drops, dataDrops: dataDrops,
            controlDrops: controlDrops, ecnMarks: ecnMarks, throughputGbps: throughput,
            utilization: throughput / capacity,
            interRackThroughputGbps: Double(deliveredInterRackPayload) * 8 / seconds / 1e9,
            interRackOfferedGbps: Double(interRackOffered) * 8 / seconds / 1e9,
            uplinkCapacityGbps: Double(c.racks * c.spines) * c.uplinkGbps, flowsStarted: started,
            flowsCompleted: completed,
            fctSlowdownP50Small: flowBuckets[0].slowdownP50, fctSlowdownP99Small: flowBuckets[0].slowdownP99,
            flowBuckets: flowBuckets, jainFairness: rates.isEmpty ? nil : jainIndex(rates),
            controlBytes: controlWireBytes,
            controlShare: Double(controlWireBytes) * 8 / (capacity * 1e9 * seconds),
            agentWaitP50Microseconds: agentWaits.quantileMicroseconds(0.5),
            agentWaitP99Microseconds: agentWaits.quantileMicroseconds(0.99),
            requestToAllocationP50Microseconds: requestToAllocation.quantileMicroseconds(0.5),
            requestToAllocationP99Microseconds: requestToAllocation.quantileMicroseconds(0.99),
            requestToAllocationSkipped: requestToAllocationSkipped,
            doubleBookedSlots: doubleBooked, reorderedPackets: reorderedPackets,
            reorderedBeyondWindow: reorderedBeyondWindow, reroutedScheduledPackets: reroutedScheduled,
            spinePackets: spinePackets,
            retransmissionTimeouts: timeouts, events: processed,
            eventsPerSecond: Double(processed) / max(wallSeconds, 1e-9), wallSeconds: wallSeconds,
            queueCDF: all.cdf(), timeline: timeline)
    }
}

/// A simulation that cannot run; the message names the field.
public struct SimulationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}

/// A FIFO of packet indices that reuses its storage.
struct IndexFIFO {
    private var storage: [Int32] = []
    private var head = 0

    var isEmpty: Bool { head == storage.count }

    mutating func push(_ i: Int32) { storage.append(i) }

    func peek() -> Int32? { head < storage.count ? storage[head] : nil }

    mutating func pop() -> Int32? {
        guard head < storage.count else { return nil }
        let i = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= storage.count {
            storage.removeFirst(head)
            head = 0
        }
        return i
    }
}
