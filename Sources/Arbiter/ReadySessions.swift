/// Sessions with something to send, in the order they became ready, each at most once.
struct ReadySessions: ~Copyable {
    private let ring: UnsafeMutablePointer<Int32>
    private let isReady: UnsafeMutablePointer<Bool>
    private let capacity: Int
    private var head = 0
    private var count = 0

    init(hostCount: Int) {
        capacity = hostCount
        ring = .allocate(capacity: hostCount)
        ring.initialize(repeating: 0, count: hostCount)
        isReady = .allocate(capacity: hostCount)
        isReady.initialize(repeating: false, count: hostCount)
    }

    deinit {
        ring.deallocate()
        isReady.deallocate()
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
