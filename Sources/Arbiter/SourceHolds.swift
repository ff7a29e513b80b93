import FixedStorage

/// Hosts that have not answered what the arbiter sent them, and those of them held back
/// from allocation for it (inline allocator): an endpoint that is not reading would get
/// its slots too late, while others could use them. A hold ends when the host answers, or
/// after a limit (an endpoint that only answers when it has something to say, as a
/// reference one may, must not wait for allocations for ever).
struct SourceHolds: ~Copyable {
    /// Per host: when the first packet sent to it since it was last heard from left (.max:
    /// none), and whether it is held.
    private let unansweredSince: FixedBuffer<UInt64>
    private let holding: FixedBuffer<Bool>
    /// Hosts held, and since when.
    private let heldHosts: FixedBuffer<Int32>
    private let heldSince: FixedBuffer<UInt64>
    private var heldCount = 0

    init(hostCount: Int) {
        unansweredSince = FixedBuffer(repeating: .max, count: hostCount)
        holding = FixedBuffer(repeating: false, count: hostCount)
        heldHosts = FixedBuffer(repeating: 0, count: hostCount)
        heldSince = FixedBuffer(repeating: 0, count: hostCount)
    }

    /// Whether no host is held.
    var isEmpty: Bool { heldCount == 0 }

    @inline(__always)
    func isHeld(_ host: Int) -> Bool { holding[host] }

    /// A packet left for `host` at `now`.
    @inline(__always)
    func sent(to host: Int, now: UInt64) {
        if unansweredSince[host] == .max { unansweredSince[host] = now }
    }

    /// `host` was heard from (or went away).
    func answered(_ host: Int) {
        unansweredSince[host] = .max
    }

    /// Whether `host` has left what it was sent unanswered for longer than `limit` ns.
    @inline(__always)
    func isSilent(_ host: Int, longerThan limit: UInt64, now: UInt64) -> Bool {
        unansweredSince[host] != .max && now &- unansweredSince[host] > limit
    }

    /// Holds `host`, which must not be held, from `now`.
    mutating func insert(_ host: Int, now: UInt64) {
        holding[host] = true
        heldHosts[heldCount] = Int32(host)
        heldSince[heldCount] = now
        heldCount += 1
    }

    /// Lets `host`, which must be held, go.
    mutating func remove(_ host: Int) {
        holding[host] = false
        for k in 0..<heldCount where heldHosts[k] == Int32(host) {
            heldCount -= 1
            heldHosts[k] = heldHosts[heldCount]
            heldSince[k] = heldSince[heldCount]
            break
        }
    }

    /// The first host held for longer than `limit` ns at `now`, if any (few hosts are ever
    /// held at once).
    func firstExpired(now: UInt64, limit: UInt64) -> Int? {
        for k in 0..<heldCount where now &- heldSince[k] > limit { return Int(heldHosts[k]) }
        return nil
    }
}
