import FastpassProtocol

/// Counters of one agent.
public struct AgentStatistics: Sendable {
    /// Packets that entered a destination queue.
    public var packetsQueued: UInt64 = 0
    public var bytesQueued: UInt64 = 0
    /// Packets let through without waiting, by ``BypassReason`` (its raw value).
    public var bypassed = InlineArray<6, UInt64>(repeating: 0)
    /// Packets refused as malformed, by ``MalformedReason`` (its raw value).
    public var malformed = InlineArray<3, UInt64>(repeating: 0)
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
    /// Allocations whose slot had passed (``AgentConfiguration/lateReleaseLimitNanoseconds``)
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
    /// Packets sent without a slot (``AgentCore/takeUnscheduled()``), while the arbiter
    /// could not be reached.
    public var packetsUnscheduled: UInt64 = 0
    /// Release lateness: see ``AgentCore/latenessBucket(_:)``.
    public var lateness = InlineArray<16, UInt64>(repeating: 0)

    public init() {}
}

/// One packet to send now: the caller's handle, where to, and over which path.
public struct AgentRelease: Sendable, Hashable {
    public var handle: UInt32
    public var length: Int
    /// Index in ``AgentConfiguration/peers``.
    public var peer: Int
    public var path: PathID
    /// The slot, in the session's numbering, and when it starts on the host's clock.
    public var slot: UInt64
    public var slotStart: UInt64
    /// How long after its planned release (slot start minus the lead) it was released.
    public var latenessNanoseconds: UInt64
    /// When the allocation for this slot reached the host.
    public var allocationAdmitted: UInt64 = 0
}

/// The agent's sans-IO core: classifies outgoing packets, holds them per destination,
/// turns queued bytes into timeslots of demand for its FCP session, and releases packets
/// at their allocated slot (not when the allocation arrives).
///
/// Drive it like the FCP session inside it: ``receive(_:now:)`` for packets from the
/// arbiter, ``advance(now:)`` when ``nextDeadline`` passes, ``nextControlPacket(now:into:)``
/// until nil after each event, and ``nextRelease(now:)`` until nil whenever a slot may
/// have come. Bounded at start-up: the packet pool and the session's per-destination
/// tables grow (geometrically, up to the configured sizes) only while more packets or
/// destinations are in use than ever before, and nothing allocates once they stop growing.
public struct AgentCore {
    public let configuration: AgentConfiguration
    public let classifier: PacketClassifier
    public private(set) var session: EndpointSession
    public private(set) var statistics = AgentStatistics()
    /// The queue towards each peer in use, at its index in ``active``.
    private var queues: DestinationQueues
    /// The peers in use: their per-destination state lives at these indices.
    private var active: ActivePeers
    /// Slots of demand the session holds for each peer in use and that no release has used
    /// yet: kept equal to the slots the queue needs.
    private var promised: [Int] = []
    /// The slot being released: the rest of its packets, as a detached chain.
    private var chain: Int32 = -1
    private var chainSlot: UInt64 = 0
    private var chainStart: UInt64 = 0
    private var chainPath = PathID.none
    private var chainAdmitted: UInt64 = 0
    /// The peer whose slot is being released (an index in the configuration's peers).
    private var chainPeer = 0
    /// Where ``takeUnscheduled()`` looks first, so that every queue drains in turn.
    private var unscheduledCursor = 0
    private var reachability = ArbiterReachability()
    /// A state change not yet taken by ``takeTransition()``.
    private var pendingTransition: AgentTransition?

    /// Fails with a message naming the field when the configuration cannot work.
    public init(configuration: AgentConfiguration, now: UInt64) throws(AgentConfigurationError) {
        if let p = configuration.problem { throw AgentConfigurationError(reason: p) }
        self.configuration = configuration
        classifier = PacketClassifier(configuration)
        session = EndpointSession(configuration: configuration.session, now: now)
        queues = DestinationQueues(
            capacity: configuration.packetCapacity, perQueueLimit: configuration.perDestinationPacketLimit,
            slotBytes: configuration.slotBytes)
        active = ActivePeers(peerCount: configuration.peers.count)
    }

    /// The index of `peer`'s per-destination state, made on first use.
    private mutating func activeIndex(_ peer: Int) -> Int {
        if let q = active.index(of: peer) { return q }
        let q = active.activate(peer, node: configuration.peers[peer].node)
        _ = queues.addQueue()
        promised.append(0)
        return q
    }

