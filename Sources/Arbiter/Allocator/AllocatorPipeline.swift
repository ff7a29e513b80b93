import Atomics
import CPlatform
import FixedStorage

#if canImport(Glibc)
    import Glibc
#endif

/// Waiting without a lock: a few spins with the processor's pause hint, then yielding the
/// CPU, so that a machine with fewer cores than threads still makes progress.
@usableFromInline
struct Backoff {
    @usableFromInline var spins = 0
    @inlinable init() {}
    @inlinable mutating func wait() {
        spins &+= 1
        if spins < 128 {
            fp_cpu_relax()
        } else {
            sched_yield()
        }
    }
}

/// How the threaded allocator runs.
public struct PipelineConfiguration: Sendable, Hashable {
    /// Allocation stages, each on its own thread (at least 2; one stage is the inline
    /// ``TimeslotAllocator``).
    public var stages = 2
    /// Whether path selection runs, on a thread of its own after the stages.
    public var routing = true
    /// CPU for each stage thread, then for the path thread; nil leaves threads unpinned, as
    /// does -1 for one thread.
    public var cpus: [Int]?
    /// Real-time pacing; nil runs batches back to back as fast as they go (virtual clock).
    public var schedule: RealTimeSchedule?
    /// Batch buffers per stage: how far the consumer may lag behind a stage.
    public var buffersPerStage = 4
    /// How the path thread chooses spines.
    public var pathMethod: PathSelector.Method = .edgeColoring

    public init() {}

    /// Why the configuration cannot work, naming the field; nil when it can.
    public var problem: String? {
        if stages < 2 || stages > 64 { return "pipeline.stages: must be in 2...64 (got \(stages))" }
        if buffersPerStage < 1 || buffersPerStage > 64 {
            return "pipeline.buffersPerStage: must be in 1...64 (got \(buffersPerStage))"
        }
        if let cpus, let bad = cpus.first(where: { $0 < -1 || $0 >= 1024 }) {
            return "pipeline.cpus: \(bad) is not a CPU number"
        }
        if let schedule, !(schedule.slotNanoseconds > 0) || schedule.leadBatches < 1 {
            return "pipeline.schedule: slot length must be positive and lead at least one batch"
        }
        return nil
    }
}

/// When each timeslot happens on the monotonic clock: slot `s` starts at `origin +
/// s × slotNanoseconds`. A batch may start being allocated `leadBatches` batches before its
/// first slot, and must be finished (and routed) by then; a batch finished later is late.
public struct RealTimeSchedule: Sendable, Hashable {
    public var origin: UInt64
    public var slotNanoseconds: Double
    public var leadBatches: Int

    public init(origin: UInt64, slotNanoseconds: Double, leadBatches: Int) {
        self.origin = origin
        self.slotNanoseconds = slotNanoseconds
        self.leadBatches = leadBatches
    }

    /// Monotonic nanoseconds at which `slot` starts.
    public func start(ofSlot slot: UInt64) -> UInt64 { origin &+ UInt64(Double(slot) * slotNanoseconds) }

    /// The monotonic clock, in nanoseconds.
    public static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }
}

/// What a pipeline run did.
public struct PipelineStatistics: Sendable, Hashable {
    public var batches: UInt64 = 0
    public var allocations: UInt64 = 0
    public var unroutable: UInt64 = 0
    /// Batches finished (allocated, and routed when routing) after their first slot began.
    public var lateBatches: UInt64 = 0
    /// The latest a batch was finished after its first slot began.
    public var maximumLatenessNanoseconds: UInt64 = 0
    /// Times a stage found the next stage's ring full and had to wait.
    public var ringFullWaits: UInt64 = 0
    /// Demand refused because the pair table was full of active pairs.
    public var refusedRequests: UInt64 = 0
    public var stages: [AllocationStageStatistics] = []
    public var pinnedThreads = 0
    public init() {}
}

/// The demand side of the pipeline, handed to the feed for one batch at a time: adding,
/// withdrawing and purging demand. Only valid during that call.
public final class PipelineDemand: @unchecked Sendable {
    let table: DemandTable
    let fresh: FreshRecords
    let hostCount: Int
    @exclusivity(unchecked) var nextSlot: UInt64 = 0
    @exclusivity(unchecked) var refusals: UInt64 = 0
    /// Demand dropped from pair words by purges (records' demand is counted by stages).
    @exclusivity(unchecked) public private(set) var purgedSlots: UInt64 = 0
    @exclusivity(unchecked) public private(set) var withdrawnSlots: UInt64 = 0
    /// Slots of unroutable allocations requested again (not new demand).
    @exclusivity(unchecked) public private(set) var requestedAgain: UInt64 = 0
    /// Of those, refused by a full table (lost: counted, and the table is the problem).
    @exclusivity(unchecked) public private(set) var requestAgainRefused: UInt64 = 0

