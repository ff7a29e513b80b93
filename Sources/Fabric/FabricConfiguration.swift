/// The simulated leaf–spine fabric and what runs on it.
public struct FabricConfiguration: Sendable {
    public var racks = 4
    public var hostsPerRack = 16
    public var spines = 4
    public var hostLinkGbps = 10.0
    /// Host capacity of a rack over its uplink capacity (1: full bisection).
    public var oversubscription = 1.0
    /// Propagation delay of every link.
    public var linkDelayNanoseconds: UInt64 = 500
    /// Bytes each switch output port can hold; a packet that does not fit is dropped.
    public var portBufferBytes = 300_000
    /// Queue above which data packets are marked with ECN (DCTCP's K: 65 packets at 10 Gbit/s).
    public var ecnThresholdBytes = 97_500
    /// Largest IPv4 packet; a data packet carries this minus 40 bytes of TCP/IP headers.
    public var mtuBytes = 1500
    /// Share of each timeslot beyond one MTU-sized packet's wire time: room for the FCP
    /// packets that share the links with scheduled data. Without it a host or receiver
    /// booked in every slot falls behind by every control packet and never catches up.
    public var slotHeadroom = 0.05
    /// The traffic offered and how long it is measured.
    public var traffic = TrafficConfiguration()
    /// Faults to inject.
    public var faults = FaultConfiguration()
    /// Baseline transport parameters.
    public var baseline = BaselineConfiguration()
    /// The arbiter's link to its ToR. Every host's requests come in on it and every
    /// allocation goes out on it; at 10 Gbit/s it saturates above about a hundred hosts.
    public var arbiterLinkGbps = 40.0
    /// Least time between two FCP packets from one agent.
    public var requestIntervalNanoseconds: UInt64 = 8_000
    /// The arbiter's control budget: FCP packets per second it takes from all agents
    /// together, each told its share (0: none). With the CPU model on, the arbiter also
    /// measures what its communication core takes, as the daemon does.
    public var controlPacketsPerSecond: UInt64 = 200_000
    /// Packets an agent keeps queued per flow (more are fed as they leave).
    public var agentWindowPackets = 512
    /// How long an agent's packets may wait with no word from the arbiter before it falls
    /// back to sending them unscheduled, as the daemon's `unreachable.after_ms` does; nil:
    /// never (the agents wait however long).
    public var agentUnreachableAfterNanoseconds: UInt64?
    /// The arbiter's modelled CPU: on by default, so an arbiter short of cores falls behind.
    public var arbiterCPU = ArbiterCPUConfiguration()
    public var seed: UInt64 = 1

    public init() {}

    /// Bytes on the wire per packet beyond its IPv4 bytes: Ethernet header, FCS, preamble
    /// and inter-frame gap.
    public static let framingBytes = 38
    public static let minimumFrameBytes = 84

    public var hostCount: Int { racks * hostsPerRack }
    /// Uplink rate per ToR–spine link.
    public var uplinkGbps: Double { Double(hostsPerRack) * hostLinkGbps / Double(spines) / oversubscription }

    /// Why the configuration cannot run, naming the field; nil when it can.
    public var problem: String? {
        if racks < 1 || racks > 256 { return "racks must be in 1...256 (got \(racks))" }
        if hostsPerRack < 1 || hostsPerRack > 256 { return "hostsPerRack must be in 1...256 (got \(hostsPerRack))" }
        if hostCount < 2 { return "the fabric needs at least 2 hosts (got \(hostCount))" }
        if spines < 1 || spines > 64 { return "spines must be in 1...64 (got \(spines))" }
        if !(hostLinkGbps > 0 && hostLinkGbps <= 1000) {
            return "hostLinkGbps must be in (0, 1000] (got \(hostLinkGbps))"
        }
        if !(oversubscription >= 1 && oversubscription <= 64) {
            return "oversubscription must be in 1...64 (got \(oversubscription))"
        }
        if mtuBytes < 100 || mtuBytes > 9000 { return "mtuBytes must be in 100...9000 (got \(mtuBytes))" }
        if portBufferBytes < mtuBytes { return "portBufferBytes must hold at least one MTU (\(mtuBytes))" }
        if ecnThresholdBytes < 0 { return "ecnThresholdBytes must not be negative" }
        if !(slotHeadroom >= 0 && slotHeadroom <= 1) { return "slotHeadroom must be in 0...1 (got \(slotHeadroom))" }
        if !(arbiterLinkGbps > 0 && arbiterLinkGbps <= 1000) {
            return "arbiterLinkGbps must be in (0, 1000] (got \(arbiterLinkGbps))"
        }
        if agentWindowPackets < 1 { return "agentWindowPackets must be at least 1" }
        if controlPacketsPerSecond > UInt64(UInt32.max) {
            return "controlPacketsPerSecond must be at most \(UInt32.max) (got \(controlPacketsPerSecond))"
        }
        if let p = traffic.problem(hosts: hostCount) { return "traffic.\(p)" }
        if let p = faults.problem { return "faults.\(p)" }
        if let p = arbiterCPU.problem { return "arbiterCPU.\(p)" }
        return nil
    }
}

