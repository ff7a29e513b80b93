import Atomics
import FixedStorage

/// How the timeslot allocator is set up.
public struct TimeslotAllocatorConfiguration: Sendable, Hashable {
    /// Consecutive timeslots allocated together (1...64).
    public var batchSize = 16
    public var policy: AllocationPolicy = .maxMinFair
    /// Most (source, destination) pairs with demand at once; nil picks
    /// `min(hosts × (hosts − 1), max(65 536, 64 × hosts))`. Memory is proportional to it.
    public var pairCapacity: Int?
    /// How the pair table is laid out; the default picks direct indexing where it takes no
    /// more memory than hashing (up to about 700 hosts with the default capacity).
    public var pairTable: PairTableLayout = .automatic
    /// Weight of each source host under ``AllocationPolicy/weightedFair`` (default 1).
    public var hostWeights: [UInt8]?
    /// Class of each source host under ``AllocationPolicy/strictPriority`` (default 0, the
    /// first served); also selects a class weight.
    public var hostClasses: [UInt8]?
    /// Weight of each class under ``AllocationPolicy/weightedFair``, multiplied with the
    /// host's weight (capped at 255).
    public var classWeights: [UInt8]?

    public init() {}

    /// Why the configuration cannot work for `hosts` hosts, naming the field; nil when it can.
    public func problem(hosts: Int) -> String? {
        if batchSize < 1 || batchSize > 64 { return "allocator.batchSize: must be in 1...64 (got \(batchSize))" }
        if let c = pairCapacity, c < 1 || c > 1 << 28 {
            return "allocator.pairCapacity: must be in 1...268435456 (got \(c))"
        }
        if pairTable == .direct && hosts * hosts > Self.directPairLimit {
            return "allocator.pairTable: direct needs 16 bytes for each of \(hosts)² pairs, "
                + "\(hosts * hosts * 16 >> 20) MiB (at most \(Self.directPairLimit * 16 >> 20) MiB); use automatic or hashed"
        }
        if let w = hostWeights {
            if w.count != hosts { return "allocator.hostWeights: \(w.count) entries for \(hosts) hosts" }
            if let i = w.firstIndex(of: 0) { return "allocator.hostWeights[\(i)]: must be at least 1" }
        }
        if let c = hostClasses, c.count != hosts {
            return "allocator.hostClasses: \(c.count) entries for \(hosts) hosts"
        }
        if let w = classWeights {
            if w.count > 256 { return "allocator.classWeights: at most 256 classes (got \(w.count))" }
            if let i = w.firstIndex(of: 0) { return "allocator.classWeights[\(i)]: must be at least 1" }
        }
        return nil
    }

    /// Most pairs a direct pair table may be asked for (16 bytes each: 1 GiB).
    static let directPairLimit = 1 << 26

    /// The pair capacity used for `hosts` hosts.
    public func effectivePairCapacity(hosts: Int) -> Int {
        if let c = pairCapacity { return c }
        return max(1, min(hosts * (hosts - 1), max(65_536, 64 * hosts)))
    }
}

/// One request for ``TimeslotAllocator/addDemand(_:)``: `slots` more from host `source`
/// to host `destination` (dense indices).
public struct DemandRequest: Sendable, Hashable, BitwiseCopyable {
    public var source: Int32
    public var destination: Int32
    public var slots: UInt32

    public init(source: Int, destination: Int, slots: UInt32) {
        self.source = Int32(truncatingIfNeeded: source)
        self.destination = Int32(truncatingIfNeeded: destination)
        self.slots = slots
    }
}

/// Counters of the allocator's communication side.
public struct TimeslotAllocatorStatistics: Sendable, Hashable {
    /// Demand accepted, in slots.
    public var requestedSlots: UInt64 = 0
    /// Demand refused (pair table full of active pairs), in slots.
    public var refusedSlots: UInt64 = 0
    /// Times demand was refused.
    public var refusals: UInt64 = 0
    /// Slots allocated (and, when routing, routed).
    public var allocatedSlots: UInt64 = 0
    /// Slots withdrawn at once or from records.
    public var withdrawnSlots: UInt64 = 0
    /// Demand dropped by purges (reset sources, removed hosts).
    public var purgedSlots: UInt64 = 0
    /// Allocations path selection could not route; their demand is requested again.
    public var unroutable: UInt64 = 0
    /// Slots given back that not even the table's reserve could take (should stay 0).
    public var lostSlots: UInt64 = 0
    public init() {}
}

