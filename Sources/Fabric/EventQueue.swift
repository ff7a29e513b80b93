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

/// A binary min-heap of events by (time, sequence).
struct EventQueue {
    private var heap: [Event] = []
    private var nextSequence: UInt64 = 0
    /// Events scheduled so far.
    private(set) var scheduled: UInt64 = 0

    init(capacity: Int) { heap.reserveCapacity(capacity) }

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }

    @inline(__always)
    private static func less(_ x: Event, _ y: Event) -> Bool {
        x.time < y.time || (x.time == y.time && x.sequence < y.sequence)
    }

    mutating func schedule(_ kind: Event.Kind, at time: UInt64, a: Int32 = 0, b: UInt32 = 0) {
        let e = Event(time: time, sequence: nextSequence, kind: kind, a: a, b: b)
        nextSequence &+= 1
        scheduled &+= 1
        heap.append(e)
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) >> 1
            guard Self.less(e, heap[parent]) else { break }
            heap[i] = heap[parent]
            i = parent
        }
        heap[i] = e
    }

    mutating func pop() -> Event? {
        guard let last = heap.popLast() else { return nil }
        guard !heap.isEmpty else { return last }
        let top = heap[0]
        let n = heap.count
        var i = 0
        while true {
            let l = 2 * i + 1
            guard l < n else { break }
            let r = l + 1
            let c = r < n && Self.less(heap[r], heap[l]) ? r : l
            guard Self.less(heap[c], last) else { break }
            heap[i] = heap[c]
            i = c
        }
        heap[i] = last
        return top
    }
}