    /// Per host, shared by the stages' feeds: the batch before which demand from it
    /// (`[h]`) and towards it (`[hostCount + h]`) was purged.
    let purgedAt: AtomicWords

    /// Pin changes made by this feed, each host once (its latest state), handed to the
    /// batch the feed precedes; per host, its index in the list or -1.
    let pinHosts: FixedBuffer<Int32>
    let pinStates: FixedBuffer<Bool>
    let pinIndex: FixedBuffer<Int32>
    @exclusivity(unchecked) var pinCount = 0

    init(table: DemandTable, fresh: FreshRecords, hostCount: Int, purgedAt: AtomicWords) {
        self.table = table
        self.fresh = fresh
        self.hostCount = hostCount
        self.purgedAt = purgedAt
        pinHosts = FixedBuffer(repeating: 0, count: hostCount)
        pinStates = FixedBuffer(repeating: false, count: hostCount)
        pinIndex = FixedBuffer(repeating: -1, count: hostCount)
    }

    /// Pins the inter-rack allocations of source `host` to its pinned spine, or frees them
    /// (``PathStage/setSourcePinned(_:_:)``), from the batch this feed precedes: the batch
    /// carries the change to the path thread, which applies it before routing that batch.
    public func setSourcePinned(_ host: Int, _ pinned: Bool) {
        precondition(host >= 0 && host < hostCount)
        let i = Int(pinIndex[host])
        if i >= 0 {
            pinStates[i] = pinned
            return
        }
        pinIndex[host] = Int32(pinCount)
        pinHosts[pinCount] = Int32(host)
        pinStates[pinCount] = pinned
        pinCount += 1
    }

    /// Moves this feed's pin changes into the batch it preceded.
    func handPinChanges(to batch: BatchAllocations) {
        for i in 0..<pinCount {
            let host = Int(pinHosts[i])
            batch.notePinChange(host: host, pinned: pinStates[i])
            pinIndex[host] = -1
        }
        pinCount = 0
    }

    /// The batch this feed precedes.
    private var batchNumber: UInt64 { nextSlot / UInt64(fresh.batchSize) }

    /// Adds `slots` from `source` to `destination` (dense host indices); false (counted)
    /// when the pair table is full of active pairs.
    @discardableResult
    public func addDemand(source: Int, destination: Int, slots: UInt32) -> Bool {
        precondition(source >= 0 && source < hostCount && destination >= 0 && destination < hostCount)
        precondition(source != destination)
        switch table.add(source: UInt32(source), destination: UInt32(destination), slots: slots) {
        case .merged: return true
        case .activated(let record, let lastServed):
            fresh.append(record, lastServed: lastServed, nextSlot: nextSlot)
            return true
        case .refused:
            refusals &+= 1
            return false
        }
    }

    /// See ``TimeslotAllocator/addDemand(_:)``.
    public func addDemand(_ requests: UnsafeMutableBufferPointer<DemandRequest>) -> Int {
        table.addInOrder(requests) {
            addDemand(source: Int($0.source), destination: Int($0.destination), slots: $0.slots)
        }
    }

    /// Puts back one slot of demand whose allocation, in batch `batch`, could not be routed
    /// (dropped, counted as purged, when the pair was purged after that batch).
    func requestAgain(source: Int, destination: Int, batch: UInt64) {
        if batch < purgedAt[source].load(ordering: .relaxed)
            || batch < purgedAt[hostCount + destination].load(ordering: .relaxed)
        {
            purgedSlots &+= 1
            return
        }
        switch table.add(source: UInt32(source), destination: UInt32(destination), slots: 1, givenBack: true) {
        case .merged:
            requestedAgain &+= 1
        case .activated(let record, let lastServed):
            requestedAgain &+= 1
            fresh.append(record, lastServed: lastServed, nextSlot: nextSlot)
        case .refused:
            requestAgainRefused &+= 1
        }
    }

    /// See ``TimeslotAllocator/withdraw(source:destination:slots:)``.
    public func withdraw(source: Int, destination: Int, slots: UInt64) -> UInt64 {
        let now = table.withdraw(source: UInt32(source), destination: UInt32(destination), slots: slots)
        withdrawnSlots &+= now
        return now
    }

    /// Forgets the demand from `source`, from the batch this feed precedes: demand added
    /// after it is served from that batch on, never by a batch before it still being
    /// allocated (see ``AllocationStage``'s `purgedLater`).
    public func resetSource(_ source: Int) {
        let s = UInt32(source)
        // Stored before the pair words change: a stage that sees a word changed by the
        // purge, or after it, sees the batch too.
        purgedAt[source].store(batchNumber, ordering: .releasing)
        purgedSlots &+= table.purge(source: s)
    }

