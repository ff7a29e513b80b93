/// A map from node ids to dense indices `0..<count`, holding at most `capacity` entries.
///
/// Per-destination counters of a connection live in parallel arrays indexed by these
/// indices. Entries are only removed all together (``compact(keeping:moved:)`` after a
/// protocol reset), which keeps lookups a short linear probe.
///
/// The capacity is the peer count, fixed at start-up, but a host talks to far fewer peers
/// than a large fabric has: storage starts small and doubles as destinations come into
/// use, so memory follows the destinations used (a session per host sized for 4 095 peers
/// would take gigabytes across a fabric). Growing allocates, but only when more
/// destinations are in use at once than ever before; after that inserts reuse storage.
struct DestinationTable {
    private static let emptyKey = UInt32.max
    /// Entries room is made for at first.
    static let initialStorage = 16

    let capacity: Int
    private var bucketKeys: [UInt32]
    private var bucketIndex: [Int32]
    private var mask: Int
    private(set) var nodes: [NodeID]
    private(set) var count = 0

    init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        let storage = min(capacity, Self.initialStorage)
        let buckets = Self.bucketCount(for: storage)
        mask = buckets - 1
        bucketKeys = [UInt32](repeating: Self.emptyKey, count: buckets)
        bucketIndex = [Int32](repeating: -1, count: buckets)
        nodes = [NodeID](repeating: NodeID(0), count: storage)
    }

    /// Buckets for `entries` entries: a power of two, at most half full.
    private static func bucketCount(for entries: Int) -> Int {
        var buckets = 8
        while buckets < entries * 2 { buckets <<= 1 }
        return buckets
    }

    /// Entries the table has room for without growing: parallel arrays keep at least this
    /// many elements.
    var storage: Int { nodes.count }

    @inline(__always)
    private func bucket(_ key: UInt32) -> Int {
        Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> 40) & mask
    }

    func index(of node: NodeID) -> Int? {
        let key = node.rawValue
        guard key != Self.emptyKey else { return nil }
        var b = bucket(key)
        while true {
            let k = bucketKeys[b]
            if k == key { return Int(bucketIndex[b]) }
            if k == Self.emptyKey { return nil }
            b = (b + 1) & mask
        }
    }

    /// The index of `node`, inserting it when absent; nil when the table is full or the
    /// id is the reserved value `UInt32.max`.
    mutating func findOrInsert(_ node: NodeID) -> (index: Int, inserted: Bool)? {
        let key = node.rawValue
        guard key != Self.emptyKey else { return nil }
        var b = bucket(key)
        while true {
            let k = bucketKeys[b]
            if k == key { return (Int(bucketIndex[b]), false) }
            if k == Self.emptyKey { break }
            b = (b + 1) & mask
        }
        guard count < capacity else { return nil }
        if count == nodes.count {
            grow()
            b = bucket(key)
            while bucketKeys[b] != Self.emptyKey { b = (b + 1) & mask }
        }
        bucketKeys[b] = key
        bucketIndex[b] = Int32(count)
        nodes[count] = node
        count += 1
        return (count - 1, true)
    }

    /// Doubles the storage (up to the capacity) and rehashes into buckets to match.
    private mutating func grow() {
        let storage = min(capacity, nodes.count * 2)
        nodes.extend(to: storage, with: NodeID(0))
        let buckets = Self.bucketCount(for: storage)
        guard buckets > bucketKeys.count else { return }
        mask = buckets - 1
        bucketKeys = [UInt32](repeating: Self.emptyKey, count: buckets)
        bucketIndex = [Int32](repeating: -1, count: buckets)
        for i in 0..<count {
            let key = nodes[i].rawValue
            var b = bucket(key)
            while bucketKeys[b] != Self.emptyKey { b = (b + 1) & mask }
            bucketKeys[b] = key
            bucketIndex[b] = Int32(i)
        }
    }

    /// Keeps the entries for which `keep(index)` is true, renumbering them densely in
    /// their old order; `moved(from, to)` is called for each survivor whose index changed,
    /// so the caller can move its parallel state.
    mutating func compact(keeping keep: (Int) -> Bool, moved: (Int, Int) -> Void) {
        for b in 0..<bucketKeys.count {
            bucketKeys[b] = Self.emptyKey
            bucketIndex[b] = -1
        }
        let old = count
        count = 0
        for i in 0..<old where keep(i) {
            let node = nodes[i]
            if i != count { moved(i, count) }
            nodes[count] = node
            var b = bucket(node.rawValue)
            while bucketKeys[b] != Self.emptyKey { b = (b + 1) & mask }
            bucketKeys[b] = node.rawValue
            bucketIndex[b] = Int32(count)
            count += 1
        }
    }

    mutating func removeAll() { compact(keeping: { _ in false }, moved: { _, _ in }) }
}

