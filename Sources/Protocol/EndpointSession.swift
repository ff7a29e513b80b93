/// How an endpoint session is set up.
public struct EndpointSessionConfiguration: Sendable {
    public enum Mode: Sendable, Hashable {
        /// Plain reference FCP, byte for byte: no HELLO, no extension payloads.
        case reference
        /// Offer the extensions in HELLO. With `fallbackToReference`, an arbiter that answers
        /// but never acknowledges a HELLO (a reference arbiter drops packets with unknown
        /// payloads) makes the session carry on as plain reference FCP. A session with an
        /// ``EndpointSessionConfiguration/authenticator`` never falls back: a reference
        /// arbiter cannot authenticate, and falling back would give up on the key.
        case extended(fallbackToReference: Bool)
    }

    /// Extended, without falling back (the default): a session that fell back for good
    /// after a flood or a slow start would be served as a reference endpoint, with
    /// MAC-hash ids and 16-bit counters, until it resets. Fall back only where reference
    /// arbiters are expected.
    public var mode: Mode = .extended(fallbackToReference: false)
    /// Extensions to ask for.
    public var capabilities: FCPCapabilities = [
        .epochFencing, .announcedClock, .wideCounters, .giveBack, .controlBudget,
    ]
    /// Identity stated in HELLO.
    public var node: NodeID?
    /// IPv4 address stated in HELLO (host byte order).
    public var address: UInt32?
    /// Most destinations with demand between two resets; more are refused and counted.
    public var maxDestinations = 1024
    /// When an allocation may still be used (reference: 16 slots late, 64 early).
    public var allocationWindow = AllocationTimeWindow.reference
    /// Reference A-REQ counts are 16 bits wide, reconstructed around the arbiter's value,
    /// so at most this many slots may be requested beyond what was allocated.
    public var referenceRequestWindow: UInt64 = 8191
    /// How long an allocation the arbiter reported may stay unseen before it is declared
    /// lost and requested again. Reordering can deliver a report before the ALLOC it
    /// covers; declaring loss at once would ask for a slot that is already on its way.
    public var lostAllocationGraceNanoseconds: UInt64 = 50_000
    /// Unanswered HELLO packets (negatively acknowledged) before falling back. Only those
    /// that time out after the arbiter was heard from count: silence is not evidence of a
    /// reference arbiter.
    public var helloFailuresBeforeFallback = 8
    /// Key to sign packets with and verify the arbiter's.
    public var authenticator: FCPAuthenticator?
    /// Drop every arbiter packet that is not authenticated.
    public var requireAuthentication = false
    public var resetWindowNanoseconds: UInt64 = 2_000_000_000
    public var sendTimeoutNanoseconds: UInt64 = 200_000
    /// Largest packet to build; nil: 58 bytes for reference mode (the reference's
    /// limit), 320 when offering extensions.
    public var maxPacketLength: Int?
    /// Whether a reference ALLOC destination is split into node (bits 13–0) and path (bits
    /// 15–14). True for our own endpoints, so that they work with an arbiter that sends
    /// path bits (the original one does). False reproduces the original endpoint, which
    /// looks the raw 16-bit field up as the destination: an allocation with path bits set
    /// then names no destination it has demand for and is counted unwanted. Tests and
    /// `fastpass-bench fcp-endpoint --reference` use it to prove that our arbiter never
    /// sends path bits to a reference endpoint.
    public var stripsReferencePathBits = true

    public init() {}

    /// The packet size actually used.
    public var effectiveMaxPacketLength: Int {
        maxPacketLength ?? (mode == .reference ? FCPWire.endpointMaxLength : 320)
    }

    /// Smallest packet that fits a RESET, HELLO, ten requests, ten give-backs and ACK-DELAY.
    static let extendedMinimumPacket = 8 + 8 + 20 + (4 + 10 * 12) * 2 + 8 + FCPAuthenticator.trailerLength

    /// Why the configuration cannot work, naming the field; nil when it can.
    public var problem: String? {
        if maxDestinations < 1 { return "maxDestinations must be at least 1 (got \(maxDestinations))" }
        if allocationWindow.missThreshold + allocationWindow.maxPreload >= 256 {
            return "allocationWindow: missThreshold + maxPreload must be below 256 slots"
        }
        if referenceRequestWindow < 1 || referenceRequestWindow > 0x7FFF {
            return "referenceRequestWindow must be in 1...32767 (16-bit counts are reconstructed within ±32768)"
        }
        if sendTimeoutNanoseconds == 0 { return "sendTimeoutNanoseconds must be positive" }
        let minimum = mode == .reference ? FCPWire.endpointMaxLength : Self.extendedMinimumPacket
        if effectiveMaxPacketLength < minimum || effectiveMaxPacketLength > FCPWire.maxPacketLength {
            return "maxPacketLength must be in \(minimum)...\(FCPWire.maxPacketLength) for this mode"
        }
        if requireAuthentication && authenticator == nil { return "requireAuthentication needs an authenticator (key)" }
        if capabilities.contains(.authentication) && authenticator == nil {
            return "capabilities includes authentication but no authenticator (key) is configured"
        }
        if authenticator != nil && mode == .reference {
            return
                "authenticator needs the extended mode: reference FCP packets (58 bytes) have no room for the trailer"
        }
        return nil
    }
}

/// Where the extension handshake of an endpoint stands.
public enum EndpointNegotiation: Sendable, Hashable {
    /// Configured as plain reference FCP.
    case reference
    /// HELLO sent in every packet, waiting for WELCOME.
    case offering
    /// The arbiter accepted; `welcome` says what it granted.
    case established(FCPWelcome)
    /// The arbiter refused, for this reason; the session carries on in reference form
    /// and offers again after the next reset.
    case refused(FCPRefusalReason)
    /// No answer to HELLO: plain reference FCP from now on.
    case fellBack

    var isOffering: Bool { if case .offering = self { true } else { false } }

    /// The granted capabilities (empty unless established).
    public var granted: FCPCapabilities {
        if case .established(let w) = self { return w.capabilities }
        return []
    }
}

/// Counters of an endpoint session (beyond its connection's).
public struct EndpointSessionStatistics: Sendable, Hashable {
    /// Allocations accepted into the schedule.
    public var allocationsAdmitted: UInt64 = 0
    /// Allocations for a slot already more than the miss threshold in the past.
    public var allocationsTooLate: UInt64 = 0
    /// Allocations for a slot further ahead than the preload limit.
    public var allocationsPremature: UInt64 = 0
    /// Allocations to a destination with no outstanding demand.
    public var allocationsUnwanted: UInt64 = 0
    /// Of those, allocations to a destination never asked for (counted in
    /// ``allocationsUnwanted`` too): for a reference endpoint, path bits in the field.
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
    /// BUDGET payloads that changed the pace (a newer revision).
    public var budgetsApplied: UInt64 = 0
    /// Packets the caller sent before ``EndpointSession/earliestSendTime(now:)``: above the
    /// arbiter's budget or during a back-off.
    public var packetsAboveBudget: UInt64 = 0
    /// Loss episodes that made the session back off.
    public var backoffs: UInt64 = 0
    /// Packets sent because allocations were owed and the arbiter had been silent.
    public var probes: UInt64 = 0