    /// Forgets the demand from and to `host`, from the batch this feed precedes (as
    /// ``resetSource(_:)``).
    public func removeHost(_ host: Int) {
        let h = UInt32(host)
        purgedAt[host].store(batchNumber, ordering: .releasing)
        purgedAt[hostCount + host].store(batchNumber, ordering: .releasing)
        purgedSlots &+= table.purge(host: h)
    }
}

/// The timeslot allocator on several cores: stage `j` owns batches `j, j + k, j + 2k, …`.
/// A stage streams the records it could not serve to the next stage through a
/// single-producer single-consumer ring as it goes, so the next stage starts its first
/// round while this one is still in its later rounds. Path selection runs on its own
/// thread and takes the batches in order.
///
/// Demand enters through a feed called at the start of every batch, in batch order, on
/// the thread of the stage that starts it (a token passed from stage to stage makes the
/// calls one at a time, so the pair table keeps a single writer). Everything is
/// allocated when the pipeline is made; running allocates nothing.
public final class AllocatorPipeline: @unchecked Sendable {
    public let topology: Topology
    public let allocatorConfiguration: TimeslotAllocatorConfiguration
    /// Set before a run starts (the schedule), read by its threads.
    public internal(set) var configuration: PipelineConfiguration
    let table: DemandTable
    let usableSpines: AtomicWords
    /// Slots kept free of inter-rack data on one rack, for the arbiter's FCP packets.
    public let controlReservation: ControlReservation
    let stages: [AllocationStage]
    let demand: [PipelineDemand]
    let fresh: [FreshRecords]
    /// `rings[j]`: records stage `j` could not serve, for stage `j + 1`.
    let rings: [SPSCRing<FlowRecord>]
    /// Per stage: its batch buffers, finished ones (to the path thread) and free ones.
    let buffers: [[BatchAllocations]]
    let done: [SPSCRing<Int>]
    let free: [SPSCRing<Int>]
    let pathStage: PathStage?
    /// The batch whose feed may run next.
    let feedToken = ManagedAtomic<Int>(0)
    /// Each stage's chunk, `chunkSize` records at `j * chunkSize`, on cache lines of its
    /// own: the stages run on different threads.
    let chunks: FixedBuffer<FlowRecord>
    static let chunkSize = 256
    /// Per stage: the table's change count at its last feed.
    let changesSeen: FixedBuffer<UInt64>
    /// Allocations path selection could not route, from the path thread to whichever stage
    /// runs the next feed (the token orders the consumers): their demand is requested
    /// again, unless the pair was purged since.
    let unroutableRing: SPSCRing<Unroutable>
    struct Unroutable: BitwiseCopyable {
        var source: UInt16
        var destination: UInt16
        /// The batch's number (its first slot ÷ the batch size).
        var batch: UInt64
    }
    /// Batches the feeds have moved on by since slot 0 when the clock left them behind
    /// (written only by the stage holding the feed token).
    @exclusivity(unchecked) var slotShift = 0
    /// Slots skipped that way.
    @exclusivity(unchecked) public private(set) var skippedSlots: UInt64 = 0
    /// Marks the end of a batch's records in a ring.
    static let endOfBatch = FlowRecord(a: .max, b: .max)
    @inline(__always)
    static func isEndOfBatch(_ r: FlowRecord) -> Bool { r.a == .max && r.b == .max }
    /// The next batch to allocate (runs continue where the previous one stopped).
    @exclusivity(unchecked) public private(set) var nextBatch = 0

