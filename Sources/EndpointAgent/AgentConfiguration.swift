import FastpassProtocol

/// A host of the fabric this agent can send to through the arbiter: its IPv4 address and
/// the name the arbiter knows it by (the topology's node id, or for a reference-FCP
/// session the 8-bit MAC hash).
public struct AgentPeer: Sendable, Hashable {
    /// IPv4 address, host byte order.
    public var address: UInt32
    public var node: NodeID

    public init(address: UInt32, node: NodeID) {
        self.address = address
        self.node = node
    }
}

/// How an agent core is set up. Everything is bounded by it at start-up; tables grow
/// towards those bounds only as far as they are used.
public struct AgentConfiguration: Sendable {
    /// The FCP session towards the arbiter (mode, identity, acceptance window, timers).
    public var session: EndpointSessionConfiguration
    /// This host's IPv4 address (host byte order): packets to it never wait.
    public var address: UInt32
    /// Every other host of the fabric.
    public var peers: [AgentPeer]
    /// IPv4 bytes one timeslot carries: one MTU-sized packet at the host link rate. Smaller
    /// packets share a slot while they fit.
    public var slotBytes = 1500
    /// Length of a timeslot (reference: 2^19/419 ns ≈ 1251.3 ns, 1500 bytes at 10 Gbit/s with
    /// framing); releases later than this past their plan are counted as missing their slot.
    public var slotNanoseconds: UInt64 = 1252
    /// Packets queued at once, all destinations together.
    public var packetCapacity = 8192
    /// Packets queued at once towards one destination.
    public var perDestinationPacketLimit = 2048
    /// How long before its slot starts an allocated packet is released, to cover the time
    /// from release to the wire.
    public var releaseLeadNanoseconds: UInt64 = 0
    /// How long after its slot starts an allocated slot's packets may still be released;
    /// later, they keep their place in the queue and ask for a new slot, so a host that
    /// was not scheduled in time does not send into a slot the arbiter gave another host.
    /// 0: one timeslot; nil: no limit (release however late).
    public var lateReleaseLimitNanoseconds: UInt64?
    /// Least time between two FCP packets to the arbiter: new demand waits up to this long so
    /// that one packet carries the requests of many packets queued meanwhile.
    public var requestIntervalNanoseconds: UInt64 = 2_000
    /// IP protocols that never wait (FCP, 222, always bypasses).
    public var bypassProtocols: Set<UInt8> = []
    /// DSCP values that never wait.
    public var bypassDSCP: Set<UInt8> = []
    /// How long packets may wait with no word from the arbiter (or no session yet) before
    /// it counts as unreachable and ``unreachablePolicy`` applies; nil: never.
    public var unreachableAfterNanoseconds: UInt64?
    /// What the agent does when the arbiter is unreachable.
    public var unreachablePolicy = AgentUnreachablePolicy.fallback

    public init(session: EndpointSessionConfiguration, address: UInt32, peers: [AgentPeer]) {
        self.session = session
        self.address = address
        self.peers = peers
    }

    /// The smallest IPv4 packet: a header without options.
    public static let minimumPacketBytes = 20

    /// Why the configuration cannot work, naming the field; nil when it can.
    public var problem: String? {
        if let p = session.problem { return "session.\(p)" }
        if slotBytes < Self.minimumPacketBytes || slotBytes > 65_535 {
            return "slotBytes must be in \(Self.minimumPacketBytes)...65535 (got \(slotBytes))"
        }
        if slotNanoseconds < 1 { return "slotNanoseconds must be at least 1" }
        if packetCapacity < 1 || packetCapacity > 1 << 24 {
            return "packetCapacity must be in 1...16777216 (got \(packetCapacity))"
        }
        if perDestinationPacketLimit < 1 {
            return "perDestinationPacketLimit must be at least 1 (got \(perDestinationPacketLimit))"
        }
        if peers.count > session.maxDestinations {
            return "peers: \(peers.count) hosts but session.maxDestinations is \(session.maxDestinations)"
        }
        // Reserved: grown entry by entry, the two tables took a third of the start-up of 4 096
        // agents with 4 095 peers each.
        var addresses: [UInt32: Int] = .init(minimumCapacity: peers.count)
        var nodes: [UInt32: Int] = .init(minimumCapacity: peers.count)
        for (i, p) in peers.enumerated() {
            if p.address == address {
                return "peers[\(i)]: address \(AgentConfiguration.format(p.address)) is this host's own"
            }
            if let j = addresses.updateValue(i, forKey: p.address) {
                return "peers[\(i)]: address \(AgentConfiguration.format(p.address)) already used by peers[\(j)]"
            }
            if let j = nodes.updateValue(i, forKey: p.node.rawValue) {
                return "peers[\(i)]: node \(p.node) already used by peers[\(j)]"
            }
            if session.mode == .reference && p.node.rawValue > NodeID.referenceLimit {
                return "peers[\(i)]: node \(p.node) does not fit reference FCP (at most \(NodeID.referenceLimit))"
            }
        }
        for d in bypassDSCP where d > 63 {
            return "bypassDSCP: \(d) is not a DSCP value (0...63)"
        }
        return nil
    }

    /// Dotted-quad text of a host-order address.
    public static func format(_ address: UInt32) -> String {
        "\(address >> 24).\((address >> 16) & 255).\((address >> 8) & 255).\(address & 255)"
    }
}

/// A configuration the agent cannot run with; the message names the field.
public struct AgentConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var reason: String
    public var description: String { "agent configuration: \(reason)" }
}
