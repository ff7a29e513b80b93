/// An arbiter-side session's counters (`/status` → `sessions`, summed over endpoints), as
/// `ArbiterSessionStatistics` keeps them.
///
/// The JSON keys are spelled out rather than derived: scripts, dashboards and docs read
/// them, so renaming a Swift property must not rename a key.
public struct ArbiterSessionCounters: Sendable, Hashable, Codable {
    /// Demand refused because `maxDestinations` destinations already have demand.
    public var destinationTableFull: UInt64 = 0
    /// Demand increases passed to the owner (sum of slots).
    public var demandSlots: UInt64 = 0
    /// Slots the owner withdrew at the endpoint's request.
    public var withdrawnSlots: UInt64 = 0
    /// Allocations recorded.
    public var allocationsRecorded: UInt64 = 0
    /// Allocations sent in ALLOC / WIDE-ALLOC payloads.
    public var allocationsSent: UInt64 = 0
    /// Allocations that fell out of the 192-slot pending window unsent.
    public var allocationsFellOff: UInt64 = 0
    /// Allocations withdrawn unsent because their slot had passed by more than the
    /// endpoint accepts (the arbiter was held up): handed back as demand, not sent.
    public var allocationsExpiredUnsent: UInt64 = 0
    /// Allocations refused: slot already taken, too old, or no demand recorded.
    public var allocationsRejected: UInt64 = 0
    /// Allocations refused because a reference endpoint cannot be told them (node above
    /// 16383 or path above 3 in the 16-bit ALLOC destination field).
    public var allocationsUnencodable: UInt64 = 0
    /// Times demand was held back by `ArbiterSessionConfiguration/maxOutstandingSlots`.
    public var demandDeferred: UInt64 = 0
    public var reportEntriesSent: UInt64 = 0
    public var hellosReceived: UInt64 = 0
    public var registrations: UInt64 = 0
    public var refusals: UInt64 = 0
    /// Payloads an arbiter does not expect from an endpoint (ALLOC, WELCOME, …), or
    /// malformed extension payloads.
    public var unexpectedPayloads: UInt64 = 0
    /// Packets that could not be built (buffer too small).
    public var encodeFailures: UInt64 = 0
    /// Packets that arrived above the endpoint's share of the budget.
    public var packetsOverBudget: UInt64 = 0
    /// BUDGET payloads sent.
    public var budgetsSent: UInt64 = 0

    public init() {}

    /// Adds another's counters (for totals across endpoints).
    public mutating func add(_ other: ArbiterSessionCounters) {
        destinationTableFull &+= other.destinationTableFull
        demandSlots &+= other.demandSlots
        withdrawnSlots &+= other.withdrawnSlots
        allocationsRecorded &+= other.allocationsRecorded
        allocationsSent &+= other.allocationsSent
        allocationsFellOff &+= other.allocationsFellOff
        allocationsExpiredUnsent &+= other.allocationsExpiredUnsent
        allocationsRejected &+= other.allocationsRejected
        allocationsUnencodable &+= other.allocationsUnencodable
        demandDeferred &+= other.demandDeferred
        reportEntriesSent &+= other.reportEntriesSent
        hellosReceived &+= other.hellosReceived
        registrations &+= other.registrations
        refusals &+= other.refusals
        unexpectedPayloads &+= other.unexpectedPayloads
        encodeFailures &+= other.encodeFailures
        packetsOverBudget &+= other.packetsOverBudget
        budgetsSent &+= other.budgetsSent
    }

    enum CodingKeys: String, CodingKey {
        case destinationTableFull = "destination_table_full"
        case demandSlots = "demand_slots"
        case withdrawnSlots = "withdrawn_slots"
        case allocationsRecorded = "allocations_recorded"
        case allocationsSent = "allocations_sent"
        case allocationsFellOff = "allocations_fell_off"
        case allocationsExpiredUnsent = "allocations_expired_unsent"
        case allocationsRejected = "allocations_rejected"
        case allocationsUnencodable = "allocations_unencodable"
        case demandDeferred = "demand_deferred"
        case reportEntriesSent = "report_entries_sent"
        case hellosReceived = "hellos_received"
        case registrations = "registrations"
        case refusals = "refusals"
        case unexpectedPayloads = "unexpected_payloads"
        case encodeFailures = "encode_failures"
        case packetsOverBudget = "packets_over_budget"
        case budgetsSent = "budgets_sent"
    }
}
