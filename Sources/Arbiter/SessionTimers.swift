/// The arbiter's session timers: a binary heap of (deadline, host), with each host's
/// deadline and allocation due time as last pushed. A session's times move without the
/// heap being told: an entry is checked against the session when it surfaces, and a time
/// is pushed again only when it differs from the one last pushed.
struct SessionTimers: ~Copyable {
    private let deadlines: UnsafeMutablePointer<UInt64>
    private let hosts: UnsafeMutablePointer<Int32>
    private let capacity: Int
    private(set) var count = 0
    /// Per host: its session's timer deadline as last pushed (.max: none).
    let pushedDeadline: UnsafeMutablePointer<UInt64>
    /// Per host: when its pending allocations are due to leave, as last pushed (.max: none).
    let pushedDue: UnsafeMutablePointer<UInt64>
    private let hostCount: Int

    /// Room for a few entries per host: stale ones pile up between rebuilds.
    init(hostCount: Int) {
        self.hostCount = hostCount
        capacity = 4 * hostCount + 16
        deadlines = .allocate(capacity: capacity)
        deadlines.initialize(repeating: 0, count: capacity)
        hosts = .allocate(capacity: capacity)
        hosts.initialize(repeating: 0, count: capacity)
        pushedDeadline = .allocate(capacity: hostCount)
        pushedDeadline.initialize(repeating: .max, count: hostCount)
        pushedDue = .allocate(capacity: hostCount)
        pushedDue.initialize(repeating: .max, count: hostCount)
    }

    deinit {
        deadlines.deallocate()
        hosts.deallocate()
        pushedDeadline.deallocate()
        pushedDue.deallocate()
    }

    /// Whether the heap is full (of entries made stale by later deadlines, mostly).
    var isFull: Bool { count == capacity }

    /// The earliest entry, if any.
    var first: (deadline: UInt64, host: Int)? {
        count > 0 ? (deadlines[0], Int(hosts[0])) : nil
    }

    /// Forgets every entry and every time pushed, to push again what still holds.
    mutating func removeAll() {
        count = 0
        pushedDeadline.update(repeating: .max, count: hostCount)
        pushedDue.update(repeating: .max, count: hostCount)
    }

    /// Adds an entry; the heap must not be full.
    mutating func push(_ deadline: UInt64, _ host: Int) {
        var i = count
        count += 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard deadlines[parent] > deadline else { break }
            deadlines[i] = deadlines[parent]
            hosts[i] = hosts[parent]
            i = parent
        }
        deadlines[i] = deadline
        hosts[i] = Int32(host)
    }

    /// Removes the earliest entry; the heap must not be empty.
    mutating func popFirst() {
        count -= 1
        guard count > 0 else { return }
        let deadline = deadlines[count]
        let host = hosts[count]
        var i = 0
        while true {
            var child = 2 * i + 1
            guard child < count else { break }
            if child + 1 < count && deadlines[child + 1] < deadlines[child] { child += 1 }
            guard deadlines[child] < deadline else { break }
            deadlines[i] = deadlines[child]
            hosts[i] = hosts[child]
            i = child
        }
        deadlines[i] = deadline
        hosts[i] = host
    }
}
