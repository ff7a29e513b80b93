import FixedStorage

/// What happens at an instant of the simulation. Plain data: the run loop switches over
/// the kind, so no closures or existentials are stored per event.
struct Event {
    enum Kind: UInt8 {
        /// A flow starts (`a`: flow).
        case flowArrival
        /// A port finished putting its current packet on the wire (`a`: port).
        case transmitted
        /// A packet reaches the node at the far end of a link (`a`: packet, `b`: node).
        case arrival
        /// A baseline flow's retransmission timer (`a`: flow, `b`: timer generation).
        case retransmissionTimeout
        /// An agent's deadline (`a`: host, `b`: wake generation).
        case agentWake
        /// The arbiter's deadline (`b`: wake generation).
        case arbiterWake
        /// The arbiter's modelled communication core finished its batch of packets.
        case arbiterCPUDone
        /// The arbiter's modelled communication core sent a packet of its batch (`a`: its
        /// index in the batch).
        case arbiterCPUSend
        /// The arbiter restarts (fault injection).
        case arbiterRestart
        /// A spine goes down (`a`: spine).
        case spineDown
        /// End of the measured interval.
        case end
    }

    var time: UInt64
    /// Tie-break: events at the same time run in the order they were scheduled, which
    /// makes every run with the same seed identical.
    var sequence: UInt64
    var kind: Kind
    var a: Int32
    var b: UInt32
}

extension Event: HeapOrdered {
    @inline(__always)
    static func precedes(_ x: Event, _ y: Event) -> Bool {
        x.time < y.time || (x.time == y.time && x.sequence < y.sequence)
    }
}

/// The simulation's pending events, earliest first, by (time, sequence).
struct EventQueue: ~Copyable {
    private var heap: BinaryHeap<Event>
    private var nextSequence: UInt64 = 0
    /// Events scheduled so far.
    private(set) var scheduled: UInt64 = 0

    /// Room for `capacity` events before the queue grows.
    init(capacity: Int) {
        heap = BinaryHeap(capacity: capacity, placeholder: Event(time: 0, sequence: 0, kind: .end, a: 0, b: 0))
    }

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    mutating func schedule(_ kind: Event.Kind, at time: UInt64, a: Int32 = 0, b: UInt32 = 0) {
        heap.push(Event(time: time, sequence: nextSequence, kind: kind, a: a, b: b))
        nextSequence &+= 1
        scheduled &+= 1
    }

    mutating func pop() -> Event? { heap.pop() }
}
