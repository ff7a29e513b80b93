import Atomics

/// A request from the communication thread to the allocator threads, applied by the feed
/// of the next batch, in the order sent.
struct AllocatorCommand: BitwiseCopyable {
    enum Kind: UInt8 {
        case add, withdraw, resetSource, removeHost
        /// Demand refused before, offered again (a refusal is not counted again by the core).
        case addAgain
        /// One slot allocated in batch `value` that the session could not place.
        case requestAgain
        /// `source`'s inter-rack allocations are pinned to their pinned spine (`value` 1:
        /// its session became a reference one) or free (0), from the next batch fed. In
        /// the ring rather than shared flags: it then applies exactly from a batch, in
        /// order with the purges and demand around it (a reset pins before its purge, so
        /// no batch carries the new session's demand unpinned).
        case pinSource
    }
    var kind: Kind
    var source: Int32
    var destination: Int32
    /// Slots, or a batch number (``Kind/requestAgain``).
    var value: UInt64
}

/// What a feed tells the communication thread about the commands it applied.
struct AllocatorEvent: BitwiseCopyable {
    enum Kind: UInt8 {
        /// The pair table was full: `value` slots of demand were not taken.
        case refused
        /// The same, for demand offered again.
        case refusedAgain
        /// `value` slots were withdrawn at once.
        case withdrawn
        /// Demand from `source` (and, when `destination` is 1, to it) was purged from
        /// batch `value` on (numbered as the results number batches).
        case purged
        /// Since the last such event: `value` slots dropped by purges from the pair table
        /// or from requests again, and `slots` asked for again that found no room even in
        /// the table's reserve.
        case counters
    }
    var kind: Kind
    var source: Int32
    var destination: Int32
    var value: UInt64
    var slots: UInt64 = 0
}

/// What the path thread hands the communication thread, batch by batch in order: a
/// ``Kind/batch`` entry, then the batch's withdrawals and routed allocations.
struct AllocatorResult: BitwiseCopyable {
    enum Kind: UInt8 {
        /// A batch begins: `value` is its number, `destination` its unroutable allocations.
        case batch
        /// `value` slots from `source` to `destination` withdrawn from a record.
        case withdrawal
        /// An allocation of slot `value` (the pipeline's numbering) through `spine`.
        case allocation
        /// `value` slots of demand carried by records were dropped by purges in the batch.
        case purged
    }
    var kind: Kind
    var spine: Int16
    var source: Int32
    var destination: Int32
    var value: UInt64
}

/// The timeslot allocator on threads of its own, for the arbiter core: the
/// ``AllocatorPipeline``'s stages and its path-selection stage, each on a configured CPU,
/// paced by the clock, fed by and reporting to the communication thread through
/// single-producer single-consumer rings, so that the communication thread never waits
/// for allocation and never takes a lock.
///
/// The communication thread sends commands (``send(_:)``; what the ring cannot take yet
/// waits in an outbox, in order, so nothing is lost); the stage that starts each batch
/// applies every command waiting, as far as the event ring has room for its answers; the
/// path thread passes every finished batch back. A purge (a reset, a removed host) is
/// applied from a batch on; allocations and withdrawals of the batches before it are
/// stale, which ``isStale(source:destination:batch:)`` tells.
final class PipelinedAllocator: @unchecked Sendable {
    let pipeline: AllocatorPipeline
    let batchSize: Int
    let commands: SPSCRing<AllocatorCommand>
    let events: SPSCRing<AllocatorEvent>
    let results: SPSCRing<AllocatorResult>
    /// Set (before the threads start) to the core's slot that is the pipeline's slot 0.
    @exclusivity(unchecked) var baseSlot: UInt64 = 0
    private var run: AllocatorPipeline.Run?
    /// Set before the run is stopped: the path thread stops waiting for room.
    private let stopping = ManagedAtomic<Bool>(false)
    private var started = false
    /// What the feeds have reported of the stages' demand counters (feed threads only,
    /// ordered by the token).
    @exclusivity(unchecked) private var reportedPurged: [UInt64]
    @exclusivity(unchecked) private var reportedLost: [UInt64]