    /// The peer an allocation to `node` is for, and its per-destination index; nil when
    /// no peer has that name. Allocations only come for peers given demand, which are in
    /// use; any other peer is found the slow way.
    private mutating func peer(ofNode node: NodeID) -> (peer: Int, index: Int)? {
        if let q = active.index(ofNode: node) { return (Int(active.peers[q]), q) }
        guard let peer = configuration.peers.firstIndex(where: { $0.node == node }) else { return nil }
        return (peer, activeIndex(peer))
    }

    // MARK: Outgoing packets

    /// Outcome of offering a packet to ``enqueue(handle:length:peer:)``.
    public enum EnqueueResult: Sendable, Hashable {
        /// Queued; its handle comes back from ``nextRelease(now:)``.
        case queued
        /// Dropped (counted); the caller frees the packet.
        case dropped
    }

    /// Classifies a packet leaving the host and counts the packets that do not wait; the
    /// caller sends those at once (bypass) or frees them (malformed), and hands the others
    /// to ``enqueue(handle:length:peer:)``.
    public mutating func classify(_ packet: UnsafeRawBufferPointer) -> AgentClassification {
        let c = classifier.classify(packet)
        switch c {
        case .schedule: break
        case .bypass(let reason): statistics.bypassed[reason.rawValue] &+= 1
        case .malformed(let reason): statistics.malformed[reason.rawValue] &+= 1
        }
        return c
    }

    /// Queues a packet of `length` IPv4 bytes towards `peer` until a slot comes for it,
    /// asking the arbiter for one more slot when it does not fit the queue's last slot.
    public mutating func enqueue(handle: UInt32, length: Int, peer: Int) -> EnqueueResult {
        precondition(peer >= 0 && peer < configuration.peers.count, "peer index out of range")
        guard length >= 1 && length <= configuration.slotBytes else {
            statistics.droppedOversize &+= 1
            return .dropped
        }
        let q = activeIndex(peer)
        switch queues.refusal(q) {
        case .poolFull?:
            statistics.droppedPoolFull &+= 1
            return .dropped
        case .queueFull?:
            statistics.droppedQueueFull &+= 1
            return .dropped
        case nil:
            break
        }
        if queues.startsSlot(q, length: length) && queues.slotCounts[q] >= promised[q] {
            guard session.addDemand(to: configuration.peers[peer].node, slots: 1) else {
                statistics.droppedNoDemand &+= 1
                return .dropped
            }
            promised[q] += 1
            statistics.slotsRequested &+= 1
        }
        queues.append(q, handle: handle, length: length)
        statistics.packetsQueued &+= 1
        statistics.bytesQueued &+= UInt64(length)
        return .queued
    }

    /// Packets waiting towards `peer`.
    public func queuedPackets(peer: Int) -> Int { active.index(of: peer).map { Int(queues.packetCounts[$0]) } ?? 0 }
    /// Slots the queue towards `peer` needs to drain.
    public func queuedSlots(peer: Int) -> Int { active.index(of: peer).map { queues.slotCounts[$0] } ?? 0 }
    /// Packets waiting, all destinations together.
    public var queuedPackets: Int { queues.totalPackets }

    // MARK: FCP

    /// Handles one FCP packet from the arbiter.
    @discardableResult
    public mutating func receive(_ packet: UnsafeRawBufferPointer, now: UInt64) -> FCPReceiveResult {
        let r = session.receive(packet, now: now)
        if r.headerAccepted || r.delivered {
            var established = false
            if case .established = session.negotiation { established = true }
            if let t = reachability.heard(now: now, established: established), pendingTransition == nil {
                pendingTransition = t
            }
        }
        return r
    }

    /// Runs the session's timers that are due.
    public mutating func advance(now: UInt64) {
        if let d = session.timerDeadline, d <= now { session.handleTimeout(now: now) }
        handledThrough = max(handledThrough, now)
        reachability.note(queuedPackets: queues.totalPackets, now: now)
    }

    // MARK: The arbiter's reachability

