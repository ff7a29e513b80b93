import FastpassProtocol

/// When each session next needs the arbiter: its own timer deadline and the time its
/// pending allocations are due to leave, on a binary heap of (time, host). A session's
/// times move without the heap being told: an entry is checked against the session when
/// it surfaces, and a time is pushed again only when it differs from the one last pushed.
struct SessionTimers: ~Copyable {
    private let deadlines: UnsafeMutablePointer<UInt64>
    private let hosts: UnsafeMutablePointer<Int32>
    private let capacity: Int
    private(set) var count = 0
    /// Per host: its session's timer deadline as last pushed (.max: none).
    let pushedDeadline: UnsafeMutablePointer<UInt64>
    /// Per host: when its pending allocations are due to leave, as last pushed (.max: none).
    let pushedDue: UnsafeMutablePointer<UInt64>
    /// Per host: when its pending allocations are due to leave (.max: none).
    let allocationDue: UnsafeMutablePointer<UInt64>
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
        allocationDue = .allocate(capacity: hostCount)
        allocationDue.initialize(repeating: .max, count: hostCount)
    }

    deinit {
        deadlines.deallocate()
        hosts.deallocate()
        pushedDeadline.deallocate()
        pushedDue.deallocate()
        allocationDue.deallocate()
    }

    /// The earliest entry, if any.
    var first: (deadline: UInt64, host: Int)? {
        count > 0 ? (deadlines[0], Int(hosts[0])) : nil
    }

    /// Takes off the heap the earliest entry due by `now` and returns its host, if any;
    /// the host's times are then no longer on the heap, unless pushed again.
    mutating func popExpired(now: UInt64) -> Int? {
        guard count > 0, deadlines[0] <= now else { return nil }
        let popped = deadlines[0]
        let host = Int(hosts[0])
        popFirst()
        if popped == pushedDeadline[host] { pushedDeadline[host] = .max }
        if popped == pushedDue[host] { pushedDue[host] = .max }
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

    private mutating func push(_ deadline: UInt64, _ host: Int, sessions: borrowing SessionTable) {
        if count == capacity { rebuild(sessions: sessions) }
        push(deadline, host)
    }

    /// The heap is full of entries made stale by later deadlines: keep one per session.
    private mutating func rebuild(sessions: borrowing SessionTable) {
        count = 0
        pushedDeadline.update(repeating: .max, count: hostCount)
        pushedDue.update(repeating: .max, count: hostCount)
        for h in 0..<hostCount where sessions.contains(h) {
            if allocationDue[h] != .max {
                pushedDue[h] = allocationDue[h]
                push(allocationDue[h], h)
            }
            guard let deadline = sessions[h].schedulingState().timerDeadline else { continue }
            pushedDeadline[h] = deadline
            push(deadline, h)
        }
    }

    /// Adds an entry; the heap must not be full.
    private mutating func push(_ deadline: UInt64, _ host: Int) {
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
    private mutating func popFirst() {
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