/// The traffic offered to the fabric.
public struct TrafficConfiguration: Sendable {
    public enum Pattern: Sendable {
        /// Poisson flow arrivals at `load` of every host's link, sizes from a distribution,
        /// uniform source and destination.
        case poisson(FlowSizeDistribution, load: Double)
        /// `senders` hosts each send `bytes` to one receiver at the same moment.
        case incast(senders: Int, bytes: Int)
        /// Every host sends `bytes` to one other host, each host receiving one flow.
        case permutation(bytes: Int)
        /// Every host sends `bytes` to every other host.
        case allToAll(bytes: Int)
    }

    public var pattern = Pattern.poisson(.webSearch, load: 0.6)
    /// Simulated time measured; flows arrive only in it.
    public var durationNanoseconds: UInt64 = 50_000_000

    public init() {}

    func problem(hosts: Int) -> String? {
        if durationNanoseconds < 1_000 || durationNanoseconds > 10_000_000_000 {
            return "durationNanoseconds must be in 1 µs...10 s"
        }
        switch pattern {
        case .poisson(_, let load):
            if !(load > 0 && load <= 1) { return "load must be in (0, 1] (got \(load))" }
        case .incast(let senders, let bytes):
            if senders < 1 || senders >= hosts { return "incast senders must be in 1...\(hosts - 1) (got \(senders))" }
            if bytes < 1 { return "incast bytes must be at least 1" }
        case .permutation(let bytes), .allToAll(let bytes):
            if bytes < 1 { return "bytes must be at least 1" }
        }
        return nil
    }
}

/// Faults injected into a run.
public struct FaultConfiguration: Sendable {
    /// Probability that an FCP packet is lost in the fabric.
    public var controlLoss = 0.0
    /// Probability that an FCP packet is delivered twice.
    public var controlDuplication = 0.0
    /// Probability that an FCP packet is held back by `reorderDelayNanoseconds`, so that
    /// later ones overtake it.
    public var controlReordering = 0.0
    public var reorderDelayNanoseconds: UInt64 = 20_000
    /// When the arbiter restarts, losing all its state.
    public var arbiterRestartAt: UInt64?
    /// A spine that goes down, and when.
    public var spineDown: (spine: Int, at: UInt64)?
    /// An arbiter outage: from `start` for `duration` (ns from the run's start), every FCP
    /// packet to or from the arbiter is lost, as when its link is cut or it hangs.
    public var arbiterOutage: (start: UInt64, duration: UInt64)?

    public init() {}

    var problem: String? {
        for (name, p) in [
            ("controlLoss", controlLoss), ("controlDuplication", controlDuplication),
            ("controlReordering", controlReordering),
        ] where !(p >= 0 && p < 1) {
            return "\(name) must be in [0, 1) (got \(p))"
        }
        return nil
    }
}

/// The window-based baseline transport (DCTCP-style).
public struct BaselineConfiguration: Sendable {
    /// Initial congestion window, in packets.
    public var initialWindow = 10
    /// DCTCP's gain for the marked fraction.
    public var gain = 1.0 / 16
    public var minimumRetransmissionTimeoutNanoseconds: UInt64 = 1_000_000
    public var maximumRetransmissionTimeoutNanoseconds: UInt64 = 64_000_000

    public init() {}
}

/// Which system a run simulates.
public enum SimulatedSystem: String, Sendable, CaseIterable, Codable {
    /// The arbiter and an agent on every host; data waits for its timeslot.
    case fastpass
    /// No arbiter: every host sends with the DCTCP-style baseline transport, ECMP paths.
    case baseline
}