/// The timeslot allocator on one thread: the same ``AllocationStage`` code the pipeline
/// runs, driven batch by batch, deterministically (the simulator and the tests use it).
///
/// Demand is added, withdrawn and purged between batches; ``allocateNextBatch()`` then
/// allocates the next batch of timeslots and (unless disabled) chooses paths.
public final class TimeslotAllocator {
    public let configuration: TimeslotAllocatorConfiguration
    public private(set) var topology: Topology
    public let table: DemandTable
    let stage: AllocationStage
    let usableSpines: AtomicWords
    /// Slots kept free of inter-rack data on one rack, for the arbiter's FCP packets.
    public let controlReservation = ControlReservation()
    let pathStage: PathStage?
    let batch: BatchAllocations
    /// Records blocked in the previous batch: this batch's first-round input.
    @exclusivity(unchecked) var stream: UnsafeMutablePointer<FlowRecord>
    @exclusivity(unchecked) var streamCount = 0
    /// Records of pairs that became active since the last batch.
    let fresh: FreshRecords
    /// First slot of the next batch.
    @exclusivity(unchecked) public private(set) var nextSlot: UInt64

    @exclusivity(unchecked) public private(set) var statistics = TimeslotAllocatorStatistics()
    @exclusivity(unchecked) private var changesAtLastBatch: UInt64 = 0
    /// Sources held back (``setSourceHeld(_:_:)``), listed and flagged.
    let held: FixedBuffer<Int32>
    let isHeld: FixedBuffer<Bool>
    @exclusivity(unchecked) var heldCount = 0
    #if DEBUG
        let audit: AllocatorAudit
    #endif

    /// - Parameters:
    ///   - firstSlot: global number of the first slot to allocate.
    ///   - routing: whether to run path selection on every batch.
    ///   - pathMethod: how path selection chooses spines.
    public init(
        topology: Topology, configuration: TimeslotAllocatorConfiguration = .init(), firstSlot: UInt64 = 0,
        routing: Bool = true, pathMethod: PathSelector.Method = .edgeColoring
    ) throws(TopologyError) {
        let hosts = topology.hostCount
        if let problem = configuration.problem(hosts: hosts) {
            throw TopologyError(field: "allocator", reason: problem)
        }
        self.configuration = configuration
        self.topology = topology
        let capacity = configuration.effectivePairCapacity(hosts: hosts)
        // Reserve: one batch's allocations, the most that can be given back at once.
        table = DemandTable(
            capacity: capacity, hostCount: hosts, reserve: configuration.batchSize * hosts,
            layout: configuration.pairTable)
        let records = table.recordCapacity
        usableSpines = AtomicWords(count: topology.rackCount)
        for r in 0..<topology.rackCount {
            usableSpines[r].store(UInt64(Self.usable(topology, rack: r)), ordering: .relaxed)
        }
        let weights = Self.weights(configuration, hosts: hosts)
        stage = AllocationStage(
            topology: topology, table: table, batchSize: configuration.batchSize, policy: configuration.policy,
            usableSpines: usableSpines, hostWeights: weights, hostClasses: configuration.hostClasses, exclusive: true,
            controlReservation: controlReservation)
        pathStage =
            routing ? PathStage(topology: topology, batchSize: configuration.batchSize, method: pathMethod) : nil
        batch = BatchAllocations(batchSize: configuration.batchSize, hostCount: hosts, withdrawalCapacity: records)
        stream = .allocate(capacity: records)
        fresh = FreshRecords(capacity: records, batchSize: configuration.batchSize)
        nextSlot = firstSlot
        held = FixedBuffer(repeating: 0, count: hosts)
        isHeld = FixedBuffer(repeating: false, count: hosts)
        #if DEBUG
            audit = AllocatorAudit(hostCount: hosts)
        #endif
    }

    deinit {
        stream.deallocate()
    }

    /// Weight of each source host: its own times its class's, at most 255.
    static func weights(_ configuration: TimeslotAllocatorConfiguration, hosts: Int) -> [UInt8] {
        (0..<hosts).map { h in
            let cls = Int(configuration.hostClasses?[h] ?? 0)
            let classWeight = configuration.classWeights.flatMap { cls < $0.count ? Int($0[cls]) : nil } ?? 1
            return UInt8(min(255, Int(configuration.hostWeights?[h] ?? 1) * classWeight))
        }
    }

