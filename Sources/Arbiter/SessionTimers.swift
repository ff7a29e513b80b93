import FastpassProtocol
import FixedStorage

/// When each session next needs the arbiter: its own timer deadline and the time its
/// pending allocations are due to leave, on a binary heap of (time, host). A session's
/// times move without the heap being told: an entry is checked against the session when
/// it surfaces, and a time is pushed again only when it differs from the one last pushed.
struct SessionTimers: ~Copyable {
    /// A time on the heap: earlier deadlines first; equal ones in the heap's fixed order.
    struct Entry: HeapOrdered {
        var deadline: UInt64
        var host: Int32
        static func precedes(_ a: Entry, _ b: Entry) -> Bool { a.deadline < b.deadline }
    }

    private var heap: BinaryHeap<Entry>
    /// Per host: its session's timer deadline as last pushed (.max: none).
    let pushedDeadline: FixedBuffer<UInt64>
    /// Per host: when its pending allocations are due to leave, as last pushed (.max: none).
    let pushedDue: FixedBuffer<UInt64>
    /// Per host: when its pending allocations are due to leave (.max: none).
    let allocationDue: FixedBuffer<UInt64>
    private let hostCount: Int

    /// Room for a few entries per host: stale ones pile up between rebuilds.
    init(hostCount: Int) {
        self.hostCount = hostCount
        heap = BinaryHeap(capacity: 4 * hostCount + 16, placeholder: Entry(deadline: 0, host: 0))
        pushedDeadline = FixedBuffer(repeating: .max, count: hostCount)
        pushedDue = FixedBuffer(repeating: .max, count: hostCount)
        allocationDue = FixedBuffer(repeating: .max, count: hostCount)
    }

    /// Entries on the heap, stale ones included.
    var count: Int { heap.count }

    /// The earliest entry, if any.
    var first: (deadline: UInt64, host: Int)? {
        heap.first.map { ($0.deadline, Int($0.host)) }
    }

    /// Takes off the heap the earliest entry due by `now` and returns its host, if any;
    /// the host's times are then no longer on the heap, unless pushed again.
    mutating func popExpired(now: UInt64) -> Int? {
        guard let first = heap.first, first.deadline <= now else { return nil }
        _ = heap.pop()
        let host = Int(first.host)
        if first.deadline == pushedDeadline[host] { pushedDeadline[host] = .max }
        if first.deadline == pushedDue[host] { pushedDue[host] = .max }
        return host
    }

    /// Puts `host`'s timer deadline on the heap, unless it is there already.
    mutating func schedule(_ deadline: UInt64, for host: Int, sessions: borrowing SessionTable) {
        guard deadline != pushedDeadline[host] else { return }
        pushedDeadline[host] = deadline
        push(deadline, host, sessions: sessions)
    }

    /// Puts the time `host`'s allocations are due on the heap, unless it is there already.
    mutating func scheduleAllocations(of host: Int, sessions: borrowing SessionTable) {
        guard allocationDue[host] != pushedDue[host] else { return }
        pushedDue[host] = allocationDue[host]
        push(allocationDue[host], host, sessions: sessions)
    }

    /// Forgets `host`'s times (it went away); its entries are dropped as they surface.
    func forget(_ host: Int) {
        pushedDeadline[host] = .max
        allocationDue[host] = .max
        pushedDue[host] = .max
    }

    /// Pushes, making room first: the heap never grows (that would allocate).
    private mutating func push(_ deadline: UInt64, _ host: Int, sessions: borrowing SessionTable) {
        if heap.isFull { rebuild(sessions: sessions) }
        heap.push(Entry(deadline: deadline, host: Int32(host)))
    }

    /// The heap is full of entries made stale by later deadlines: keep one per session.
    private mutating func rebuild(sessions: borrowing SessionTable) {
        heap.removeAll()
        pushedDeadline.fill(with: .max)
        pushedDue.fill(with: .max)
        for h in 0..<hostCount where sessions.contains(h) {
            if allocationDue[h] != .max {
                pushedDue[h] = allocationDue[h]
                heap.push(Entry(deadline: allocationDue[h], host: Int32(h)))
            }
            guard let deadline = sessions[h].schedulingState().timerDeadline else { continue }
            pushedDeadline[h] = deadline
            heap.push(Entry(deadline: deadline, host: Int32(h)))
        }
    }
}