    public init(
        topology: Topology, allocator: TimeslotAllocatorConfiguration = .init(),
        pipeline: PipelineConfiguration = .init()
    ) throws(TopologyError) {
        if let problem = allocator.problem(hosts: topology.hostCount) {
            throw TopologyError(field: "allocator", reason: problem)
        }
        if let problem = pipeline.problem { throw TopologyError(field: "pipeline", reason: problem) }
        self.topology = topology
        allocatorConfiguration = allocator
        configuration = pipeline
        let hosts = topology.hostCount
        let capacity = allocator.effectivePairCapacity(hosts: hosts)
        let k = pipeline.stages
        let table = DemandTable(
            capacity: capacity, hostCount: hosts, reserve: allocator.batchSize * hosts, layout: allocator.pairTable)
        let records = table.recordCapacity
        self.table = table
        let usableSpines = AtomicWords(count: topology.rackCount)
        self.usableSpines = usableSpines
        for r in 0..<topology.rackCount {
            usableSpines[r].store(UInt64(TimeslotAllocator.usable(topology, rack: r)), ordering: .relaxed)
        }
        let weights = TimeslotAllocator.weights(allocator, hosts: hosts)
        let controlReservation = ControlReservation()
        self.controlReservation = controlReservation
        let purgedAt = AtomicWords(count: 2 * hosts)
        stages = (0..<k).map { _ in
            AllocationStage(
                topology: topology, table: table, batchSize: allocator.batchSize, policy: allocator.policy,
                usableSpines: usableSpines, hostWeights: weights, hostClasses: allocator.hostClasses,
                controlReservation: controlReservation, purgedAt: purgedAt)
        }
        let fresh = (0..<k).map { _ in FreshRecords(capacity: records, batchSize: allocator.batchSize) }
        self.fresh = fresh
        demand = fresh.map { PipelineDemand(table: table, fresh: $0, hostCount: hosts, purgedAt: purgedAt) }
        // Every record there is can sit in one ring (a pair has one record), plus a marker
        // per batch in flight: a full ring would mean a lost record, never a wait forever.
        rings = (0..<k).map { _ in SPSCRing<FlowRecord>(capacity: records + 4 * k + 16) }
        buffers = (0..<k).map { _ in
            (0..<pipeline.buffersPerStage).map { _ in
                BatchAllocations(batchSize: allocator.batchSize, hostCount: hosts, withdrawalCapacity: records)
            }
        }
        done = (0..<k).map { _ in SPSCRing<Int>(capacity: pipeline.buffersPerStage + 1) }
        free = (0..<k).map { _ in SPSCRing<Int>(capacity: pipeline.buffersPerStage + 1) }
        pathStage =
            pipeline.routing
            ? PathStage(topology: topology, batchSize: allocator.batchSize, method: pipeline.pathMethod) : nil
        chunks = FixedBuffer(repeating: FlowRecord(a: 0, b: 0), count: k * Self.chunkSize, alignment: 64)
        changesSeen = FixedBuffer(repeating: 0, count: k)
        // Every batch that can be routed between two feeds, in full: each stage's buffers
        // and the batch it may hold fed but unbuffered.
        unroutableRing = SPSCRing(
            capacity: pipeline.routing
                ? (k * (pipeline.buffersPerStage + 1) + 2) * allocator.batchSize * topology.hostCount : 2)
    }

    /// Allocates the next `batches` batches (the first run starts at slot 0, each run
    /// continues where the previous one stopped) and returns what happened.
    ///
    /// - Parameters:
    ///   - feed: called with each batch number before the batch is allocated, in batch
    ///     order, one call at a time, on a stage thread: add and withdraw demand there.
    ///   - consume: called with every finished batch. With routing, on the path thread in
    ///     batch order; without, on the stage thread that made it, concurrently with other
    ///     stages. The batch is reused once the call returns.
    public func run(
        batches: Int, feed: @escaping @Sendable (Int, PipelineDemand) -> Void,
        consume: (@Sendable (BatchAllocations) -> Void)? = nil
    ) -> PipelineStatistics {
        let run = start(batches: batches, feed: feed, consume: consume)
        run.go()
        run.join()
        run.collect()
        return run.statistics
    }

    /// A run whose threads are started and waiting for ``go()``: everything a run
    /// allocates (threads, their bookkeeping) is done before, so the allocations counted
    /// between ``go()`` and ``join()`` are the hot loops' own.
    public final class Run: @unchecked Sendable {
        let pipeline: AllocatorPipeline
        let gate = ManagedAtomic<Bool>(false)
        var threads: [pthread_t] = []
        let results: [StageResult]
        let pathResult = StageResult()
        /// The first batch not to allocate: the run's end, or where a stop cut it short
        /// (lowered only by the stage holding the feed token, so every batch before it
        /// has been fed and will be finished).
        let end: ManagedAtomic<Int>
        let stopRequested = ManagedAtomic<Bool>(false)
        public private(set) var statistics = PipelineStatistics()

        init(pipeline: AllocatorPipeline, end: Int) {
            self.pipeline = pipeline
            self.end = ManagedAtomic(end)
            results = (0..<pipeline.stages.count).map { _ in StageResult() }
            statistics.stages.reserveCapacity(pipeline.stages.count)
        }

        /// Lets the threads start allocating.
        public func go() { gate.store(true, ordering: .releasing) }

        /// Ends the run early: batches already fed are finished (and consumed), no new
        /// one starts. Call ``join()`` after.
        public func stop() { stopRequested.store(true, ordering: .releasing) }

        /// Whether ``stop()`` was called.
        public var isStopping: Bool { stopRequested.load(ordering: .relaxed) }

        /// Waits for every thread to finish; then ``statistics`` holds the outcome.
        public func join() {
            for t in threads { pthread_join(t, nil) }
            pipeline.nextBatch = end.load(ordering: .acquiring)
        }