    public init() {}
}

/// An endpoint's view of its demand towards one destination, for metrics and tests.
public struct EndpointFlowSnapshot: Sendable, Hashable {
    public var destination: NodeID
    /// Slots still needed: demand not yet matched by an accepted allocation.
    public var need: UInt64
    /// Highest cumulative count requested from the arbiter since the last reset.
    public var requested: UInt64
    /// Highest cumulative count the arbiter acknowledged receiving.
    public var acknowledged: UInt64
    /// Allocations accounted for: received (whatever their verdict) or reported lost.
    public var received: UInt64
    /// Of `received`, the allocations that actually arrived (the rest were declared lost).
    public var arrived: UInt64
    /// Allocations the arbiter reported making.
    public var reported: UInt64
    /// Slots the arbiter withdrew at our request.
    public var withdrawn: UInt64
}

/// One destination's counters. The arbiter serves cumulative demand: every allocation it
/// makes, useful or not, consumes one unit of what was requested. So the endpoint asks
/// for `received + need + withdrawn`: exactly enough that the allocations still to come
/// (pending at the arbiter or in flight) cover what it needs. An allocation that arrives
/// unusable leaves `need` as it was and raises `received`, which asks for a replacement;
/// one that arrives unneeded is absorbed by a request made earlier.
struct EndpointFlow {
    var need: UInt64 = 0
    var requested: UInt64 = 0
    var acked: UInt64 = 0
    /// Allocations counted on arrival, whatever their verdict (not those that turn up after
    /// being declared lost: they are in `lostDeclared` already).
    var arrived: UInt64 = 0
    /// Allocations reported sent that never arrived within the grace period.
    var lostDeclared: UInt64 = 0
    /// Arbiter packet up to which missing allocations have been declared lost.
    var declaredThrough: UInt64 = 0
    /// Counted arrivals of the last few arbiter packets that carried any, by packet.
    var history = ArrivalHistory()
    var reported: UInt64 = 0
    /// The report from the newest arbiter packet, and when it arrived.
    var latestReport: UInt64 = 0
    var latestReportSequence: UInt64 = 0
    var latestReportTime: UInt64 = 0
    var withdrawn: UInt64 = 0
    var giveBackRequested: UInt64 = 0
    var giveBackAcked: UInt64 = 0
    /// A report in arbiter packet `lossCheckSequence` said `lossCheckValue` allocations had
    /// been sent up to that packet; at `lossCheckDeadline` (0: none pending) whatever of
    /// them has still not arrived is declared lost.
    var lossCheckDeadline: UInt64 = 0
    var lossCheckValue: UInt64 = 0
    var lossCheckSequence: UInt64 = 0

    /// Allocations accounted for up to arbiter packet `sequence`: arrived in it or before,
    /// or declared lost (only ever for packets up to `declaredThrough`).
    func accounted(through sequence: UInt64) -> UInt64 {
        history.arrivals(through: sequence) &+ lostDeclared
    }

    /// Allocations accounted for: arrived, or declared lost. Exact, never more than the
    /// arbiter made: an over-count would ask for a slot too many on every round trip.
    var received: UInt64 { arrived &+ lostDeclared }
}

/// How many counted allocations to one destination arrived in each of the last 16 arbiter
/// packets that carried any (older ones summed), so that a report from packet p can be
/// compared with exactly what arrived in packets up to p.
struct ArrivalHistory {
    private var sequences = InlineArray<16, UInt64>(repeating: 0)
    private var counts = InlineArray<16, UInt32>(repeating: 0)
    private var used = 0
    private var last = 0
    /// Arrivals in packets up to `olderThrough`, no longer kept one by one.
    private var older: UInt64 = 0
    private var olderThrough: UInt64 = 0

    mutating func record(_ sequence: UInt64) {
        if used > 0 && sequences[last] == sequence {
            counts[last] &+= 1
            return
        }
        var k = 0
        while k < used {
            if sequences[k] == sequence {
                counts[k] &+= 1
                last = k
                return
            }
            k += 1
        }
        if used > 0 && older > 0 && sequence <= olderThrough {
            older &+= 1  // a late arrival from a packet already folded away
            return
        }
        if used < 16 {
            sequences[used] = sequence
            counts[used] = 1
            last = used
            used += 1
            return
        }
        // Fold the oldest packet (smallest sequence, not the first to arrive) away, so
        // that `older` only ever holds packets older than every entry kept.
        var oldest = 0
        k = 1
        while k < 16 {
            if sequences[k] < sequences[oldest] { oldest = k }
            k += 1
        }
        older &+= UInt64(counts[oldest])
        olderThrough = max(olderThrough, sequences[oldest])
        sequences[oldest] = sequence
        counts[oldest] = 1
        last = oldest
    }

    /// Arrivals in packets up to `sequence`. Exact while the report is no older than the
    /// packets folded away; otherwise it counts them too (a slight over-estimate that the
    /// next report, which comes with the next allocations, corrects).
    func arrivals(through sequence: UInt64) -> UInt64 {
        var total = older
        var k = 0
        while k < used {
            if sequences[k] <= sequence { total &+= UInt64(counts[k]) }
            k += 1
        }
        return total
    }
}

/// One entry of a sent packet: a request or give-back counter for a flow.
struct EndpointRecordEntry {
    var flow: Int32
    var isGiveBack: Bool
    var value: UInt64
}

/// The endpoint's bookkeeping; the connection calls it back while handling events.
struct EndpointBook: FCPConnectionDelegate {
    static let helloFlag: UInt8 = 1
    static let entriesPerPacket = 10

