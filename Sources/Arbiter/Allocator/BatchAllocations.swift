import FixedStorage

/// The outcome of one batch of consecutive timeslots: for every slot, the (source,
/// destination) pairs allocated, the spine path selection chose for each, and what
/// happened to withdrawn and purged demand while the batch was being allocated.
///
/// Buffers are sized at start-up (`batchSize × hostCount` entries: a source sends at most
/// once per slot) and reused batch after batch. The stage writes allocations in the order
/// it makes them; ``groupBySlot()`` (path selection calls it) orders them by slot.
public final class BatchAllocations: @unchecked Sendable {
    public let batchSize: Int
    public let hostCount: Int
    /// Global number of the batch's first timeslot.
    @exclusivity(unchecked) public internal(set) var firstSlot: UInt64 = 0
    /// The allocations in the order they were made: `source | destination << 16 | slot
    /// << 32` (one spare entry past the end, which a branch-free appender may write).
    @usableFromInline let entries: FixedBuffer<UInt64>
    /// Allocations in ``entries``.
    @exclusivity(unchecked) public internal(set) var totalCount = 0
    /// After ``groupBySlot()``: the index of each allocation in ``entries``, slot by slot.
    @usableFromInline let grouped: FixedBuffer<UInt32>
    /// After ``groupBySlot()``: where each slot's allocations start in ``grouped``.
    @usableFromInline let slotStart: FixedBuffer<Int>
    @exclusivity(unchecked) public private(set) var isGrouped = false
    /// Spine of each allocation (by index in ``entries``) once path selection ran:
    /// ``intraRack`` when none is needed, ``unroutable`` when no spine had room (the
    /// allocation must not be sent).
    @usableFromInline let spines: FixedBuffer<Int16>
    public static let intraRack: Int16 = -1
    public static let unroutable: Int16 = -2

    // Withdrawals applied by a record during this batch: (source, destination, slots).
    let withdrawalSources: FixedBuffer<UInt32>
    let withdrawalDestinations: FixedBuffer<UInt32>
    let withdrawalSlots: FixedBuffer<UInt32>
    let withdrawalCapacity: Int
    /// Withdrawal reports in this batch.
    @exclusivity(unchecked) public internal(set) var withdrawalCount = 0
    /// Slots withdrawn from records during this batch (the sum of the reports).
    @exclusivity(unchecked) public internal(set) var withdrawnSlots: UInt64 = 0
    /// Slots asked to be withdrawn that had already been allocated.
    @exclusivity(unchecked) public internal(set) var withdrawalsTooLate: UInt64 = 0
    /// Demand dropped from records of purged pairs during this batch.
    @exclusivity(unchecked) public internal(set) var purgedSlots: UInt64 = 0
    /// Allocations path selection could not route (they are not to be sent).
    @exclusivity(unchecked) public internal(set) var unroutableCount = 0

    /// Sources pinned or freed (``PathStage/setSourcePinned(_:_:)``) by the feed of this
    /// batch, each host once, for the path thread to apply before routing it: so a change
    /// takes effect from exactly the batch whose feed took it, as inline. `host | 1 << 31`
    /// when pinned.
    let pinChanges: FixedBuffer<UInt32>
    /// Entries in ``pinChanges``.
    @exclusivity(unchecked) public internal(set) var pinChangeCount = 0

    /// - Parameter withdrawalCapacity: most withdrawal reports per batch (one per record at
    ///   most: the pair table's capacity).
    public init(batchSize: Int, hostCount: Int, withdrawalCapacity: Int) {
        precondition(batchSize >= 1 && batchSize <= 64 && hostCount >= 1 && hostCount <= 65_536)
        self.batchSize = batchSize
        self.hostCount = hostCount
        // A source sends at most once per slot.
        let capacity = batchSize * hostCount
        entries = FixedBuffer(repeating: 0, count: capacity + 1)
        grouped = FixedBuffer(repeating: 0, count: capacity)
        spines = FixedBuffer(repeating: Self.intraRack, count: capacity)
        slotStart = FixedBuffer(repeating: 0, count: 65 * 4)
        self.withdrawalCapacity = max(1, withdrawalCapacity)
        withdrawalSources = FixedBuffer(repeating: 0, count: self.withdrawalCapacity)
        withdrawalDestinations = FixedBuffer(repeating: 0, count: self.withdrawalCapacity)
        withdrawalSlots = FixedBuffer(repeating: 0, count: self.withdrawalCapacity)
        pinChanges = FixedBuffer(repeating: 0, count: hostCount)
    }

    func reset(firstSlot: UInt64) {
        self.firstSlot = firstSlot
        totalCount = 0
        isGrouped = false
        withdrawalCount = 0
        withdrawnSlots = 0
        withdrawalsTooLate = 0
        purgedSlots = 0
        unroutableCount = 0
        pinChangeCount = 0
    }

    /// Pin change `i` of this batch.
    public func pinChange(_ i: Int) -> (host: Int, pinned: Bool) {
        let e = pinChanges[i]
        return (Int(e & 0x7FFF_FFFF), e >> 31 != 0)
    }

    /// Adds a pin change (the caller lists each host at most once per batch).
    func notePinChange(host: Int, pinned: Bool) {
        precondition(pinChangeCount < hostCount)
        pinChanges[pinChangeCount] = UInt32(host) | (pinned ? 1 << 31 : 0)
        pinChangeCount += 1
    }

