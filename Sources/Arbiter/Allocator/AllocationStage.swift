import Atomics
import FastpassProtocol
import FixedStorage

/// Counters of one allocation stage.
public struct AllocationStageStatistics: Sendable, Hashable {
    public var batches: UInt64 = 0
    public var allocations: UInt64 = 0
    /// Records looked at, all rounds included.
    public var recordVisits: UInt64 = 0
    /// Times a record looked at its pair's shared word because its group changed.
    public var syncs: UInt64 = 0
    /// Records that ran out of demand and left the pipeline.
    public var retired: UInt64 = 0
    /// Records found purged (their demand dropped).
    public var purgedRecords: UInt64 = 0
    /// Times a record left its pair word alone and waited for a later batch because a
    /// later batch's feed had purged its source or destination (allocator threads).
    public var postponedByPurge: UInt64 = 0
    public init() {}
}

/// The allocation algorithm for one batch of consecutive timeslots, the code every pipeline
/// stage runs (and the inline allocator runs on one thread).
///
/// Per batch, each source and each destination has a bitmap of the slots it is still free
/// in; a flow is given the earliest slot free at both ends (and, when the fabric is
/// oversubscribed, with room on its source rack's uplinks and its destination rack's
/// downlinks). Flows arrive least recently served first; under max-min fairness each gets
/// one slot per round, rounds repeat until every flow is out of demand or blocked, and
/// blocked flows leave for the next batch in an order that keeps the least recently
/// served ahead: first those a round could not serve, then those it served last.
///
/// All storage is allocated at construction; a batch allocates nothing.
public final class AllocationStage: @unchecked Sendable {
    public let hostCount: Int
    public let batchSize: Int
    public let policy: AllocationPolicy
    /// Whether this stage is the only thread using its ``DemandTable`` (inline use).
    public let exclusive: Bool
    let rackCount: Int
    let fullMask: UInt64

    let sourceFree: FixedBuffer<UInt64>
    let destinationFree: FixedBuffer<UInt64>
    /// The same as 16-bit words, for the max-min loop when a batch has at most 16 slots:
    /// a quarter of the cache footprint, which matters with thousands of hosts.
    let narrowSourceFree: FixedBuffer<UInt16>
    let narrowDestinationFree: FixedBuffer<UInt16>
    /// Whether this batch's max-min rounds use the 16-bit bitmaps.
    @exclusivity(unchecked) var narrow = false
    /// Set by the owner when so many changes happened since the last batch that a 16-bit
    /// group counter may have come back to a value a record remembers: this batch, every
    /// record reads its pair word, and none retires without reading it.
    @exclusivity(unchecked) public var syncEveryRecord = false
    let rackOf: FixedBuffer<UInt16>
    let hostsInRack: FixedBuffer<Int32>
    let hostWeight: FixedBuffer<UInt8>
    let hostClass: FixedBuffer<UInt8>
    let upFree: FixedBuffer<UInt64>
    let downFree: FixedBuffer<UInt64>
    /// Room left per (rack, slot): `rack * 64 + slot`.
    let upRoom: FixedBuffer<Int32>
    let downRoom: FixedBuffer<Int32>
    let linkRate: LinkRate
    /// Usable spines per rack, shared with whoever marks links down.
    let usableSpines: AtomicWords
    /// Slots kept free of data on the arbiter's rack, shared with the arbiter core.
    let controlReservation: ControlReservation?
    /// Allocator threads: per host, the batch before which its demand as a source (`[h]`)
    /// and as a destination (`[hostCount + h]`) was purged, stored by the feed before it
    /// purges (``PipelineDemand/resetSource(_:)``). Nil for the inline allocator, whose
    /// purges never come while a batch is being allocated.
    let purgedAt: AtomicWords?
    /// Whether this batch needs the rack counters (some rack could exceed its uplinks).
    @exclusivity(unchecked) var rackLimited = false

    let table: DemandTable
    /// The pair table's entries: pair word at `pair << entryShift`, last service at
    /// `serviceBase + pair << entryShift`.
    let entryWords: UnsafeMutablePointer<UInt64.AtomicRepresentation>
    let entryShift: Int
    let serviceBase: Int
    let changes: UnsafeMutablePointer<UInt16.AtomicRepresentation>
    let changeMask: Int