        /// Gathers the threads' counters (after ``join()``; this allocates).
        public func collect() {
            var statistics = PipelineStatistics()
            for (j, r) in results.enumerated() {
                statistics.allocations &+= r.allocations
                statistics.batches &+= r.batches
                statistics.lateBatches &+= r.late
                statistics.maximumLatenessNanoseconds = max(statistics.maximumLatenessNanoseconds, r.maximumLateness)
                statistics.ringFullWaits &+= r.ringFullWaits
                statistics.refusedRequests &+= pipeline.demand[j].refusals
                statistics.stages.append(pipeline.stages[j].statistics)
                if r.pinned { statistics.pinnedThreads += 1 }
            }
            if pipeline.pathStage != nil {
                statistics.lateBatches = pathResult.late
                statistics.maximumLatenessNanoseconds = pathResult.maximumLateness
                statistics.unroutable = pathResult.unroutable
                statistics.allocations = pathResult.allocations
                if pathResult.pinned { statistics.pinnedThreads += 1 }
            }
            self.statistics = statistics
        }
    }

    /// Demand not allocated yet: carried by records between stages, or added and not yet
    /// absorbed. Only between runs.
    public var outstandingSlots: UInt64 { outstandingSlots { _, _ in true } }

    /// ``outstandingSlots`` of the pairs (source, destination) `matches` accepts.
    func outstandingSlots(where matches: (Int, Int) -> Bool) -> UInt64 {
        var total = table.waitingDemand { matches(Int($0), Int($1)) }
        for ring in rings {
            ring.forEachWaiting { r in
                if !Self.isEndOfBatch(r) && matches(r.source, r.destination) && table.isCurrent(pair: r.pair) {
                    total &+= UInt64(r.demand)
                }
            }
        }
        // Unroutable slots routed after the last feed, to be requested again.
        unroutableRing.forEachWaiting { e in
            if matches(Int(e.source), Int(e.destination)) { total &+= 1 }
        }
        return total
    }

    /// Starts the threads of a run of the next `batches` batches, held until
    /// ``Run/go()``. See ``run(batches:feed:consume:)``.
    public func start(
        batches: Int, feed: @escaping @Sendable (Int, PipelineDemand) -> Void,
        consume: (@Sendable (BatchAllocations) -> Void)? = nil
    ) -> Run {
        let k = stages.count
        let first = nextBatch
        let end = first + batches
        feedToken.store(first, ordering: .relaxed)
        prepareRun(first: first)
        let run = Run(pipeline: self, end: end)
        for j in 0..<k {
            let cpu = configuration.cpus.flatMap { j < $0.count ? $0[j] : nil }
            let result = run.results[j]
            run.threads.append(
                Self.startThread { [self] in
                    if let cpu, cpu >= 0 {
                        result.pin.store(fp_pin_current_thread(Int32(cpu)) == 0 ? 1 : 2, ordering: .releasing)
                    }
                    var backoff = Backoff()
                    while !run.gate.load(ordering: .acquiring) { backoff.wait() }
                    runStage(j, first: first, run: run, feed: feed, consume: consume, result: result)
                })
        }
        if pathStage != nil {
            let cpu = configuration.cpus.flatMap { k < $0.count ? $0[k] : nil }
            let result = run.pathResult
            run.threads.append(
                Self.startThread { [self] in
                    if let cpu, cpu >= 0 {
                        result.pin.store(fp_pin_current_thread(Int32(cpu)) == 0 ? 1 : 2, ordering: .releasing)
                    }
                    var backoff = Backoff()
                    while !run.gate.load(ordering: .acquiring) { backoff.wait() }
                    runPath(first: first, run: run, consume: consume, result: result)
                })
        }
        return run
    }

    /// Gets the batch buffers and the rings ready for a run from batch `first`.
    private func prepareRun(first: Int) {
        let k = stages.count
        for j in 0..<k {
            while free[j].pop() != nil {}
            while done[j].pop() != nil {}
            for b in 0..<configuration.buffersPerStage { _ = free[j].push(b) }
        }
        // The very first batch has no predecessor: its stream is empty. Later runs find
        // the records the last batches left in the rings.
        if first == 0 { _ = rings[k - 1].push(Self.endOfBatch) }
    }

    /// What stage `index` works with, gathered once: the threads' loop and the
    /// ``Stepper`` take the same steps with them.
    struct StageParts {
        let index: Int
        let stage: AllocationStage
        let demand: PipelineDemand
        let fresh: FreshRecords
        /// The previous stage's blocked records, and this stage's for the next.
        let input: SPSCRing<FlowRecord>
        let output: SPSCRing<FlowRecord>
        let chunk: UnsafeMutablePointer<FlowRecord>
    }

