import FastpassArbiter
import FastpassProtocol
import Foundation
import Logging
import PacketIO
import Synchronization

/// One endpoint's line in a snapshot.
public struct EndpointSnapshot: Sendable, Hashable {
    public var address: String
    public var id: UInt32
    public var rack: Int
    /// Registered: it has a session with the arbiter.
    public var connected: Bool
    /// Speaks the extended protocol (false: reference FCP).
    public var extended: Bool
    /// The session's counters (demand, allocations sent, late, rejected, ...).
    public var session: ArbiterSessionStatistics
    /// The FCP connection's counters.
    public var connection: FCPConnectionStatistics

    static func idle(_ topology: Topology, _ i: Int) -> EndpointSnapshot {
        EndpointSnapshot(
            address: topology.configuration.hosts[i].address, id: topology.nodeIDs[i].rawValue,
            rack: Int(topology.rackOf[i]), connected: false, extended: false, session: ArbiterSessionStatistics(),
            connection: FCPConnectionStatistics())
    }
}

/// What the daemon reports: copied from the communication thread every
/// ``ArbiterRuntime/publishIntervalNanoseconds``, read by the HTTP endpoint.
public struct ArbiterSnapshot: Sendable {
    public var time: UInt64 = 0
    public var startedAt: UInt64 = 0
    public var currentSlot: UInt64 = 0
    public var loops: UInt64 = 0
    /// Time the communication thread spent in loop rounds that did something (received,
    /// advanced or sent), ns: with the packet counters, its packets per busy second,
    /// which is its capacity per core when the offered load does not fill the core.
    public var busyNanoseconds: UInt64 = 0
    /// The part of the busy time spent inside the backend's receive and send calls (the
    /// kernel, for sockets), empty polls included; the rest is the arbiter's own work. A
    /// receive that slept first is not counted in either.
    public var ioNanoseconds: UInt64 = 0
    public var core = ArbiterCoreStatistics()
    public var allocator = TimeslotAllocatorStatistics()
    public var io = PacketIOStatistics()
    /// Wake-ups past their deadline, by lateness: bucket `i` counts [2^(i-1), 2^i) ns
    /// (bucket 0: on time).
    public var lateness = [UInt64](repeating: 0, count: ArbiterSnapshot.latenessBuckets)
    public var endpoints: [EndpointSnapshot] = []
    /// Threads the allocator runs on besides the communication thread (stages and path
    /// selection; 0 when it runs inline), and how many of them are pinned to their CPU.
    public var allocatorThreads = 0
    public var allocatorThreadsPinned = 0
    /// The send rule as it stands (see ``ArbiterCore/sendLeadSlots``): how far ahead of its
    /// earliest slot a packet of allocations leaves, how far ahead batches are allocated,
    /// and the endpoints' round-trip 99th percentile it follows (ns; 0 before measured).
    public var sendLeadSlots = 0
    public var lookaheadSlots = 0
    public var roundTripP99Nanoseconds: UInt64 = 0
    /// The control budget: configured and effective capacity, and the share as announced.
    public var controlConfigured: UInt64 = 0
    public var controlCapacity: UInt64 = 0
    public var controlShare: FCPControlBudget?
    /// Packets of allocations by their earliest slot's lead as they left (slots).
    public var sendLeads = AllocationLeadHistogram()

    public static let latenessBuckets = 40
}
