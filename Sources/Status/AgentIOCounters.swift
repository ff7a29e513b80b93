/// The agent's device and socket counters (at the top level of the agent's `/status`), as
/// `AgentIOStatistics` keeps them.
///
/// The JSON keys are spelled out rather than derived: scripts, dashboards and docs read
/// them, so renaming a Swift property must not rename a key.
public struct AgentIOCounters: Sendable, Hashable, Codable {
    /// Packets read from the TUN device.
    public var tunPackets: UInt64 = 0
    public var tunBytes: UInt64 = 0
    public var tunReadErrors: UInt64 = 0
    /// Packets sent out of the interface (released, bypassing, unscheduled).
    public var egressPackets: UInt64 = 0
    public var egressBytes: UInt64 = 0
    /// Packets the kernel refused to send (no buffer space, no route), dropped.
    public var egressErrors: UInt64 = 0
    /// Packets that bypass the schedule, sent at once.
    public var bypassSent: UInt64 = 0
    /// Non-IPv4 packets that reached the TUN device (only IPv4 is routed to it), dropped.
    public var nonIpv4Dropped: UInt64 = 0
    /// Malformed packets from the TUN device, dropped.
    public var malformedDropped: UInt64 = 0
    /// FCP packets received from the arbiter and sent to it; failures of either call
    /// (e.g. ICMP unreachable reported by the kernel while the arbiter is down).
    public var fcpReceived: UInt64 = 0
    public var fcpFromOthers: UInt64 = 0
    public var fcpSent: UInt64 = 0
    public var fcpReceiveErrors: UInt64 = 0
    public var fcpSendErrors: UInt64 = 0
    /// Released slots whose allocation reached the host after the slot's planned release
    /// time: the arbiter (or the path to it) was late, not the pacing thread.
    public var allocationsAfterPlannedRelease: UInt64 = 0
    /// Times the arbiter became unreachable, and came back.
    public var unreachableEvents: UInt64 = 0
    public var reachableAgain: UInt64 = 0
    /// Packets sent unscheduled straight from the TUN device while falling back (the core
    /// counts those it had queued); reported together as `packets_unscheduled`.
    public var unscheduledDirect: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case tunPackets = "tun_packets"
        case tunBytes = "tun_bytes"
        case tunReadErrors = "tun_read_errors"
        case egressPackets = "egress_packets"
        case egressBytes = "egress_bytes"
        case egressErrors = "egress_errors"
        case bypassSent = "bypass_sent"
        case nonIpv4Dropped = "non_ipv4_dropped"
        case malformedDropped = "malformed_dropped"
        case fcpReceived = "fcp_received"
        case fcpFromOthers = "fcp_from_others"
        case fcpSent = "fcp_sent"
        case fcpReceiveErrors = "fcp_receive_errors"
        case fcpSendErrors = "fcp_send_errors"
        case allocationsAfterPlannedRelease = "allocations_after_planned_release"
        case unreachableEvents = "unreachable_events"
        case reachableAgain = "reachable_again"
        case unscheduledDirect = "unscheduled_direct"
    }
}
