/// Counters of an ``ArbiterCore``.
public struct ArbiterCoreStatistics: Sendable, Hashable {
    public var packetsReceived: UInt64 = 0
    /// Packets from an address that is not a host of the topology (dropped).
    public var packetsFromUnknownHosts: UInt64 = 0
    /// Packets a session dropped as bad: checksum, malformed, unauthenticated, stale epoch.
    public var packetsDropped: UInt64 = 0
    /// Packets a session ignored as part of the protocol: a RESET it did not apply, a
    /// duplicate or one older than the receive window.
    public var packetsOutOfSync: UInt64 = 0
    public var packetsSent: UInt64 = 0
    public var encodeFailures: UInt64 = 0
    /// Demand towards a destination the topology does not know, or towards the sender.
    public var demandToUnknownDestination: UInt64 = 0
    public var demandToSelf: UInt64 = 0
    /// Demand towards a removed host (slots), withdrawn at once.
    public var demandToRemovedHost: UInt64 = 0
    public var batchesAllocated: UInt64 = 0
    /// Slots skipped because the core was called too late to allocate them in time.
    public var slotsSkipped: UInt64 = 0
    /// Allocations recorded in a session (to be sent).
    public var allocationsRecorded: UInt64 = 0
    /// Allocations for demand the session no longer holds (a reset, a withdrawal).
    public var allocationsStale: UInt64 = 0
    /// Allocations a session could not place (slot taken or too old); their demand is
    /// offered to the allocator again.
    public var allocationsRequestedAgain: UInt64 = 0
    /// Allocations a session could not encode (should not happen: such endpoints are
    /// refused at registration); dropped.
    public var allocationsUnencodable: UInt64 = 0
    /// Allocations with no spine that had room (links down, or a reference endpoint's
    /// pinned spine full in that slot); requested again.
    public var allocationsUnroutable: UInt64 = 0
    /// Allocations for an endpoint on reference numbering (it cannot be told a path) that
    /// came back routed over another spine than its pinned one: possible only with
    /// allocator threads, for batches under way when an extended endpoint lost its
    /// announced clock without a reset. Requested again rather than sent.
    public var allocationsOffPinnedSpine: UInt64 = 0
    /// Times the allocator's pair table was full; the demand waits to be offered again.
    public var allocatorRefusals: UInt64 = 0
    /// Allocator threads only: allocations and withdrawals dropped because a purge (reset,
    /// removed host) was sent after their batch began.
    public var allocationsPurged: UInt64 = 0
    /// Allocator threads only: allocations that came back from them for a slot already
    /// begun (they fell behind the clock); their demand is offered again.
    public var allocationsLate: UInt64 = 0
    /// Allocator threads only: commands that waited in the outbox for the ring (kept, in
    /// order; a sign the allocator threads are not keeping up).
    public var commandsDelayed: UInt64 = 0
    /// Demand lost because the retry list was full too (slots).
    public var demandDropped: UInt64 = 0
    /// Allocations not sent because their slot had passed by more than
    /// ``ArbiterCoreConfiguration/expireUnsentAfterSlots`` when their session sent (the
    /// arbiter was held up); their demand is offered again.
    public var allocationsExpiredUnsent: UInt64 = 0
    /// Packets sent that carried allocations.
    public var allocationPacketsSent: UInt64 = 0
    /// Times a source was held back from allocation for not answering (inline allocator).
    public var sourcesHeld: UInt64 = 0
    /// Round-trip samples taken from endpoints' acknowledgements.
    public var roundTripSamples: UInt64 = 0
    /// Times the sessions' send timeout was changed to follow the round trips.
    public var sendTimeoutChanges: UInt64 = 0
    /// Times the arbiter started or stopped packing (see ``ArbiterCore/noteCommunicationLoad(busyFraction:)``).
    public var packingChanges: UInt64 = 0
    public var registrations: UInt64 = 0
    public var refusals: UInt64 = 0
    public var endpointResets: UInt64 = 0
    public init() {}
}