    /// Records still being served this batch (the next round's input).
    let work: FixedBuffer<FlowRecord>
    @exclusivity(unchecked) var workCount = 0
    /// Records served in the current round that cannot be served again in this batch.
    @exclusivity(unchecked) var servedBlocked: UnsafeMutablePointer<FlowRecord>
    @exclusivity(unchecked) var servedBlockedCount = 0
    /// The same from the previous round, held until the current round's blocked records
    /// are out: both were served in the previous round, and these last.
    @exclusivity(unchecked) var previousServedBlocked: UnsafeMutablePointer<FlowRecord>
    @exclusivity(unchecked) var previousServedBlockedCount = 0
    /// The two buffers above, which swap roles every round: ``recordCapacity`` records each.
    let blockedRecords: FixedBuffer<FlowRecord>
    /// Records blocked in this batch, in the order the next batch should see them. The
    /// owner may swap in another buffer of ``recordCapacity`` records between batches.
    @exclusivity(unchecked) public var out: UnsafeMutablePointer<FlowRecord>
    /// Records in ``out``; the owner takes them and resets it.
    @exclusivity(unchecked) public var outCount = 0
    /// Room in every record buffer: a pair has one record, so the pair table's capacity.
    public let recordCapacity: Int
    let sortScratch: FixedBuffer<FlowRecord>
    let sortKeys: FixedBuffer<UInt32>
    let sortKeysScratch: FixedBuffer<UInt32>
    let sortCounts: FixedBuffer<Int>
    /// Slot each record of a 64-record chunk was given (max-min loop, phase 1 to 2).
    let chunkSlots: FixedBuffer<UInt8>

    @exclusivity(unchecked) var batch: BatchAllocations?
    @exclusivity(unchecked) var firstSlot: UInt64 = 0
    /// The batch's number as purges number batches (its first slot ÷ the batch size).
    @exclusivity(unchecked) var batchNumber: UInt64 = 0
    /// Records set aside until a later batch (see ``postpone(_:change:)``), handed on
    /// after this batch's blocked ones.
    let postponed: FixedBuffer<FlowRecord>
    @exclusivity(unchecked) var postponedCount = 0
    @exclusivity(unchecked) var batchTag: UInt16 = 0
    @exclusivity(unchecked) var allocationEntries: UnsafeMutablePointer<UInt64>
    /// Allocations written into ``allocationEntries`` in this batch.
    @exclusivity(unchecked) var allocationCount = 0

    @exclusivity(unchecked) public private(set) var statistics = AllocationStageStatistics()

    /// - Parameters:
    ///   - usableSpines: usable spines per rack (links marked down lower it), read at the
    ///     start of every batch.
    ///   - hostWeights: weight of each source host under ``AllocationPolicy/weightedFair``.
    ///   - hostClasses: class of each source host under ``AllocationPolicy/strictPriority``.
    ///   - controlReservation: slots kept free of inter-rack data on one rack (the
    ///     arbiter's), read at the start of every batch.
    ///   - purgedAt: with other stages and a feed running beside this one, per host the
    ///     batch from which a purge of its demand (as a source, then as a destination:
    ///     `2 × hosts` words) applies.
    public init(
        topology: Topology, table: DemandTable, batchSize: Int, policy: AllocationPolicy, usableSpines: AtomicWords,
        hostWeights: [UInt8]? = nil, hostClasses: [UInt8]? = nil, exclusive: Bool = false,
        controlReservation: ControlReservation? = nil, purgedAt: AtomicWords? = nil
    ) {
        precondition(purgedAt == nil || purgedAt!.count == 2 * topology.hostCount)
        self.controlReservation = controlReservation
        self.purgedAt = purgedAt
        self.exclusive = exclusive
        precondition(batchSize >= 1 && batchSize <= 64)
        precondition(table.hostCount == topology.hostCount && usableSpines.count == topology.rackCount)
        hostCount = topology.hostCount
        rackCount = topology.rackCount
        self.batchSize = batchSize
        self.policy = policy
        fullMask = batchSize == 64 ? .max : (1 << UInt64(batchSize)) - 1
        linkRate = topology.linkRate
        self.usableSpines = usableSpines
        self.table = table
        entryWords = table.entries.storage
        entryShift = table.entryShift
        serviceBase = table.serviceBase
        changes = table.changes.storage
        changeMask = table.changeMask

        sourceFree = FixedBuffer(repeating: 0, count: hostCount)
        destinationFree = FixedBuffer(repeating: 0, count: hostCount)
        narrowSourceFree = FixedBuffer(repeating: 0, count: hostCount)
        narrowDestinationFree = FixedBuffer(repeating: 0, count: hostCount)
        rackOf = FixedBuffer(repeating: 0, count: hostCount)
        rackOf.base.update(from: topology.rackOf, count: hostCount)
        hostWeight = FixedBuffer(repeating: 1, count: hostCount)
        hostClass = FixedBuffer(repeating: 0, count: hostCount)
        for h in 0..<hostCount {
            hostWeight[h] = max(1, hostWeights.map { $0[h] } ?? 1)
            hostClass[h] = hostClasses.map { $0[h] } ?? 0
        }
        hostsInRack = FixedBuffer(repeating: 0, count: rackCount)
        for r in 0..<rackCount { hostsInRack[r] = Int32(topology.hostsOfRack[r].count) }
        upFree = FixedBuffer(repeating: 0, count: rackCount)
        downFree = FixedBuffer(repeating: 0, count: rackCount)
        upRoom = FixedBuffer(repeating: 0, count: rackCount * 64)
        downRoom = FixedBuffer(repeating: 0, count: rackCount * 64)

        recordCapacity = table.recordCapacity
        work = FixedBuffer(repeating: FlowRecord(a: 0, b: 0), count: recordCapacity)
        blockedRecords = FixedBuffer(repeating: FlowRecord(a: 0, b: 0), count: 2 * recordCapacity)
        servedBlocked = blockedRecords.base
        previousServedBlocked = blockedRecords.base + recordCapacity
        out = .allocate(capacity: recordCapacity)
        postponed = FixedBuffer(repeating: FlowRecord(a: 0, b: 0), count: recordCapacity)
        sortScratch = FixedBuffer(repeating: FlowRecord(a: 0, b: 0), count: recordCapacity)
        sortKeys = FixedBuffer(repeating: 0, count: recordCapacity)
        sortKeysScratch = FixedBuffer(repeating: 0, count: recordCapacity)
        sortCounts = FixedBuffer(repeating: 0, count: 256)
        chunkSlots = FixedBuffer(repeating: 0, count: 64)
        // A placeholder until the first batch: a batch always brings its own buffer.
        placeholderEntries = FixedBuffer(repeating: 0, count: 1)
        allocationEntries = placeholderEntries.base
    }