    func parts(_ j: Int) -> StageParts {
        let k = stages.count
        return StageParts(
            index: j, stage: stages[j], demand: demand[j], fresh: fresh[j], input: rings[(j + k - 1) % k],
            output: rings[j], chunk: chunks.base + j * Self.chunkSize)
    }

    final class StageResult: @unchecked Sendable {
        var allocations: UInt64 = 0
        var batches: UInt64 = 0
        var late: UInt64 = 0
        var maximumLateness: UInt64 = 0
        var ringFullWaits: UInt64 = 0
        var unroutable: UInt64 = 0
        /// 0: not asked to pin (or not yet), 1: pinned, 2: pinning failed. Atomic: it is
        /// read while the run goes on.
        let pin = ManagedAtomic<Int>(0)
        var pinned: Bool { pin.load(ordering: .acquiring) == 1 }
    }

    private func runStage(
        _ j: Int, first: Int, run: Run, feed: @Sendable (Int, PipelineDemand) -> Void,
        consume: (@Sendable (BatchAllocations) -> Void)?, result: StageResult
    ) {
        let k = stages.count
        let parts = self.parts(j)
        let batchSize = UInt64(allocatorConfiguration.batchSize)
        // This stage's first batch of the run: the first one `b ≥ first` with `b % k == j`.
        var b = first + ((j - first % k) + k) % k
        while b < run.end.load(ordering: .acquiring) {
            // The feed, one batch at a time in order. A stop is decided here, by the token
            // holder, so that the batches before the end have all been fed; the token is
            // passed on so that the stages holding the next batches see the end too.
            var tokenWait = Backoff()
            var stopped = false
            while feedToken.load(ordering: .acquiring) != b {
                if b >= run.end.load(ordering: .acquiring) {
                    stopped = true
                    break
                }
                tokenWait.wait()
            }
            if stopped { break }
            if run.isStopping && b < run.end.load(ordering: .relaxed) { run.end.store(b, ordering: .releasing) }
            if b >= run.end.load(ordering: .relaxed) {
                feedToken.store(b + 1, ordering: .releasing)
                break
            }
            // Paced by the clock: wait (holding the token: the next batch starts later
            // anyway) until the batch is due, so that its feed has all demand until then.
            var firstSlot = UInt64(b + slotShift) &* batchSize
            if let schedule = configuration.schedule {
                let leadSlots = UInt64(schedule.leadBatches) &* batchSize
                let leadNanoseconds = UInt64(Double(leadSlots) * schedule.slotNanoseconds)
                var backoff = Backoff()
                while RealTimeSchedule.now() < schedule.start(ofSlot: firstSlot) &- leadNanoseconds
                    && !run.isStopping
                {
                    backoff.wait()
                }
                // Its first slot has begun: whatever it allocated would be late. Move on to
                // the first batch that is still ahead by the lead, as the inline allocator
                // skips; demand waits for it.
                let now = RealTimeSchedule.now()
                if now >= schedule.start(ofSlot: firstSlot) {
                    let slotNow = UInt64(Double(now &- schedule.origin) / schedule.slotNanoseconds)
                    let next = (slotNow + 1 + leadSlots + batchSize - 1) / batchSize * batchSize
                    skippedSlots &+= next - firstSlot
                    slotShift += Int((next - firstSlot) / batchSize)
                    firstSlot = next
                }
            }
            feedBatch(parts, b, firstSlot: firstSlot, feed: feed)
            feedToken.store(b + 1, ordering: .releasing)

            var index: Int? = free[j].pop()
            var freeWait = Backoff()
            while index == nil {
                freeWait.wait()
                index = free[j].pop()
            }
            let batch = buffers[j][index!]
            beginAllocating(parts, firstSlot: firstSlot, into: batch)
            // First round over the previous stage's records as they arrive.
            // (The previous stage may already have started its next batch behind the
            // marker: taking stops at the marker.)
            var inputWait = Backoff()
            while true {
                let (arrived, ended) = serveArrived(parts, result: result)
                if ended { break }
                if arrived {
                    inputWait = Backoff()
                } else {
                    inputWait.wait()
                }
            }
            finishAllocating(parts, result: result)

            result.batches &+= 1
            if pathStage == nil {
                result.allocations &+= UInt64(batch.totalCount)
                if let schedule = configuration.schedule { noteLateness(schedule, firstSlot: firstSlot, result) }
                consume?(batch)
                _ = free[j].push(index!)
            } else {
                var doneWait = Backoff()
                while !done[j].push(index!) { doneWait.wait() }
            }
            b += k
        }
    }

