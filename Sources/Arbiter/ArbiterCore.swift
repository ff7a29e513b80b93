import FastpassProtocol
import FixedStorage

/// The arbiter, sans-IO: every endpoint's FCP session, the timeslot allocator and path
/// selection, driven by packets in, the clock and timers, producing packets out.
///
/// - ``receive(_:from:now:)`` with each packet from an endpoint (its IPv4 source address
///   names the host);
/// - ``advance(now:)`` whenever ``nextDeadline`` passes (and after receiving): session
///   timers fire, and every batch of slots due for allocation is allocated, routed and
///   recorded in the source endpoints' sessions;
/// - ``nextPacket(now:into:)`` until it returns nil, sending each packet to its address.
///
/// Reference endpoints and extended ones are served side by side: a session's slot
/// numbers and destination ids follow what its endpoint negotiated (reference slots and
/// MAC-hash node ids, or the announced clock and topology node ids).
public final class ArbiterCore {
    public let configuration: ArbiterCoreConfiguration
    public internal(set) var topology: Topology
    /// The allocator, inline or on threads of its own, as configured.
    let allocator: ArbiterAllocator
    /// The endpoints' sessions by host index, made on a host's first packet.
    let sessions: SessionTable
    /// New sessions start from it; its send timeout follows the round trips (see
    /// ``adaptSendTimeout(to:)``).
    var sessionTemplate: ArbiterSessionConfiguration
    let hostCount: Int
    /// How endpoints name hosts.
    let numbering: EndpointNumbering
    /// Slot length in picoseconds.
    let timeslotPicoseconds: UInt64
    /// The arbiter's slots, and how reference endpoints number them.
    public let slotClock: SlotClock
    @exclusivity(unchecked) private var readySessions: ReadySessions
    @exclusivity(unchecked) var timers: SessionTimers

    /// Demand a packet brought, handed over once the session is done with it; also
    /// before anything that must come after it (withdrawals, resets).
    @exclusivity(unchecked) var pending = PendingDemand()

    /// Demand the allocator refused, offered again on every advance (once a batch, with
    /// allocator threads).
    var refused: RefusedDemand
    /// Hosts removed and not heard from since: demand towards them is withdrawn at once.
    let removed: FixedBuffer<Bool>
    /// Per host, what the allocator was last told: whether its inter-rack allocations are
    /// pinned to their pinned spine (its session counts slots without the announced
    /// clock, so it gets reference ALLOCs, which cannot name a path).
    let pinned: FixedBuffer<Bool>
    /// Demand a session handed over towards a removed host, withdrawn once the session
    /// is free again (destination node ids, for the session being served).
    var refusedTowards: [NodeID] = []
    /// Destinations of allocations a session withdrew unsent (scratch, reused).
    var expiredTowards: [NodeID] = []

    public internal(set) var statistics = ArbiterCoreStatistics()

    /// The send rule and the lookahead, following the endpoints' round trips.
    @exclusivity(unchecked) private var schedule: SendSchedule
    /// How far ahead of its earliest slot a packet of allocations leaves: the 99th
    /// percentile of the endpoints' round trips (see ``RoundTripEstimator``) plus one batch,
    /// within one batch and ``lookaheadSlots``.
    public var sendLeadSlots: Int { schedule.sendLeadSlots }
    /// How far ahead of the current slot batches are allocated now: fixed when configured,
    /// else the send lead (a batch is then due to leave as it is made, and a new flow waits
    /// no longer for its first slot than the path to it needs).
    public var lookaheadSlots: Int { schedule.lookaheadSlots }
    var lookaheadCeiling: Int { schedule.lookaheadCeiling }
    /// Per packet of allocations: its earliest slot's lead over the current slot as it
    /// leaves (the arbiter's share of an allocation's lateness; the rest is the way).
    @exclusivity(unchecked) public private(set) var sendLeads = AllocationLeadHistogram()

