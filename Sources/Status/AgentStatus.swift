/// A host agent's `GET /status`: where it stands with the arbiter, and its counters.
///
/// The core's and the devices' counters sit at the top level of the document, beside the
/// agent's own fields, as they always have (scripts read `packets_released` there).
public struct AgentStatus: Sendable, Hashable, Codable {
    /// `connecting`, `scheduled`, `fallback` or `holding`.
    public var state: String
    public var address: String
    public var node: Int
    public var arbiter: String
    public var interface: String
    public var tun: String
    public var peers: Int
    public var uptimeSeconds: Double
    /// Since the arbiter was last heard from (-1: never).
    public var arbiterHeardAgoMilliseconds: Double
    /// The arbiter's announced timeslot (0: not yet known).
    public var timeslotNanoseconds: Double
    public var packetsWaiting: Int
    public var unreachablePolicy: String
    public var pacing: String
    public var pacingPinned: Bool
    /// Times the arbiter became unreachable.
    public var fallbacks: Int
    public var ioBackend: String
    /// At the top level of the document.
    public var core: AgentCounters
    /// At the top level of the document.
    public var io: AgentIOCounters
    public var session: EndpointSessionCounters
    /// The FCP transport's own counters.
    public var transport: PacketIOCounters
    public var releaseLateness: ReleaseLateness
    /// Packets let through without waiting, by reason.
    public var bypassed: [String: UInt64]

    /// How late the pacing thread released packets after their slot's planned time:
    /// quantiles as the upper bound of their bucket, ns.
    public struct ReleaseLateness: Sendable, Hashable, Codable {
        public var p50: UInt64
        public var p99: UInt64

        public init(p50: UInt64, p99: UInt64) { (self.p50, self.p99) = (p50, p99) }
    }

    public init(
        state: String, address: String, node: Int, arbiter: String, interface: String, tun: String, peers: Int,
        uptimeSeconds: Double, arbiterHeardAgoMilliseconds: Double, timeslotNanoseconds: Double, packetsWaiting: Int,
        unreachablePolicy: String, pacing: String, pacingPinned: Bool, fallbacks: Int, ioBackend: String,
        core: AgentCounters, io: AgentIOCounters, session: EndpointSessionCounters, transport: PacketIOCounters,
        releaseLateness: ReleaseLateness, bypassed: [String: UInt64]
    ) {
        self.state = state
        self.address = address
        self.node = node
        self.arbiter = arbiter
        self.interface = interface
        self.tun = tun
        self.peers = peers
        self.uptimeSeconds = uptimeSeconds
        self.arbiterHeardAgoMilliseconds = arbiterHeardAgoMilliseconds
        self.timeslotNanoseconds = timeslotNanoseconds
        self.packetsWaiting = packetsWaiting
        self.unreachablePolicy = unreachablePolicy
        self.pacing = pacing
        self.pacingPinned = pacingPinned
        self.fallbacks = fallbacks
        self.ioBackend = ioBackend
        self.core = core
        self.io = io
        self.session = session
        self.transport = transport
        self.releaseLateness = releaseLateness
        self.bypassed = bypassed
    }

    enum CodingKeys: String, CodingKey {
        case state, address, node, arbiter, interface, tun, peers
        case uptimeSeconds = "uptime_seconds"
        case arbiterHeardAgoMilliseconds = "arbiter_heard_ago_ms"
        case timeslotNanoseconds = "timeslot_ns"
        case packetsWaiting = "packets_waiting"
        case unreachablePolicy = "unreachable_policy"
        case pacing
        case pacingPinned = "pacing_pinned"
        case fallbacks
        case ioBackend = "io_backend"
        case session, transport
        case releaseLateness = "release_lateness_ns"
        case bypassed
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        state = try c.decode(String.self, forKey: .state)
        address = try c.decode(String.self, forKey: .address)
        node = try c.decode(Int.self, forKey: .node)
        arbiter = try c.decode(String.self, forKey: .arbiter)
        interface = try c.decode(String.self, forKey: .interface)
        tun = try c.decode(String.self, forKey: .tun)
        peers = try c.decode(Int.self, forKey: .peers)
        uptimeSeconds = try c.decode(Double.self, forKey: .uptimeSeconds)
        arbiterHeardAgoMilliseconds = try c.decode(Double.self, forKey: .arbiterHeardAgoMilliseconds)
        timeslotNanoseconds = try c.decode(Double.self, forKey: .timeslotNanoseconds)
        packetsWaiting = try c.decode(Int.self, forKey: .packetsWaiting)
        unreachablePolicy = try c.decode(String.self, forKey: .unreachablePolicy)
        pacing = try c.decode(String.self, forKey: .pacing)
        pacingPinned = try c.decode(Bool.self, forKey: .pacingPinned)
        fallbacks = try c.decode(Int.self, forKey: .fallbacks)
        ioBackend = try c.decode(String.self, forKey: .ioBackend)
        // The flattened groups read their own keys from the same object.
        core = try AgentCounters(from: decoder)
        io = try AgentIOCounters(from: decoder)
        session = try c.decode(EndpointSessionCounters.self, forKey: .session)
        transport = try c.decode(PacketIOCounters.self, forKey: .transport)
        releaseLateness = try c.decode(ReleaseLateness.self, forKey: .releaseLateness)
        bypassed = try c.decode([String: UInt64].self, forKey: .bypassed)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(state, forKey: .state)
        try c.encode(address, forKey: .address)
        try c.encode(node, forKey: .node)
        try c.encode(arbiter, forKey: .arbiter)
        try c.encode(interface, forKey: .interface)
        try c.encode(tun, forKey: .tun)
        try c.encode(peers, forKey: .peers)
        try c.encode(uptimeSeconds, forKey: .uptimeSeconds)
        try c.encode(arbiterHeardAgoMilliseconds, forKey: .arbiterHeardAgoMilliseconds)
        try c.encode(timeslotNanoseconds, forKey: .timeslotNanoseconds)
        try c.encode(packetsWaiting, forKey: .packetsWaiting)
        try c.encode(unreachablePolicy, forKey: .unreachablePolicy)
        try c.encode(pacing, forKey: .pacing)
        try c.encode(pacingPinned, forKey: .pacingPinned)
        try c.encode(fallbacks, forKey: .fallbacks)
        try c.encode(ioBackend, forKey: .ioBackend)
        // Into the same object: JSONEncoder merges keyed containers taken from one encoder.
        try core.encode(to: encoder)
        try io.encode(to: encoder)
        try c.encode(session, forKey: .session)
        try c.encode(transport, forKey: .transport)
        try c.encode(releaseLateness, forKey: .releaseLateness)
        try c.encode(bypassed, forKey: .bypassed)
    }
}