    /// The feed of batch `b` (whose first slot is `firstSlot`) on its stage, by the holder
    /// of the feed token: unroutable allocations requested again, then the caller's feed.
    @inline(__always)
    private func feedBatch(
        _ parts: StageParts, _ b: Int, firstSlot: UInt64, feed: (Int, PipelineDemand) -> Void
    ) {
        let demand = parts.demand
        demand.nextSlot = firstSlot
        while let entry = unroutableRing.pop() {
            demand.requestAgain(source: Int(entry.source), destination: Int(entry.destination), batch: entry.batch)
        }
        feed(b, demand)
        // Records may wait k batches between looks: after 65 536 changes within a
        // pipeline's turn, a group counter could have come back round.
        if table.changesNoted &- changesSeen[parts.index] >= 65_535 { parts.stage.syncEveryRecord = true }
        changesSeen[parts.index] = table.changesNoted
    }

    @inline(__always)
    private func beginAllocating(_ parts: StageParts, firstSlot: UInt64, into batch: BatchAllocations) {
        parts.stage.beginBatch(firstSlot: firstSlot, into: batch)
        parts.demand.handPinChanges(to: batch)
        parts.stage.outCount = 0
        parts.fresh.prepare(firstSlot: firstSlot)
    }

    /// Serves, in the first round, the records the previous stage has passed on so far (up
    /// to a chunk), the fresh ones merged in: whether any came, and whether the end of
    /// the previous batch did.
    @inline(__always)
    private func serveArrived(_ parts: StageParts, result: StageResult) -> (arrived: Bool, ended: Bool) {
        let (n, sawMarker) = parts.input.pop(
            into: parts.chunk, maximum: Self.chunkSize, stoppingAfter: Self.isEndOfBatch)
        guard n > 0 else { return (false, false) }
        parts.fresh.serve(stream: parts.chunk, count: sawMarker ? n - 1 : n, stage: parts.stage)
        flush(parts.stage, to: parts.output, result: result)
        return (true, sawMarker)
    }

    /// The remaining rounds; the records left blocked go to the next stage, then the end
    /// of the batch.
    @inline(__always)
    private func finishAllocating(_ parts: StageParts, result: StageResult) {
        parts.fresh.finish(stage: parts.stage)
        parts.stage.finishBatch()
        flush(parts.stage, to: parts.output, result: result)
        push(Self.endOfBatch, to: parts.output, result: result)
    }

    /// Moves the stage's blocked records to the next stage.
    @inline(__always)
    private func flush(_ stage: AllocationStage, to ring: SPSCRing<FlowRecord>, result: StageResult) {
        var sent = 0
        let n = stage.outCount
        var backoff = Backoff()
        while sent < n {
            let pushed = ring.push(stage.out + sent, count: n - sent)
            if pushed == 0 {
                result.ringFullWaits &+= 1
                backoff.wait()
            }
            sent += pushed
        }
        stage.outCount = 0
    }

    @inline(__always)
    private func push(_ record: FlowRecord, to ring: SPSCRing<FlowRecord>, result: StageResult) {
        var backoff = Backoff()
        while !ring.push(record) {
            result.ringFullWaits &+= 1
            backoff.wait()
        }
    }

    private func noteLateness(_ schedule: RealTimeSchedule, firstSlot: UInt64, _ result: StageResult) {
        let deadline = schedule.start(ofSlot: firstSlot)
        let now = RealTimeSchedule.now()
        if now > deadline {
            result.late &+= 1
            result.maximumLateness = max(result.maximumLateness, now - deadline)
        }
    }

    private func runPath(
        first: Int, run: Run, consume: (@Sendable (BatchAllocations) -> Void)?, result: StageResult
    ) {
        guard let pathStage else { return }
        let k = stages.count
        var b = first
        while b < run.end.load(ordering: .acquiring) {
            defer { b += 1 }
            let j = b % k
            var index: Int? = done[j].pop()
            var backoff = Backoff()
            while index == nil {
                // Cut short by a stop: this batch was never fed.
                if b >= run.end.load(ordering: .acquiring) { return }
                backoff.wait()
                index = done[j].pop()
            }
            let batch = buffers[j][index!]
            route(batch, pathStage, result: result)
            if let schedule = configuration.schedule { noteLateness(schedule, firstSlot: batch.firstSlot, result) }
            consume?(batch)
            var freeWait = Backoff()
            while !free[j].push(index!) { freeWait.wait() }
        }
    }

    /// Routes a finished batch; its unroutable allocations go back to the feeds.
    @inline(__always)
    private func route(_ batch: BatchAllocations, _ pathStage: PathStage, result: StageResult) {
        let failed = pathStage.route(batch)
        result.unroutable &+= UInt64(failed)
        if failed > 0 {
            for i in 0..<batch.totalCount where batch.spine(i) == BatchAllocations.unroutable {
                let a = batch.allocation(i)
                var backoff = Backoff()
                let entry = Unroutable(
                    source: UInt16(a.source), destination: UInt16(a.destination),
                    batch: batch.firstSlot / UInt64(allocatorConfiguration.batchSize))
                while !unroutableRing.push(entry) { backoff.wait() }
            }
        }
        result.allocations &+= UInt64(batch.totalCount &- failed)
        result.batches &+= 1
    }