    private let placeholderEntries: FixedBuffer<UInt64>

    deinit {
        out.deallocate()
    }

    // MARK: Batch protocol

    /// Starts allocating the batch whose first slot is `firstSlot`, into `batch` (reset
    /// here). Records then come in through ``serveFirstRound(_:count:)`` least recently
    /// served first, and ``finishBatch()`` completes it.
    public func beginBatch(firstSlot: UInt64, into batch: BatchAllocations) {
        precondition(batch.batchSize == batchSize && batch.hostCount == hostCount)
        batch.reset(firstSlot: firstSlot)
        self.batch = batch
        self.firstSlot = firstSlot
        batchTag = Self.batchTag(firstSlot: firstSlot, batchSize: batchSize)
        batchNumber = firstSlot / UInt64(batchSize)
        postponedCount = 0
        allocationEntries = batch.entries.base
        allocationCount = 0
        workCount = 0
        servedBlockedCount = 0
        previousServedBlockedCount = 0
        prepareRackRoom()
        // Only the max-min rounds without rack limits run on the narrow bitmaps; a batch
        // uses one kind throughout.
        narrow = batchSize <= 16 && !rackLimited && (policy == .maxMinFair || policy == .strictPriority)
        if narrow {
            narrowSourceFree.base.update(repeating: UInt16(truncatingIfNeeded: fullMask), count: hostCount)
            narrowDestinationFree.base.update(repeating: UInt16(truncatingIfNeeded: fullMask), count: hostCount)
        } else {
            sourceFree.base.update(repeating: fullMask, count: hostCount)
            destinationFree.base.update(repeating: fullMask, count: hostCount)
        }
        statistics.batches &+= 1
    }

    /// Takes no slot of this batch for source `host` (call between ``beginBatch(firstSlot:into:)``
    /// and the first flow served): its flows stay pending, unserved, for a later batch.
    public func holdSource(_ host: Int) {
        if narrow { narrowSourceFree[host] = 0 } else { sourceFree[host] = 0 }
    }

    /// The 16-bit batch number records carry as ``FlowRecord/lastServedBatch``.
    @inlinable
    public static func batchTag(firstSlot: UInt64, batchSize: Int) -> UInt16 {
        UInt16(truncatingIfNeeded: firstSlot / UInt64(batchSize))
    }