    /// Where the agent stands with the arbiter.
    public var state: AgentState { reachability.state }
    /// Packets leave unscheduled (the arbiter is unreachable and the policy is fallback):
    /// the owner sends what ``takeUnscheduled()`` gives, and new packets at once.
    public var sendsUnscheduled: Bool { reachability.state == .fallback }
    /// When the arbiter was last heard from (0: never).
    public var lastHeard: UInt64 { reachability.lastHeard }
    /// Times the arbiter became unreachable, and answered again.
    public var unreachableEvents: UInt64 { reachability.unreachableEvents }
    public var reachableAgainEvents: UInt64 { reachability.reachableAgain }

    /// The last state change an operator should hear of, once.
    public mutating func takeTransition() -> AgentTransition? {
        defer { pendingTransition = nil }
        return pendingTransition
    }

    /// Packets waiting longer than ``AgentConfiguration/unreachableAfterNanoseconds``
    /// without a word from the arbiter make it unreachable. Then a new reset epoch starts:
    /// its HELLO is retransmitted until answered, so the agent learns when the arbiter is
    /// back even with no demand outstanding, and a restarted arbiter needs the reset anyway.
    public mutating func checkReachability(now: UInt64) -> AgentTransition? {
        guard let limit = configuration.unreachableAfterNanoseconds else { return nil }
        reachability.note(queuedPackets: queues.totalPackets, now: now)
        guard let t = reachability.check(now: now, limit: limit, policy: configuration.unreachablePolicy) else {
            return nil
        }
        session.forceReset(now: now)
        return t
    }

    /// The latest time ``advance(now:)`` ran: a session timer at or before it has been
    /// handled, and what it left to do is sending, which the request interval paces.
    private var handledThrough: UInt64 = 0