    /// The latest time the core was given.
    var clock: UInt64
    @exclusivity(unchecked) private var slotCacheTime: UInt64 = .max
    @exclusivity(unchecked) private var slotCache: UInt64 = 0
    /// Hosts that have not answered, and those the inline allocator holds back for it.
    @exclusivity(unchecked) var holds: SourceHolds
    /// A packet's worth of allocations: a reference ALLOC's 64 descriptor bytes hold about
    /// 48 slots with their skips; an extended packet of 512 bytes, after its reports, about
    /// 32 WIDE-ALLOC entries.
    static let referencePacketAllocations = 48
    static let extendedPacketAllocations = 32
    /// When the core was made: every session's first reset timestamp, so that an
    /// endpoint's own RESET (newer) is taken at once (see ``ArbiterSession/init(configuration:now:)``).
    let startTime: UInt64
    /// What sizes the slots kept for FCP on ``ArbiterCoreConfiguration/controlRack``; nil
    /// without one.
    @exclusivity(unchecked) var controlTraffic: ControlTraffic?
    /// Each endpoint's share of the packets the arbiter takes.
    @exclusivity(unchecked) var budget: ControlBudgetShares {
        didSet { if budget.share != oldValue.share { budgetChanged() } }
    }
    /// How long an endpoint may leave what it was sent unanswered before it counts as not
    /// reading (ns): the lookahead, plus the longest its share lets it hold an answer with
    /// nothing new (see ``ControlPacer``).
    @exclusivity(unchecked) var silenceAllowance: UInt64 = 0
    /// The send timeout the round trips last called for (0: none measured yet).
    @exclusivity(unchecked) var roundTripTimeout: UInt64 = 0
    /// The share each endpoint is told now; nil without a budget.
    public var controlBudget: FCPControlBudget? { budget.share }
    /// The packets per second the shares are computed from: the configured capacity, or
    /// less when the owner measured less (``noteMeasuredCapacity(receivedPerBusySecond:)``).
    public var controlCapacity: UInt64 { budget.capacity }

    /// The owner measured how many FCP packets its thread receives per second of busy time
    /// (received packets over the time it spent on them and everything they cause). The
    /// budget is then at most ``ArbiterCoreConfiguration/controlTargetLoad`` of it: an
    /// arbiter whose endpoints ask for more than it can take tells them to slow down
    /// before its queue grows, instead of falling behind until everything it sends is late.
    /// The owner measured the share of its thread's time spent working (over its last
    /// interval). A thread that is busy spends most of it on packets: the arbiter then
    /// allocates as far ahead as endpoints accept and sends each endpoint the batches up
    /// to there in one packet, fewer and fuller (64 simulated hosts at 700 ns a packet:
    /// packets sent 1.18 M → 0.65 M per second, the thread 92 → 55 % busy). An idle
    /// thread goes back to the shortest lookahead, for the first slot of a new flow.
    public func noteCommunicationLoad(busyFraction: Double) {
        // A thread at ease takes what it is configured for again: a capacity measured low
        // (a burst, a slow patch) must not stay low once the load is gone.
        if busyFraction.isFinite, busyFraction < Self.measuredLoad, configuration.measuresControlCapacity {
            budget.noteMeasuredCapacity(configuration.controlPacketsPerSecond)
        }
        let enter = configuration.packingLoad
        guard busyFraction.isFinite,
            schedule.noteLoad(busyFraction: busyFraction, enter: enter, leave: enter * 2 / 3)
        else { return }
        statistics.packingChanges &+= 1
    }

    /// Whether the arbiter packs now (see ``noteCommunicationLoad(busyFraction:)``).
    public var isPacking: Bool { schedule.packing }

    /// The thread's load above which its packets per busy second say what it can take
    /// (below, fixed costs divided by few packets make it look slower than it is).
    public static let measuredLoad = 0.5

    public func noteMeasuredCapacity(receivedPerBusySecond: Double) {
        guard configuration.measuresControlCapacity, receivedPerBusySecond.isFinite, receivedPerBusySecond > 0 else {
            return
        }
        budget.noteMeasuredCapacity(UInt64(receivedPerBusySecond * configuration.controlTargetLoad))
    }