    /// Replaces the contents with `entries` (`source | destination << 16 | slot << 32`,
    /// as ``allocation(_:)`` reads them) for the batch starting at `firstSlot`: for
    /// replaying recorded allocations (benchmarks, tests).
    public func replace(firstSlot: UInt64, with entries: UnsafeBufferPointer<UInt64>) {
        precondition(entries.count <= batchSize * hostCount)
        reset(firstSlot: firstSlot)
        if let base = entries.baseAddress { self.entries.base.update(from: base, count: entries.count) }
        totalCount = entries.count
    }

    /// The allocations as entries (see ``replace(firstSlot:with:)``).
    public var allocationEntries: UnsafeBufferPointer<UInt64> {
        UnsafeBufferPointer(start: entries.base, count: totalCount)
    }

    /// Allocation `i` in the order made: batch slot (0..<batchSize), source, destination.
    @inlinable
    public func allocation(_ i: Int) -> (slot: Int, source: Int, destination: Int) {
        let e = entries[i]
        return (
            Int(truncatingIfNeeded: e >> 32), Int(truncatingIfNeeded: e & 0xFFFF),
            Int(truncatingIfNeeded: (e >> 16) & 0xFFFF)
        )
    }

    /// Sorts the allocations by slot (a stable counting sort) so that the per-slot
    /// accessors work; path selection does it first. Idempotent.
    public func groupBySlot() {
        guard !isGrouped else { return }
        // Four interleaved histograms: consecutive allocations often share a slot, and one
        // counter per slot would chain every increment through the same memory.
        let histograms = slotStart.base
        for i in 0..<(65 * 4) { histograms[i] = 0 }
        let n = totalCount
        var i = 0
        while i + 4 <= n {
            histograms[Int(truncatingIfNeeded: entries[i] >> 32)] &+= 1
            histograms[65 &+ Int(truncatingIfNeeded: entries[i &+ 1] >> 32)] &+= 1
            histograms[130 &+ Int(truncatingIfNeeded: entries[i &+ 2] >> 32)] &+= 1
            histograms[195 &+ Int(truncatingIfNeeded: entries[i &+ 3] >> 32)] &+= 1
            i &+= 4
        }
        while i < n {
            histograms[Int(truncatingIfNeeded: entries[i] >> 32)] &+= 1
            i &+= 1
        }
        // Starts per slot into the first histogram; the other three become write cursors.
        var total = 0
        for s in 0..<batchSize {
            let c = histograms[s] &+ histograms[65 &+ s] &+ histograms[130 &+ s] &+ histograms[195 &+ s]
            histograms[s] = total
            histograms[65 &+ s] = total
            total &+= c
        }
        histograms[batchSize] = total
        for i in 0..<n {
            let e = entries[i]
            let s = Int(truncatingIfNeeded: e >> 32)
            let at = histograms[65 &+ s]
            grouped[at] = UInt32(truncatingIfNeeded: i)
            histograms[65 &+ s] = at &+ 1
        }
        isGrouped = true
    }

    /// Allocations in slot `firstSlot + slot` (after ``groupBySlot()``).
    @inlinable
    public func count(inSlot slot: Int) -> Int {
        precondition(isGrouped, "groupBySlot() first")
        return slotStart[slot &+ 1] &- slotStart[slot]
    }

    /// Source host index of allocation `i` of slot `firstSlot + slot` (after grouping).
    @inlinable
    public func source(slot: Int, _ i: Int) -> Int {
        Int(truncatingIfNeeded: entries[Int(grouped[slotStart[slot] &+ i])] & 0xFFFF)
    }

    /// Destination host index of allocation `i` of slot `firstSlot + slot` (after grouping).
    @inlinable
    public func destination(slot: Int, _ i: Int) -> Int {
        Int(truncatingIfNeeded: (entries[Int(grouped[slotStart[slot] &+ i])] >> 16) & 0xFFFF)
    }

    /// Spine of allocation `i` of slot `firstSlot + slot` (see ``intraRack``,
    /// ``unroutable``); valid after path selection.
    @inlinable
    public func spine(slot: Int, _ i: Int) -> Int16 { spines[Int(grouped[slotStart[slot] &+ i])] }

    /// Spine of allocation `i` in the order made (see ``allocation(_:)``); valid after
    /// path selection.
    @inlinable
    public func spine(_ i: Int) -> Int16 { spines[i] }

    /// One withdrawal report: `slots` of the pair's demand were withdrawn.
    public func withdrawal(_ i: Int) -> (source: Int, destination: Int, slots: UInt32) {
        (Int(withdrawalSources[i]), Int(withdrawalDestinations[i]), withdrawalSlots[i])
    }

    @inline(__always)
    func reportWithdrawal(source: Int, destination: Int, slots: UInt32) {
        withdrawnSlots &+= UInt64(slots)
        // A pair has one record and a record syncs at most once per batch, so the capacity
        // (the pair table's) always suffices; the guard keeps a mis-sized buffer harmless.
        guard withdrawalCount < withdrawalCapacity else { return }
        withdrawalSources[withdrawalCount] = UInt32(source)
        withdrawalDestinations[withdrawalCount] = UInt32(destination)
        withdrawalSlots[withdrawalCount] = slots
        withdrawalCount += 1
    }
}
