import FastpassProtocol

/// How far ahead the arbiter allocates and sends, following the endpoints' round trips.
///
/// The send rule: a session with nothing but allocations to send waits until its
/// earliest one is ``sendLeadSlots`` ahead, or until it has a packet's worth: fewer,
/// fuller packets, each still early enough for the endpoint.
struct SendSchedule {
    let batchSize: Int
    /// The most slots ahead a batch is allocated: configured, or the most the endpoints'
    /// early window allows.
    let lookaheadCeiling: Int
    private let fixedSendLead: Bool
    private let fixedLookahead: Bool
    private let clock: SlotClock
    /// See ``ArbiterCore/sendLeadSlots``.
    private(set) var sendLeadSlots: Int
    /// See ``ArbiterCore/lookaheadSlots``.
    private(set) var lookaheadSlots: Int
    private var roundTrips = RoundTripEstimator()
    /// For the send timeout (see ``ArbiterCore/adaptSendTimeout(to:)``).
    private(set) var smoothedRoundTrip = SmoothedRoundTrip()
    /// Whether the thread is loaded enough that fewer, fuller packets matter more than a
    /// new flow's first slot (``ArbiterCore/noteCommunicationLoad(busyFraction:)``): the
    /// lookahead then stays at its ceiling while the send lead still follows the round
    /// trips, so each packet to an endpoint carries the batches up to the ceiling.
    private(set) var packing = false
    private var dueCacheBatch: UInt64 = .max
    private var dueCacheLead: UInt64 = .max
    private var dueCache: UInt64 = 0

    init(configuration: ArbiterCoreConfiguration, topology: Topology, clock: SlotClock) {
        let batchSize = configuration.allocator.batchSize
        self.batchSize = batchSize
        self.clock = clock
        fixedSendLead = configuration.sendLeadSlots != nil
        fixedLookahead = configuration.lookaheadSlots != nil
        let ceiling =
            configuration.lookaheadSlots
            ?? ArbiterCoreConfiguration.maximumLookahead(batchSize: batchSize, topology: topology)
        lookaheadCeiling = ceiling
        // Until round trips are measured, the most the endpoints' early window allows:
        // allocations leave as they are made, as early as they can (measured in the
        // namespace test, where most allocations come before 256 round trips: starting at
        // two batches left packets 32 slots ahead at the median against 48).
        let initial =
            configuration.lookaheadSlots
            ?? (configuration.pipeline == nil ? ceiling : min(ceiling, 2 * batchSize))
        lookaheadSlots = initial
        sendLeadSlots = configuration.sendLeadSlots ?? initial
    }

    /// The 99th percentile of the endpoints' round trips as last computed (ns); nil before
    /// enough samples came.
    var roundTripP99Nanoseconds: UInt64? { roundTrips.p99Nanoseconds }

    /// Takes a round-trip sample; every ``RoundTripEstimator/samplesPerUpdate`` samples the
    /// send lead (and, unless fixed, the lookahead) follows its 99th percentile.
    /// Returns true when the estimates were just updated (every
    /// ``RoundTripEstimator/samplesPerUpdate`` samples).
    @discardableResult
    mutating func noteRoundTrip(_ nanoseconds: UInt64) -> Bool {
        smoothedRoundTrip.record(nanoseconds: nanoseconds)
        guard roundTrips.record(nanoseconds: nanoseconds), let p99 = roundTrips.p99Nanoseconds else { return false }
        let batch = batchSize
        let slots = Int((p99 &* 1000 + clock.picoseconds - 1) / clock.picoseconds)
        guard !fixedSendLead else { return true }
        sendLeadSlots = max(batch, min(lookaheadCeiling, slots + batch))
        if !fixedLookahead { lookaheadSlots = packing ? lookaheadCeiling : sendLeadSlots }
        return true
    }

    /// Enters packing above `enter` of the thread busy, leaves it below `leave`.
    /// Returns whether packing changed.
    mutating func noteLoad(busyFraction: Double, enter: Double, leave: Double) -> Bool {
        let wanted = packing ? busyFraction >= leave : busyFraction >= enter
        guard wanted != packing else { return false }
        packing = wanted
        if !fixedLookahead { lookaheadSlots = packing ? lookaheadCeiling : sendLeadSlots }
        return true
    }

    /// When allocations in the batch of `slot` are due to leave: the batch's start less the
    /// send lead. Kept for the batch in hand: every allocation of a batch asks, and a
    /// slot's start is a 128-bit division (in software here, about 40 ns).
    @inline(__always)
    mutating func dueTime(ofBatchOf slot: UInt64) -> UInt64 {
        let batch = UInt64(batchSize)
        let lead = UInt64(sendLeadSlots)
        // Same batch as the last call: no division.
        if slot &- dueCacheBatch < batch && lead == dueCacheLead { return dueCache }
        let batchStart = slot - slot % batch
        if batchStart != dueCacheBatch || lead != dueCacheLead {
            dueCacheBatch = batchStart
            dueCacheLead = lead
            dueCache = batchStart > lead ? clock.start(ofSlot: batchStart - lead) : 0
        }
        return dueCache
    }
}