    /// Fills the per-rack counters for this batch's slots and decides whether they are
    /// needed at all: with full bisection no rack can exceed its uplinks, and the fast loop
    /// skips them.
    private func prepareRackRoom() {
        // One rack: no uplinks to exceed.
        guard rackCount > 1 else {
            rackLimited = false
            return
        }
        var limited = false
        var minimumPerLink = Int.max
        for s in 0..<batchSize {
            minimumPerLink = min(minimumPerLink, linkRate.capacity(inSlot: firstSlot &+ UInt64(s)))
        }
        for r in 0..<rackCount {
            let spines = Int(usableSpines[r].load(ordering: .relaxed))
            if spines * minimumPerLink < Int(hostsInRack[r]) { limited = true }
        }
        let reserved = controlReservation?.current ?? (rack: -1, upSlots: 0, downSlots: 0, phase: 0)
        let reservedRack = reserved.upSlots > 0 || reserved.downSlots > 0 ? reserved.rack : -1
        if reservedRack >= 0 && reservedRack < rackCount { limited = true }
        rackLimited = limited
        guard limited else { return }
        for r in 0..<rackCount {
            let spines = Int(usableSpines[r].load(ordering: .relaxed))
            var upMask: UInt64 = 0
            var downMask: UInt64 = 0
            for s in 0..<batchSize {
                let t = firstSlot &+ UInt64(s)
                let room = Int32(spines * linkRate.capacity(inSlot: t))
                var up = room
                var down = room
                if r == reservedRack {
                    if ControlReservation.keepsUp(
                        slot: t, upSlots: reserved.upSlots, phase: reserved.phase, batchSize: batchSize)
                    {
                        up = 0
                    }
                    if ControlReservation.keepsDown(slot: t, downSlots: reserved.downSlots, batchSize: batchSize) {
                        down = 0
                    }
                }
                upRoom[r &* 64 &+ s] = up
                downRoom[r &* 64 &+ s] = down
                if up > 0 { upMask |= 1 << UInt64(s) }
                if down > 0 { downMask |= 1 << UInt64(s) }
            }
            upFree[r] = upMask
            downFree[r] = downMask
        }
    }

    /// Serves records in the first round of the batch, in the order given (least recently
    /// served first): each checks its pair for changes (new demand, withdrawals, purges),
    /// then takes its slot(s). Records that cannot be served at all go to ``out`` at once,
    /// so a next stage can start on them while this one continues.
    public func serveFirstRound(_ records: UnsafeMutablePointer<FlowRecord>, count: Int) {
        guard count > 0 else { return }
        switch policy {
        case .maxMinFair:
            if rackLimited {
                serveRoundLimited(records, count, checkChanges: true)
            } else {
                serveRoundMaxMin(records, count, checkChanges: true)
            }
        case .weightedFair:
            serveRoundGeneral(records, count, checkChanges: true, rackLimited: rackLimited, mode: .weighted)
        case .shortestRemainingFirst, .strictPriority:
            collect(records, count)
        }
    }

    /// Completes the batch: the remaining rounds (or, for the sorting policies, the whole
    /// allocation). Afterwards every record is in ``out`` or has left the pipeline.
    public func finishBatch() {
        switch policy {
        case .maxMinFair, .weightedFair:
            runRounds()
        case .shortestRemainingFirst:
            // Fewest slots first; each flow takes every slot it can, so one pass suffices.
            sortWork(byDemand: true)
            let n = workCount
            sortScratch.base.update(from: work.base, count: n)
            workCount = 0
            serveRoundGeneral(sortScratch.base, n, checkChanges: false, rackLimited: rackLimited, mode: .greedy)
        case .strictPriority:
            // Classes in order; a class's rounds are over before the next class starts.
            sortWork(byDemand: false)
            let total = workCount
            sortScratch.base.update(from: work.base, count: total)
            workCount = 0
            var start = 0
            while start < total {
                let cls = hostClass[sortScratch[start].source]
                var end = start + 1
                while end < total && hostClass[sortScratch[end].source] == cls { end += 1 }
                workCount = 0
                serveOneRound(sortScratch.base + start, end - start, checkChanges: false)
                runRounds()
                start = end
            }
        }
        if postponedCount > 0 {
            (out + outCount).update(from: postponed.base, count: postponedCount)
            outCount &+= postponedCount
            postponedCount = 0
        }
        batch?.totalCount = allocationCount
        batch = nil
        syncEveryRecord = false
        let retired = statistics.retired &- retiredPublished
        if retired > 0 {
            table.retirements.wrappingIncrement(by: Int(retired), ordering: .relaxed)
            retiredPublished = statistics.retired
        }
    }
    @exclusivity(unchecked) private var retiredPublished: UInt64 = 0