    public init(topology: Topology, configuration: ArbiterCoreConfiguration = .init(), now: UInt64)
        throws(TopologyError)
    {
        if let problem = configuration.problem(topology: topology) {
            throw TopologyError(field: "arbiter", reason: problem)
        }
        self.configuration = configuration
        self.topology = topology
        startTime = now
        hostCount = topology.hostCount
        let batchSize = configuration.allocator.batchSize
        timeslotPicoseconds = UInt64((topology.timeslotNanoseconds * 1000).rounded())
        slotClock = SlotClock(origin: configuration.slotOrigin, picoseconds: timeslotPicoseconds)
        let schedule = SendSchedule(configuration: configuration, topology: topology, clock: slotClock)
        self.schedule = schedule
        clock = now
        budget = ControlBudgetShares(configuration: configuration)
        let aheadNanoseconds = Double(schedule.lookaheadCeiling + batchSize) * topology.timeslotNanoseconds
        numbering = EndpointNumbering(topology: topology, aheadNanoseconds: aheadNanoseconds)
        var template = configuration.session
        template.timeslotPicoseconds = UInt32(clamping: timeslotPicoseconds)
        template.slotOrigin = configuration.slotOrigin
        // A session's tables are sized by its destinations: never many more than the other
        // hosts (a little slack for ids the core then refuses, which hold an entry until the
        // endpoint resets).
        template.maxDestinations = min(template.maxDestinations, hostCount + 64)
        sessionTemplate = template
        // Start allocating at the first slot that is still ahead.
        let firstSlot = slotClock.slot(at: now) + 1
        let batch = UInt64(configuration.allocator.batchSize)
        if var pipeline = configuration.pipeline {
            pipeline.pathMethod = configuration.pathMethod
            pipeline.routing = true
            allocator = .threaded(
                try ThreadedAllocator(topology: topology, allocator: configuration.allocator, pipeline: pipeline))
        } else {
            let inline = try TimeslotAllocator(
                topology: topology, configuration: configuration.allocator,
                firstSlot: (firstSlot + batch - 1) / batch * batch, routing: true, pathMethod: configuration.pathMethod)
            allocator = .inline(InlineAllocator(inline, batchSize: configuration.allocator.batchSize))
        }
        sessions = SessionTable(hostCount: hostCount)
        readySessions = ReadySessions(hostCount: hostCount)
        timers = SessionTimers(hostCount: hostCount)
        refused = RefusedDemand(capacity: configuration.retryCapacity)
        removed = FixedBuffer(repeating: false, count: hostCount)
        holds = SourceHolds(hostCount: hostCount)
        pinned = FixedBuffer(repeating: false, count: hostCount)
        controlTraffic = configuration.controlRack.map {
            ControlTraffic(rack: $0, framingBytes: configuration.controlFramingBytes)
        }
        refusedTowards.reserveCapacity(64)
        expiredTowards.reserveCapacity(Int(PendingAllocations.windowLength))
        budgetChanged()
    }

    deinit {
        // Its threads hold the threaded allocator unowned: stopped while it still exists.
        allocator.stop()
    }

    // MARK: Clock

    /// The slot in progress at `now` on the arbiter's clock.
    public func currentSlot(now: UInt64) -> UInt64 { slotClock.slot(at: now) }

    /// When `slot` starts on the arbiter's clock (see ``SlotClock/start(ofSlot:)``).
    public func start(ofSlot slot: UInt64) -> UInt64 { slotClock.start(ofSlot: slot) }

    /// The next slot the allocator will allocate (allocator threads: the first slot of
    /// the next batch to come back from them).
    public var nextSlotToAllocate: UInt64 { allocator.nextSlot }

    /// Whether the allocator runs on threads of its own.
    public var allocatorIsThreaded: Bool { allocator.isThreaded }

    /// With ``ArbiterCoreConfiguration/pipeline`` set: starts the allocator threads (once).
    /// `now` is the core's clock and `monotonicNow` the monotonic clock at the same moment:
    /// the threads pace batches on the monotonic clock. Allocation starts with the first
    /// whole batch at least the lookahead ahead of now. Does nothing for the inline
    /// allocator.
    public func startAllocatorThreads(now: UInt64, monotonicNow: UInt64) {
        allocator.threaded?.start(now: now, monotonicNow: monotonicNow, clock: slotClock, lookahead: lookaheadCeiling)
    }

