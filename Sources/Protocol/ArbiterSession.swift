/// How the arbiter's side of one endpoint's connection is set up.
public struct ArbiterSessionConfiguration: Sendable {
    /// Most destinations one endpoint may have demand towards between two resets.
    public var maxDestinations = 1024
    /// The arbiter's leader epoch, stamped on every packet of an extended connection.
    public var epoch: UInt64 = 1
    /// Extensions this arbiter grants (intersected with what the endpoint asks for).
    public var supportedCapabilities: FCPCapabilities = .all
    /// Timeslot length announced in WELCOME, in picoseconds.
    public var timeslotPicoseconds: UInt32 = 1_230_400
    /// Start of slot 0 on the arbiter's clock (ns), announced in WELCOME.
    public var slotOrigin: UInt64 = 0
    public var authenticator: FCPAuthenticator?
    /// Drop every packet not authenticated with ``authenticator`` (reference endpoints,
    /// which cannot authenticate, are then refused).
    public var requireAuthentication = false
    public var resetWindowNanoseconds: UInt64 = 1_000_000_000
    public var sendTimeoutNanoseconds: UInt64 = 200_000
    /// Largest packet sent to a reference endpoint (the reference's 154 bytes).
    public var referenceMaxPacketLength = FCPWire.arbiterMaxLength
    /// Largest packet sent to an extended endpoint.
    public var extendedMaxPacketLength = 512
    /// Reference ALLOC descriptor bytes per payload (the reference's 64).
    public var referenceMaxDescriptorBytes = PendingAllocations.referenceMaxDescriptorBytes
    /// Most slots of one endpoint's demand towards one destination handed to the owner and
    /// not yet allocated (about 20 s of a 10 Gbit/s link). Demand beyond it waits here and
    /// is handed on as allocations are made, so a hostile count cannot overflow the
    /// allocator's arithmetic and a large legitimate one is not lost.
    public var maxOutstandingSlots: UInt64 = 1 << 24

    public init() {}

    /// Why the configuration cannot work, naming the field; nil when it can.
    public var problem: String? {
        if maxDestinations < 1 { return "maxDestinations must be at least 1 (got \(maxDestinations))" }
        if timeslotPicoseconds < 1_000 {
            return "timeslotPicoseconds must be at least 1000 (1 ns); endpoints refuse shorter slots"
        }
        if referenceMaxPacketLength < FCPWire.arbiterMaxLength || referenceMaxPacketLength > FCPWire.maxPacketLength {
            return "referenceMaxPacketLength must be in \(FCPWire.arbiterMaxLength)...\(FCPWire.maxPacketLength)"
        }
        if extendedMaxPacketLength < 256 || extendedMaxPacketLength > FCPWire.maxPacketLength {
            return "extendedMaxPacketLength must be in 256...\(FCPWire.maxPacketLength)"
        }
        if referenceMaxDescriptorBytes < 2 || referenceMaxDescriptorBytes > FCPWire.maxAllocDescriptorBytes {
            return "referenceMaxDescriptorBytes must be in 2...\(FCPWire.maxAllocDescriptorBytes)"
        }
        if requireAuthentication && authenticator == nil { return "requireAuthentication needs an authenticator (key)" }
        if sendTimeoutNanoseconds == 0 { return "sendTimeoutNanoseconds must be positive" }
        if maxOutstandingSlots == 0 || maxOutstandingSlots > 1 << 40 {
            return "maxOutstandingSlots must be in 1...\(UInt64(1) << 40)"
        }
        return nil
    }
}

/// The owner's answer to an endpoint's HELLO.
public enum FCPRegistrationDecision: Sendable, Hashable {
    /// Register the endpoint under this node id.
    case accept(NodeID)
    case refuse(FCPRefusalReason)
}

/// What an ``ArbiterSession`` asks of its owner (the arbiter core, which holds the
/// allocator and the topology) after each event, in this order: a reset, a registration,
/// then per destination demand increases and withdrawal requests.
public protocol ArbiterSessionHandler {
    /// The endpoint's state restarted: forget all of its demand, everywhere.
    mutating func endpointReset()
    /// The endpoint asks to be registered with the extended protocol.
    mutating func registrationRequested(_ hello: FCPHello) -> FCPRegistrationDecision
    /// The endpoint needs `slots` more timeslots towards `destination`.
    mutating func demandIncreased(destination: NodeID, by slots: UInt64)
    /// The endpoint withdraws up to `slots` not yet allocated towards `destination`;
    /// returns how many were still pending and are now withdrawn.
    mutating func withdrawalRequested(destination: NodeID, upTo slots: UInt64) -> UInt64
}

/// What became of an allocation an arbiter-side session was asked to record.
public enum FCPAllocationOutcome: Sendable, Hashable {
    case recorded
    /// No demand towards the destination is held (none recorded, or all of it allocated or
    /// withdrawn: the allocation is stale, e.g. from before a reset).
    case noDemand
    /// A reference endpoint cannot be told (node above 16383 or path above 3).
    case unencodable
    /// The slot already has an allocation, or is older than the pending window.
    case slotUnavailable
}