    let configuration: EndpointSessionConfiguration
    var table: DestinationTable
    var flows: [EndpointFlow]
    /// first: retransmit (NACKed counters), second: new requests.
    var queues: IndexQueues
    var records: PacketRecords<EndpointRecordEntry>
    var schedule = AllocationSchedule()
    var negotiation: EndpointNegotiation
    var helloFailures = 0
    var helloInFlight = false
    /// A packet carrying HELLO was acknowledged: the arbiter parsed it, so it speaks the
    /// extensions and falling back to reference FCP would be wrong.
    var helloAcknowledged = false
    /// A packet from the arbiter was accepted since the last reset. Only then does an
    /// unanswered HELLO say something about the arbiter (a reference one acts on the demand
    /// and answers, but never acknowledges HELLO); while nothing comes back at all, the
    /// arbiter is unreachable or the network is dropping everything, and falling back
    /// for good would be a wrong guess made from silence.
    var arbiterHeard = false
    /// Authentication was negotiated at some point: from then on it is required.
    var authenticationNegotiated = false
    /// Highest arbiter epoch known (from EPOCH payloads and WELCOMEs).
    var highestEpoch: UInt64 = 0
    var statistics = EndpointSessionStatistics()
    var arrivalLeads = AllocationLeadHistogram()
    var now: UInt64 = 0
    /// The arbiter packet whose payloads are being read.
    var packetSequence: UInt64 = 0
    var transmitRequested = false
    var negotiationChanged = false
    /// Paces what this session sends; unlimited until the arbiter announces a budget.
    var pacer = ControlPacer()
    /// Demand towards an idle destination waits to be sent (see ``addDemand(to:slots:)``).
    var freshDemand = false

    /// Whether `welcome` repeats the one this session is established with (an arbiter
    /// repeats WELCOME until it is acknowledged): the pace it set stays.
    func welcomedBefore(_ welcome: FCPWelcome) -> Bool {
        if case .established(let current) = negotiation { return current == welcome }
        return false
    }
    /// When to ask the arbiter whether it still knows what it owes (see
    /// ``probeIfOwed(now:)``); .max: not armed.
    var probeDeadline: UInt64 = .max
    /// Probes sent since the arbiter was last heard: each waits twice as long.
    var probesUnanswered = 0

    /// How long an endpoint that is owed allocations waits for word from the arbiter
    /// before it sends a packet anyway: ten send timeouts.
    var probeInterval: UInt64 { configuration.sendTimeoutNanoseconds &* 10 }

    /// Arms the probe from `now` (after a packet in either direction).
    mutating func armProbe(now: UInt64) {
        probeDeadline = now &+ probeInterval << UInt64(min(probesUnanswered, 6))
    }

    /// The probe came due: if any destination is owed allocations the arbiter has not sent
    /// (requested beyond what arrived or was declared lost) and nothing was heard for the
    /// interval, a packet goes out. An arbiter that restarted has forgotten the demand it
    /// had acknowledged, and an endpoint with nothing new to say would otherwise wait for
    /// those slots for ever; the packet makes the new arbiter reset the connection, and
    /// the reset sends the demand again.
    mutating func probeIfOwed(now: UInt64) {
        guard now >= probeDeadline else { return }
        probeDeadline = .max
        var owed = false
        for i in 0..<table.count where flows[i].requested > flows[i].received &+ flows[i].withdrawn {
            owed = true
            break
        }
        guard owed else { return }
        statistics.probes &+= 1
        probesUnanswered += 1
        transmitRequested = true
        freshDemand = true  // the packet that finds out must not wait behind acknowledgements
        armProbe(now: now)
    }
    /// The revision of the budget applied; nil: none since the last reset.
    var budgetRevision: UInt32?
    /// When the newest packet received (the one the next packet acknowledges) arrived.
    var newestArrival: UInt64 = 0
    /// Round trips of packets the arbiter had to answer (with news): what the send timeout
    /// follows. A packet of acknowledgements alone is answered whenever the arbiter next
    /// has something to say, which is no measure of the path.
    var roundTrip = SmoothedRoundTrip()
    /// The sample the connection just measured, until the acknowledgement it belongs to
    /// says whether the packet carried news.
    var roundTripSample: UInt64 = 0
    /// Slot clock announced by the arbiter: origin (ns) and length (ps).
    var clockOrigin: UInt64 = 0
    var clockPicoseconds: UInt64 = 0
    /// Flows with a loss check pending.
    var lossChecks: [Int32]
    var lossCheckCount = 0
    var earliestLossCheck: UInt64 = .max

    init(configuration: EndpointSessionConfiguration) {
        self.configuration = configuration
        table = DestinationTable(capacity: max(1, configuration.maxDestinations))
        flows = [EndpointFlow](repeating: EndpointFlow(), count: table.storage)
        queues = IndexQueues(capacity: table.storage)
        records = PacketRecords(
            entriesPerPacket: 2 * Self.entriesPerPacket,
            filler: EndpointRecordEntry(flow: 0, isGiveBack: false, value: 0))
        negotiation = configuration.mode == .reference ? .reference : .offering
        lossChecks = [Int32](repeating: 0, count: table.storage)
    }

    /// Keeps the per-destination arrays as large as the table's storage after it grew.
    mutating func followTableGrowth() {
        flows.extend(to: table.storage, with: EndpointFlow())
        queues.grow(to: table.storage)
        lossChecks.extend(to: table.storage, with: 0)
    }

    var granted: FCPCapabilities { negotiation.granted }
    var usesClock: Bool { granted.contains(.announcedClock) && clockPicoseconds > 0 }

    // MARK: Time

    /// The slot in progress at `now`, in the numbering allocations arrive in.
    func currentSlot(_ now: UInt64) -> UInt64 {
        if usesClock {
            guard now > clockOrigin else { return 0 }
            let (high, low) = (now - clockOrigin).multipliedFullWidth(by: 1000)
            // The quotient would not fit 64 bits: so far in the future that nothing fits.
            guard high < clockPicoseconds else { return .max }
            return clockPicoseconds.dividingFullWidth((high, low)).quotient
        }
        return ReferenceTimeslot.slot(atNanoseconds: now)
    }

    /// When `slot` starts on this endpoint's clock; `referenceNumbering` says the slot is
    /// a reference one (`(ns·419)>>19`) rather than one of the announced clock.
    func startTime(of slot: UInt64, current: UInt64, now: UInt64, referenceNumbering: Bool) -> UInt64 {
        if !referenceNumbering {
            let (high, low) = slot.multipliedFullWidth(by: clockPicoseconds)
            if high >= 1000 { return .max }
            return clockOrigin &+ UInt64(1000).dividingFullWidth((high, low)).quotient
        }
        // Reference slots are (ns·419)>>19 of a wrapping product: only differences are
        // meaningful, at 2^19/419 ≈ 1251.3 ns per slot.
        let delta = Int64(bitPattern: slot &- current)
        let nanoseconds = delta * (1 << 19) / 419
        return UInt64(bitPattern: Int64(bitPattern: now) &+ nanoseconds)
    }

    // MARK: Demand

