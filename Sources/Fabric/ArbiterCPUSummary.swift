/// What the simulated arbiter's CPU did in a run (fastpass only): its FCP packet rates,
/// the communication core's load, its receive queue, and the allocator cores the load
/// needed.
public struct ArbiterCPUSummary: Codable, Sendable, Hashable {
    /// Whether the CPU was modelled (``ArbiterCPUConfiguration/enabled``). When it was not,
    /// the loads below are what the arbiter would have needed, not what it got.
    public var modelled: Bool
    /// FCP packets the arbiter core handled per second of the run, received and sent.
    public var receivedPerSecond: Double
    public var sentPerSecond: Double
    /// Packets handled times the per-packet service time, over the run's time: the share
    /// of one communication core the packets took (above 1: more than one core).
    public var communicationLoad: Double
    /// The receive queue, time-weighted (packets waiting, not the batch in service).
    public var receiveQueueP99Packets: Int
    public var receiveQueueMaxPackets: Int
    /// FCP packets that found the receive queue full and were dropped.
    public var receiveQueueDrops: UInt64
    /// Allocator and path-selection work over the run's time: the allocator cores the load
    /// took. With the CPU modelled it cannot exceed the configured cores; the slots
    /// skipped show what they could not do.
    public var allocatorCoresNeeded: Double
    /// The configured allocator cores.
    public var allocatorCores: Int
    /// Slots the allocator skipped because they had begun before it got to them.
    public var slotsSkipped: UInt64
    /// Slots allocated, per second of the run.
    public var allocationsPerSecond: Double
}