    /// The next FCP packet to send to the arbiter, built into `buffer`; nil when there is
    /// nothing to send. Returns the length.
    public mutating func nextControlPacket(now: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Int? {
        // The request interval is the agent's own floor; the arbiter's budget and the
        // back-off after losses may ask for more time between packets.
        guard session.wantsToSend, now >= nextControlTime, now >= session.earliestSendTime(now: now) else {
            return nil
        }
        // A failed encode waits too: a deadline left in the past would spin the caller.
        nextControlTime = now &+ configuration.requestIntervalNanoseconds
        switch session.send(now: now, into: buffer) {
        case .success(let n):
            statistics.controlPacketsSent &+= 1
            statistics.controlBytesSent &+= UInt64(n)
            return n
        case .failure:
            statistics.controlEncodeFailures &+= 1
            return nil
        }
    }

    /// Earliest time the next FCP packet may leave (``AgentConfiguration/requestIntervalNanoseconds``).
    private var nextControlTime: UInt64 = 0

    /// The earliest time something is due: a session timer or the release of the next
    /// allocated slot.
    public var nextDeadline: UInt64? {
        let release = session.nextAllocationStart.map {
            $0 > configuration.releaseLeadNanoseconds ? $0 - configuration.releaseLeadNanoseconds : 0
        }
        var earliest = session.timerDeadline.map { $0 > handledThrough ? $0 : UInt64.max } ?? .max
        if let release { earliest = min(earliest, release) }
        if let limit = configuration.unreachableAfterNanoseconds, let d = reachability.deadline(after: limit) {
            earliest = min(earliest, d)
        }
        // Falling back, queued packets leave at once.
        if sendsUnscheduled && queues.totalPackets > 0 { earliest = 0 }
        if session.wantsToSend {
            earliest = min(earliest, max(nextControlTime, session.earliestSendTime(now: handledThrough)))
        }
        return earliest == .max ? nil : earliest
    }

    /// Starts a new FCP reset epoch (after the agent or the arbiter lost track); queued
    /// packets and their demand carry over.
    public mutating func forceReset(now: UInt64) {
        session.forceReset(now: now)
    }

    // MARK: Release

    /// The next packet to send now, if a slot has come: every packet of an allocated slot
    /// in turn, then the next slot's. A slot that finds its queue empty is counted and the
    /// demand it stood for is given back.
    public mutating func nextRelease(now: UInt64) -> AgentRelease? {
        while chain < 0 {
            let lead = configuration.releaseLeadNanoseconds
            guard let a = session.takeAllocation(dueBy: now &+ lead) else { return nil }
            guard let (peer, q) = peer(ofNode: a.destination) else {
                statistics.allocationsForUnknownPeers &+= 1
                continue
            }
            promised[q] = max(0, promised[q] - 1)
            if let limit = lateReleaseLimit, now > a.startNanoseconds &+ limit {
                // Sent now, the packets would land in a later slot, someone else's, and
                // queue at the bottleneck: they wait for a new slot instead.
                statistics.slotsMissed &+= 1
                if queues.slotCounts[q] > promised[q] {
                    guard session.addDemand(to: configuration.peers[peer].node, slots: 1) else {
                        statistics.droppedNoDemand &+= 1
                        continue
                    }
                    promised[q] += 1
                    statistics.slotsRequested &+= 1
                }
                continue
            }
            guard let (first, _) = queues.detachSlot(q) else {
                statistics.allocationsUnused &+= 1
                giveBackExcess(peer, q)
                continue
            }
            statistics.slotsUsed &+= 1
            chain = first
            chainSlot = a.slot
            chainStart = a.startNanoseconds
            chainPath = a.path
            chainAdmitted = a.admittedNanoseconds
            chainPeer = peer
        }
        let (handle, length, next) = queues.take(chain)
        chain = next
        let lead = configuration.releaseLeadNanoseconds
        let planned = chainStart > lead ? chainStart - lead : 0
        let late = now > planned ? now - planned : 0
        statistics.lateness[Self.latenessBucket(late)] &+= 1
        statistics.packetsReleased &+= 1
        let slot = session.announcedSlotPicoseconds.map { $0 / 1000 } ?? configuration.slotNanoseconds
        if late > lead &+ slot { statistics.releasesAfterSlot &+= 1 }
        return AgentRelease(
            handle: handle, length: length, peer: chainPeer, path: chainPath, slot: chainSlot, slotStart: chainStart,
            latenessNanoseconds: late, allocationAdmitted: chainAdmitted)
    }

    /// The next queued packet to send at once, without a slot: for when the arbiter cannot
    /// be reached and the host falls back to unscheduled sending. Takes the rest of a slot
    /// being released first, then whole head slots of each queue in turn.
    ///
    /// The demand the packets stood for stays with the session: it keeps asking, which is
    /// how the agent learns that the arbiter is back; the allocations that then come find
    /// their queue empty and give the excess back (or serve packets queued since).
    public mutating func takeUnscheduled() -> AgentRelease? {
        if chain < 0 {
            let n = configuration.peers.count
            var found = false
            for k in 0..<n {
                let peer = (unscheduledCursor + k) % n
                guard let q = active.index(of: peer), let (first, _) = queues.detachSlot(q) else { continue }
                unscheduledCursor = (peer + 1) % n
                chain = first
                chainSlot = 0
                chainStart = 0
                chainPath = .none
                chainAdmitted = 0
                chainPeer = peer
                found = true
                break
            }
            guard found else { return nil }
        }
        let (handle, length, next) = queues.take(chain)
        chain = next
        statistics.packetsUnscheduled &+= 1
        return AgentRelease(
            handle: handle, length: length, peer: chainPeer, path: chainPath, slot: chainSlot, slotStart: chainStart,
            latenessNanoseconds: 0, allocationAdmitted: chainAdmitted)
    }

    /// How late after its slot starts a slot's packets may still leave: the configured
    /// limit, one timeslot (announced, or configured) for 0, none for nil.
    private var lateReleaseLimit: UInt64? {
        guard let l = configuration.lateReleaseLimitNanoseconds else { return nil }
        if l > 0 { return l }
        return session.announcedSlotPicoseconds.map { $0 / 1000 } ?? configuration.slotNanoseconds
    }

    /// Demand the session still holds beyond what the queue needs is asked back, so the
    /// arbiter stops allocating slots nothing will use.
    private mutating func giveBackExcess(_ peer: Int, _ q: Int) {
        let excess = promised[q] - queues.slotCounts[q]
        guard excess > 0 else { return }
        let k = session.withdrawDemand(to: configuration.peers[peer].node, slots: UInt64(excess))
        promised[q] -= Int(k)
        statistics.slotsGivenBack &+= k
    }

    /// Histogram bucket of a release `late` nanoseconds after plan: 0 below 128 ns, then
    /// one bucket per doubling (bucket k below 128·2^k ns), the last one open-ended.
    public static func latenessBucket(_ late: UInt64) -> Int {
        let scaled = late >> 7
        guard scaled > 0 else { return 0 }
        return min(15, 64 - scaled.leadingZeroBitCount)
    }
}