    mutating func enqueueIfNeeded(_ i: Int) {
        guard queues.queue(of: i) == .none else { return }
        if needsSending(i) {
            queues.append(i, to: .second)
            transmitRequested = true
        }
    }

    /// The cumulative count to send: never less than already requested (counts only grow),
    /// and in reference mode within the window a 16-bit count can be reconstructed in.
    func requestValue(_ f: EndpointFlow) -> UInt64 {
        var target = f.received &+ f.need &+ f.withdrawn
        if !granted.contains(.wideCounters) { target = min(target, f.received &+ configuration.referenceRequestWindow) }
        return max(target, f.requested)
    }

    func needsSending(_ i: Int) -> Bool {
        let f = flows[i]
        if requestValue(f) > f.acked { return true }
        return granted.contains(.giveBack) && f.giveBackRequested > f.giveBackAcked
    }

    mutating func addDemand(to node: NodeID, slots: UInt64) -> Bool {
        if configuration.mode == .reference && node.rawValue > NodeID.referenceLimit {
            statistics.unencodableDestinations &+= 1
            return false
        }
        guard let (i, inserted) = table.findOrInsert(node) else {
            statistics.destinationTableFull &+= 1
            return false
        }
        if inserted {
            followTableGrowth()
            // The slot may hold a flow removed at the last reset.
            flows[i] = EndpointFlow()
        }
        // Demand towards a destination the arbiter owes nothing: a flow starting, whose
        // first slot waits for this packet. More for a destination being served can wait
        // its turn. (Measured, 128 simulated hosts at 1 562 packets/s each: counting demand
        // for a destination about to run dry as news too emptied the bucket, and flows
        // that start waited longer, small flows' slowdown p99 12 → 75.)
        if flows[i].requested <= flows[i].received &+ flows[i].withdrawn { freshDemand = true }
        flows[i].need &+= slots
        enqueueIfNeeded(i)
        return true
    }

    /// An accepted allocation that will not be sent (expired, or dropped by a reset): the
    /// slot it stood for is needed again.
    mutating func unuse(_ i: Int) {
        flows[i].need &+= 1
        enqueueIfNeeded(i)
    }

    // MARK: Allocations

    mutating func allocated(slot: UInt64, node: NodeID, path: PathID, current: UInt64, referenceNumbering: Bool) {
        guard let i = table.index(of: node) else {
            statistics.allocationsUnwanted &+= 1
            statistics.allocationsToUnknownDestinations &+= 1
            return
        }
        // Counted whatever happens next: the arbiter spent one unit of our request on it,
        // so an unusable one raises the request by one. Unless it was already counted as
        // lost: then it is a bonus, which the request made for its replacement absorbs.
        if flows[i].declaredThrough != 0 && packetSequence <= flows[i].declaredThrough {
            statistics.allocationsArrivedAfterLoss &+= 1
        } else {
            flows[i].arrived &+= 1
            flows[i].history.record(packetSequence)
        }
        defer { enqueueIfNeeded(i) }
        arrivalLeads.record(slot: slot, current: current)
        switch configuration.allocationWindow.classify(slot: slot, currentSlot: current) {
        case .tooLate:
            statistics.allocationsTooLate &+= 1
            return
        case .premature:
            statistics.allocationsPremature &+= 1
            return
        case .inWindow:
            break
        }
        guard flows[i].need > 0 else {
            statistics.allocationsUnwanted &+= 1
            return
        }
        expire(now: now)
        guard schedule.isFree(slot: slot) else {
            statistics.allocationsSlotTaken &+= 1
            return
        }
        flows[i].need &-= 1
        let start = startTime(of: slot, current: current, now: now, referenceNumbering: referenceNumbering)
        // Usable until `missThreshold` slots after it started.
        let nextStart = startTime(of: slot &+ 1, current: current, now: now, referenceNumbering: referenceNumbering)
        let slotLength = nextStart > start ? nextStart - start : 1
        let deadline = start &+ slotLength &* (configuration.allocationWindow.missThreshold &+ 1)
        schedule.insert(
            EndpointAllocation(
                slot: slot, startNanoseconds: start, destination: node, path: path, admittedNanoseconds: now),
            deadline: deadline)
        statistics.allocationsAdmitted &+= 1
    }

    /// Drops scheduled allocations more than the miss threshold past their slot; their
    /// slots are requested again.
    mutating func expire(now: UInt64) {
        while let e = schedule.popExpired(before: now) {
            statistics.allocationsExpired &+= 1
            if let i = table.index(of: e.destination) { unuse(i) }
        }
    }

    /// The arbiter's cumulative count of allocations to `node` reached `reported`:
    /// anything it allocated that never arrived was lost and is requested again.
    mutating func report(node: NodeID, allocated reported: UInt64, withdrawn: UInt64?) {
        guard let i = table.index(of: node) else {
            statistics.reportsForUnknownDestinations &+= 1
            return
        }
        if let withdrawn, withdrawn > flows[i].withdrawn {
            statistics.slotsWithdrawn &+= withdrawn - flows[i].withdrawn
            flows[i].withdrawn = withdrawn
        }
        if reported &+ flows[i].withdrawn > flows[i].requested { statistics.reportsAboveRequest &+= 1 }
        if reported > flows[i].reported { flows[i].reported = reported }
        // The report covers the allocations in this arbiter packet and every one before it.
        let sequence = packetSequence
        if sequence >= flows[i].latestReportSequence {
            flows[i].latestReport = reported
            flows[i].latestReportSequence = sequence
            flows[i].latestReportTime = now
        }
        if sequence >= flows[i].declaredThrough {
            let accounted = flows[i].accounted(through: sequence)
            if accounted > reported && reported >= flows[i].lostDeclared {
                // More counted than the arbiter sent (a reference arbiter reports what it
                // allocated, not what it sent, so the other way round is the normal case):
                // an over-count would ask for a slot too many every round trip, so the
                // report wins.
                statistics.overcountsCorrected &+= 1
                let excess = min(accounted - reported, flows[i].lostDeclared)
                flows[i].lostDeclared -= excess
            } else if reported > accounted && flows[i].lossCheckDeadline == 0 {
                scheduleLossCheck(i, value: reported, sequence: sequence, at: now)
            }
        }
        enqueueIfNeeded(i)
    }

    /// Arranges for the report `value` from arbiter packet `sequence`, received at `time`,
    /// to be compared with what has arrived once the grace period after `time` is over.
    mutating func scheduleLossCheck(_ i: Int, value: UInt64, sequence: UInt64, at time: UInt64) {
        let deadline = max(1, time &+ configuration.lostAllocationGraceNanoseconds)
        flows[i].lossCheckDeadline = deadline
        flows[i].lossCheckValue = value
        flows[i].lossCheckSequence = sequence
        lossChecks[lossCheckCount] = Int32(i)
        lossCheckCount += 1
        earliestLossCheck = min(earliestLossCheck, deadline)
    }