/// Where the extension handshake of an arbiter-side connection stands.
public enum ArbiterNegotiation: Sendable, Hashable {
    /// Plain reference FCP (no HELLO seen since the last reset).
    case reference
    /// The endpoint was registered as `node` with these capabilities.
    case extended(node: NodeID, capabilities: FCPCapabilities)
    /// The last HELLO was refused; the endpoint is served (if at all) as reference FCP.
    case refused(FCPRefusalReason)

    public var granted: FCPCapabilities {
        if case .extended(_, let c) = self { return c }
        return []
    }
}

/// Counters of an arbiter-side session (beyond its connection's).
public struct ArbiterSessionStatistics: Sendable, Hashable {
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
    /// Times demand was held back by ``ArbiterSessionConfiguration/maxOutstandingSlots``.
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
    /// Packets that arrived above the endpoint's announced budget (a burst of twice the
    /// announced one is tolerated, for arrivals bunched by the network).
    public var packetsOverBudget: UInt64 = 0
    /// BUDGET payloads sent.
    public var budgetsSent: UInt64 = 0

    public init() {}
}

/// The arbiter's counters towards one destination of one endpoint, for metrics and tests.
public struct ArbiterDestinationSnapshot: Sendable, Hashable {
    public var destination: NodeID
    /// Cumulative demand the endpoint asked for since the last reset.
    public var requested: UInt64
    /// Cumulative demand handed to the owner (the rest waits, see `maxOutstandingSlots`).
    public var released: UInt64
    /// Cumulative allocations recorded.
    public var allocated: UInt64
    /// Cumulative allocations sent in an ALLOC, or dropped from the pending window: what
    /// the reports tell the endpoint.
    public var sent: UInt64
    /// Cumulative slots withdrawn at the endpoint's request.
    public var withdrawn: UInt64
    /// Highest allocation count the endpoint acknowledged receiving in a report.
    public var reportAcknowledged: UInt64
}

struct ArbiterDestination {
    var requested: UInt64 = 0
    /// Demand handed to the owner; `requested - released - withdrawnDeferred` waits here.
    var released: UInt64 = 0
    var allocated: UInt64 = 0
    /// Reported, not `allocated`: an allocation still waiting in the pending window has
    /// not been sent, and reporting it would make the endpoint declare it lost.
    var sent: UInt64 = 0
    /// Withdrawn from demand the owner held, and from demand still waiting here.
    var withdrawnFromOwner: UInt64 = 0
    var withdrawnDeferred: UInt64 = 0
    var withdrawn: UInt64 { withdrawnFromOwner &+ withdrawnDeferred }
    var deferred: UInt64 { requested &- released &- withdrawnDeferred }
    var giveBackRequested: UInt64 = 0
    var reportAcked: UInt64 = 0
    var withdrawnAcked: UInt64 = 0
    var pendingWithdrawal: UInt64 = 0
    var dirty = false
}

/// One report entry of a sent packet. Values are stored as their low 32 bits: a report
/// is never more than 2^32 behind the current count, so they widen back exactly.
struct ArbiterRecordEntry {
    var destination: Int32
    var sentLow: UInt32
    var withdrawnLow: UInt32
}

/// The arbiter's per-endpoint bookkeeping; the connection calls it back.
struct ArbiterBook: FCPConnectionDelegate {
    static let welcomeFlag: UInt8 = 1
    static let budgetFlag: UInt8 = 2

    /// The low bits of a BUDGET revision, kept in a packet's record flags above the two
    /// flag bits: which share a packet carried.
    static func revisionTag(_ revision: UInt32) -> UInt8 { UInt8(truncatingIfNeeded: revision & 0x3F) }
    static let reportsPerPacket = 10

    let configuration: ArbiterSessionConfiguration
    var table: DestinationTable
    var destinations: [ArbiterDestination]
    /// first: reports to send.
    var reports: IndexQueues
    var records: PacketRecords<ArbiterRecordEntry>
    var pending = PendingAllocations()
    var dirtyList: [Int32]
    var dirtyCount = 0
    var negotiation = ArbiterNegotiation.reference
    var welcome: FCPWelcome?
    var welcomeAcked = true
    var welcomeInFlight = false
    /// The endpoint's share, once the owner set one; sent to endpoints that negotiated
    /// ``FCPCapabilities/controlBudget``.
    var budget: FCPControlBudget?
    var budgetAcked = true
    var budgetInFlight = false
    /// Measures the endpoint's packets against its share.
    var receivePacer = ControlPacer()
    var helloReceived: FCPHello?
    /// Whether the packet carrying `helloReceived` was authenticated.
    var helloAuthenticated = false
    var packetAuthenticated = false
    var didReset = false
    var transmitRequested = false
    /// The latest round-trip sample not yet taken by the owner (0: none).
    var roundTripSample: UInt64 = 0
    var statistics = ArbiterSessionStatistics()

