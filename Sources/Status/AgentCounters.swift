/// The agent core's counters (at the top level of the agent's `/status`), as `AgentStatistics`
/// keeps them; its histograms are reported apart.
///
/// The JSON keys are spelled out rather than derived: scripts, dashboards and docs read
/// them, so renaming a Swift property must not rename a key.
public struct AgentCounters: Sendable, Hashable, Codable {
    /// Packets that entered a destination queue.
    public var packetsQueued: UInt64 = 0
    public var bytesQueued: UInt64 = 0
    /// Packets dropped because every buffer of the pool was in use.
    public var droppedPoolFull: UInt64 = 0
    /// Packets dropped because their destination's queue was at its limit.
    public var droppedQueueFull: UInt64 = 0
    /// Packets dropped because they exceed what one slot carries.
    public var droppedOversize: UInt64 = 0
    /// Packets dropped because the FCP session could not take more destinations.
    public var droppedNoDemand: UInt64 = 0
    /// Slots of demand handed to the FCP session.
    public var slotsRequested: UInt64 = 0
    /// Allocations used to send queued packets.
    public var slotsUsed: UInt64 = 0
    /// Allocations whose slot had passed (`AgentConfiguration/lateReleaseLimitNanoseconds`)
    /// when the agent came to release them: their packets asked for a new slot.
    public var slotsMissed: UInt64 = 0
    /// Allocations that found nothing queued (their demand is given back).
    public var allocationsUnused: UInt64 = 0
    /// Allocations for a destination that is not a peer.
    public var allocationsForUnknownPeers: UInt64 = 0
    /// Slots of demand given back because nothing was queued for them any more.
    public var slotsGivenBack: UInt64 = 0
    /// Packets released at their slot.
    public var packetsReleased: UInt64 = 0
    /// Released packets whose release came after their slot had ended.
    public var releasesAfterSlot: UInt64 = 0
    /// FCP packets sent to the arbiter and their bytes (FCP payload, no IP header).
    public var controlPacketsSent: UInt64 = 0
    public var controlBytesSent: UInt64 = 0
    /// FCP packets the session could not build.
    public var controlEncodeFailures: UInt64 = 0
    /// Packets sent without a slot (`AgentCore/takeUnscheduled()`), while the arbiter
    /// could not be reached.
    public var packetsUnscheduled: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case packetsQueued = "packets_queued"
        case bytesQueued = "bytes_queued"
        case droppedPoolFull = "dropped_pool_full"
        case droppedQueueFull = "dropped_queue_full"
        case droppedOversize = "dropped_oversize"
        case droppedNoDemand = "dropped_no_demand"
        case slotsRequested = "slots_requested"
        case slotsUsed = "slots_used"
        case slotsMissed = "slots_missed"
        case allocationsUnused = "allocations_unused"
        case allocationsForUnknownPeers = "allocations_for_unknown_peers"
        case slotsGivenBack = "slots_given_back"
        case packetsReleased = "packets_released"
        case releasesAfterSlot = "releases_after_slot"
        case controlPacketsSent = "control_packets_sent"
        case controlBytesSent = "control_bytes_sent"
        case controlEncodeFailures = "control_encode_failures"
        case packetsUnscheduled = "packets_unscheduled"
    }
}