    /// Declares lost what was reported but has still not arrived after the grace period:
    /// counting it as received raises the request, which asks for replacements.
    mutating func runLossChecks(now: UInt64) {
        guard now >= earliestLossCheck else { return }
        earliestLossCheck = .max
        var k = 0
        while k < lossCheckCount {
            let i = Int(lossChecks[k])
            let deadline = flows[i].lossCheckDeadline
            guard deadline <= now else {
                earliestLossCheck = min(earliestLossCheck, deadline)
                k += 1
                continue
            }
            lossCheckCount -= 1
            lossChecks[k] = lossChecks[lossCheckCount]
            flows[i].lossCheckDeadline = 0
            let sequence = flows[i].lossCheckSequence
            let accounted = flows[i].accounted(through: sequence)
            if sequence >= flows[i].declaredThrough && flows[i].lossCheckValue > accounted {
                let lost = flows[i].lossCheckValue - accounted
                statistics.allocationsLost &+= lost
                flows[i].lostDeclared &+= lost
                flows[i].declaredThrough = sequence
                enqueueIfNeeded(i)
            }
            // A newer report may show more still missing: check it once it is old enough.
            let f = flows[i]
            if f.latestReportSequence > sequence && f.latestReport > f.accounted(through: f.latestReportSequence) {
                scheduleLossCheck(i, value: f.latestReport, sequence: f.latestReportSequence, at: f.latestReportTime)
                earliestLossCheck = min(earliestLossCheck, flows[i].lossCheckDeadline)
            }
        }
    }

    // MARK: FCPConnectionDelegate

    mutating func fcpDidReset() {
        // Accepted but unsent allocations may be handed to someone else by a restarted
        // arbiter: give them up and count their slots as needed again.
        while let e = schedule.earliest() {
            schedule.remove(slot: e.slot)
            statistics.allocationsDroppedByReset &+= 1
            if let i = table.index(of: e.destination) { flows[i].need &+= 1 }
        }
        // Rebase: counters restart from zero on both sides; keep only what is still needed.
        queues.removeAll()
        table.compact(keeping: { flows[$0].need > 0 }) { from, to in flows[to] = flows[from] }
        for i in 0..<table.count {
            let need = flows[i].need
            flows[i] = EndpointFlow()
            flows[i].need = need
            queues.append(i, to: .second)
        }
        records.removeAll()
        lossCheckCount = 0
        earliestLossCheck = .max
        helloInFlight = false
        helloAcknowledged = false
        arbiterHeard = false
        helloFailures = 0
        // A restarted arbiter numbers its budgets afresh; the pace stays until it speaks
        // (its WELCOME then resets it).
        budgetRevision = nil
        newestArrival = 0
        switch negotiation {
        case .established, .refused, .offering: negotiation = .offering
        case .reference, .fellBack: break
        }
        negotiationChanged = true
        transmitRequested = true
    }

    mutating func fcpMeasuredRoundTrip(nanoseconds: UInt64) { roundTripSample = nanoseconds }

    mutating func fcpAcknowledged(sequence: UInt64) {
        let sample = roundTripSample
        roundTripSample = 0
        var entries = 0
        if sample != 0 {
            records.forEach(sequence) { _ in entries += 1 }
            if entries > 0 || records.flags(sequence).map({ $0 & Self.helloFlag != 0 }) == true {
                roundTrip.record(nanoseconds: sample)
            }
        }
        records.forEach(sequence) { e in
            let i = Int(e.flow)
            guard i < table.count else { return }
            if e.isGiveBack {
                if e.value > flows[i].giveBackAcked { flows[i].giveBackAcked = e.value }
            } else if e.value > flows[i].acked {
                flows[i].acked = e.value
            }
        }
        if let f = records.flags(sequence), f & Self.helloFlag != 0 {
            helloInFlight = false
            helloAcknowledged = true
        }
        pacer.noteAcknowledged()
    }

    mutating func fcpNegativelyAcknowledged(sequence: UInt64) {
        var carriedNews = false
        records.forEach(sequence) { e in
            let i = Int(e.flow)
            guard i < table.count else { return }
            let stillNeeded = e.isGiveBack ? e.value > flows[i].giveBackAcked : e.value > flows[i].acked
            if stillNeeded { carriedNews = true }
            if stillNeeded && queues.queue(of: i) != .first {
                queues.append(i, to: .first)
                transmitRequested = true
            }
        }
        let hello = records.flags(sequence).map { $0 & Self.helloFlag != 0 } ?? false
        // Resending into a queue that is already full only makes it longer: wait, doubling
        // the wait while losses go on. Only a packet the arbiter had to answer tells of a
        // loss: one with acknowledgements alone is answered only when the arbiter has
        // something to say.
        if carriedNews || hello {
            let level = pacer.backoffLevel
            pacer.noteLoss(now: now, base: configuration.sendTimeoutNanoseconds / 4)
            if pacer.backoffLevel != level { statistics.backoffs &+= 1 }
        }
        if let f = records.flags(sequence), f & Self.helloFlag != 0, negotiation.isOffering {
            helloInFlight = false
            if !helloAcknowledged && arbiterHeard { helloFailures += 1 }
            if case .extended(let fallback) = configuration.mode, fallback, configuration.authenticator == nil,
                !helloAcknowledged,
                helloFailures >= configuration.helloFailuresBeforeFallback
            {
                negotiation = .fellBack
                statistics.fallbacks &+= 1
                negotiationChanged = true
                // A reference arbiter sets no pace.
                pacer = ControlPacer()
            }
            transmitRequested = true
        }
    }

    mutating func fcpTransmissionRequested() { transmitRequested = true }

    mutating func fcpWillDeliverPayloads(of packet: FCPPacketInfo) {
        packetSequence = packet.sequence
        highestEpoch = max(highestEpoch, packet.highestEpoch)
    }

    mutating func fcpReceivedAlloc(_ payload: FCPAllocPayloadView) {
        // Every ALLOC is acknowledged promptly, so the arbiter learns it arrived.
        transmitRequested = true
        statistics.allocationPayloads &+= 1
        // Reference ALLOCs always count in reference slots, whatever clock was announced.
        let current = ReferenceTimeslot.slot(atNanoseconds: now)
        let base = ReferenceTimeslot.widenAllocBase(payload.baseTimeslot, currentSlot: current)
        var walker = AllocDescriptorWalker(
            baseSlot: base, destinationCount: payload.destinationCount, descriptors: payload.descriptors)
        while let step = walker.next() {
            switch step {
            case .skip: continue
            case .illegalIndex:
                statistics.illegalDescriptors &+= 1
            case .allocation(_, let slot, let index):
                let raw = payload.destination(index - 1)
                let (node, path) =
                    configuration.stripsReferencePathBits
                    ? ReferenceDestination.unpack(raw) : (NodeID(UInt32(raw)), PathID.none)
                allocated(slot: slot, node: node, path: path, current: current, referenceNumbering: true)
            }
        }
    }