    // The communication thread's side.
    private var outbox: [AllocatorCommand] = []
    private var outboxHead = 0
    /// Per host: purges sent whose event has not come back (as a source; as a destination).
    private let awaitingSource: UnsafeMutablePointer<Int32>
    private let awaitingDestination: UnsafeMutablePointer<Int32>
    /// Per host: the batch before which its demand (as a source; as a destination) was purged.
    private let purgedSourceBefore: UnsafeMutablePointer<UInt64>
    private let purgedDestinationBefore: UnsafeMutablePointer<UInt64>
    /// The next batch the communication thread expects.
    @exclusivity(unchecked) var nextBatch: UInt64 = 0
    @exclusivity(unchecked) var statistics = TimeslotAllocatorStatistics()
    /// Times a command waited in the outbox because the ring was full.
    @exclusivity(unchecked) var outboxed: UInt64 = 0

    init(topology: Topology, allocator: TimeslotAllocatorConfiguration, pipeline: PipelineConfiguration)
        throws(TopologyError)
    {
        self.pipeline = try AllocatorPipeline(topology: topology, allocator: allocator, pipeline: pipeline)
        batchSize = allocator.batchSize
        let hosts = topology.hostCount
        commands = SPSCRing(capacity: 65_536)
        events = SPSCRing(capacity: 65_536)
        // Every batch the stages and the path thread can hold, each full, and its
        // withdrawals: the path thread should never have to wait for the communication
        // thread.
        let perBatch = allocator.batchSize * hosts + allocator.effectivePairCapacity(hosts: hosts) / 8 + 1
        results = SPSCRing(capacity: min(1 << 24, 4 * pipeline.stages * perBatch))
        outbox.reserveCapacity(65_536)
        reportedPurged = Array(repeating: 0, count: pipeline.stages)
        reportedLost = Array(repeating: 0, count: pipeline.stages)
        awaitingSource = .allocate(capacity: hosts)
        awaitingSource.initialize(repeating: 0, count: hosts)
        awaitingDestination = .allocate(capacity: hosts)
        awaitingDestination.initialize(repeating: 0, count: hosts)
        purgedSourceBefore = .allocate(capacity: hosts)
        purgedSourceBefore.initialize(repeating: 0, count: hosts)
        purgedDestinationBefore = .allocate(capacity: hosts)
        purgedDestinationBefore.initialize(repeating: 0, count: hosts)
    }

    deinit {
        // The threads' closures hold this object unowned: the owner stops them first.
        precondition(run == nil, "allocator threads still running")
        awaitingSource.deallocate()
        awaitingDestination.deallocate()
        purgedSourceBefore.deallocate()
        purgedDestinationBefore.deallocate()
    }

    /// Starts the threads: slot `baseSlot` of the core begins at `baseStart` on the
    /// monotonic clock, each batch is started `leadBatches` batches before its first slot.
    func start(baseSlot: UInt64, baseStart: UInt64, slotNanoseconds: Double, leadBatches: Int) {
        precondition(!started, "the allocator threads start once")
        started = true
        self.baseSlot = baseSlot
        nextBatch = 0
        stopping.store(false, ordering: .relaxed)
        pipeline.configuration.schedule = RealTimeSchedule(
            origin: baseStart, slotNanoseconds: slotNanoseconds, leadBatches: leadBatches)
        let run = pipeline.start(
            batches: Int.max / 4,
            feed: { [unowned self] b, demand in feed(b, demand) },
            consume: { [unowned self] batch in consume(batch) })
        self.run = run
        run.go()
    }

