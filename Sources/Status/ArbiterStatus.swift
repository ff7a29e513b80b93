/// The arbiter's `GET /status`: its clock, its communication thread's load and every
/// counter, grouped as the daemon keeps them.
///
/// The daemon encodes it and fastpassctl and the benchmarks decode it, so a key one side
/// renames is a decoding error on the other, not a silent 0.
public struct ArbiterStatus: Sendable, Hashable, Codable {
    /// The address FCP is served on.
    public var listen: String
    public var startedAtNanoseconds: UInt64
    public var uptimeSeconds: Double
    public var currentSlot: UInt64
    public var timeslotNanoseconds: Double
    /// Hosts in the topology.
    public var hosts: Int
    public var endpointsConnected: Int
    /// Rounds of the communication thread's loop.
    public var loops: UInt64
    /// Time the communication thread spent in rounds that did something, ns, and the part
    /// of it inside the backend's receive and send calls.
    public var busyNanoseconds: UInt64
    public var ioNanoseconds: UInt64
    /// `core.packets_from_unknown_hosts` again, under the name operators first knew it by.
    public var packetsFromUnknownSources: UInt64
    public var core: ArbiterCoreCounters
    public var allocator: AllocatorCounters
    public var io: PacketIOCounters
    /// Summed over the endpoints.
    public var fcp: FCPCounters
    /// Summed over the endpoints.
    public var sessions: ArbiterSessionCounters
    public var sendRule: SendRule
    public var slotLateness: SlotLateness
    public var controlBudget: ControlBudget

    /// The packets per second the arbiter takes from its endpoints, and each one's share
    /// (all 0 without a budget).
    public struct ControlBudget: Sendable, Hashable, Codable {
        /// `control_budget.packets_per_second`.
        public var configuredPacketsPerSecond: UInt64
        /// What the shares are computed from: the configured figure, or less when the
        /// communication thread measured that it takes less (at its target load).
        public var capacityPacketsPerSecond: UInt64
        /// Each endpoint's share now, and its burst.
        public var sharePacketsPerSecond: UInt64
        public var burst: Int
        /// Increases with every change of the share.
        public var revision: UInt64

        public init(
            configuredPacketsPerSecond: UInt64, capacityPacketsPerSecond: UInt64, sharePacketsPerSecond: UInt64,
            burst: Int, revision: UInt64
        ) {
            self.configuredPacketsPerSecond = configuredPacketsPerSecond
            self.capacityPacketsPerSecond = capacityPacketsPerSecond
            self.sharePacketsPerSecond = sharePacketsPerSecond
            self.burst = burst
            self.revision = revision
        }

        enum CodingKeys: String, CodingKey {
            case configuredPacketsPerSecond = "configured_packets_per_second"
            case capacityPacketsPerSecond = "capacity_packets_per_second"
            case sharePacketsPerSecond = "share_packets_per_second"
            case burst, revision
        }
    }

    /// The send rule as it stands, and how far ahead of their earliest slot packets of
    /// allocations actually left.
    public struct SendRule: Sendable, Hashable, Codable {
        public var sendLeadSlots: Int
        public var lookaheadSlots: Int
        /// The endpoints' round-trip 99th percentile the rule follows (0 before measured).
        public var roundTripP99Seconds: Double
        /// Quantiles of the earliest slot's lead of each packet of allocations as it left,
        /// in slots: below the send lead only when the arbiter itself was late.
        public var leadAtSendP1: Int
        public var leadAtSendP10: Int
        public var leadAtSendP50: Int
        public var leadAtSendP90: Int
        public var packetsLateAtSend: UInt64

        public init(
            sendLeadSlots: Int, lookaheadSlots: Int, roundTripP99Seconds: Double, leadAtSendP1: Int,
            leadAtSendP10: Int, leadAtSendP50: Int, leadAtSendP90: Int, packetsLateAtSend: UInt64
        ) {
            self.sendLeadSlots = sendLeadSlots
            self.lookaheadSlots = lookaheadSlots
            self.roundTripP99Seconds = roundTripP99Seconds
            self.leadAtSendP1 = leadAtSendP1
            self.leadAtSendP10 = leadAtSendP10
            self.leadAtSendP50 = leadAtSendP50
            self.leadAtSendP90 = leadAtSendP90
            self.packetsLateAtSend = packetsLateAtSend
        }

        enum CodingKeys: String, CodingKey {
            case sendLeadSlots = "send_lead_slots"
            case lookaheadSlots = "lookahead_slots"
            case roundTripP99Seconds = "round_trip_p99_seconds"
            case leadAtSendP1 = "lead_at_send_p1"
            case leadAtSendP10 = "lead_at_send_p10"
            case leadAtSendP50 = "lead_at_send_p50"
            case leadAtSendP90 = "lead_at_send_p90"
            case packetsLateAtSend = "packets_late_at_send"
        }
    }

    /// How late the communication thread handled due batches and timers: quantiles as the
    /// upper bound of their power-of-two bucket, ns.
    public struct SlotLateness: Sendable, Hashable, Codable {
        public var p50: UInt64
        public var p99: UInt64
        public var p999: UInt64
        public var samples: UInt64

        public init(p50: UInt64, p99: UInt64, p999: UInt64, samples: UInt64) {
            (self.p50, self.p99, self.p999, self.samples) = (p50, p99, p999, samples)
        }
    }

    public init(
        listen: String, startedAtNanoseconds: UInt64, uptimeSeconds: Double, currentSlot: UInt64,
        timeslotNanoseconds: Double, hosts: Int, endpointsConnected: Int, loops: UInt64, busyNanoseconds: UInt64,
        ioNanoseconds: UInt64, packetsFromUnknownSources: UInt64, core: ArbiterCoreCounters,
        allocator: AllocatorCounters, io: PacketIOCounters, fcp: FCPCounters, sessions: ArbiterSessionCounters,
        sendRule: SendRule, slotLateness: SlotLateness, controlBudget: ControlBudget
    ) {
        self.listen = listen
        self.startedAtNanoseconds = startedAtNanoseconds
        self.uptimeSeconds = uptimeSeconds
        self.currentSlot = currentSlot
        self.timeslotNanoseconds = timeslotNanoseconds
        self.hosts = hosts
        self.endpointsConnected = endpointsConnected
        self.loops = loops
        self.busyNanoseconds = busyNanoseconds
        self.ioNanoseconds = ioNanoseconds
        self.packetsFromUnknownSources = packetsFromUnknownSources
        self.core = core
        self.allocator = allocator
        self.io = io
        self.fcp = fcp
        self.sessions = sessions
        self.sendRule = sendRule
        self.slotLateness = slotLateness
        self.controlBudget = controlBudget
    }

    enum CodingKeys: String, CodingKey {
        case listen
        case startedAtNanoseconds = "started_at_ns"
        case uptimeSeconds = "uptime_seconds"
        case currentSlot = "current_slot"
        case timeslotNanoseconds = "timeslot_ns"
        case hosts
        case endpointsConnected = "endpoints_connected"
        case loops
        case busyNanoseconds = "busy_ns"
        case ioNanoseconds = "io_ns"
        case packetsFromUnknownSources = "packets_from_unknown_sources"
        case core, allocator, io, fcp, sessions
        case sendRule = "send_rule"
        case slotLateness = "slot_lateness_ns"
        case controlBudget = "control_budget"
    }
}