    mutating func fcpReceivedRequests(_ payload: FCPRequestsPayloadView) {
        // From the arbiter, an A-REQ is a report of cumulative allocations per destination.
        // Acknowledge it, or the arbiter times out and sends the report again.
        transmitRequested = true
        for k in 0..<payload.count {
            let (destination, count) = payload.entry(k)
            let node = NodeID(UInt32(destination & 0x3FFF))
            guard let i = table.index(of: node) else {
                statistics.reportsForUnknownDestinations &+= 1
                continue
            }
            let full = FCPSequence.widen16(count, from: flows[i].reported &- 0x8000)
            report(node: node, allocated: full, withdrawn: nil)
        }
    }

    mutating func fcpReceivedExtension(_ payload: FCPExtensionPayloadView) {
        switch FCPPayloadType(rawValue: payload.type) {
        case .epoch:
            return  // checked by the connection before anything else; needs no answer
        default:
            transmitRequested = true
        }
        switch FCPPayloadType(rawValue: payload.type) {
        case .welcome:
            guard let welcome = FCPWelcome(body: payload.body) else {
                statistics.ignoredExtensions &+= 1
                return
            }
            receivedWelcome(welcome)
        case .wideAlloc:
            transmitRequested = true
            statistics.allocationPayloads &+= 1
            guard usesClock else {
                statistics.ignoredExtensions &+= 1
                return
            }
            let current = currentSlot(now)
            let n = FCPListPayload.entryCount(
                payload.body, entryLength: FCPListPayload.wideAllocEntryLength,
                headerLength: FCPListPayload.wideAllocHeaderLength)
            for k in 0..<n {
                let e = FCPListPayload.allocEntry(payload.body, k)
                allocated(slot: e.slot, node: e.destination, path: e.path, current: current, referenceNumbering: false)
            }
        case .wideReport:
            let n = FCPListPayload.entryCount(payload.body, entryLength: FCPListPayload.wideReportEntryLength)
            for k in 0..<n {
                let e = FCPListPayload.reportEntry(payload.body, k)
                report(node: e.destination, allocated: e.allocated, withdrawn: e.withdrawn)
            }
        case .budget:
            guard granted.contains(.controlBudget), let budget = FCPControlBudget(body: payload.body) else {
                statistics.ignoredExtensions &+= 1
                return
            }
            // Revisions only grow at one arbiter; a late copy of an older one is stale.
            if let applied = budgetRevision, budget.revision <= applied { return }
            budgetRevision = budget.revision
            pacer.setRate(packetsPerSecond: UInt64(budget.packetsPerSecond), burst: UInt64(budget.burst), now: now)
            statistics.budgetsApplied &+= 1
        default:
            statistics.ignoredExtensions &+= 1
        }
    }

    /// Shortest slot length (ps) an arbiter may announce: anything shorter is not a slot
    /// of any real link and would break the slot arithmetic.
    static let minimumTimeslotPicoseconds: UInt32 = 1_000

    mutating func receivedWelcome(_ welcome: FCPWelcome) {
        // A WELCOME is an answer to our HELLO, so it counts however the handshake stands:
        // a fallback (or a refusal) was only a guess about an arbiter that did answer.
        guard configuration.mode != .reference else {
            statistics.ignoredExtensions &+= 1
            return
        }
        guard welcome.epoch >= highestEpoch else {
            statistics.rejectedWelcomes &+= 1  // a deposed arbiter
            return
        }
        statistics.welcomesReceived &+= 1
        highestEpoch = welcome.epoch
        if let reason = welcome.refusal {
            negotiation = .refused(reason)
            statistics.refusals &+= 1
        } else {
            var accepted = welcome
            accepted.capabilities = welcome.capabilities.intersection(configuration.capabilities)
            if accepted.capabilities.contains(.announcedClock) {
                guard welcome.timeslotPicoseconds >= Self.minimumTimeslotPicoseconds else {
                    statistics.rejectedWelcomes &+= 1
                    return
                }
                clockOrigin = welcome.slotOrigin
                clockPicoseconds = UInt64(welcome.timeslotPicoseconds)
            }
            if accepted.capabilities.contains(.authentication) { authenticationNegotiated = true }
            // The pace is this arbiter's to set: none until its BUDGET (which follows the
            // WELCOME in the same packet when it has one). An old share kept would pace an
            // endpoint for ever under an arbiter without a budget.
            if !welcomedBefore(accepted) {
                pacer = ControlPacer()
                budgetRevision = nil
            }
            negotiation = .established(accepted)
            // Requests that could not be sent in the reference form (wide node ids) can now.
            for i in 0..<table.count { enqueueIfNeeded(i) }
        }
        helloInFlight = false
        negotiationChanged = true
    }
}

/// The endpoint side of FCP: the connection, the cumulative demand per destination and
/// its acknowledgement, lost-allocation recovery from the arbiter's reports, the
/// extension handshake, and the schedule of accepted allocations.
///
/// Sans-IO, and allocation-free once its destination table has grown to the destinations in
/// use. Drive it with ``receive(_:now:)``,
/// ``handleTimeout(now:)`` when ``timerDeadline`` passes, and ``send(now:into:)`` when
/// ``wantsToSend`` (at the pace the caller chooses); take allocations with
/// ``takeAllocation(dueBy:)`` as their slots come.
public struct EndpointSession {
    public private(set) var connection: FCPConnection
    var book: EndpointBook

    public init(configuration: EndpointSessionConfiguration, now: UInt64) {
        connection = FCPConnection(
            configuration: FCPConnectionConfiguration(
                side: .endpoint, resetWindowNanoseconds: configuration.resetWindowNanoseconds,
                sendTimeoutNanoseconds: configuration.sendTimeoutNanoseconds),
            resetTime: now)
        book = EndpointBook(configuration: configuration)
        connection.authenticator = configuration.authenticator
        connection.requireAuthentication = configuration.requireAuthentication
        applyNegotiation()
    }