    /// Rounds over ``work`` until it is empty (the first round is over when called).
    private func runRounds() {
        while true {
            endRound()
            guard workCount > 0 else { break }
            let n = workCount
            workCount = 0
            serveOneRound(work.base, n, checkChanges: false)
        }
        endRound()
    }

    @inline(__always)
    private func serveOneRound(_ input: UnsafeMutablePointer<FlowRecord>, _ n: Int, checkChanges: Bool) {
        if policy == .weightedFair {
            serveRoundGeneral(input, n, checkChanges: checkChanges, rackLimited: rackLimited, mode: .weighted)
        } else if rackLimited {
            serveRoundLimited(input, n, checkChanges: checkChanges)
        } else {
            serveRoundMaxMin(input, n, checkChanges: checkChanges)
        }
    }

    /// A round is over, and its blocked records that it could not serve are out: the
    /// previous round's served-and-blocked records follow them (served a round earlier,
    /// they were still served later than these had been), and this round's wait a round.
    private func endRound() {
        if previousServedBlockedCount > 0 {
            (out + outCount).update(from: previousServedBlocked, count: previousServedBlockedCount)
            outCount &+= previousServedBlockedCount
        }
        swap(&servedBlocked, &previousServedBlocked)
        previousServedBlockedCount = servedBlockedCount
        servedBlockedCount = 0
    }

    /// Records held for this batch and not allocated yet (the sorting policies hold them
    /// until ``finishBatch()``).
    public var heldCount: Int { workCount }

    // MARK: The loops

    /// One max-min round without rack limits, the common case. A record that finds no
    /// slot goes out at once (a branch: making it branch-free cost more stores than the
    /// mispredictions it saved, measured); one that is served is written both to the next
    /// round and to the blocked list, and only the right count moves on, because whether
    /// it could be served again is as random as a coin.
    ///
    /// `input` may be ``work`` itself: a record is written back at most once, never ahead
    /// of the one being read.
    private func serveRoundMaxMin(_ input: UnsafeMutablePointer<FlowRecord>, _ count: Int, checkChanges: Bool) {
        if checkChanges {
            serveFirstRoundMaxMin(input, count)
        } else {
            serveLaterRoundMaxMin(input, count)
        }
    }

    @inline(never)
    private func serveFirstRoundMaxMin(_ input: UnsafeMutablePointer<FlowRecord>, _ count: Int) {
        if narrow {
            maxMinLoop(input, count, checkChanges: true, narrowSourceFree.base, narrowDestinationFree.base)
        } else {
            maxMinLoop(input, count, checkChanges: true, sourceFree.base, destinationFree.base)
        }
    }

    @inline(never)
    private func serveLaterRoundMaxMin(_ input: UnsafeMutablePointer<FlowRecord>, _ count: Int) {
        if narrow {
            maxMinLoop(input, count, checkChanges: false, narrowSourceFree.base, narrowDestinationFree.base)
        } else {
            maxMinLoop(input, count, checkChanges: false, sourceFree.base, destinationFree.base)
        }
    }

    @inline(__always)
    private func maxMinLoop<Mask: FixedWidthInteger & UnsignedInteger>(
        _ input: UnsafeMutablePointer<FlowRecord>, _ count: Int, checkChanges: Bool,
        _ sourceFree: UnsafeMutablePointer<Mask>, _ destinationFree: UnsafeMutablePointer<Mask>
    ) {
        let changes = self.changes
        let changeMask = self.changeMask
        let work = self.work.base
        let out = self.out
        let servedBlocked = self.servedBlocked
        let entries = allocationEntries
        let tag = UInt64(batchTag) &<< 48
        var w = workCount
        var o = outCount
        var b = servedBlockedCount
        var a = allocationCount
        let start = a
        for i in 0..<count {
            var r = input[i]
            if checkChanges {
                let change = UnsafeAtomic<UInt16>(at: changes + (r.pair & changeMask)).load(ordering: .acquiring)
                if change != r.seenChange || syncEveryRecord {
                    guard let synced = sync(r, change: change) else { continue }
                    r = synced
                }
            }
            let s = Int(truncatingIfNeeded: r.a & 0xFFFF)
            let d = Int(truncatingIfNeeded: (r.a &>> 16) & 0xFFFF)
            let m = sourceFree[s] & destinationFree[d]
            if m == 0 {
                out[o] = r
                o &+= 1
                continue
            }
            let bit = m & (0 &- m)
            let slot = UInt64(truncatingIfNeeded: m.trailingZeroBitCount)
            sourceFree[s] ^= bit
            destinationFree[d] ^= bit
            entries[a] = (r.a & 0xFFFF_FFFF) | slot &<< 32
            a &+= 1
            r.a &-= 1 &<< 32
            r.b = (r.b & 0x0000_FFFF_FFFF_FFFF) | tag
            if r.a &>> 32 == 0 {
                guard let continued = retire(r, slot: Int(truncatingIfNeeded: slot)) else { continue }
                r = continued
            }
            // Whether it can be served again this batch is as random as whether it was
            // served: both places get the record, the right count moves on.
            let more = m ^ bit != 0 ? 1 : 0
            work[w] = r
            servedBlocked[b] = r
            w &+= more
            b &+= more ^ 1
        }
        allocationCount = a
        workCount = w
        outCount = o
        servedBlockedCount = b
        statistics.allocations &+= UInt64(a &- start)
        statistics.recordVisits &+= UInt64(count)
    }