    init(configuration: ArbiterSessionConfiguration) {
        self.configuration = configuration
        table = DestinationTable(capacity: max(1, configuration.maxDestinations))
        destinations = [ArbiterDestination](repeating: ArbiterDestination(), count: table.storage)
        reports = IndexQueues(capacity: table.storage)
        records = PacketRecords(
            entriesPerPacket: Self.reportsPerPacket,
            filler: ArbiterRecordEntry(destination: 0, sentLow: 0, withdrawnLow: 0))
        dirtyList = [Int32](repeating: 0, count: table.storage)
    }

    /// Keeps the per-destination arrays as large as the table's storage after it grew.
    mutating func followTableGrowth() {
        destinations.extend(to: table.storage, with: ArbiterDestination())
        reports.grow(to: table.storage)
        dirtyList.extend(to: table.storage, with: 0)
    }

    mutating func markDirty(_ i: Int) {
        guard !destinations[i].dirty else { return }
        destinations[i].dirty = true
        dirtyList[dirtyCount] = Int32(i)
        dirtyCount += 1
    }

    /// Queues a report of destination `i`. A queued report is reason enough to send
    /// (``ArbiterSession/wantsToSend``), so no transmission is requested besides: a report
    /// queued while a packet is being built travels in that packet, and requesting one
    /// here made an empty packet follow every packet that carried allocations.
    mutating func triggerReport(_ i: Int) {
        reports.append(i, to: .first)
    }

    /// `count` allocations towards `node` left the pending window (sent, or fell off):
    /// report them.
    mutating func noteSent(_ node: NodeID, count: Int) {
        guard count > 0, let i = table.index(of: node) else { return }
        destinations[i].sent &+= UInt64(count)
        triggerReport(i)
    }

    mutating func demand(towards node: NodeID, cumulative: UInt64?, wire16: UInt16?) {
        guard let (i, inserted) = table.findOrInsert(node) else {
            statistics.destinationTableFull &+= 1
            return
        }
        if inserted {
            followTableGrowth()
            destinations[i] = ArbiterDestination()
        }
        let current = destinations[i].requested
        // A 16-bit count stands for the value nearest the last one known (±2^15).
        let value = cumulative ?? FCPSequence.widen16(wire16 ?? 0, from: current &- 0x8000)
        guard Wrapping.after(value, current), value > current else { return }
        destinations[i].requested = value
        markDirty(i)
    }

    func widen32(_ low: UInt32, near reference: UInt64) -> UInt64 {
        reference &- ((UInt64(UInt32(truncatingIfNeeded: reference)) &- UInt64(low)) & 0xFFFF_FFFF)
    }

    // MARK: FCPConnectionDelegate

    mutating func fcpDidReset() {
        table.removeAll()
        reports.removeAll()
        records.removeAll()
        pending.removeAll()
        // Entries are zeroed when reinserted; pending demand deltas of the old epoch die here.
        dirtyCount = 0
        negotiation = .reference
        welcome = nil
        welcomeAcked = true
        welcomeInFlight = false
        // Announced again with the next WELCOME.
        budgetAcked = false
        budgetInFlight = false
        helloReceived = nil
        didReset = true
        transmitRequested = true
    }

    mutating func fcpAcknowledged(sequence: UInt64) {
        records.forEach(sequence) { e in
            let i = Int(e.destination)
            guard i < table.count else { return }
            let sent = widen32(e.sentLow, near: destinations[i].sent)
            let withdrawn = widen32(e.withdrawnLow, near: destinations[i].withdrawn)
            if sent > destinations[i].reportAcked { destinations[i].reportAcked = sent }
            if withdrawn > destinations[i].withdrawnAcked { destinations[i].withdrawnAcked = withdrawn }
        }
        if let f = records.flags(sequence), f & Self.welcomeFlag != 0 {
            welcomeAcked = true
            welcomeInFlight = false
        }
        // Only the current share: a packet that carried an older one may be acknowledged
        // after the share changed.
        if let f = records.flags(sequence), f & Self.budgetFlag != 0, let budget,
            f >> 2 == Self.revisionTag(budget.revision)
        {
            budgetAcked = true
            budgetInFlight = false
        }
    }

    mutating func fcpNegativelyAcknowledged(sequence: UInt64) {
        records.forEach(sequence) { e in
            let i = Int(e.destination)
            guard i < table.count else { return }
            let d = destinations[i]
            if d.sent > d.reportAcked || d.withdrawn > d.withdrawnAcked { triggerReport(i) }
        }
        if let f = records.flags(sequence), f & Self.welcomeFlag != 0, !welcomeAcked {
            welcomeInFlight = false
            transmitRequested = true
        }
        // Sent again with the next packet; not worth a packet of its own.
        if let f = records.flags(sequence), f & Self.budgetFlag != 0, !budgetAcked, let budget,
            f >> 2 == Self.revisionTag(budget.revision)
        {
            budgetInFlight = false
        }
    }

    mutating func fcpTransmissionRequested() { transmitRequested = true }

    mutating func fcpMeasuredRoundTrip(nanoseconds: UInt64) { roundTripSample = max(1, nanoseconds) }

    mutating func fcpWillDeliverPayloads(of packet: FCPPacketInfo) { packetAuthenticated = packet.authenticated }

