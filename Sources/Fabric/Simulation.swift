import FastpassAgent
import FastpassArbiter
import FastpassProtocol
import Foundation
import SeededRandom

/// A discrete-event simulation of a leaf–spine fabric running one system: the real
/// arbiter core and real agent cores exchanging real FCP bytes across the simulated
/// switches (`.fastpass`), or hosts sending with a DCTCP-style transport (`.baseline`).
///
/// Deterministic: the same configuration and seed give the same results, byte for byte.
///
/// This file holds the state and the event loop; the parts live beside it: the fabric
/// model (ports, queues, links, forwarding: `Simulation+FabricModel.swift`), the baseline
/// transport (`Simulation+BaselineTransport.swift`), the Fastpass hosts (arbiter and agent
/// cores: `Simulation+FastpassHosts.swift`) and what is measured (``SimulationMetrics``).
///
/// Single-threaded, so the hottest tables skip the runtime's dynamic exclusivity checks
/// (`@exclusivity(unchecked)`): with them the simulator spent a quarter of its time there.
public final class Simulation {
    public let configuration: FabricConfiguration
    public let system: SimulatedSystem
    /// Called every 2^16 events with the fraction of the simulated time done, for a
    /// progress display.
    public var progress: ((Double) -> Void)?

    // MARK: Fabric (the types and what they do: Simulation+FabricModel.swift)

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
        @exclusivity(unchecked) var core: AgentCore
        init(_ core: AgentCore) { self.core = core }

        /// ``AgentCore/nextDeadline``, read in place. A getter called on `core` itself is
        /// handed a copy of the whole core, a retain and a release of each of its tables:
        /// 30 % of the run time at 1 024 hosts.
        var nextDeadline: UInt64? { inPlace { $0.nextDeadline } }
        /// ``AgentCore/sendsUnscheduled``, read in place (see ``nextDeadline``).
        var sendsUnscheduled: Bool { inPlace { $0.sendsUnscheduled } }

        private func inPlace<R>(_ read: (inout AgentCore) -> R) -> R { read(&core) }
    }
    @exclusivity(unchecked) var agents: [AgentBox] = []
    var agentWakeAt: [UInt64] = []
    var agentWakeGeneration: [UInt32] = []
    var arbiterWakeAt: UInt64 = .max
    var arbiterWakeGeneration: UInt32 = 0
    var arbiterTopology: Topology?
    /// The arbiter's modelled CPU (Simulation+ArbiterCPU.swift); its counters are kept with
    /// the model off too.
    @exclusivity(unchecked) var cpu: ArbiterCPUState
    var scratch = [UInt8](repeating: 0, count: 4096)
    let slotNanoseconds: Double

    /// Control packets held back for reordering: on their "arrival" at their own sender
    /// they enter its NIC.
    var heldBack: Set<Int32> = []

    // MARK: Measurements (SimulationMetrics.swift)

    @exclusivity(unchecked) var metrics: SimulationMetrics

    public init(configuration: FabricConfiguration, system: SimulatedSystem) throws(SimulationError) {
        if let p = configuration.problem { throw SimulationError(reason: p) }
        self.configuration = configuration
        self.system = system
        hostCount = configuration.hostCount
        arbiterNode = hostCount
        torBase = hostCount + 1
        spineBase = torBase + configuration.racks
        spineUp = [Bool](repeating: true, count: configuration.spines)
        metrics = SimulationMetrics(spines: configuration.spines)
        cpu = ArbiterCPUState(configuration.arbiterCPU, now: Simulation.origin)
        events = EventQueue(capacity: 1 << 16)
        random = SplitMix64(simulationSeed: configuration.seed)
        slotNanoseconds =
            Double((configuration.mtuBytes + FabricConfiguration.framingBytes) * 8) / configuration.hostLinkGbps
            * (1 + configuration.slotHeadroom)
        buildFabric()
        if system == .fastpass { try startFastpass() }
        pendingFlows = [[Int32]](repeating: [], count: hostCount)
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
            metrics.processed &+= 1
            if metrics.processed & 0xFFFF == 0, let report = progress {
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
            case .arbiterWake:
                if e.b == arbiterWakeGeneration {
                    if configuration.arbiterCPU.enabled { arbiterCPUWake() } else { arbiterWake() }
                }
            case .arbiterCPUDone: arbiterCPUDone()
            case .arbiterCPUSend: arbiterCPUSend(Int(e.a))
            case .arbiterRestart: restartArbiter()
            case .spineDown: spineDown(Int(e.a))
            }
            if e.kind == .end { break }
        }
        for q in ports.indices { noteOccupancy(&ports[q], q) }
        return metrics.result(of: self, wallSeconds: Date().timeIntervalSince(started))
    }

    func sampleTimeline() {
        // Host 0's downlink: the receiver under incast, an ordinary host otherwise.
        if metrics.busiestPort < 0 { metrics.busiestPort = torDownPort[0] }
        let p = ports[metrics.busiestPort]
        metrics.timeline.append([Double(now - Self.origin) / 1000, Double(p.bytes - p.inServiceBytes)])
    }

    /// Flow arrivals for the whole run, drawn up front so both systems see the same flows.
    func scheduleTraffic() {
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

    func ipBytes(flow f: Int, sequence: Int32) -> Int32 {
        let payload = configuration.mtuBytes - 40
        let last = Int(flows[f].packetCount) - 1
        let size = Int(sequence) == last ? flows[f].bytes - last * payload : payload
        return Int32(size + 40)
    }

    func startFlow(_ f: Int) {
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

    func deliver(_ i: Int32, to node: Int) {
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

    func receiveData(_ i: Int32) {
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
            metrics.reorderedPackets &+= 1
            if distance < 64 {
                flows[f].aheadMask |= 1 << UInt64(distance)
            } else {
                metrics.reorderedBeyondWindow &+= 1
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
}