    /// One max-min round with the rack counters of an oversubscribed fabric.
    @inline(never)
    private func serveRoundLimited(_ input: UnsafeMutablePointer<FlowRecord>, _ count: Int, checkChanges: Bool) {
        serveRoundGeneral(input, count, checkChanges: checkChanges, rackLimited: true, mode: .oneSlot)
    }

    enum RoundMode {
        /// One slot per record per round (max-min).
        case oneSlot
        /// Up to the source host's weight per round.
        case weighted
        /// Every slot it can, in one visit (shortest remaining first).
        case greedy
    }

    /// One round for every policy and fabric: ``serveRoundMaxMin(_:_:checkChanges:)``
    /// with rack counters, weights and greedy service, and plain branches.
    @inline(__always)
    private func serveRoundGeneral(
        _ input: UnsafeMutablePointer<FlowRecord>, _ count: Int, checkChanges: Bool, rackLimited: Bool,
        mode: RoundMode
    ) {
        let sourceFree = self.sourceFree.base
        let destinationFree = self.destinationFree.base
        let rackOf = self.rackOf.base
        let upFree = self.upFree.base
        let downFree = self.downFree.base
        let upRoom = self.upRoom.base
        let downRoom = self.downRoom.base
        let changes = self.changes
        let changeMask = self.changeMask
        let entries = allocationEntries
        let tag = UInt64(batchTag) << 48
        var allocated = allocationCount
        for i in 0..<count {
            var r = input[i]
            if checkChanges {
                let change = UnsafeAtomic<UInt16>(at: changes + (r.pair & changeMask)).load(ordering: .acquiring)
                if change != r.seenChange || syncEveryRecord {
                    guard let synced = sync(r, change: change) else { continue }
                    r = synced
                }
            }
            let s = r.source
            let d = r.destination
            var sourceRack = 0
            var destinationRack = 0
            var crossRack = false
            var m = sourceFree[s] & destinationFree[d]
            if rackLimited {
                sourceRack = Int(rackOf[s])
                destinationRack = Int(rackOf[d])
                crossRack = sourceRack != destinationRack
                if crossRack { m &= upFree[sourceRack] & downFree[destinationRack] }
            }
            if m == 0 {
                out[outCount] = r
                outCount &+= 1
                continue
            }
            var quota: Int
            switch mode {
            case .oneSlot: quota = 1
            case .weighted: quota = Int(hostWeight[s])
            case .greedy: quota = Int.max
            }
            var slot = 0
            while true {
                slot = m.trailingZeroBitCount
                let bit: UInt64 = 1 << UInt64(slot)
                sourceFree[s] ^= bit
                destinationFree[d] ^= bit
                m ^= bit
                if rackLimited && crossRack {
                    let ui = sourceRack &* 64 &+ slot
                    let di = destinationRack &* 64 &+ slot
                    upRoom[ui] &-= 1
                    downRoom[di] &-= 1
                    if upRoom[ui] == 0 {
                        upFree[sourceRack] ^= bit
                        m &= ~bit
                    }
                    if downRoom[di] == 0 {
                        downFree[destinationRack] ^= bit
                        m &= ~bit
                    }
                }
                entries[allocated] = UInt64(r.hosts) | UInt64(slot) << 32
                allocated &+= 1
                r.a &-= 1 << 32
                quota &-= 1
                if r.demand == 0 || m == 0 || quota == 0 { break }
            }
            r.b = (r.b & 0x0000_FFFF_FFFF_FFFF) | tag
            if r.demand == 0 {
                guard let continued = retire(r, slot: slot) else { continue }
                r = continued
            }
            if mode == .greedy {
                out[outCount] = r
                outCount &+= 1
            } else if m == 0 {
                servedBlocked[servedBlockedCount] = r
                servedBlockedCount &+= 1
            } else {
                work[workCount] = r
                workCount &+= 1
            }
        }
        statistics.allocations &+= UInt64(allocated &- allocationCount)
        allocationCount = allocated
        statistics.recordVisits &+= UInt64(count)
    }