extension Array {
    /// Appends `value` until the array holds `count` elements: how the arrays parallel to
    /// a ``DestinationTable`` follow it when it grows.
    mutating func extend(to count: Int, with value: Element) {
        guard count > self.count else { return }
        append(contentsOf: repeatElement(value, count: count - self.count))
    }
}

/// Two FIFO queues of indices (each index in at most one of them), with O(1) removal,
/// for the "send this destination's counters again" bookkeeping. Grown with the
/// ``DestinationTable`` whose indices it holds.
struct IndexQueues {
    enum Queue: UInt8 {
        case none = 0
        case first = 1
        case second = 2
    }

    private var next: [Int32]
    private var prev: [Int32]
    private var membership: [Queue]
    private var heads: (Int32, Int32) = (-1, -1)
    private var tails: (Int32, Int32) = (-1, -1)
    private(set) var count = 0

    init(capacity: Int) {
        next = [Int32](repeating: -1, count: capacity)
        prev = [Int32](repeating: -1, count: capacity)
        membership = [Queue](repeating: .none, count: capacity)
    }

    /// Indices the queues have room for.
    var capacity: Int { membership.count }

    /// Makes room for indices up to `capacity - 1`; new indices are in no queue.
    mutating func grow(to capacity: Int) {
        next.extend(to: capacity, with: -1)
        prev.extend(to: capacity, with: -1)
        membership.extend(to: capacity, with: .none)
    }

    func queue(of index: Int) -> Queue { membership[index] }
    var isEmpty: Bool { count == 0 }
    /// Whether the first queue holds any index.
    var hasFirst: Bool { heads.0 >= 0 }

    mutating func append(_ index: Int, to queue: Queue) {
        precondition(queue != .none)
        if membership[index] == queue { return }
        if membership[index] != .none { remove(index) }
        let i = Int32(index)
        let tail = queue == .first ? tails.0 : tails.1
        prev[index] = tail
        next[index] = -1
        if tail >= 0 { next[Int(tail)] = i } else { setHead(queue, i) }
        if queue == .first { tails.0 = i } else { tails.1 = i }
        membership[index] = queue
        count += 1
    }

    private mutating func setHead(_ queue: Queue, _ value: Int32) {
        if queue == .first { heads.0 = value } else { heads.1 = value }
    }

    mutating func remove(_ index: Int) {
        let queue = membership[index]
        guard queue != .none else { return }
        let p = prev[index]
        let n = next[index]
        if p >= 0 { next[Int(p)] = n } else { setHead(queue, n) }
        if n >= 0 {
            prev[Int(n)] = p
        } else if queue == .first {
            tails.0 = p
        } else {
            tails.1 = p
        }
        membership[index] = .none
        count -= 1
    }

    /// Removes and returns the head of the first queue, else of the second.
    mutating func popFirstThenSecond() -> Int? {
        let h = heads.0 >= 0 ? heads.0 : heads.1
        guard h >= 0 else { return nil }
        remove(Int(h))
        return Int(h)
    }

    mutating func removeAll() {
        for i in 0..<membership.count {
            membership[i] = .none
            next[i] = -1
            prev[i] = -1
        }
        heads = (-1, -1)
        tails = (-1, -1)
        count = 0
    }

    /// Renames index `from` to `to` (same queue position); `to` must be free.
    mutating func move(from: Int, to: Int) {
        let queue = membership[from]
        guard queue != .none else { return }
        let p = prev[from]
        let n = next[from]
        prev[to] = p
        next[to] = n
        membership[to] = queue
        membership[from] = .none
        let t = Int32(to)
        if p >= 0 { next[Int(p)] = t } else { setHead(queue, t) }
        if n >= 0 {
            prev[Int(n)] = t
        } else if queue == .first {
            tails.0 = t
        } else {
            tails.1 = t
        }
    }
}
