/// The control network between an arbiter and its hosts, in memory and on a virtual
/// clock: every packet arrives a latency (plus jitter) after it is sent, unless it is lost,
/// and may arrive twice or overtake another. The suites that run real FCP endpoints
/// against an arbiter share it, so that a seed drives loss, duplication and reordering the
/// same way in each.
///
/// The network only carries bytes: what sends them and what receives them (sessions, the
/// arbiter core, agents) stays with the suite.
public struct VirtualControlNetwork: Sendable {
    /// One end of the control network.
    public enum Node: Hashable, Sendable {
        case arbiter
        /// The host of that index in the suite's topology.
        case host(Int)
    }

    /// A packet on its way, or delivered.
    public struct Packet: Sendable {
        /// Who sent it.
        public let source: Node
        /// Who receives it.
        public let destination: Node
        /// When it reaches `destination`.
        public let arrival: UInt64
        /// The packet as sent; both copies of a duplicate carry the same bytes.
        public let bytes: [UInt8]
        /// Breaks ties between packets that arrive at the same time: first sent, first
        /// delivered, as on a real link.
        let order: UInt64

        /// Whether the arbiter receives it (else a host does).
        public var toArbiter: Bool { destination == .arbiter }

        /// The host this packet comes from or goes to: every packet runs between the
        /// arbiter and a host.
        public var host: Int {
            switch (source, destination) {
            case (.host(let h), _), (_, .host(let h)): h
            case (.arbiter, .arbiter): preconditionFailure("a packet from the arbiter to itself")
            }
        }
    }

    /// When a lost packet is decided lost.
    ///
    /// Either gives the same loss rate; both exist because the suites' seeds were chosen
    /// with one or the other, and the draws must come in the order they always came for
    /// those seeds to reproduce their runs.
    public enum LossDecision: Sendable {
        /// When it is sent, each copy after the duplication draw (the protocol suite's
        /// lossy channel).
        case whenSent
        /// When it arrives, in arrival order (the arbiter core suite's network).
        case onArrival
    }

    /// Every copy arrives `latency` plus a uniform jitter in `0..<jitter` ns after it was
    /// sent; jitter larger than the gap between packets reorders them.
    public var latency: UInt64
    /// See ``latency``.
    public var jitter: UInt64
    /// The chance that a copy is lost.
    public var lossRate: Double
    /// The chance that a packet is sent twice; each copy is then lost or delayed on its own.
    public var duplicationRate: Double
    /// When loss is drawn.
    public var lossDecision: LossDecision
    /// Draws loss, duplication and jitter, and nothing else unless the suite draws from
    /// it too: a simulation that shares one stream with its network keeps its seeds.
    public var random: TestRandom
    /// The arbiter's link is cut: every packet that arrives meanwhile is lost.
    public var partitioned = false
    /// Packets from a node that arrive before its time here are lost: a host that is
    /// cut off for a while, or whose packets all go astray.
    public var silentUntil: [Node: UInt64] = [:]
    /// The copies on their way, in the order sent.
    public private(set) var inFlight: [Packet] = []
    /// Packets handed to the network, before duplication and loss.
    public private(set) var sent = 0
    /// Copies lost, whenever decided.
    public private(set) var lost = 0
    /// Packets sent twice.
    public private(set) var duplicated = 0
    private var sentCopies: UInt64 = 0

    /// A network with no loss, duplication or jitter unless asked for; `random` is only
    /// drawn from where a rate or the jitter is nonzero.
    public init(
        latency: UInt64, jitter: UInt64 = 0, lossRate: Double = 0, duplicationRate: Double = 0,
        lossDecision: LossDecision = .whenSent, random: TestRandom = TestRandom(seed: 0)
    ) {
        self.latency = latency
        self.jitter = jitter
        self.lossRate = lossRate
        self.duplicationRate = duplicationRate
        self.lossDecision = lossDecision
        self.random = random
    }

    /// Puts `bytes` on the wire from `source` to `destination` at `now`.
    public mutating func send(_ bytes: [UInt8], from source: Node, to destination: Node, now: UInt64) {
        sent += 1
        let copies = duplicationRate > 0 && random.chance(duplicationRate) ? 2 : 1
        if copies == 2 { duplicated += 1 }
        for _ in 0..<copies {
            if lossDecision == .whenSent && losesOne() { continue }
            sentCopies += 1
            let delay = latency + (jitter > 0 ? random.next() % jitter : 0)
            inFlight.append(
                Packet(source: source, destination: destination, arrival: now + delay, bytes: bytes, order: sentCopies))
        }
    }

    /// Removes the packets that have arrived by `now` at a destination `delivers` accepts,
    /// and returns those not lost, in arrival order. The others wait: a destination that is
    /// not running (a descheduled arbiter thread) receives its packets late, not never.
    public mutating func deliver(upTo now: UInt64, where delivers: (Node) -> Bool = { _ in true }) -> [Packet] {
        func due(_ p: Packet) -> Bool { p.arrival <= now && delivers(p.destination) }
        guard inFlight.contains(where: due) else { return [] }
        let arrived = inFlight.filter(due).sorted { ($0.arrival, $0.order) < ($1.arrival, $1.order) }
        inFlight.removeAll(where: due)
        return arrived.filter { p in
            if lossDecision == .onArrival && losesOne() { return false }
            if partitioned || p.arrival < silentUntil[p.source, default: 0] {
                lost += 1
                return false
            }
            return true
        }
    }

    private mutating func losesOne() -> Bool {
        guard lossRate > 0 && random.chance(lossRate) else { return false }
        lost += 1
        return true
    }
}