    mutating func fcpReceivedAlloc(_ payload: FCPAllocPayloadView) {
        statistics.unexpectedPayloads &+= 1  // endpoints do not allocate
    }

    mutating func fcpReceivedRequests(_ payload: FCPRequestsPayloadView) {
        for k in 0..<payload.count {
            let (destination, count) = payload.entry(k)
            demand(towards: NodeID(UInt32(destination)), cumulative: nil, wire16: count)
        }
        transmitRequested = true
    }

    mutating func fcpReceivedExtension(_ payload: FCPExtensionPayloadView) {
        switch FCPPayloadType(rawValue: payload.type) {
        case .hello:
            guard let hello = FCPHello(body: payload.body) else {
                statistics.unexpectedPayloads &+= 1
                return
            }
            statistics.hellosReceived &+= 1
            helloReceived = hello
            helloAuthenticated = packetAuthenticated
            transmitRequested = true
        case .wideRequests:
            let n = FCPListPayload.entryCount(payload.body, entryLength: FCPListPayload.wideRequestEntryLength)
            for k in 0..<n {
                let e = FCPListPayload.counterEntry(payload.body, k)
                demand(towards: e.destination, cumulative: e.count, wire16: nil)
            }
            transmitRequested = true
        case .giveBack:
            let n = FCPListPayload.entryCount(payload.body, entryLength: FCPListPayload.giveBackEntryLength)
            for k in 0..<n {
                let e = FCPListPayload.counterEntry(payload.body, k)
                guard let i = table.index(of: e.destination), e.count > destinations[i].giveBackRequested else {
                    continue
                }
                destinations[i].pendingWithdrawal &+= e.count - destinations[i].giveBackRequested
                destinations[i].giveBackRequested = e.count
                markDirty(i)
            }
            transmitRequested = true
        case .ackDelay:
            // The round trip just measured (for the newest packet acknowledged) includes
            // the endpoint's wait; only the rest is the path.
            guard negotiation.granted.contains(.controlBudget), let held = FCPAckDelayPayload.nanoseconds(payload.body)
            else {
                statistics.unexpectedPayloads &+= 1
                return
            }
            if roundTripSample != 0 { roundTripSample = max(1, roundTripSample > held ? roundTripSample - held : 1) }
        case .authentication:
            break  // a trailer on a connection that does not verify it
        default:
            statistics.unexpectedPayloads &+= 1
        }
    }
}

/// What the owner's send rule and timers need of a session, in one read: see
/// ``ArbiterSession/schedulingState()``.
public struct ArbiterSessionSchedulingState: Sendable, Hashable {
    /// ``ArbiterSession/wantsToSend``.
    public var wantsToSend: Bool
    /// ``ArbiterSession/timerDeadline``.
    public var timerDeadline: UInt64?
    /// The endpoint is registered with the extended protocol.
    public var extended: Bool
    /// The endpoint numbers slots by the arbiter's announced clock.
    public var announcedClock: Bool
    /// Something other than allocations must go out: an acknowledgement, a report, a
    /// RESET or WELCOME. Allocations alone may wait for the owner's send rule.
    public var urgent: Bool
    /// Allocations recorded and not yet sent.
    public var pendingAllocations: Int
}

/// The arbiter's side of one endpoint's FCP connection: the connection, the endpoint's
/// cumulative demand per destination (reconstructed from 16-bit or 64-bit counters), the
/// allocations not yet sent, the allocation reports and their acknowledgement, and the
/// extension handshake.
///
/// Sans-IO, and allocation-free once its destination table has grown to the destinations in
/// use. Feed packets with
/// ``receive(_:now:handler:)``, allocations with ``recordAllocation(slot:destination:path:)``,
/// call ``handleTimeout(now:)`` when ``timerDeadline`` passes and ``send(now:into:)`` when
/// ``wantsToSend``.
public struct ArbiterSession {
    public private(set) var connection: FCPConnection
    var book: ArbiterBook

    /// A session whose reset epoch starts at `now`.
    ///
    /// An arbiter that makes sessions as endpoints first speak should pass its own start
    /// time instead, as the reference arbiter does for every connection: an endpoint's
    /// RESET, made after that, then wins the first reset exchange and its first request is
    /// served at once. A session stamped with the time of the endpoint's first packet
    /// holds a newer timestamp than the RESET in that packet, wins the exchange and
    /// discards the request, costing a round trip before any allocation.
    public init(configuration: ArbiterSessionConfiguration, now: UInt64) {
        connection = FCPConnection(
            configuration: FCPConnectionConfiguration(
                side: .arbiter, resetWindowNanoseconds: configuration.resetWindowNanoseconds,
                sendTimeoutNanoseconds: configuration.sendTimeoutNanoseconds),
            resetTime: now)
        connection.extensionsEnabled = true
        connection.authenticator = configuration.authenticator
        connection.requireAuthentication = configuration.requireAuthentication
        book = ArbiterBook(configuration: configuration)
    }

