import FastpassProtocol

/// How an ``ArbiterCore`` is set up.
public struct ArbiterCoreConfiguration: Sendable {
    /// Template for every endpoint's session: epoch, capabilities, authentication, limits.
    /// Its timeslot length and origin are set from the topology and ``slotOrigin``.
    public var session = ArbiterSessionConfiguration()
    public var allocator = TimeslotAllocatorConfiguration()
    /// How spines are chosen.
    public var pathMethod: PathSelector.Method = .edgeColoring
    /// Start of slot 0 on the arbiter's clock, in nanoseconds.
    public var slotOrigin: UInt64 = 0
    /// How far ahead of the current slot batches are allocated, fixed; nil (the default)
    /// follows the measured send lead (see ``ArbiterCore/sendLeadSlots``), within the
    /// most that endpoints accept early (64 slots for the end of a batch). Allocator
    /// threads pace themselves by a fixed lead: the most allowed, when nil.
    public var lookaheadSlots: Int?
    /// How far ahead of its earliest slot a packet of allocations leaves, fixed; nil (the
    /// default) follows the endpoints' measured round trip (see
    /// ``ArbiterCore/sendLeadSlots``). At most the lookahead.
    public var sendLeadSlots: Int?
    /// Whether sessions' send timeout follows the endpoints' round trips (smoothed, plus
    /// four deviations, as TCP's), never below `session.sendTimeoutNanoseconds`. A fixed timeout shorter
    /// than the round trip makes every packet time out and be sent again, the load an
    /// overloaded arbiter can least afford (256 endpoints over loopback: all of them).
    public var adaptiveSendTimeout = true
    /// Allocations whose slot has passed by more than this when their session gets to send
    /// them are not sent but offered to the allocator again: an endpoint refuses them
    /// (the reference accepts 16 slots late).
    public var expireUnsentAfterSlots = 16
    /// Demand the allocator's pair table refused, kept to offer again (entries).
    public var retryCapacity = 65_536
    /// Run the allocator's stages and path selection on threads of their own (started by
    /// ``ArbiterCore/startAllocatorThreads(now:monotonicNow:)``), paced by the clock; nil
    /// runs them inline, on the thread that calls ``ArbiterCore/advance(now:)``. Its
    /// schedule and path method are set by the core.
    public var pipeline: PipelineConfiguration?
    /// The rack whose ToR the arbiter's own link hangs off. Every FCP packet between the
    /// arbiter and a host in another rack crosses that rack's ToR↔spine links, which the
    /// allocator books for data: the core then keeps slots free of inter-rack data on the
    /// rack for them (``ControlReservation``), sized from the FCP bytes it exchanges with
    /// other racks. nil: the arbiter does not share the fabric's uplinks (a control
    /// network of its own), nothing is kept.
    public var controlRack: Int?
    /// Bytes an FCP packet takes on the wire beyond its FCP bytes: IPv4 header (20) and
    /// Ethernet header, FCS, preamble and inter-frame gap (38).
    public var controlFramingBytes = 58
    /// FCP packets per second the arbiter takes from all its endpoints together: each
    /// endpoint's share is this over the endpoints it serves (rounded up to a power of two,
    /// so a fleet starting up changes the share a few times, not once per endpoint), told
    /// to endpoints that negotiate ``FCPCapabilities/controlBudget``. 0: no budget. The
    /// default is well inside one communication thread's measured rate on raw sockets
    /// (docs/operations.md, "Sizing the arbiter").
    public var controlPacketsPerSecond: UInt64 = 200_000
    /// Packets an endpoint may send back to back after a quiet spell; half of them are kept
    /// for flows starting (see ``ControlPacer``).
    public var controlBurst = 8
    /// The least share of one endpoint, however many there are (packets per second).
    public var minimumControlShare: UInt64 = 100
    /// Whether the capacity follows what the owner measures its thread can take
    /// (``ArbiterCore/noteMeasuredCapacity(receivedPerBusySecond:)``), never above
    /// ``controlPacketsPerSecond``.
    public var measuresControlCapacity = true
    /// The share of the thread's measured capacity the budget hands out: the rest is room
    /// for bursts, timers and allocation.
    public var controlTargetLoad = 0.7
    /// Above this share of the thread busy (as the owner measures it), the lookahead stays
    /// at its ceiling so that each packet to an endpoint carries several batches (see
    /// ``ArbiterCore/noteCommunicationLoad(busyFraction:)``); below two thirds of it, the
    /// lookahead follows the round trips again, for the shortest wait. 1 or more: never.
    public var packingLoad = 0.5

