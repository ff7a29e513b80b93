/// A one-way in-memory link that loses, duplicates and reorders packets, driven by a
/// seeded generator and a virtual clock.
struct LossyChannel {
    struct InFlight {
        var arrival: UInt64
        var order: UInt64
        var bytes: [UInt8]
    }

    var lossRate: Double
    var duplicationRate: Double
    /// Every copy is delayed by `baseDelay` plus a uniform jitter in `0..<jitter` (ns);
    /// jitter larger than the gap between packets reorders them.
    var baseDelay: UInt64
    var jitter: UInt64
    private(set) var queue: [InFlight] = []
    private var counter: UInt64 = 0
    private(set) var sent = 0
    private(set) var lost = 0
    private(set) var duplicated = 0

    init(lossRate: Double, duplicationRate: Double, baseDelay: UInt64, jitter: UInt64) {
        self.lossRate = lossRate
        self.duplicationRate = duplicationRate
        self.baseDelay = baseDelay
        self.jitter = jitter
    }

    mutating func send(_ bytes: [UInt8], now: UInt64, random: inout SeededRandom) {
        sent += 1
        let copies = random.chance(duplicationRate) ? 2 : 1
        if copies == 2 { duplicated += 1 }
        for _ in 0..<copies {
            if random.chance(lossRate) {
                lost += 1
                continue
            }
            counter += 1
            let delay = baseDelay + (jitter > 0 ? random.next() % jitter : 0)
            queue.append(InFlight(arrival: now + delay, order: counter, bytes: bytes))
        }
    }

    /// Removes and returns every packet that has arrived by `now`, in arrival order.
    mutating func deliver(upTo now: UInt64) -> [[UInt8]] {
        guard queue.contains(where: { $0.arrival <= now }) else { return [] }
        let due = queue.filter { $0.arrival <= now }.sorted { ($0.arrival, $0.order) < ($1.arrival, $1.order) }
        queue.removeAll { $0.arrival <= now }
        return due.map(\.bytes)
    }
}
