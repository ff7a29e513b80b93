import FixedStorage

/// Records of pairs that became active since the last batch, and how they join the stream
/// of blocked records: least recently served first, by the batch of their pair's last
/// service (never served, or long ago, first). Shared by the inline allocator and the
/// pipeline's stages, which feed a stage the same way.
final class FreshRecords {
    let capacity: Int
    let batchSize: Int
    private let batchShift: UInt64
    private let batchSizeIsPowerOfTwo: Bool
    let records: FixedBuffer<FlowRecord>
    @exclusivity(unchecked) private(set) var count = 0
    private let sorted: FixedBuffer<FlowRecord>
    private let buckets: FixedBuffer<Int>
    /// Next sorted record to hand to the stage.
    @exclusivity(unchecked) private var cursor = 0
    @exclusivity(unchecked) private var current: UInt16 = 0

    init(capacity: Int, batchSize: Int) {
        self.capacity = capacity
        self.batchSize = batchSize
        batchShift = UInt64(batchSize.trailingZeroBitCount)
        batchSizeIsPowerOfTwo = batchSize.nonzeroBitCount == 1
        records = FixedBuffer(repeating: FlowRecord(a: 0, b: 0), count: capacity)
        sorted = FixedBuffer(repeating: FlowRecord(a: 0, b: 0), count: capacity)
        buckets = FixedBuffer(repeating: 0, count: 256)
    }

    @inline(__always)
    private func batchNumber(ofSlot slot: UInt64) -> UInt64 {
        batchSizeIsPowerOfTwo ? slot &>> batchShift : slot / UInt64(batchSize)
    }

    /// Adds the record of a newly active pair, to be served from the batch starting at
    /// `nextSlot`; `lastServed` is slot + 1 of the pair's last service (0 when never).
    /// Services longer than 32 768 batches ago, and none, count as that old.
    @inline(__always)
    func append(_ record: FlowRecord, lastServed: UInt64, nextSlot: UInt64) {
        var r = record
        let now = batchNumber(ofSlot: nextSlot)
        let oldest = UInt16(truncatingIfNeeded: now &- 32_768)
        if lastServed == 0 {
            r.lastServedBatch = oldest
        } else {
            let served = batchNumber(ofSlot: lastServed &- 1)
            r.lastServedBatch = now &- served > 32_768 ? oldest : UInt16(truncatingIfNeeded: served)
        }
        records[count] = r
        count &+= 1
    }

    /// Sorts the records for the batch starting at `firstSlot` (a stable counting sort by
    /// age in batches, capped at 255) and gets ready to hand them out.
    func prepare(firstSlot: UInt64) {
        current = UInt16(truncatingIfNeeded: batchNumber(ofSlot: firstSlot))
        cursor = 0
        guard count > 1 else {
            if count == 1 { sorted[0] = records[0] }
            return
        }
        for b in 0..<256 { buckets[b] = 0 }
        for j in 0..<count { buckets[key(records[j])] &+= 1 }
        var total = 0
        for b in 0..<256 {
            let c = buckets[b]
            buckets[b] = total
            total &+= c
        }
        for j in 0..<count {
            let b = key(records[j])
            sorted[buckets[b]] = records[j]
            buckets[b] &+= 1
        }
    }

    /// Oldest first: 0 for 255 batches or more.
    @inline(__always)
    private func key(_ r: FlowRecord) -> Int { 255 &- Int(min(current &- r.lastServedBatch, 255)) }

    @inline(__always)
    private func age(_ r: FlowRecord) -> UInt16 { current &- r.lastServedBatch }

    /// Serves `n` records of the stream (blocked in the previous batch, oldest service
    /// first) with the fresh records merged in where they belong. Segments go to the
    /// stage straight from the buffers they are in.
    func serve(stream: UnsafeMutablePointer<FlowRecord>, count n: Int, stage: AllocationStage) {
        var i = 0
        while cursor < count && i < n {
            let freshAge = age(sorted[cursor])
            var k = i
            while k < n && age(stream[k]) > freshAge { k &+= 1 }
            if k > i { stage.serveFirstRound(stream + i, count: k &- i) }
            i = k
            guard i < n else { return }
            var e = cursor &+ 1
            let limit = age(stream[i])
            while e < count && age(sorted[e]) >= limit { e &+= 1 }
            stage.serveFirstRound(sorted.base + cursor, count: e &- cursor)
            cursor = e
        }
        if i < n { stage.serveFirstRound(stream + i, count: n &- i) }
    }

    /// The stream has ended: serves the fresh records not handed out yet, and empties.
    func finish(stage: AllocationStage) {
        if cursor < count { stage.serveFirstRound(sorted.base + cursor, count: count &- cursor) }
        count = 0
        cursor = 0
    }
}