    /// The first-round check without allocating (the sorting policies allocate only once
    /// the whole batch's records are in).
    private func collect(_ records: UnsafeMutablePointer<FlowRecord>, _ count: Int) {
        for i in 0..<count {
            var r = records[i]
            let change = UnsafeAtomic<UInt16>(at: changes + (r.pair & changeMask)).load(ordering: .acquiring)
            if change != r.seenChange || syncEveryRecord {
                guard let synced = sync(r, change: change) else { continue }
                r = synced
            }
            work[workCount] = r
            workCount += 1
        }
        statistics.recordVisits &+= UInt64(count)
    }

    // MARK: Pair word protocol

    /// Compare-and-swap of a pair word; a plain load and store when this stage is the only
    /// thread touching the table (the inline allocator), where nothing can race.
    @inline(__always)
    private func exchange(
        _ word: UnsafeAtomic<UInt64>, expected: UInt64, desired: UInt64
    ) -> (exchanged: Bool, original: UInt64) {
        if exclusive {
            let current = word.load(ordering: .relaxed)
            guard current == expected else { return (false, current) }
            word.store(desired, ordering: .relaxed)
            return (true, current)
        }
        return word.compareExchange(expected: expected, desired: desired, ordering: .acquiringAndReleasing)
    }

    /// Brings a record up to date with its pair's shared word: drops the demand it carried
    /// if the pair was purged, applies a withdrawal to the demand it carries, then absorbs
    /// demand added after; a record left without demand retires. Returns nil when the
    /// record leaves the pipeline.
    ///
    /// Takes and returns the record by value: an `inout` would pin the hot loop's record
    /// to memory.
    @inline(never)
    private func sync(_ record: FlowRecord, change: UInt16) -> FlowRecord? {
        var r = record
        statistics.syncs &+= 1
        r.seenChange = change
        let word = UnsafeAtomic<UInt64>(at: entryWords + (r.pair &<< entryShift))
        // The change counter was read before the word: a change after this read moves it
        // on again, and the record looks again.
        var current = word.load(ordering: .acquiring)
        while PairWord.hasChanges(current) {
            // Only a purged word can hold what came after a purge (the record has not
            // looked since, or it would have stopped here); read after the word, whose
            // purge comes with its batch (stored first).
            if PairWord.isPurged(current) && purgedLater(r) {
                postpone(r, change: change)
                return nil
            }
            var demand = UInt64(r.demand)
            let purged = PairWord.isPurged(current) ? demand : 0
            demand -= purged
            let withdrawn = min(PairWord.withdrawal(current), demand)
            demand -= withdrawn
            let tooLate = PairWord.withdrawal(current) - withdrawn
            let take = min(PairWord.added(current), UInt64(UInt32.max) - demand)
            demand += take
            let (done, original) = exchange(
                word, expected: current, desired: PairWord.make(active: true, added: PairWord.added(current) - take))
            if !done {
                current = original
                continue
            }
            table.noteWaitingChange(-Int64(take))
            if PairWord.isPurged(current) {
                statistics.purgedRecords &+= 1
                batch?.purgedSlots &+= purged
            }
            if withdrawn > 0 {
                batch?.reportWithdrawal(source: r.source, destination: r.destination, slots: UInt32(withdrawn))
            }
            if tooLate > 0 { batch?.withdrawalsTooLate &+= tooLate }
            r.demand = UInt32(demand)
            break
        }
        if r.demand == 0 { return retire(r, slot: nil) }
        return r
    }