    /// Like ``startAllocatorThreads(now:monotonicNow:)``, without threads: the caller takes
    /// the pipeline's steps (``ThreadedAllocator/step(_:)``), for tests that need an exact
    /// interleaving of the threads.
    func startAllocatorSteps(now: UInt64) {
        allocator.threaded?.startStepping(now: now, clock: slotClock, lookahead: lookaheadCeiling)
    }

    /// Stops the allocator threads and waits for them (batches under way are finished).
    /// The core allocates nothing more after it.
    public func stopAllocatorThreads() {
        allocator.stop()
    }

    /// Allocator threads pinned as configured, and those that could not be pinned (so far:
    /// each thread pins itself as it starts).
    public var allocatorThreadPinning: (pinned: Int, failed: Int) { allocator.pinning }

    // MARK: Packets in

    /// Handles one packet from the endpoint at `address` (IPv4, host byte order).
    ///
    /// `arrivedAt`, when the owner knows it (a kernel time stamp, a modelled queue), is
    /// when the packet reached the arbiter's host: the round trip measured by its
    /// acknowledgement is then the path's, without the time it waited for this thread.
    /// Counting that wait sent allocations further ahead than needed, one packet per
    /// batch, and a busier thread waited longer still.
    public func receive(_ packet: UnsafeRawBufferPointer, from address: UInt32, now: UInt64, arrivedAt: UInt64? = nil) {
        statistics.packetsReceived &+= 1
        clock = now
        guard let host = topology.index(ofAddress: address) else {
            statistics.packetsFromUnknownHosts &+= 1
            return
        }
        controlTraffic?.received(bytes: packet.count, fromRack: Int(topology.rackOf[host]))
        if !sessions.contains(host) {
            sessions.insert(ArbiterSession(configuration: sessionTemplate, now: startTime), at: host)
            // A new session is a reference one until a HELLO registers it.
            pinSource(host, true)
            budget.sessionStarted()
        }
        if let share = budget.share { sessions[host].setControlBudget(share, now: now) }
        var handler = SessionRequestHandler(core: self, source: host, extended: isExtended(host))
        let result = sessions[host].receive(packet, now: now, handler: &handler)
        flushPending()
        withdrawRefused(host)
        // A removed host that speaks again (a packet its session took) is back.
        if result.error == nil { removed[host] = false }
        if var rtt = sessions[host].takeRoundTripSample() {
            if let arrivedAt, arrivedAt < now { rtt = max(1, rtt > now - arrivedAt ? rtt - (now - arrivedAt) : 1) }
            statistics.roundTripSamples &+= 1
            if schedule.noteRoundTrip(rtt) { adaptSendTimeout(to: schedule.smoothedRoundTrip.timeoutNanoseconds) }
        }
        if result.error == nil {
            holds.answered(host)
            if holds.isHeld(host) { hold(host, false) }
        }
        switch result.error {
        case nil: break
        case .resetNotApplied, .duplicate: statistics.packetsOutOfSync &+= 1
        default: statistics.packetsDropped &+= 1
        }
        sessionChanged(host)
    }

    private func isExtended(_ host: Int) -> Bool {
        guard sessions.contains(host) else { return false }
        return sessions[host].schedulingState().extended
    }

    /// The host an endpoint means by `node` (see ``EndpointNumbering/host(named:extended:)``).
    /// Here rather than through `numbering` from the session handler: reaching the struct
    /// through the handler's reference copied it, and retained its tables, on every request.
    @inline(__always)
    func host(named node: NodeID, extended: Bool) -> Int? { numbering.host(named: node, extended: extended) }

    /// The id session `source` uses for host `destination`.
    func nodeID(of destination: Int, for source: Int) -> NodeID? {
        numbering.nodeID(of: destination, extended: isExtended(source))
    }

    // MARK: Time

