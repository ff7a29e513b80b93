import FastpassProtocol

/// What the agent does with an outgoing packet.
public enum AgentClassification: Sendable, Hashable {
    /// Waits for a timeslot towards the peer at this index of ``AgentConfiguration/peers``.
    case schedule(peer: Int)
    /// Leaves at once, for the reason given.
    case bypass(BypassReason)
    /// Cannot be an IPv4 packet as it claims; dropped and counted.
    case malformed(MalformedReason)
}

/// Why a packet does not wait for a timeslot.
public enum BypassReason: Int, Sendable, Hashable, CaseIterable {
    /// Not IPv4 (the arbiter schedules IPv4 only).
    case notIPv4
    /// FCP itself: it carries the requests that get everything else its slots.
    case fcp
    /// An IP protocol configured to bypass.
    case configuredProtocol
    /// A DSCP value configured to bypass.
    case configuredDSCP
    /// The destination is not a host of the fabric.
    case outsideFabric
    /// Addressed to this host itself.
    case toSelf
}

/// Why an outgoing packet was refused as malformed.
public enum MalformedReason: Int, Sendable, Hashable, CaseIterable {
    /// Shorter than an IPv4 header.
    case truncated
    /// The header length field is below 20 bytes or beyond the packet.
    case badHeaderLength
    /// The total length field disagrees with the packet's length.
    case badTotalLength
}

/// Maps a destination address to its peer: open addressing over a power-of-two table,
/// built once.
struct PeerAddressTable: Sendable {
    private var keys: [UInt32]
    private var values: [Int32]
    private let mask: Int

    init(_ peers: [AgentPeer]) {
        var size = 16
        while size < peers.count * 2 { size <<= 1 }
        keys = [UInt32](repeating: 0, count: size)
        values = [Int32](repeating: -1, count: size)
        mask = size - 1
        for (i, p) in peers.enumerated() {
            var j = Self.hash(p.address) & mask
            while values[j] >= 0 { j = (j + 1) & mask }
            keys[j] = p.address
            values[j] = Int32(i)
        }
    }

    @inline(__always)
    static func hash(_ key: UInt32) -> Int {
        Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> 32)
    }

    func peer(of address: UInt32) -> Int? {
        var j = Self.hash(address) & mask
        while values[j] >= 0 {
            if keys[j] == address { return Int(values[j]) }
            j = (j + 1) & mask
        }
        return nil
    }
}

/// Decides per outgoing IPv4 packet whether it waits for a slot and towards which peer.
/// Reads only the fixed header; never trusts a length field without checking it.
public struct PacketClassifier: Sendable {
    let ownAddress: UInt32
    let peers: PeerAddressTable
    /// Bit per IP protocol / DSCP value that bypasses.
    var bypassProtocols = InlineArray<4, UInt64>(repeating: 0)
    var bypassDSCP: UInt64 = 0

    public init(_ configuration: AgentConfiguration) {
        ownAddress = configuration.address
        peers = PeerAddressTable(configuration.peers)
        for p in configuration.bypassProtocols { bypassProtocols[Int(p) >> 6] |= 1 << UInt64(p & 63) }
        for d in configuration.bypassDSCP where d < 64 { bypassDSCP |= 1 << UInt64(d) }
    }

    /// The IP protocol number of FCP.
    public static let fcpProtocol: UInt8 = 222

    /// Classifies one packet as it leaves the host (starting at its IP header).
    public func classify(_ packet: UnsafeRawBufferPointer) -> AgentClassification {
        guard packet.count >= 1 else { return .malformed(.truncated) }
        let version = packet[0] >> 4
        guard version == 4 else { return .bypass(.notIPv4) }
        guard packet.count >= 20 else { return .malformed(.truncated) }
        let headerLength = Int(packet[0] & 0x0F) * 4
        guard headerLength >= 20 && headerLength <= packet.count else { return .malformed(.badHeaderLength) }
        let totalLength = Int(packet[2]) << 8 | Int(packet[3])
        // A TUN device hands over exactly one packet; padding is not allowed either.
        guard totalLength >= headerLength && totalLength == packet.count else { return .malformed(.badTotalLength) }
        let proto = packet[9]
        if proto == Self.fcpProtocol { return .bypass(.fcp) }
        if bypassProtocols[Int(proto) >> 6] & (1 << UInt64(proto & 63)) != 0 { return .bypass(.configuredProtocol) }
        let dscp = packet[1] >> 2
        if bypassDSCP & (1 << UInt64(dscp)) != 0 { return .bypass(.configuredDSCP) }
        let destination =
            UInt32(packet[16]) << 24 | UInt32(packet[17]) << 16 | UInt32(packet[18]) << 8 | UInt32(packet[19])
        if destination == ownAddress { return .bypass(.toSelf) }
        guard let peer = peers.peer(of: destination) else { return .bypass(.outsideFabric) }
        return .schedule(peer: peer)
    }
}
