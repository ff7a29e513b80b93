import FixedStorage

/// Sessions with something to send, in the order they became ready, each at most once.
struct ReadySessions: ~Copyable {
    private let ring: FixedBuffer<Int32>
    private let isReady: FixedBuffer<Bool>
    private let capacity: Int
    private var head = 0
    private var count = 0

    init(hostCount: Int) {
        capacity = hostCount
        ring = FixedBuffer(repeating: 0, count: hostCount)
        isReady = FixedBuffer(repeating: false, count: hostCount)
    }

    /// Queues `host` unless it is queued already.
    @inline(__always)
    mutating func insert(_ host: Int) {
        guard !isReady[host] else { return }
        isReady[host] = true
        ring[(head + count) % capacity] = Int32(host)
        count += 1
    }

    /// The host queued first, taken off the queue; nil when none is.
    mutating func popFirst() -> Int? {
        guard count > 0 else { return nil }
        let host = Int(ring[head])
        head = (head + 1) % capacity
        count -= 1
        isReady[host] = false
        return host
    }
}
