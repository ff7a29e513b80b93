/// The timeslot allocator's counters (`/status` → `allocator`), as
/// `TimeslotAllocatorStatistics` keeps them.
///
/// The JSON keys are spelled out rather than derived: scripts, dashboards and docs read
/// them, so renaming a Swift property must not rename a key.
public struct AllocatorCounters: Sendable, Hashable, Codable {
    /// Demand accepted, in slots.
    public var requestedSlots: UInt64 = 0
    /// Demand refused (pair table full of active pairs), in slots.
    public var refusedSlots: UInt64 = 0
    /// Times demand was refused.
    public var refusals: UInt64 = 0
    /// Slots allocated (and, when routing, routed).
    public var allocatedSlots: UInt64 = 0
    /// Slots withdrawn at once or from records.
    public var withdrawnSlots: UInt64 = 0
    /// Demand dropped by purges (reset sources, removed hosts).
    public var purgedSlots: UInt64 = 0
    /// Allocations path selection could not route; their demand is requested again.
    public var unroutable: UInt64 = 0
    /// Slots given back that not even the table's reserve could take (should stay 0).
    public var lostSlots: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case requestedSlots = "requested_slots"
        case refusedSlots = "refused_slots"
        case refusals = "refusals"
        case allocatedSlots = "allocated_slots"
        case withdrawnSlots = "withdrawn_slots"
        case purgedSlots = "purged_slots"
        case unroutable = "unroutable"
        case lostSlots = "lost_slots"
    }
}
