import FastpassAgent
import FastpassProtocol
import FastpassStatus
import Foundation
import Logging
import PacketIO
import Synchronization

/// The agent's counters besides the core's: the devices and sockets around it. The status
/// document's own type, counted into directly: the pacing thread has no second copy of
/// them to keep in step.
public typealias AgentIOStatistics = AgentIOCounters

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