    /// Fires session timers that are due and allocates every batch whose slots are within
    /// the lookahead of `now`, recording its allocations in the sessions.
    public func advance(now: UInt64) {
        clock = now
        while let host = timers.popExpired(now: now) {
            guard sessions.contains(host) else { continue }
            // Held allocations now due: the session joins the ready queue.
            if timers.allocationDue[host] <= now { sessionChanged(host) }
            guard let deadline = sessions[host].schedulingState().timerDeadline else { continue }
            guard deadline <= now else {
                // Moved later since: back on the heap at its new time.
                timers.schedule(deadline, for: host, sessions: sessions)
                continue
            }
            var handler = SessionRequestHandler(core: self, source: host, extended: isExtended(host))
            sessions[host].handleTimeout(now: now, handler: &handler)
            flushPending()
            withdrawRefused(host)
            sessionChanged(host)
        }
        // Only the inline allocator holds sources.
        if !holds.isEmpty { releaseExpiredHolds(now: now) }
        allocator.advance(now: now, current: currentSlot(now: now), lookahead: lookaheadSlots, receiver: self)
    }

    /// When ``advance(now:)`` must next be called: the earliest session timer or the time
    /// the next batch falls due.
    /// With allocator threads, the time the next batch should be back from them (polled
    /// at most every microsecond while it is overdue).
    public var nextDeadline: UInt64 {
        let lookahead = UInt64(lookaheadSlots)
        let next = nextSlotToAllocate
        let due = allocator.nextDeadline(
            batchDue: next > lookahead ? start(ofSlot: next - lookahead) : configuration.slotOrigin)
        return timers.first.map { min($0.deadline, due) } ?? due
    }

    /// Hands one allocation to its source's session.
    @inline(__always)
    func record(slot ourSlot: UInt64, source: Int, destination: Int, spine: Int16, batch: UInt64) {
        if spine >= 0 {
            controlTraffic?.booked(
                sourceRack: Int(topology.rackOf[source]), destinationRack: Int(topology.rackOf[destination]))
        }
        guard sessions.contains(source), let node = nodeID(of: destination, for: source) else {
            statistics.allocationsStale &+= 1
            return
        }
        let announced = sessions[source].schedulingState().announcedClock
        // An endpoint without the announced clock gets reference ALLOCs, whose path bits
        // the original endpoint reads as part of the destination: it is never sent any.
        // Its packets take the spine the switches pin it to, which path selection booked.
        if !announced && spine >= 0 && Int(spine) != pinnedSpine(source: source, destination: destination) {
            statistics.allocationsOffPinnedSpine &+= 1
            requestAgain(source: source, destination: destination, batch: batch)
            return
        }
        let slot = slotClock.sessionSlot(ourSlot, announcedClock: announced)
        let path = PathID(spine < 0 || !announced ? 0 : UInt16(spine))
        // An allocation this far after the earliest one waiting would push that out of the
        // session's window, to be reported lost: it is long past (the core was held up),
        // so it goes back to the allocator instead.
        // (Pending allocations span the lookahead and a batch, unless the core stalled: then
        // the newest is far behind too, which is cheap to see.)
        if let newest = sessions[source].newestPendingSlot(),
            case let jump = slot &- newest, jump >= PendingAllocations.windowLength / 2, jump < 1 << 62,
            let earliest = sessions[source].earliestPendingSlot(),
            case let ahead = slot &- earliest, ahead >= PendingAllocations.windowLength, ahead < 1 << 62
        {
            expireUnsent(source, before: slot &- (PendingAllocations.windowLength - 1))
        }
        switch sessions[source].record(allocationIn: slot, destination: node, path: path) {
        case .recorded:
            statistics.allocationsRecorded &+= 1
            // An endpoint that has not answered what it was sent for longer than the
            // lookahead is not reading: its next slots would arrive too late, so the
            // allocator gives them to others until it answers.
            if !holds.isHeld(source), holds.isSilent(source, longerThan: silenceAllowance, now: clock) {
                hold(source, true)
            }
            // Due when the allocation's batch is within the send lead (the lead's extra batch
            // covers the spread inside it): timed by each allocation's own slot, one late in a
            // batch waited up to a batch longer, and a new flow's first slot with it
            // (simulated incast: request → allocation 20 → 40 µs at p50).
            let due = schedule.dueTime(ofBatchOf: ourSlot)
            if due < timers.allocationDue[source] { timers.allocationDue[source] = due }
        case .noDemand:
            statistics.allocationsStale &+= 1
        case .slotUnavailable:
            statistics.allocationsRequestedAgain &+= 1
            requestAgain(source: source, destination: destination, batch: batch)
        case .unencodable:
            // Registration refuses endpoints that could get these. Offering the slot
            // again would only repeat it: the session reports it withdrawn instead.
            statistics.allocationsUnencodable &+= 1
            sessions[source].recordWithdrawal(destination: node, slots: 1)
        }
        sessionChanged(source)
    }

