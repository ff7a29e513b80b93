/// Per-destination FIFO queues of packets over one pool bounded at start-up.
///
/// The agent does not keep packet bytes: the caller owns them and names each packet by a
/// 32-bit handle (a buffer index, say), so a simulator can queue millions of packets
/// without copying any and a daemon keeps its buffers where its I/O wants them.
///
/// Each queue also counts the timeslots it needs. A slot carries whole packets up to
/// `slotBytes`; the queue is cut into slots greedily from its head, and since packets
/// leave only a whole slot at a time from the head, the cut made as packets arrive at the
/// tail is the one release will find.
struct DestinationQueues {
    let slotBytes: Int
    let perQueueLimit: Int
    private var handles: [UInt32]
    private var lengths: [UInt16]
    /// Next packet in the same queue (or in the free list), -1 at the end.
    private var next: [Int32]
    private var freeHead: Int32

    private var heads: [Int32]
    private var tails: [Int32]
    private(set) var packetCounts: [Int32]
    /// Bytes in each queue's last slot (0 when the queue is empty).
    private var tailFill: [Int32]
    /// Slots each queue needs to drain.
    private(set) var slotCounts: [Int]
    private(set) var totalPackets = 0
    let capacity: Int

    /// No queues at first: ``addQueue()`` makes one for each destination as it comes into use.
    init(capacity: Int, perQueueLimit: Int, slotBytes: Int) {
        self.slotBytes = slotBytes
        self.perQueueLimit = perQueueLimit
        self.capacity = capacity
        handles = []
        lengths = []
        next = []
        freeHead = -1
        heads = []
        tails = []
        packetCounts = []
        tailFill = []
        slotCounts = []
        growPool()
    }

    /// Queues there are.
    var count: Int { heads.count }

    /// Adds an empty queue and returns its index (the next one).
    mutating func addQueue() -> Int {
        heads.append(-1)
        tails.append(-1)
        packetCounts.append(0)
        tailFill.append(0)
        slotCounts.append(0)
        return heads.count - 1
    }

    enum Refusal: Sendable, Hashable {
        case poolFull
        case queueFull
    }

    /// Whether appending a packet of `length` bytes to queue `q` would start a new slot.
    func startsSlot(_ q: Int, length: Int) -> Bool {
        packetCounts[q] == 0 || Int(tailFill[q]) + length > slotBytes
    }

    /// Pool nodes made at first. The pool is sized for every host's worst case (the
    /// simulator's default is 32 768 packets), but most hosts never hold that many at once:
    /// it doubles when every node is in use, up to `capacity`, so memory follows the
    /// packets actually queued. Growing allocates, but only past the most ever queued.
    static let initialPool = 256

    /// Adds nodes to the free list: the first ones, or as many again as there are. Only
    /// called with the free list empty.
    private mutating func growPool() {
        let old = next.count
        let new = min(capacity, max(Self.initialPool, old * 2))
        guard new > old else { return }
        handles.append(contentsOf: repeatElement(0, count: new - old))
        lengths.append(contentsOf: repeatElement(0, count: new - old))
        next.append(contentsOf: (old..<new).map { Int32($0 + 1 < new ? $0 + 1 : -1) })
        freeHead = Int32(old)
    }

    func refusal(_ q: Int) -> Refusal? {
        if freeHead < 0 && next.count == capacity { return .poolFull }
        if Int(packetCounts[q]) >= perQueueLimit { return .queueFull }
        return nil
    }

    /// Appends a packet (the caller checked ``refusal(_:)`` and the length).
    mutating func append(_ q: Int, handle: UInt32, length: Int) {
        if freeHead < 0 { growPool() }
        let n = freeHead
        precondition(n >= 0, "packet pool exhausted")
        freeHead = next[Int(n)]
        handles[Int(n)] = handle
        lengths[Int(n)] = UInt16(length)
        next[Int(n)] = -1
        if startsSlot(q, length: length) {
            slotCounts[q] += 1
            tailFill[q] = Int32(length)
        } else {
            tailFill[q] += Int32(length)
        }
        if tails[q] >= 0 { next[Int(tails[q])] = n } else { heads[q] = n }
        tails[q] = n
        packetCounts[q] += 1
        totalPackets += 1
    }

    /// Detaches the head slot's packets of queue `q`: returns the first node and how many
    /// follow it in the chain (walk it with ``take(_:)``). Nil when the queue is empty.
    mutating func detachSlot(_ q: Int) -> (first: Int32, count: Int)? {
        let first = heads[q]
        guard first >= 0 else { return nil }
        var budget = slotBytes - Int(lengths[Int(first)])
        var last = first
        var count = 1
        while next[Int(last)] >= 0 {
            let l = Int(lengths[Int(next[Int(last)])])
            guard l <= budget else { break }
            budget -= l
            last = next[Int(last)]
            count += 1
        }
        heads[q] = next[Int(last)]
        next[Int(last)] = -1
        packetCounts[q] -= Int32(count)
        totalPackets -= count
        slotCounts[q] -= 1
        if heads[q] < 0 {
            tails[q] = -1
            tailFill[q] = 0
        }
        return (first, count)
    }

    /// Returns a detached node's packet and the node after it, and frees the node.
    mutating func take(_ node: Int32) -> (handle: UInt32, length: Int, next: Int32) {
        let i = Int(node)
        let result = (handles[i], Int(lengths[i]), next[i])
        next[i] = freeHead
        freeHead = node
        return result
    }
}