    public var configuration: EndpointSessionConfiguration { book.configuration }
    public var negotiation: EndpointNegotiation { book.negotiation }
    public var statistics: EndpointSessionStatistics { book.statistics }
    /// How far ahead of their slots allocations for wanted destinations arrived.
    public var arrivalLeads: AllocationLeadHistogram { book.arrivalLeads }
    /// When ``handleTimeout(now:)`` should be called: a retransmission timeout, or the
    /// end of a grace period for allocations reported but not yet seen.
    public var timerDeadline: UInt64? {
        let check = min(book.earliestLossCheck, book.probeDeadline)
        let loss = check == .max ? nil : check
        switch (connection.timerDeadline, loss) {
        case (let a?, let b?): return min(a, b)
        case (let a?, nil): return a
        case (nil, let b): return b
        }
    }
    /// Whether there is something to send: requests, acknowledgements, HELLO. When it may
    /// leave is ``earliestSendTime(now:)``.
    public var wantsToSend: Bool { book.transmitRequested || carriesNews }

    /// Whether the next packet carries what the arbiter is waiting for: demand towards an
    /// idle destination (a flow starting), a resend of what timed out, or HELLO. More demand
    /// for destinations being served, give-backs and acknowledgements can wait a little.
    var carriesNews: Bool {
        book.freshDemand || book.queues.hasFirst
            || (book.negotiation.isOffering && !book.helloInFlight)
    }

    /// The earliest time at or after `now` the next packet may be sent: at once without a
    /// budget, otherwise within the share the arbiter announced (a packet without news
    /// leaves a token for the next one with news, so a starting flow rarely waits), and
    /// later while backing off after a loss.
    /// Packets sent earlier are counted (``EndpointSessionStatistics/packetsAboveBudget``).
    public func earliestSendTime(now: UInt64) -> UInt64 {
        book.pacer.earliestSend(now: now, carriesNews: carriesNews)
    }

    /// The pace the arbiter set, and the back-off.
    public var pacer: ControlPacer { book.pacer }
    /// Number of accepted allocations waiting for their slot.
    public var scheduledCount: Int { book.schedule.count }
    /// When the earliest accepted allocation's slot starts, if any: a pacer can sleep until
    /// then instead of polling ``takeAllocation(dueBy:)``.
    public var nextAllocationStart: UInt64? { book.schedule.earliest()?.startNanoseconds }

    /// The timeslot length the arbiter announced when the session was established, in
    /// picoseconds; nil until then, and for reference FCP (whose slot is fixed).
    public var announcedSlotPicoseconds: UInt64? { book.usesClock ? book.clockPicoseconds : nil }

    /// The slot in progress at `now` in the numbering the arbiter uses for us.
    public func currentSlot(now: UInt64) -> UInt64 { book.currentSlot(now) }

    /// Adds `slots` timeslots of demand towards `destination`. Returns false when the
    /// destination table is full (counted).
    @discardableResult
    public mutating func addDemand(to destination: NodeID, slots: UInt64) -> Bool {
        guard slots > 0 else { return true }
        return book.addDemand(to: destination, slots: slots)
    }

    /// Gives up to `slots` of the still-needed demand towards `destination` back.
    /// Returns how many slots the endpoint no longer needs. With the give-back extension
    /// the arbiter is asked to stop serving them and reports how many it withdrew;
    /// otherwise (and for any it had already allocated) the allocations still arrive and
    /// are counted as unwanted.
    @discardableResult
    public mutating func withdrawDemand(to destination: NodeID, slots: UInt64) -> UInt64 {
        guard let i = book.table.index(of: destination) else { return 0 }
        let k = min(slots, book.flows[i].need)
        guard k > 0 else { return 0 }
        book.flows[i].need -= k
        if book.granted.contains(.giveBack) {
            book.flows[i].giveBackRequested &+= k
            book.enqueueIfNeeded(i)
        }
        return k
    }

    /// The demand bookkeeping towards `destination`, if it has any.
    public func flow(to destination: NodeID) -> EndpointFlowSnapshot? {
        guard let i = book.table.index(of: destination) else { return nil }
        let f = book.flows[i]
        return EndpointFlowSnapshot(
            destination: destination, need: f.need, requested: f.requested, acknowledged: f.acked,
            received: f.received, arrived: f.arrived, reported: f.reported, withdrawn: f.withdrawn)
    }

    /// Every destination with bookkeeping since the last reset.
    public var flows: [EndpointFlowSnapshot] {
        (0..<book.table.count).compactMap { flow(to: book.table.nodes[$0]) }
    }

    /// Handles one received FCP packet.
    @discardableResult
    public mutating func receive(_ packet: UnsafeRawBufferPointer, now: UInt64) -> FCPReceiveResult {
        book.now = now
        book.highestEpoch = max(book.highestEpoch, connection.highestEpoch)
        let newest = connection.highestReceived
        let result = connection.receive(packet, now: now, delegate: &book)
        if connection.highestReceived != newest {
            book.newestArrival = now
            book.probesUnanswered = 0
            book.armProbe(now: now)
        }
        followRoundTrip()
        if result.headerAccepted || result.delivered { book.arbiterHeard = true }
        if book.negotiationChanged { applyNegotiation() }
        return result
    }

    /// ``timerDeadline`` passed.
    public mutating func handleTimeout(now: UInt64) {
        book.now = now
        if let deadline = connection.timerDeadline, deadline <= now {
            connection.handleTimeout(now: now, delegate: &book)
        }
        book.runLossChecks(now: now)
        book.probeIfOwed(now: now)
        if book.negotiationChanged { applyNegotiation() }
    }

    /// Starts a new reset epoch (e.g. after the agent lost track of its state).
    public mutating func forceReset(now: UInt64) {
        book.now = now
        connection.forceReset(now: now)
        book.fcpDidReset()
        applyNegotiation()
    }

    /// The earliest accepted allocation, whether its slot has begun or not (those past
    /// the miss threshold at `now` expire first): for a caller that records allocations
    /// rather than sending in them.
    public mutating func takeEarliestAllocation(now: UInt64) -> EndpointAllocation? {
        book.now = now
        book.expire(now: now)
        guard let e = book.schedule.earliest() else { return nil }
        book.schedule.remove(slot: e.slot)
        book.statistics.allocationsUsed &+= 1
        return e
    }

    /// The next allocation whose slot starts at or before `time`, earliest first; stale
    /// ones are dropped and re-requested on the way.
    public mutating func takeAllocation(dueBy time: UInt64) -> EndpointAllocation? {
        book.now = time
        book.expire(now: time)
        guard let e = book.schedule.earliest(), e.startNanoseconds <= time else {
            return nil
        }
        book.schedule.remove(slot: e.slot)
        book.statistics.allocationsUsed &+= 1
        return e
    }