    public init() {}

    /// Why the configuration cannot work with `topology`, naming the field; nil when it can.
    public func problem(topology: Topology) -> String? {
        if let p = session.problem { return "session.\(p)" }
        if let p = allocator.problem(hosts: topology.hostCount) { return p }
        let ceiling = Self.maximumLookahead(batchSize: allocator.batchSize, topology: topology)
        if ceiling < 0 {
            return
                "allocator.batchSize: a batch of \(allocator.batchSize) slots does not fit the 64 slots endpoints accept early"
        }
        if let lookaheadSlots {
            if lookaheadSlots < 0 || lookaheadSlots + allocator.batchSize > 64 {
                return "lookaheadSlots: a batch of \(allocator.batchSize) allocated \(lookaheadSlots) slots ahead "
                    + "ends more than 64 slots ahead, which endpoints refuse"
            }
            // Reference endpoints count 64 of their slots of 1251.284 ns.
            let aheadNanoseconds = Double(lookaheadSlots + allocator.batchSize) * topology.timeslotNanoseconds
            if lookaheadSlots > ceiling {
                return
                    "lookaheadSlots: a batch ends \(Int(aheadNanoseconds)) ns ahead, more than the 64 reference slots "
                    + "reference endpoints accept early"
            }
        }
        if expireUnsentAfterSlots < 0 { return "expireUnsentAfterSlots: must not be negative" }
        if let sendLeadSlots, sendLeadSlots < 0 || sendLeadSlots > (lookaheadSlots ?? ceiling) {
            return "sendLeadSlots: must be in 0...\(lookaheadSlots ?? ceiling) (the lookahead)"
        }
        if retryCapacity < 1 { return "retryCapacity: must be at least 1" }
        if controlPacketsPerSecond > UInt64(UInt32.max) {
            return "controlPacketsPerSecond: at most \(UInt32.max) (got \(controlPacketsPerSecond))"
        }
        if controlBurst < 1 || controlBurst > 1000 { return "controlBurst: must be in 1...1000 (got \(controlBurst))" }
        if !(packingLoad >= 0) { return "packingLoad: must not be negative (got \(packingLoad))" }
        if !(controlTargetLoad > 0 && controlTargetLoad <= 1) {
            return "controlTargetLoad: must be in (0, 1] (got \(controlTargetLoad))"
        }
        if minimumControlShare < 1 || minimumControlShare > UInt64(UInt32.max) {
            return "minimumControlShare: must be in 1...\(UInt32.max) (got \(minimumControlShare))"
        }
        if let r = controlRack, r < 0 || r >= topology.rackCount {
            return "controlRack: must be in 0..<\(topology.rackCount) (got \(r))"
        }
        if controlFramingBytes < 0 || controlFramingBytes > 1000 {
            return "controlFramingBytes: must be in 0...1000 (got \(controlFramingBytes))"
        }
        if let pipeline {
            if let p = pipeline.problem { return p }
            // A stage starts a batch lookahead ÷ batch size whole batches ahead.
            if (lookaheadSlots ?? ceiling) < allocator.batchSize {
                return "lookaheadSlots: with allocator threads, at least one batch (\(allocator.batchSize) slots)"
            }
            // The pipeline passes unroutable allocations back in 16-bit host fields.
            if topology.hostCount > 65_536 { return "pipeline: at most 65 536 hosts (got \(topology.hostCount))" }
        }
        return nil
    }

    /// The most slots ahead a batch of `batchSize` may be allocated: its last slot no more
    /// than 64 slots ahead, in reference slots where reference endpoints are served.
    /// Negative when even a batch allocated now would end too far ahead.
    public static func maximumLookahead(batchSize: Int, topology: Topology) -> Int {
        var ceiling = 64 - batchSize
        if topology.configuration.referenceEndpoints {
            let window = 64 * Topology.referenceTimeslotNanoseconds
            while ceiling >= 0 && Double(ceiling + batchSize) * topology.timeslotNanoseconds > window { ceiling -= 1 }
        }
        return ceiling
    }
}