    /// The 99th percentile of the endpoints' round trips as last computed (ns); nil before
    /// enough samples came.
    public var roundTripP99Nanoseconds: UInt64? { schedule.roundTripP99Nanoseconds }

    /// The current slot at `now`, computed once for consecutive calls with the same time
    /// (a 128-bit division; the send loop asks for every packet it builds).
    private func slotAt(_ now: UInt64) -> UInt64 {
        if now != slotCacheTime {
            slotCacheTime = now
            slotCache = currentSlot(now: now)
        }
        return slotCache
    }

    // MARK: Packets out

    /// The next packet to send, built into `buffer` (at least 512 bytes): its destination
    /// address and length; nil when no session has anything to send.
    public func nextPacket(now: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> (address: UInt32, length: Int)? {
        clock = now
        while let host = readySessions.popFirst() {
            guard sessions.contains(host) else { continue }
            var before = sessions[host].schedulingState()
            if before.pendingAllocations > 0, var earliest = sessions[host].earliestPendingSlot() {
                let current = slotClock.sessionSlot(slotAt(now), announcedClock: before.announcedClock)
                // Slots passed by more than an endpoint accepts: not sent (rarely any).
                let late = UInt64(configuration.expireUnsentAfterSlots)
                if Int64(bitPattern: current &- late &- earliest) > 0 {
                    expireUnsent(host, before: current &- late)
                    before = sessions[host].schedulingState()
                    earliest = sessions[host].earliestPendingSlot() ?? current
                }
                if before.pendingAllocations > 0 { sendLeads.record(slot: earliest, current: current) }
            }
            let pending = before.pendingAllocations
            guard before.wantsToSend else {
                sessionChanged(host)
                continue
            }
            let result = sessions[host].send(now: now, into: buffer)
            let carried = sessions[host].schedulingState().pendingAllocations < pending
            sessionChanged(host)
            switch result {
            case .success(let length):
                statistics.packetsSent &+= 1
                if carried { statistics.allocationPacketsSent &+= 1 }
                holds.sent(to: host, now: now)
                controlTraffic?.sent(bytes: length, toRack: Int(topology.rackOf[host]))
                return (topology.addresses[host], length)
            case .failure:
                statistics.encodeFailures &+= 1
            }
        }
        return nil
    }

    /// After any event on a session: queue it to send, and track its timer.
    func sessionChanged(_ host: Int) {
        guard sessions.contains(host) else { return }
        let state = sessions[host].schedulingState()
        // The handler pins at resets and registrations, in order with the demand; this
        // catches a session that lost the clock otherwise (a HELLO refused by the session
        // itself).
        if state.announcedClock == pinned[host] { pinSource(host, !state.announcedClock) }
        var due = state.urgent
        if state.pendingAllocations == 0 {
            timers.allocationDue[host] = .max
        } else if timers.allocationDue[host] <= clock
            || state.pendingAllocations
                >= (state.announcedClock ? Self.extendedPacketAllocations : Self.referencePacketAllocations)
        {
            due = true
        } else {
            timers.scheduleAllocations(of: host, sessions: sessions)
        }
        if due { readySessions.insert(host) }
        if let deadline = state.timerDeadline { timers.schedule(deadline, for: host, sessions: sessions) }
    }
}