    /// Starts a joinable thread running `body`.
    static func startThread(_ body: @escaping @Sendable () -> Void) -> pthread_t {
        final class Box: @unchecked Sendable {
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        let context = Unmanaged.passRetained(Box(body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, nil,
            { raw in
                let box = Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue()
                box.body()
                return nil
            }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        return thread
    }
}

extension AllocatorPipeline {
    /// The pipeline's steps taken one at a time on the caller's thread, in an order the
    /// caller chooses among those the threads could take: a test can then replay an
    /// interleaving of feeds and allocation exactly (a feed while earlier batches are
    /// still being allocated, say), every run alike. Not beside a run: it uses the same
    /// rings and buffers. Without a schedule (batches are not paced, none is skipped).
    final class Stepper {
        enum Step: CaseIterable {
            /// The feed of the next batch not fed.
            case feed
            /// The first round of the next batch fed (its buffer taken, the records the
            /// previous batch passed on served).
            case firstRound
            /// The remaining rounds of the batch in its first round.
            case finish
            /// Routing the next finished batch and handing it on.
            case route
        }

        let pipeline: AllocatorPipeline
        private let parts: [StageParts]
        private let result = StageResult()
        /// The batch each step would take next.
        private(set) var nextFeed: Int
        private(set) var nextFirstRound: Int
        private(set) var nextFinish: Int
        private(set) var nextRoute: Int
        /// Per stage, the buffer of the batch it is allocating.
        private var allocating: [Int]

        init(pipeline: AllocatorPipeline) {
            precondition(pipeline.configuration.schedule == nil, "a stepped pipeline is not paced")
            self.pipeline = pipeline
            let first = pipeline.nextBatch
            pipeline.prepareRun(first: first)
            parts = (0..<pipeline.stages.count).map { pipeline.parts($0) }
            nextFeed = first
            nextFirstRound = first
            nextFinish = first
            nextRoute = first
            allocating = Array(repeating: 0, count: pipeline.stages.count)
        }

        /// The batch `step` would apply to.
        func batch(of step: Step) -> Int {
            switch step {
            case .feed: nextFeed
            case .firstRound: nextFirstRound
            case .finish: nextFinish
            case .route: nextRoute
            }
        }

        /// Whether the threads could take `step` now: a feed once its stage has finished its
        /// previous batch; a first round once the batch is fed, the batch before it
        /// finished, and a buffer free; routing in batch order.
        func canTake(_ step: Step) -> Bool {
            let k = parts.count
            switch step {
            case .feed:
                return nextFeed - k < nextFinish
            case .firstRound:
                return nextFirstRound < nextFeed && nextFinish == nextFirstRound
                    && pipeline.free[nextFirstRound % k].count > 0
            case .finish:
                return nextFinish < nextFirstRound
            case .route:
                return nextRoute < nextFinish
            }
        }

        /// Takes `step`, which must be possible (``canTake(_:)``).
        func take(_ step: Step, feed: (Int, PipelineDemand) -> Void, consume: (BatchAllocations) -> Void) {
            precondition(canTake(step), "step \(step) cannot be taken now")
            let k = parts.count
            let b = batch(of: step)
            let p = parts[b % k]
            let firstSlot = UInt64(b + pipeline.slotShift) &* UInt64(pipeline.allocatorConfiguration.batchSize)
            switch step {
            case .feed:
                pipeline.feedBatch(p, b, firstSlot: firstSlot, feed: feed)
                nextFeed += 1
            case .firstRound:
                let index = pipeline.free[p.index].pop()!
                allocating[p.index] = index
                pipeline.beginAllocating(p, firstSlot: firstSlot, into: pipeline.buffers[p.index][index])
                while true {
                    let (arrived, ended) = pipeline.serveArrived(p, result: result)
                    precondition(arrived, "the previous batch's end is not in the ring")
                    if ended { break }
                }
                nextFirstRound += 1
            case .finish:
                pipeline.finishAllocating(p, result: result)
                _ = pipeline.done[p.index].push(allocating[p.index])
                nextFinish += 1
            case .route:
                let index = pipeline.done[p.index].pop()!
                let batch = pipeline.buffers[p.index][index]
                if let pathStage = pipeline.pathStage { pipeline.route(batch, pathStage, result: result) }
                consume(batch)
                _ = pipeline.free[p.index].push(index)
                nextRoute += 1
            }
        }
    }
}