    public var configuration: ArbiterSessionConfiguration { book.configuration }
    public var negotiation: ArbiterNegotiation { book.negotiation }
    public var statistics: ArbiterSessionStatistics {
        var s = book.statistics
        s.allocationsUnencodable &+= book.pending.unencodable
        return s
    }
    public var timerDeadline: UInt64? { connection.timerDeadline }
    /// Allocations recorded but not yet sent.
    public var pendingAllocationCount: Int { book.pending.count }
    /// Whether there is something to send: allocations, reports, a WELCOME, an answer.
    public var wantsToSend: Bool { isUrgent || !book.pending.isEmpty }

    /// Whether something besides allocations waits to be sent.
    var isUrgent: Bool {
        book.transmitRequested || !book.reports.isEmpty
            || (book.welcome != nil && !book.welcomeAcked && !book.welcomeInFlight)
    }

    /// The earliest slot among the allocations not yet sent (the endpoint's numbering);
    /// nil when there are none. A bitmap scan: not part of ``schedulingState()``, which
    /// an owner reads after every event.
    public mutating func earliestPendingSlot() -> UInt64? { book.pending.earliest }

    /// The latest slot among the allocations not yet sent; nil when there are none.
    /// `mutating` for the reason ``schedulingState()`` is.
    public mutating func newestPendingSlot() -> UInt64? { book.pending.isEmpty ? nil : book.pending.head }

    /// The latest round-trip time measured on this connection since the last call (ns):
    /// from sending a packet to the endpoint's acknowledgement of it.
    public mutating func takeRoundTripSample() -> UInt64? {
        let sample = book.roundTripSample
        book.roundTripSample = 0
        return sample == 0 ? nil : sample
    }

    /// Changes the connection's send timeout (see ``FCPConnection/setSendTimeout(nanoseconds:)``):
    /// an arbiter whose round trips grow beyond it would otherwise resend every packet.
    public mutating func setSendTimeout(nanoseconds: UInt64) {
        connection.setSendTimeout(nanoseconds: nanoseconds)
    }

    /// What an owner schedules by, read in place.
    ///
    /// `mutating` although it changes nothing: an owner that keeps sessions in unsafe
    /// memory reaches them through an addressor, and a getter called there copies the
    /// whole session first (retaining every buffer it holds); a mutating call does not.
    public mutating func schedulingState() -> ArbiterSessionSchedulingState {
        ArbiterSessionSchedulingState(
            wantsToSend: wantsToSend, timerDeadline: connection.timerDeadline,
            extended: { if case .extended = book.negotiation { true } else { false } }(),
            announcedClock: book.negotiation.granted.contains(.announcedClock), urgent: isUrgent,
            pendingAllocations: book.pending.count)
    }

    /// The counters towards `destination`, if the endpoint has demand towards it.
    public func destination(_ node: NodeID) -> ArbiterDestinationSnapshot? {
        guard let i = book.table.index(of: node) else { return nil }
        let d = book.destinations[i]
        return ArbiterDestinationSnapshot(
            destination: node, requested: d.requested, released: d.released, allocated: d.allocated, sent: d.sent,
            withdrawn: d.withdrawn, reportAcknowledged: d.reportAcked)
    }

    /// Every destination with counters since the last reset.
    public var destinations: [ArbiterDestinationSnapshot] {
        (0..<book.table.count).compactMap { destination(book.table.nodes[$0]) }
    }

    /// The share of the arbiter's packet budget this endpoint was given; nil: none yet.
    public var controlBudget: FCPControlBudget? { book.budget }

    /// Sets the endpoint's share. An endpoint that negotiated ``FCPCapabilities/controlBudget``
    /// is told in the next packet (with WELCOME, or riding along with whatever goes next:
    /// a smaller share is no reason for a packet of its own), until a packet carrying it is
    /// acknowledged. Packets above the share are counted
    /// (``ArbiterSessionStatistics/packetsOverBudget``) whether or not the endpoint was told.
    public mutating func setControlBudget(_ budget: FCPControlBudget, now: UInt64) {
        guard budget != book.budget else { return }
        book.budget = budget
        book.budgetAcked = false
        book.budgetInFlight = false
        book.receivePacer.setRate(
            packetsPerSecond: UInt64(budget.packetsPerSecond), burst: 2 * UInt64(max(1, budget.burst)), now: now)
    }

    /// Whether a packet from this endpoint arriving at `now` would be within its share.
    public func isWithinBudget(now: UInt64) -> Bool {
        book.receivePacer.earliestSend(now: now, carriesNews: true) <= now
    }

    /// Handles one packet from the endpoint, then tells `handler` what changed.
    @discardableResult
    public mutating func receive<H: ArbiterSessionHandler>(
        _ packet: UnsafeRawBufferPointer, now: UInt64, handler: inout H
    ) -> FCPReceiveResult {
        if !book.receivePacer.consume(now: now) { book.statistics.packetsOverBudget &+= 1 }
        let result = connection.receive(packet, now: now, delegate: &book)
        drain(handler: &handler)
        return result
    }

    /// The retransmission timer fired.
    public mutating func handleTimeout<H: ArbiterSessionHandler>(now: UInt64, handler: inout H) {
        connection.handleTimeout(now: now, delegate: &book)
        drain(handler: &handler)
    }