    static func usable(_ topology: Topology, rack: Int) -> Int {
        var n = 0
        for s in 0..<topology.spineCount where topology.isUsable(rack: rack, spine: s) { n += 1 }
        return n
    }

    public var stageStatistics: AllocationStageStatistics { stage.statistics }

    // MARK: Demand

    /// Adds `slots` of demand from host `source` to host `destination` (dense indices).
    /// Returns false, counted, when the pair table is full of active pairs: the caller
    /// keeps the demand and offers it again later.
    @discardableResult
    public func addDemand(source: Int, destination: Int, slots: UInt32) -> Bool {
        precondition(source >= 0 && source < topology.hostCount && destination >= 0 && destination < topology.hostCount)
        precondition(source != destination, "a host cannot send to itself through the fabric")
        guard slots > 0 else { return true }
        switch table.add(source: UInt32(source), destination: UInt32(destination), slots: slots) {
        case .merged:
            statistics.requestedSlots &+= UInt64(slots)
            return true
        case .activated(let record, let lastServed):
            statistics.requestedSlots &+= UInt64(slots)
            fresh.append(record, lastServed: lastServed, nextSlot: nextSlot)
            return true
        case .refused:
            statistics.refusedSlots &+= UInt64(slots)
            statistics.refusals &+= 1
            return false
        }
    }

    /// Adds several requests in order, as ``addDemand(source:destination:slots:)`` would one
    /// by one, but looks each pair up a few requests ahead: with a pair table larger than
    /// the caches (hashed, thousands of hosts) the lookups then wait for memory together
    /// instead of one after another. Refused requests are moved to the front of
    /// `requests`, in order; returns how many there are.
    public func addDemand(_ requests: UnsafeMutableBufferPointer<DemandRequest>) -> Int {
        table.addInOrder(requests) {
            addDemand(source: Int($0.source), destination: Int($0.destination), slots: $0.slots)
        }
    }

    /// Withdraws up to `slots` of the pair's demand not yet allocated. Returns what was
    /// withdrawn at once; the rest is withdrawn (as far as it is not allocated by then)
    /// during the next batch, which reports it in ``BatchAllocations/withdrawal(_:)``.
    public func withdraw(source: Int, destination: Int, slots: UInt64) -> UInt64 {
        let now = table.withdraw(source: UInt32(source), destination: UInt32(destination), slots: slots)
        statistics.withdrawnSlots &+= now
        return now
    }

    /// Forgets all demand of `source` (its endpoint reset).
    public func resetSource(_ source: Int) {
        let s = UInt32(source)
        statistics.purgedSlots &+= table.purge(source: s)
    }

    /// Holds source `host` back (no slot allocated to it, its demand kept) or lets it go
    /// again, from the next batch: for an endpoint that is not reading its allocations,
    /// whose slots would only arrive too late while others could use them.
    public func setSourceHeld(_ host: Int, _ on: Bool) {
        if on {
            guard !isHeld[host] else { return }
            isHeld[host] = true
            held[heldCount] = Int32(host)
            heldCount += 1
        } else {
            guard isHeld[host] else { return }
            isHeld[host] = false
            for k in 0..<heldCount where held[k] == Int32(host) {
                heldCount -= 1
                held[k] = held[heldCount]
                break
            }
        }
    }

    /// Forgets all demand from and to `host` (it went away).
    public func removeHost(_ host: Int) {
        let h = UInt32(host)
        statistics.purgedSlots &+= table.purge(host: h)
    }

    /// Pins the inter-rack allocations of source `host` to its pinned spine, or frees them
    /// (``PathStage/setSourcePinned(_:_:)``), from the next batch. Does nothing without
    /// routing.
    public func setSourcePinned(_ host: Int, _ pinned: Bool) {
        pathStage?.setSourcePinned(host, pinned)
    }

    /// Marks a ToR↔spine link down or up; takes effect from the next batch.
    public func setLink(rack: Int, spine: Int, up: Bool) throws(TopologyError) {
        try topology.setLink(rack: rack, spine: spine, up: up)
        topologyChanged()
    }

    /// Marks a spine down or up; takes effect from the next batch.
    public func setSpine(_ spine: Int, up: Bool) throws(TopologyError) {
        try topology.setSpine(spine, up: up)
        topologyChanged()
    }