    /// Instead of starting the threads: the caller takes the pipeline's steps, one at a
    /// time, with ``step(_:)`` (tests that need an exact interleaving). Slot `baseSlot` of
    /// the core is the pipeline's slot 0.
    func startStepping(baseSlot: UInt64) {
        precondition(!started, "the allocator threads start once")
        started = true
        self.baseSlot = baseSlot
        nextBatch = 0
        stepper = AllocatorPipeline.Stepper(pipeline: pipeline)
    }

    /// Set by ``startStepping(baseSlot:)``.
    private(set) var stepper: AllocatorPipeline.Stepper?

    /// Takes one step of a stepped pipeline, as its thread would: a feed applies the
    /// commands waiting, a routed batch is passed back.
    func step(_ step: AllocatorPipeline.Stepper.Step) {
        stepper!.take(step, feed: { b, demand in feed(b, demand) }, consume: { consume($0) })
    }

    /// Stops the threads (batches already started are finished) and waits for them.
    func stop() {
        guard let run else { return }
        stopping.store(true, ordering: .releasing)
        run.stop()
        run.join()
        self.run = nil
    }

    var isRunning: Bool { run != nil }

    /// The allocator threads by how their pinning went so far: pinned, and failed to pin.
    var pinning: (pinned: Int, failed: Int) {
        guard let run else { return (0, 0) }
        var pinned = 0
        var failed = 0
        for r in run.results + [run.pathResult] {
            switch r.pin.load(ordering: .acquiring) {
            case 1: pinned += 1
            case 2: failed += 1
            default: break
            }
        }
        return (pinned, failed)
    }

    // MARK: Communication thread

    /// Queues a command for the allocator threads (dropped once they are stopped: nothing
    /// would apply it).
    func send(_ command: AllocatorCommand) {
        if started && run == nil && stepper == nil { return }
        switch command.kind {
        case .resetSource:
            awaitingSource[Int(command.source)] &+= 1
        case .removeHost:
            awaitingSource[Int(command.source)] &+= 1
            awaitingDestination[Int(command.source)] &+= 1
        case .add, .addAgain:
            statistics.requestedSlots &+= command.value
        default: break
        }
        if outboxHead == outbox.count && commands.push(command) { return }
        outboxed &+= 1
        outbox.append(command)
    }

    /// Moves what waits in the outbox into the ring, in order.
    func flush() {
        while outboxHead < outbox.count {
            guard commands.push(outbox[outboxHead]) else { return }
            outboxHead += 1
        }
        if outboxHead > 0 {
            outbox.removeAll(keepingCapacity: true)
            outboxHead = 0
        }
    }

    /// Takes a feed's event into account (purges, counters) and returns it for the core.
    func note(_ e: AllocatorEvent) {
        switch e.kind {
        case .refused, .refusedAgain:
            statistics.refusals &+= 1
            statistics.refusedSlots &+= e.value
            statistics.requestedSlots &-= e.value
        case .withdrawn:
            statistics.withdrawnSlots &+= e.value
        case .purged:
            let h = Int(e.source)
            awaitingSource[h] &-= 1
            purgedSourceBefore[h] = max(purgedSourceBefore[h], e.value)
            if e.destination != 0 {
                awaitingDestination[h] &-= 1
                purgedDestinationBefore[h] = max(purgedDestinationBefore[h], e.value)
            }
        case .counters:
            statistics.purgedSlots &+= e.value
            statistics.lostSlots &+= e.slots
        }
    }

    /// Whether what the allocator said about the pair in `batch` predates a purge of
    /// either host (sent, whether or not applied yet: a purge not yet applied will be
    /// applied after any batch that has already come back).
    func isStale(source: Int, destination: Int, batch: UInt64) -> Bool {
        awaitingSource[source] > 0 || batch < purgedSourceBefore[source] || awaitingDestination[destination] > 0
            || batch < purgedDestinationBefore[destination]
    }

    /// Whether an event about the pair was overtaken by a purge sent after the command
    /// that caused it.
    func isOvertaken(source: Int, destination: Int) -> Bool {
        awaitingSource[source] > 0 || awaitingDestination[destination] > 0
    }

    // MARK: Allocator threads