    /// Starts a new reset epoch, forgetting everything about this endpoint.
    public mutating func forceReset<H: ArbiterSessionHandler>(now: UInt64, handler: inout H) {
        connection.forceReset(now: now)
        book.fcpDidReset()
        drain(handler: &handler)
    }

    private mutating func drain<H: ArbiterSessionHandler>(handler: inout H) {
        if book.didReset {
            book.didReset = false
            connection.requireAuthentication = book.configuration.requireAuthentication
            handler.endpointReset()
        }
        if let hello = book.helloReceived {
            book.helloReceived = nil
            register(hello, handler: &handler)
        }
        var k = 0
        while k < book.dirtyCount {
            let i = Int(book.dirtyList[k])
            k += 1
            book.destinations[i].dirty = false
            let node = book.table.nodes[i]
            let withdrawal = book.destinations[i].pendingWithdrawal
            if withdrawal > 0 {
                // Withdraw what still waits here first, then ask the owner for the rest.
                book.destinations[i].pendingWithdrawal = 0
                let fromDeferred = min(withdrawal, book.destinations[i].deferred)
                book.destinations[i].withdrawnDeferred &+= fromDeferred
                var withdrawn = fromDeferred
                if withdrawal > fromDeferred {
                    let rest = withdrawal - fromDeferred
                    let w = min(handler.withdrawalRequested(destination: node, upTo: rest), rest)
                    book.destinations[i].withdrawnFromOwner &+= w
                    withdrawn &+= w
                }
                book.statistics.withdrawnSlots &+= withdrawn
                // The endpoint learns the outcome from the next report.
                book.triggerReport(i)
            }
            release(i, node: node, handler: &handler)
        }
        book.dirtyCount = 0
    }

    /// Hands the owner as much waiting demand as `maxOutstandingSlots` allows.
    private mutating func release<H: ArbiterSessionHandler>(_ i: Int, node: NodeID, handler: inout H) {
        let d = book.destinations[i]
        let deferred = d.deferred
        guard deferred > 0 else { return }
        let held = d.released &- d.allocated &- d.withdrawnFromOwner
        let room = book.configuration.maxOutstandingSlots > held ? book.configuration.maxOutstandingSlots - held : 0
        let amount = min(deferred, room)
        if amount < deferred { book.statistics.demandDeferred &+= 1 }
        guard amount > 0 else { return }
        book.destinations[i].released &+= amount
        book.statistics.demandSlots &+= amount
        handler.demandIncreased(destination: node, by: amount)
    }

    /// Pending allocations that will never be sent: reported as sent, so that the
    /// endpoint counts them lost and asks again.
    private mutating func dropPendingAllocations() {
        while let node = book.pending.popAny() { book.noteSent(node, count: 1) }
    }

    private mutating func register<H: ArbiterSessionHandler>(_ hello: FCPHello, handler: inout H) {
        let configuration = book.configuration
        var offered = hello.capabilities.intersection(configuration.supportedCapabilities)
        // Authentication is granted only to an endpoint that proved it holds the key: an
        // unsigned HELLO asking for it would otherwise lock the real endpoint out.
        if configuration.authenticator == nil || !book.helloAuthenticated { offered.remove(.authentication) }
        // The endpoint repeats HELLO until it has our answer: the same request again only
        // needs the answer again, not a second registration (which an owner enforcing
        // unique identities would refuse).
        var repeated = false
        switch book.negotiation {
        case .extended(let node, let granted):
            repeated = granted == offered && (hello.node == nil || hello.node == node)
        case .refused: repeated = book.welcome != nil
        case .reference: break
        }
        if repeated {
            book.welcomeAcked = false
            book.welcomeInFlight = false
            book.transmitRequested = true
            return
        }
        let hadClock = book.negotiation.granted.contains(.announcedClock)
        let decision: FCPRegistrationDecision
        if hello.version < 1 {
            decision = .refuse(.unsupportedVersion)
        } else if configuration.requireAuthentication && !hello.capabilities.contains(.authentication) {
            decision = .refuse(.authenticationRequired)
        } else {
            decision = handler.registrationRequested(hello)
        }
        switch decision {
        case .accept(let node):
            let granted = offered
            if granted.contains(.authentication) { connection.requireAuthentication = true }
            if granted.contains(.announcedClock) != hadClock {
                // Pending slots were numbered for the other clock.
                dropPendingAllocations()
            }
            book.negotiation = .extended(node: node, capabilities: granted)
            book.welcome = FCPWelcome(
                capabilities: granted, node: node, timeslotPicoseconds: configuration.timeslotPicoseconds,
                epoch: configuration.epoch, slotOrigin: configuration.slotOrigin)
            book.statistics.registrations &+= 1
        case .refuse(let reason):
            if hadClock { dropPendingAllocations() }
            book.negotiation = .refused(reason)
            book.welcome = .refused(reason, epoch: configuration.epoch)
            book.statistics.refusals &+= 1
        }
        book.welcomeAcked = false
        book.welcomeInFlight = false
        book.transmitRequested = true
    }