    private func topologyChanged() {
        for r in 0..<topology.rackCount {
            usableSpines[r].store(UInt64(Self.usable(topology, rack: r)), ordering: .relaxed)
        }
        pathStage?.update(topology)
    }

    // MARK: Allocation

    /// Allocates the next batch of timeslots. The result is valid until the next call.
    /// Unroutable allocations (possible only with links down) are marked, not counted as
    /// allocated, and their demand is requested again.
    public func allocateNextBatch() -> BatchAllocations {
        stage.beginBatch(firstSlot: nextSlot, into: batch)
        for k in 0..<heldCount { stage.holdSource(Int(held[k])) }
        if table.changesNoted &- changesAtLastBatch >= 65_535 { stage.syncEveryRecord = true }
        changesAtLastBatch = table.changesNoted
        // `stream` holds the previous batch's blocked records; the stage writes this
        // batch's into its other buffer, and the two trade places afterwards.
        stage.outCount = 0
        fresh.prepare(firstSlot: nextSlot)
        fresh.serve(stream: stream, count: streamCount, stage: stage)
        fresh.finish(stage: stage)
        stage.finishBatch()
        streamCount = stage.outCount
        swap(&stream, &stage.out)
        stage.outCount = 0
        nextSlot &+= UInt64(configuration.batchSize)

        var allocated = UInt64(batch.totalCount)
        if let pathStage {
            let failed = pathStage.route(batch)
            if failed > 0 {
                allocated -= UInt64(failed)
                statistics.unroutable &+= UInt64(failed)
                requestUnroutableAgain()
            }
        }
        statistics.allocatedSlots &+= allocated
        statistics.withdrawnSlots &+= batch.withdrawnSlots
        statistics.purgedSlots &+= batch.purgedSlots
        #if DEBUG
            audit.checkOnePerHostPerSlot(batch)
            AllocatorAudit.checkAccounting(
                statistics, waitingInPairWords: table.waitingDemandKept.load(ordering: .relaxed),
                records: UnsafeBufferPointer(start: stream, count: streamCount),
                more: UnsafeBufferPointer(start: fresh.records.base, count: fresh.count), table: table)
        #endif
        return batch
    }

    /// Moves on to `slot` without allocating the slots before it (the caller fell behind
    /// the clock); demand waits for the batches from `slot` on.
    public func skip(to slot: UInt64) {
        if slot > nextSlot { nextSlot = slot }
    }

    private func requestUnroutableAgain() {
        for i in 0..<batch.totalCount where batch.spine(i) == BatchAllocations.unroutable {
            let a = batch.allocation(i)
            putBack(source: a.source, destination: a.destination, slots: 1)
        }
    }

    /// Gives back `slots` allocated to the pair that the caller could not use (a session
    /// could not place them): they stop counting as allocated and are pending again, not
    /// new demand. They may use the table's reserve; when even that is full (only if the
    /// caller gives back far more than a batch at once) they are counted lost and false
    /// is returned.
    @discardableResult
    public func requestAgain(source: Int, destination: Int, slots: UInt32) -> Bool {
        statistics.allocatedSlots &-= UInt64(slots)
        return putBack(source: source, destination: destination, slots: slots)
    }

    /// Puts back demand that left the allocator's counts without counting it as new.
    @discardableResult
    private func putBack(source: Int, destination: Int, slots: UInt32) -> Bool {
        switch table.add(source: UInt32(source), destination: UInt32(destination), slots: slots, givenBack: true) {
        case .merged:
            return true
        case .activated(let record, let lastServed):
            fresh.append(record, lastServed: lastServed, nextSlot: nextSlot)
            return true
        case .refused:
            statistics.lostSlots &+= UInt64(slots)
            return false
        }
    }

    // MARK: Inspection

    /// Demand not yet allocated: carried by records, or added and not yet absorbed.
    public var outstandingSlots: UInt64 {
        var total = table.waitingDemand
        for i in 0..<streamCount where table.isCurrent(pair: stream[i].pair) {
            total &+= UInt64(stream[i].demand)
        }
        for i in 0..<fresh.count where table.isCurrent(pair: fresh.records[i].pair) {
            total &+= UInt64(fresh.records[i].demand)
        }
        return total
    }

    /// Records waiting for the next batch.
    public var recordCount: Int { streamCount + fresh.count }
}