    /// Keeps the send timeout above the measured round trip (never below the configured
    /// one): an arbiter that answers slowly under load would otherwise see every request
    /// twice, and the endpoint back off for losses that were not.
    private mutating func followRoundTrip() {
        guard book.roundTrip.smoothed > 0 else { return }
        let wanted = max(book.configuration.sendTimeoutNanoseconds, book.roundTrip.timeoutNanoseconds)
        let current = connection.configuration.sendTimeoutNanoseconds
        let change = wanted > current ? wanted - current : current - wanted
        guard change > current / 8 else { return }
        connection.setSendTimeout(nanoseconds: wanted)
    }

    /// The send timeout in use (ns): the configured one, or the round trip's if longer.
    public var sendTimeoutNanoseconds: UInt64 { connection.configuration.sendTimeoutNanoseconds }

    private mutating func applyNegotiation() {
        book.negotiationChanged = false
        let granted = book.negotiation.granted
        connection.extensionsEnabled = book.configuration.mode != .reference
        connection.requireEpoch = granted.contains(.epochFencing)
        connection.noteEpoch(book.highestEpoch)
        // Once negotiated, authentication stays required: a later packet without a trailer
        // is a forgery, not a peer that forgot.
        connection.requireAuthentication = book.configuration.requireAuthentication || book.authenticationNegotiated
    }

    /// Packets are signed whenever a key is configured; a padding byte before the trailer
    /// keeps a reference arbiter from tripping over it.
    private var signs: Bool { book.configuration.authenticator != nil }

    /// Builds the next packet into `buffer` (which should hold at least
    /// ``EndpointSessionConfiguration/effectiveMaxPacketLength`` bytes) and commits it.
    /// Returns the packet's length.
    public mutating func send(now: UInt64, into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, FCPEncodeError> {
        book.now = now
        connection.prepareToSend(delegate: &book)
        if book.negotiationChanged { applyNegotiation() }

        let granted = book.negotiation.granted
        let wide = granted.contains(.wideCounters)
        let giveBack = granted.contains(.giveBack)
        var requests = InlineArray<10, EndpointRecordEntry>(repeating: .init(flow: 0, isGiveBack: false, value: 0))
        var giveBacks = InlineArray<10, EndpointRecordEntry>(repeating: .init(flow: 0, isGiveBack: true, value: 0))
        var requestCount = 0
        var giveBackCount = 0
        var popped = 0
        while popped < EndpointBook.entriesPerPacket, let i = book.queues.popFirstThenSecond() {
            popped += 1
            let f = book.flows[i]
            let target = book.requestValue(f)
            if target > f.acked {
                if !wide && book.table.nodes[i].rawValue > NodeID.referenceLimit {
                    book.statistics.unencodableDestinations &+= 1
                } else {
                    requests[requestCount] = EndpointRecordEntry(flow: Int32(i), isGiveBack: false, value: target)
                    requestCount += 1
                    if target > f.requested { book.flows[i].requested = target }
                }
            }
            if giveBack && f.giveBackRequested > f.giveBackAcked {
                giveBacks[giveBackCount] = EndpointRecordEntry(
                    flow: Int32(i), isGiveBack: true, value: f.giveBackRequested)
                giveBackCount += 1
            }
        }
        let hello = book.negotiation.isOffering
        if now < book.pacer.earliestSend(now: now, carriesNews: true) { book.statistics.packetsAboveBudget &+= 1 }
        book.pacer.consume(now: now)
        let header = connection.commit(now: now, delegate: &book)
        book.records.begin(header.sequence, flags: hello ? EndpointBook.helloFlag : 0)
        for k in 0..<requestCount { book.records.append(header.sequence, requests[k]) }
        for k in 0..<giveBackCount { book.records.append(header.sequence, giveBacks[k]) }
        book.transmitRequested = false
        if book.queues.isEmpty { book.freshDemand = false }
        if requestCount > 0 && book.probeDeadline == .max { book.armProbe(now: now) }
        if hello {
            book.helloInFlight = true
            book.statistics.hellosSent &+= 1
        }
        book.statistics.requestEntriesSent &+= UInt64(requestCount)
        book.statistics.giveBackEntriesSent &+= UInt64(giveBackCount)

        var writer = FCPPacketWriter(buffer, maxLength: book.configuration.effectiveMaxPacketLength)
        let nodes = book.table.nodes
        do throws(FCPEncodeError) {
            try writer.writeHeader(
                sequence: header.sequence, ackSequence: header.ackSequence, ackVector: header.ackVector)
            if header.sendReset { try writer.writeReset(timestamp: header.resetTimestamp) }
            if requestCount > 0 {
                if wide {
                    try writer.writeExtension(
                        .wideRequests, bodyLength: requestCount * FCPListPayload.wideRequestEntryLength
                    ) { body in
                        for k in 0..<requestCount {
                            writeBE32(body, k * 12, nodes[Int(requests[k].flow)].rawValue)
                            writeBE64(body, k * 12 + 4, requests[k].value)
                        }
                    }
                } else {
                    try writer.writeRequests(count: requestCount) { k in
                        (
                            UInt16(truncatingIfNeeded: nodes[Int(requests[k].flow)].rawValue),
                            UInt16(truncatingIfNeeded: requests[k].value)
                        )
                    }
                }
            }
            if giveBackCount > 0 {
                try writer.writeExtension(.giveBack, bodyLength: giveBackCount * FCPListPayload.giveBackEntryLength) {
                    body in
                    for k in 0..<giveBackCount {
                        writeBE32(body, k * 12, nodes[Int(giveBacks[k].flow)].rawValue)
                        writeBE64(body, k * 12 + 4, giveBacks[k].value)
                    }
                }
            }
            // Extension payloads go after the reference ones: a reference arbiter acts on
            // the demand before it stops at the unknown type.
            if granted.contains(.controlBudget) && book.pacer.packetsPerSecond > 0 && now > book.newestArrival
                && book.newestArrival > 0
            {
                try FCPAckDelayPayload.write(now - book.newestArrival, to: &writer)
            }
            if hello {
                var offered = book.configuration.capabilities
                if book.configuration.authenticator == nil { offered.remove(.authentication) }
                try FCPHello(capabilities: offered, node: book.configuration.node, address: book.configuration.address)
                    .write(to: &writer)
            }
            try writer.pad(toMinimum: FCPWire.minimumPacketLength)
            return .success(
                try writer.finalize(
                    sequence: header.sequence, ackSequence: header.ackSequence,
                    authenticator: signs ? book.configuration.authenticator : nil))
        } catch {
            // The packet is committed; it will time out and its counters be resent.
            book.statistics.encodeFailures &+= 1
            return .failure(error)
        }
    }
}