    /// A record ran out of demand: it leaves the pipeline unless demand was added
    /// meanwhile (then it continues with that). `slot` is the batch slot it was just
    /// served in, if it was. Returns the continuing record, or nil.
    @inline(never)
    private func retire(_ record: FlowRecord, slot: Int?) -> FlowRecord? {
        var r = record
        if let slot {
            UnsafeAtomic<UInt64>(at: entryWords + (serviceBase &+ r.pair &<< entryShift)).store(
                firstSlot &+ UInt64(slot) &+ 1, ordering: .relaxed)
        }
        let change = UnsafeAtomic<UInt16>(at: changes + (r.pair & changeMask)).load(ordering: .acquiring)
        let word = UnsafeAtomic<UInt64>(at: entryWords + (r.pair &<< entryShift))
        if exclusive && change == r.seenChange && !syncEveryRecord {
            // Alone with the table, and nothing changed since the record looked: the word
            // is plainly active; storing idle needs no read of a line that is rarely cached.
            word.store(0, ordering: .relaxed)
            statistics.retired &+= 1
            return nil
        }
        var current = word.load(ordering: .acquiring)
        while true {
            // As in sync(_:change:). A word not purged may go idle: demand added after a
            // purge it has not seen yet starts a record of its own, in that feed's batch.
            if PairWord.isPurged(current) && purgedLater(r) {
                postpone(r, change: change)
                return nil
            }
            // A withdrawal finds nothing left to withdraw; a purge finds nothing to drop.
            let tooLate = PairWord.withdrawal(current)
            let added = PairWord.added(current)
            let take = min(added, UInt64(UInt32.max))
            let next = take > 0 ? PairWord.make(active: true, added: added - take) : 0
            let (done, original) = exchange(word, expected: current, desired: next)
            if !done {
                current = original
                continue
            }
            if tooLate > 0 { batch?.withdrawalsTooLate &+= tooLate }
            table.noteWaitingChange(-Int64(take))
            guard take > 0 else {
                statistics.retired &+= 1
                return nil
            }
            // Demand arrived since the record last looked: keep going with it.
            r.demand = UInt32(take)
            r.seenChange = change
            return r
        }
    }

    /// Whether the feed of a batch after this one purged the record's source or
    /// destination. With allocator threads that feed may run while this batch is in its
    /// rounds, and anything added to the pair after the purge is the host's new demand,
    /// which the arbiter core counts only from the purge's batch on: allocated here, it
    /// would be dropped there as stale and lost for good. Read after the pair word, which
    /// the feed changed after storing the batch.
    @inline(__always)
    private func purgedLater(_ r: FlowRecord) -> Bool {
        guard let purgedAt else { return false }
        return purgedAt[r.source].load(ordering: .acquiring) > batchNumber
            || purgedAt[hostCount &+ r.destination].load(ordering: .acquiring) > batchNumber
    }

    /// Sets a record aside for the next batch without touching its pair word (the purge,
    /// withdrawals and demand there wait for a batch they belong to). Its remembered
    /// change is made to differ from the group's, so that the next stage looks at the pair
    /// again in its first round and, if that batch is still before the purge, sets it
    /// aside again; it may carry no demand until then.
    @inline(never)
    private func postpone(_ record: FlowRecord, change: UInt16) {
        var r = record
        r.seenChange = change &- 1
        postponed[postponedCount] = r
        postponedCount &+= 1
        statistics.postponedByPurge &+= 1
    }

    // MARK: Sorting (stable LSD radix sort of `work`, allocation-free)

    /// Sorts ``work`` stably by remaining demand (shortest first) or by priority class.
    private func sortWork(byDemand: Bool) {
        let n = workCount
        guard n > 1 else { return }
        var maxKey: UInt32 = 0
        for i in 0..<n {
            let key = byDemand ? work[i].demand : UInt32(hostClass[work[i].source])
            sortKeys[i] = key
            maxKey = max(maxKey, key)
        }
        var source = (records: work.base, keys: sortKeys.base)
        var target = (records: sortScratch.base, keys: sortKeysScratch.base)
        // Eight bits per pass, and only as many passes as the largest key needs.
        var shift: UInt32 = 0
        while shift < 32 && (maxKey >> shift) != 0 {
            for b in 0..<256 { sortCounts[b] = 0 }
            for i in 0..<n { sortCounts[Int((source.keys[i] >> shift) & 0xFF)] += 1 }
            var total = 0
            for b in 0..<256 {
                let c = sortCounts[b]
                sortCounts[b] = total
                total += c
            }
            for i in 0..<n {
                let b = Int((source.keys[i] >> shift) & 0xFF)
                let t = sortCounts[b]
                sortCounts[b] = t + 1
                target.records[t] = source.records[i]
                target.keys[t] = source.keys[i]
            }
            swap(&source, &target)
            shift += 8
        }
        if source.records != work.base { work.base.update(from: source.records, count: n) }
    }
}
