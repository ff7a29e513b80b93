import FastpassAgent
import FastpassProtocol
import Foundation
import Logging
import PacketIO
import Synchronization

/// The agent's counters besides the core's: the devices and sockets around it.
public struct AgentIOStatistics: Sendable {
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
}

/// What the agent reports: copied from the pacing thread every 100 ms.
public struct AgentSnapshot: Sendable {
    public var time: UInt64 = 0
    public var startedAt: UInt64 = 0
    public var state = AgentState.connecting
    public var core = AgentStatistics()
    public var session = EndpointSessionStatistics()
    public var io = AgentIOStatistics()
    /// The FCP transport's own counters (for DPDK: ARP, frames not for this host).
    public var transport = PacketIOStatistics()
    public var queuedPackets = 0
    /// When the arbiter was last heard from (ns, wall clock; 0: never).
    public var lastHeard: UInt64 = 0
    /// The arbiter's announced timeslot (ps; 0: not yet known).
    public var slotPicoseconds: UInt64 = 0
    public var tun = ""
    /// Whether the pacing thread is pinned to its CPU.
    public var pinned = false
}
