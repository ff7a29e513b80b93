/// An endpoint session's counters (the agent's `/status` → `session`, and the outcome
/// `fastpass-bench endpoint` writes), as `EndpointSessionStatistics` keeps them.
///
/// The JSON keys are spelled out rather than derived: scripts, dashboards and docs read
/// them, so renaming a Swift property must not rename a key.
public struct EndpointSessionCounters: Sendable, Hashable, Codable {
    /// Allocations accepted into the schedule.
    public var allocationsAdmitted: UInt64 = 0
    /// Allocations for a slot already more than the miss threshold in the past.
    public var allocationsTooLate: UInt64 = 0
    /// Allocations for a slot further ahead than the preload limit.
    public var allocationsPremature: UInt64 = 0
    /// Allocations to a destination with no outstanding demand.
    public var allocationsUnwanted: UInt64 = 0
    /// Of those, allocations to a destination never asked for (counted in
    /// `allocationsUnwanted` too): for a reference endpoint, path bits in the field.
    public var allocationsToUnknownDestinations: UInt64 = 0
    /// Allocations for a slot that already had one (the arbiter double-booked us).
    public var allocationsSlotTaken: UInt64 = 0
    /// ALLOC descriptors naming a destination the payload does not list.
    public var illegalDescriptors: UInt64 = 0
    /// Accepted allocations whose slot passed before they were taken.
    public var allocationsExpired: UInt64 = 0
    /// Allocations handed to the sender.
    public var allocationsUsed: UInt64 = 0
    /// ALLOC and WIDE-ALLOC payloads received (an arbiter puts at most one in a packet).
    public var allocationPayloads: UInt64 = 0
    /// Allocations the arbiter reported that never arrived (lost ALLOCs); re-requested.
    public var allocationsLost: UInt64 = 0
    /// Accepted allocations dropped by a protocol reset; re-requested.
    public var allocationsDroppedByReset: UInt64 = 0
    /// Reports for destinations this endpoint has no demand for.
    public var reportsForUnknownDestinations: UInt64 = 0
    /// Demand refused because `maxDestinations` destinations already have demand.
    public var destinationTableFull: UInt64 = 0
    /// Demand refused because a reference connection cannot name the destination (node
    /// ids above 16383 do not fit the 14-bit ALLOC field).
    public var unencodableDestinations: UInt64 = 0
    public var requestEntriesSent: UInt64 = 0
    public var giveBackEntriesSent: UInt64 = 0
    public var hellosSent: UInt64 = 0
    public var welcomesReceived: UInt64 = 0
    public var refusals: UInt64 = 0
    public var fallbacks: UInt64 = 0
    /// Extension payloads of a type an endpoint does not expect, or malformed.
    public var ignoredExtensions: UInt64 = 0
    /// WELCOMEs with an epoch below one already seen, or an unusable clock: ignored.
    public var rejectedWelcomes: UInt64 = 0
    /// Packets that could not be built (buffer too small).
    public var encodeFailures: UInt64 = 0
    /// Slots the arbiter withdrew at our request, summed over resets.
    public var slotsWithdrawn: UInt64 = 0
    /// Allocations that arrived after they had been declared lost (reordered by more than
    /// the grace period); used if needed, but not counted twice.
    public var allocationsArrivedAfterLoss: UInt64 = 0
    /// Reports that showed fewer allocations than counted; the count was corrected down.
    public var overcountsCorrected: UInt64 = 0
    /// Reports of more allocations than we ever requested: an arbiter bug, counted.
    public var reportsAboveRequest: UInt64 = 0
    /// Budgets from the arbiter that changed the pace.
    public var budgetsApplied: UInt64 = 0
    /// Packets sent before the budget or a back-off allowed.
    public var packetsAboveBudget: UInt64 = 0
    /// Loss episodes that made the session wait before sending again.
    public var backoffs: UInt64 = 0
    /// Packets sent because allocations were owed and the arbiter had been silent.
    public var probes: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case allocationsAdmitted = "allocations_admitted"
        case allocationsTooLate = "allocations_too_late"
        case allocationsPremature = "allocations_premature"
        case allocationsUnwanted = "allocations_unwanted"
        case allocationsToUnknownDestinations = "allocations_to_unknown_destinations"
        case allocationsSlotTaken = "allocations_slot_taken"
        case illegalDescriptors = "illegal_descriptors"
        case allocationsExpired = "allocations_expired"
        case allocationsUsed = "allocations_used"
        case allocationPayloads = "allocation_payloads"
        case allocationsLost = "allocations_lost"
        case allocationsDroppedByReset = "allocations_dropped_by_reset"
        case reportsForUnknownDestinations = "reports_for_unknown_destinations"
        case destinationTableFull = "destination_table_full"
        case unencodableDestinations = "unencodable_destinations"
        case requestEntriesSent = "request_entries_sent"
        case giveBackEntriesSent = "give_back_entries_sent"
        case hellosSent = "hellos_sent"
        case welcomesReceived = "welcomes_received"
        case refusals = "refusals"
        case fallbacks = "fallbacks"
        case ignoredExtensions = "ignored_extensions"
        case rejectedWelcomes = "rejected_welcomes"
        case encodeFailures = "encode_failures"
        case slotsWithdrawn = "slots_withdrawn"
        case allocationsArrivedAfterLoss = "allocations_arrived_after_loss"
        case overcountsCorrected = "overcounts_corrected"
        case reportsAboveRequest = "reports_above_request"
        case budgetsApplied = "budgets_applied"
        case packetsAboveBudget = "packets_above_budget"
        case backoffs = "backoffs"
        case probes = "probes"
    }
}