    /// Records that `slot` was allocated to this endpoint towards `destination` over
    /// `path`. Slots are in the numbering this endpoint understands: the announced clock
    /// for an extended endpoint that negotiated it, reference slots otherwise. Returns
    /// false (counted) when the slot is already taken or too old, no demand towards
    /// `destination` was recorded, or a reference endpoint could not be told about it
    /// (node above 16383 or path above 3); the allocation is then not made.
    @discardableResult
    public mutating func recordAllocation(slot: UInt64, destination: NodeID, path: PathID) -> Bool {
        record(allocationIn: slot, destination: destination, path: path) == .recorded
    }

    /// ``recordAllocation(slot:destination:path:)``, saying why an allocation was not made:
    /// an owner re-requests a slot it could not place, but not demand that is gone.
    public mutating func record(allocationIn slot: UInt64, destination: NodeID, path: PathID) -> FCPAllocationOutcome {
        guard let i = book.table.index(of: destination) else {
            book.statistics.allocationsRejected &+= 1
            return .noDemand
        }
        // Only demand the owner holds can be allocated: anything more is stale (made before
        // a reset, or for demand withdrawn meanwhile).
        let d = book.destinations[i]
        guard d.released > d.allocated &+ d.withdrawnFromOwner else {
            book.statistics.allocationsRejected &+= 1
            return .noDemand
        }
        if !book.negotiation.granted.contains(.announcedClock),
            ReferenceDestination.pack(destination, path: path) == nil
        {
            book.statistics.allocationsUnencodable &+= 1
            return .unencodable
        }
        // Allocations that fall out of the window count as sent (and lost): the report
        // then makes the endpoint ask for them again.
        while let old = book.pending.popFallingOff(whenAdding: slot) {
            book.noteSent(old.node, count: 1)
            book.statistics.allocationsFellOff &+= 1
        }
        guard book.pending.add(slot: slot, node: destination, path: path) == .added else {
            book.statistics.allocationsRejected &+= 1
            return .slotUnavailable
        }
        book.destinations[i].allocated &+= 1
        // Room for waiting demand: handed on at the next event.
        if book.destinations[i].deferred > 0 { book.markDirty(i) }
        book.statistics.allocationsRecorded &+= 1
        return .recorded
    }

    /// Withdraws the pending allocations for slots before `slot` (in the endpoint's
    /// numbering) unsent: the endpoint would refuse them as too late. Each is handed back
    /// as demand the owner holds again, `giveBack` naming its destination, so the owner
    /// can offer it to its allocator anew. Returns how many were withdrawn.
    @discardableResult
    public mutating func expirePendingAllocations(before slot: UInt64, giveBack: (NodeID) -> Void) -> Int {
        var expired = 0
        while let earliest = book.pending.earliest, Wrapping.before(earliest, slot),
            let node = book.pending.remove(slot: earliest)
        {
            expired += 1
            book.statistics.allocationsExpiredUnsent &+= 1
            if let i = book.table.index(of: node) { book.destinations[i].allocated &-= 1 }
            giveBack(node)
        }
        return expired
    }

    /// The owner dropped all the demand it held towards `destination` (the destination went
    /// away): counted as withdrawn and reported. Returns the slots withdrawn.
    @discardableResult
    public mutating func withdrawHeldDemand(towards destination: NodeID) -> UInt64 {
        guard let i = book.table.index(of: destination) else { return 0 }
        let d = book.destinations[i]
        let held =
            d.released > d.allocated &+ d.withdrawnFromOwner ? d.released - d.allocated - d.withdrawnFromOwner : 0
        guard held > 0 else { return 0 }
        recordWithdrawal(destination: destination, slots: held)
        return held
    }

    /// The owner withdrew `slots` of the demand it held towards `destination` after the
    /// request (its allocator applies withdrawals when it next sees the flow): counted
    /// as withdrawn, and reported to the endpoint.
    public mutating func recordWithdrawal(destination: NodeID, slots: UInt64) {
        guard slots > 0, let i = book.table.index(of: destination) else { return }
        book.destinations[i].withdrawnFromOwner &+= slots
        book.statistics.withdrawnSlots &+= slots
        book.triggerReport(i)
        if book.destinations[i].deferred > 0 { book.markDirty(i) }
    }