    /// Applies the waiting commands, in order, before batch `b` (on the stage thread that
    /// holds the feed token).
    private func feed(_ b: Int, _ demand: PipelineDemand) {
        // At most one event per command: never more commands than the events ring has
        // room for, so a feed never waits for the communication thread.
        // One more is kept for the counters at the end.
        var room = events.capacity - events.count - 1
        // The batch's number as the results give it (the clock may have moved it on).
        let batch = demand.nextSlot / UInt64(batchSize)
        while room > 0, let c = commands.pop() {
            let s = Int(c.source)
            let d = Int(c.destination)
            switch c.kind {
            case .add, .addAgain:
                if !demand.addDemand(source: s, destination: d, slots: UInt32(c.value)) {
                    room -= 1
                    _ = events.push(
                        AllocatorEvent(
                            kind: c.kind == .add ? .refused : .refusedAgain, source: c.source,
                            destination: c.destination, value: c.value))
                }
            case .withdraw:
                let now = demand.withdraw(source: s, destination: d, slots: c.value)
                if now > 0 {
                    room -= 1
                    _ = events.push(
                        AllocatorEvent(kind: .withdrawn, source: c.source, destination: c.destination, value: now))
                }
            case .resetSource, .removeHost:
                if c.kind == .resetSource { demand.resetSource(s) } else { demand.removeHost(s) }
                room -= 1
                _ = events.push(
                    AllocatorEvent(
                        kind: .purged, source: c.source, destination: c.kind == .removeHost ? 1 : 0, value: batch))
            case .requestAgain:
                demand.requestAgain(source: s, destination: d, batch: c.value)
            case .pinSource:
                demand.setSourcePinned(s, c.value != 0)
            }
        }
        // Purged and lost slots since the last report, those of the unroutable allocations
        // this stage offered again before the feed included.
        let j = b % pipeline.stages.count  // stage j feeds batches j, j + k, …
        let purged = demand.purgedSlots &- reportedPurged[j]
        let lost = demand.requestAgainRefused &- reportedLost[j]
        if purged > 0 || lost > 0 {
            reportedPurged[j] = demand.purgedSlots
            reportedLost[j] = demand.requestAgainRefused
            _ = events.push(AllocatorEvent(kind: .counters, source: 0, destination: 0, value: purged, slots: lost))
        }
    }

    /// Passes a routed batch back (on the path thread, in batch order).
    private func consume(_ batch: BatchAllocations) {
        let number = batch.firstSlot / UInt64(batchSize)
        guard
            put(
                AllocatorResult(
                    kind: .batch, spine: 0, source: 0, destination: Int32(batch.unroutableCount), value: number))
        else { return }
        if batch.purgedSlots > 0 {
            guard put(AllocatorResult(kind: .purged, spine: 0, source: 0, destination: 0, value: batch.purgedSlots))
            else { return }
        }
        for w in 0..<batch.withdrawalCount {
            let (s, d, slots) = batch.withdrawal(w)
            guard
                put(
                    AllocatorResult(
                        kind: .withdrawal, spine: 0, source: Int32(s), destination: Int32(d), value: UInt64(slots)))
            else { return }
        }
        for i in 0..<batch.totalCount {
            let spine = batch.spine(i)
            // Requested again by the pipeline itself.
            guard spine != BatchAllocations.unroutable else { continue }
            let a = batch.allocation(i)
            guard
                put(
                    AllocatorResult(
                        kind: .allocation, spine: spine, source: Int32(a.source), destination: Int32(a.destination),
                        value: batch.firstSlot &+ UInt64(a.slot)))
            else { return }
        }
    }

    /// Waits for room in the results ring; false when the run is stopping (the
    /// communication thread may have stopped reading).
    private func put(_ r: AllocatorResult) -> Bool {
        var backoff = Backoff()
        while !results.push(r) {
            if stopping.load(ordering: .relaxed) { return false }
            backoff.wait()
        }
        return true
    }
}