    /// Builds the next packet into `buffer` (at least the configured maximum packet
    /// length) and commits it: RESET if out of sync, EPOCH and WELCOME for extended
    /// endpoints, pending allocations, then reports. Returns the packet's length.
    public mutating func send(now: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, FCPEncodeError> {
        connection.prepareToSend(delegate: &book)
        let configuration = book.configuration
        let granted = book.negotiation.granted
        let extended = !granted.isEmpty || book.welcome != nil
        let wideReports = granted.contains(.wideCounters)
        // Signed whenever there is a key: the separator byte before the trailer keeps a
        // reference endpoint from tripping over it.
        let authenticator = configuration.authenticator
        let maxLength = min(
            extended ? configuration.extendedMaxPacketLength : configuration.referenceMaxPacketLength, buffer.count)
        let sendWelcome = book.welcome != nil && !book.welcomeAcked
        let budgetGranted = granted.contains(.controlBudget) && book.welcome?.refusal == nil
        let sendBudget =
            budgetGranted && book.budget != nil && (sendWelcome || (!book.budgetAcked && !book.budgetInFlight))
        let header = connection.commit(now: now, delegate: &book)
        let budgetFlags =
            sendBudget ? ArbiterBook.budgetFlag | ArbiterBook.revisionTag(book.budget?.revision ?? 0) << 2 : 0
        book.records.begin(header.sequence, flags: (sendWelcome ? ArbiterBook.welcomeFlag : 0) | budgetFlags)
        book.transmitRequested = false
        if sendWelcome { book.welcomeInFlight = true }
        if sendBudget {
            book.budgetInFlight = true
            book.statistics.budgetsSent &+= 1
        }

        var writer = FCPPacketWriter(buffer, maxLength: maxLength)
        do throws(FCPEncodeError) {
            try writer.writeHeader(
                sequence: header.sequence, ackSequence: header.ackSequence, ackVector: header.ackVector)
            if header.sendReset { try writer.writeReset(timestamp: header.resetTimestamp) }
            if granted.contains(.epochFencing) { try FCPEpochPayload.write(configuration.epoch, to: &writer) }
            if sendWelcome, let welcome = book.welcome { try welcome.write(to: &writer) }
            if sendBudget, let budget = book.budget { try budget.write(to: &writer) }

            // Room kept for a full set of reports and the trailer; the allocations get the rest.
            let reportReserve =
                wideReports
                ? FCPWire.extensionHeaderLength + ArbiterBook.reportsPerPacket * FCPListPayload.wideReportEntryLength
                : 2 + 4 * ArbiterBook.reportsPerPacket
            let trailerReserve = authenticator == nil ? 0 : 1 + FCPAuthenticator.trailerLength
            let allocBudget = writer.remaining - reportReserve - trailerReserve
            if granted.contains(.announcedClock) {
                var taken = InlineArray<192, UInt32>(repeating: 0)
                var takenCount = 0
                var limited = FCPPacketWriter(writer.buffer, maxLength: writer.length + max(0, allocBudget))
                try limited.skip(to: writer.length)
                let sent = book.pending.takeWide(into: &limited, maxEntries: 192) { node, _ in
                    taken[takenCount] = node.rawValue
                    takenCount += 1
                }
                try writer.skip(to: limited.length)
                for k in 0..<takenCount { book.noteSent(NodeID(taken[k]), count: 1) }
                book.statistics.allocationsSent &+= UInt64(sent)
            } else if allocBudget > 4 {
                var block = AllocBlock()
                let sent = book.pending.takeBlock(
                    into: &block, maxDescriptorBytes: configuration.referenceMaxDescriptorBytes,
                    maxPayloadBytes: allocBudget)
                if sent > 0 {
                    try writer.writeAlloc(block)
                    for k in 0..<block.destinationCount {
                        book.noteSent(ReferenceDestination.unpack(block.destination(k)).node, count: block.slotCount(k))
                    }
                }
                book.statistics.allocationsSent &+= UInt64(sent)
            }

            // Reports go after the allocations they cover, in the same packet.
            var entries = InlineArray<10, ArbiterRecordEntry>(
                repeating: .init(destination: 0, sentLow: 0, withdrawnLow: 0))
            var reportCount = 0
            while reportCount < ArbiterBook.reportsPerPacket, let i = book.reports.popFirstThenSecond() {
                let d = book.destinations[i]
                entries[reportCount] = ArbiterRecordEntry(
                    destination: Int32(i), sentLow: UInt32(truncatingIfNeeded: d.sent),
                    withdrawnLow: UInt32(truncatingIfNeeded: d.withdrawn))
                book.records.append(header.sequence, entries[reportCount])
                reportCount += 1
            }
            if reportCount > 0 {
                book.statistics.reportEntriesSent &+= UInt64(reportCount)
                let nodes = book.table.nodes
                let destinations = book.destinations
                if wideReports {
                    try writer.writeExtension(
                        .wideReport, bodyLength: reportCount * FCPListPayload.wideReportEntryLength
                    ) { body in
                        for k in 0..<reportCount {
                            let i = Int(entries[k].destination)
                            let o = k * FCPListPayload.wideReportEntryLength
                            writeBE32(body, o, nodes[i].rawValue)
                            writeBE64(body, o + 4, destinations[i].sent)
                            writeBE64(body, o + 12, destinations[i].withdrawn)
                        }
                    }
                } else {
                    try writer.writeRequests(count: reportCount) { k in
                        let i = Int(entries[k].destination)
                        return (
                            UInt16(truncatingIfNeeded: nodes[i].rawValue),
                            UInt16(truncatingIfNeeded: destinations[i].sent)
                        )
                    }
                }
            }
            try writer.pad(toMinimum: FCPWire.minimumPacketLength)
            return .success(
                try writer.finalize(
                    sequence: header.sequence, ackSequence: header.ackSequence, authenticator: authenticator))
        } catch {
            book.statistics.encodeFailures &+= 1
            return .failure(error)
        }
    }
}
