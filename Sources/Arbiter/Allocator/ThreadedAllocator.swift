import Atomics
import FixedStorage

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

/// The arbiter core's allocator on threads of its own (the ``AllocatorBackend`` chosen
/// when ``ArbiterCoreConfiguration/pipeline`` is set): it runs an ``AllocatorPipeline``,
/// whose stages and path-selection stage each have a thread on a configured CPU,
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
final class ThreadedAllocator: @unchecked Sendable {
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
    #if DEBUG
        /// Checks each batch as the path thread passes it back (only that thread uses it).
        private let audit: AllocatorAudit
    #endif
    private var started = false
    /// What the feeds have reported of the stages' demand counters (feed threads only,
    /// ordered by the token).
    @exclusivity(unchecked) private var reportedPurged: [UInt64]
    @exclusivity(unchecked) private var reportedLost: [UInt64]

    // The communication thread's side.
    private var outbox: [AllocatorCommand] = []
    private var outboxHead = 0
    /// Per host: purges sent whose event has not come back (as a source; as a destination).
    private let awaitingSource: FixedBuffer<Int32>
    private let awaitingDestination: FixedBuffer<Int32>
    /// Per host: the batch before which its demand (as a source; as a destination) was purged.
    private let purgedSourceBefore: FixedBuffer<UInt64>
    private let purgedDestinationBefore: FixedBuffer<UInt64>
    /// The next batch the communication thread expects.
    @exclusivity(unchecked) private var nextBatch: UInt64 = 0
    @exclusivity(unchecked) private(set) var statistics = TimeslotAllocatorStatistics()
    /// Times a command waited in the outbox because the ring was full.
    @exclusivity(unchecked) private var outboxed: UInt64 = 0
    /// The earliest the communication thread should look for finished batches again when
    /// none has come.
    @exclusivity(unchecked) private var pollAfter: UInt64 = 0

    init(topology: Topology, allocator: TimeslotAllocatorConfiguration, pipeline: PipelineConfiguration)
        throws(TopologyError)
    {
        self.pipeline = try AllocatorPipeline(topology: topology, allocator: allocator, pipeline: pipeline)
        batchSize = allocator.batchSize
        #if DEBUG
            audit = AllocatorAudit(hostCount: topology.hostCount)
        #endif
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
        awaitingSource = FixedBuffer(repeating: 0, count: hosts)
        awaitingDestination = FixedBuffer(repeating: 0, count: hosts)
        purgedSourceBefore = FixedBuffer(repeating: 0, count: hosts)
        purgedDestinationBefore = FixedBuffer(repeating: 0, count: hosts)
    }

    deinit {
        // The threads' closures hold this object unowned: the owner stops them first.
        precondition(run == nil, "allocator threads still running")
    }

    /// Starts the threads: slot `baseSlot` of the core begins at `baseStart` on the
    /// monotonic clock, each batch is started `leadBatches` batches before its first slot;
    /// `now` is the core's clock.
    private func start(baseSlot: UInt64, baseStart: UInt64, slotNanoseconds: Double, leadBatches: Int, now: UInt64) {
        precondition(!started, "the allocator threads start once")
        started = true
        self.baseSlot = baseSlot
        nextBatch = 0
        pollAfter = now
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

    /// Starts the threads at `now` on the core's clock `clock`, `monotonicNow` on the
    /// monotonic clock, on which they pace batches: allocation starts with the first whole
    /// batch at least `lookahead` slots ahead (see ``baseSlot(now:clock:lookahead:)``).
    func start(now: UInt64, monotonicNow: UInt64, clock: SlotClock, lookahead: Int) {
        let base = baseSlot(now: now, clock: clock, lookahead: lookahead)
        let baseStart = monotonicNow &+ (clock.start(ofSlot: base) &- now)
        // Batches start as early as the inline allocator would allocate them; the path
        // through the threads is the lookahead's to absorb.
        let lead = max(1, lookahead / batchSize)
        start(
            baseSlot: base, baseStart: baseStart, slotNanoseconds: Double(clock.picoseconds) / 1000,
            leadBatches: lead, now: now)
    }

    /// Like ``start(now:monotonicNow:clock:lookahead:)``, without threads (see
    /// ``startStepping(baseSlot:now:)``).
    func startStepping(now: UInt64, clock: SlotClock, lookahead: Int) {
        startStepping(baseSlot: baseSlot(now: now, clock: clock, lookahead: lookahead), now: now)
    }

    /// The pipeline's slot 0 for threads started at `now`: the first whole batch at least
    /// `lookahead` slots ahead.
    private func baseSlot(now: UInt64, clock: SlotClock, lookahead: Int) -> UInt64 {
        let batch = UInt64(batchSize)
        let ahead = clock.slot(at: now) + 1 + UInt64(lookahead)
        return (ahead + batch - 1) / batch * batch
    }

    /// Instead of starting the threads: the caller takes the pipeline's steps, one at a
    /// time, with ``step(_:)`` (tests that need an exact interleaving). Slot `baseSlot` of
    /// the core is the pipeline's slot 0; `now` is the core's clock.
    func startStepping(baseSlot: UInt64, now: UInt64) {
        precondition(!started, "the allocator threads start once")
        started = true
        self.baseSlot = baseSlot
        nextBatch = 0
        pollAfter = now
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
    private func send(_ command: AllocatorCommand) {
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
    private func flush() {
        while outboxHead < outbox.count {
            guard commands.push(outbox[outboxHead]) else { return }
            outboxHead += 1
        }
        if outboxHead > 0 {
            outbox.removeAll(keepingCapacity: true)
            outboxHead = 0
        }
    }

    /// Takes a feed's event into account (purges, counters).
    private func note(_ e: AllocatorEvent) {
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
    private func isStale(source: Int, destination: Int, batch: UInt64) -> Bool {
        awaitingSource[source] > 0 || batch < purgedSourceBefore[source] || awaitingDestination[destination] > 0
            || batch < purgedDestinationBefore[destination]
    }

    /// Whether an event about the pair was overtaken by a purge sent after the command
    /// that caused it.
    private func isOvertaken(source: Int, destination: Int) -> Bool {
        awaitingSource[source] > 0 || awaitingDestination[destination] > 0
    }

    /// Sends what waits, then takes in the feeds' events and every batch that has come
    /// back, in order, handing them to `receiver`.
    private func takeResults<R: AllocationReceiver>(now: UInt64, current: UInt64, receiver: R) {
        flush()
        takeEvents(receiver)
        var batch = nextBatch &- 1
        var any = false
        var purged: UInt64 = 0
        var late: UInt64 = 0
        while let r = results.pop() {
            let s = Int(r.source)
            let d = Int(r.destination)
            switch r.kind {
            case .batch:
                // Events sent before this batch was fed are all in the ring by now.
                takeEvents(receiver)
                batch = r.value
                // The threads skip batches whose first slot began before they got to them.
                if batch > nextBatch { receiver.slotsSkipped((batch - nextBatch) &* UInt64(batchSize)) }
                nextBatch = batch &+ 1
                any = true
                // Takes effect from a batch the threads start after this one.
                receiver.updateControlReservation(pipeline.controlReservation)
                receiver.batchAllocated(unroutable: UInt64(r.destination))
                statistics.unroutable &+= UInt64(r.destination)
                // Refused demand is offered again once a batch, not on every poll.
                receiver.offerRefusedAgain()
            case .purged:
                statistics.purgedSlots &+= r.value
            case .withdrawal:
                statistics.withdrawnSlots &+= r.value
                if isStale(source: s, destination: d, batch: batch) {
                    purged &+= 1
                    continue
                }
                receiver.withdrawn(source: s, destination: d, slots: r.value)
            case .allocation:
                if isStale(source: s, destination: d, batch: batch) {
                    // Allocated from demand purged since: counted as purged, not allocated.
                    purged &+= 1
                    statistics.purgedSlots &+= 1
                    continue
                }
                statistics.allocatedSlots &+= 1
                let slot = baseSlot &+ r.value
                guard slot > current else {
                    late &+= 1
                    requestAgain(source: s, destination: d, batch: batch)
                    continue
                }
                receiver.allocated(slot: slot, source: s, destination: d, spine: r.spine, batch: batch)
            }
        }
        receiver.threadResults(purged: purged, late: late, commandsDelayed: outboxed)
        // Nothing came: look again in a microsecond rather than spin on the ring.
        pollAfter = any ? 0 : now &+ 1_000
    }

    /// Applies the feeds' answers to the commands sent.
    private func takeEvents<R: AllocationReceiver>(_ receiver: R) {
        while let e = events.pop() {
            note(e)
            let s = Int(e.source)
            let d = Int(e.destination)
            switch e.kind {
            case .refused, .refusedAgain:
                // A purge sent since makes the refused demand moot.
                if !isOvertaken(source: s, destination: d) {
                    receiver.refused(source: s, destination: d, slots: UInt32(e.value), again: e.kind == .refusedAgain)
                }
            case .withdrawn:
                guard !isOvertaken(source: s, destination: d) else { continue }
                receiver.withdrawn(source: s, destination: d, slots: e.value)
            case .purged, .counters:
                break
            }
        }
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
        #if DEBUG
            audit.checkOnePerHostPerSlot(batch)
        #endif
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

extension ThreadedAllocator: AllocatorBackend {
    var isThreaded: Bool { true }

    var nextSlot: UInt64 { baseSlot &+ nextBatch &* UInt64(batchSize) }

    func offer<R: AllocationReceiver>(_ demand: UnsafeMutableBufferPointer<DemandRequest>, refusalsTo receiver: R) {
        // Refusals come back as events.
        for r in demand {
            send(AllocatorCommand(kind: .add, source: r.source, destination: r.destination, value: UInt64(r.slots)))
        }
    }

    /// Always true: a refusal comes back as an event, and is kept again.
    func offerAgain(source: Int, destination: Int, slots: UInt32) -> Bool {
        send(
            AllocatorCommand(
                kind: .addAgain, source: Int32(source), destination: Int32(destination), value: UInt64(slots)))
        return true
    }

    /// Always 0: all of it is reported later, as the threads apply it.
    func withdraw(source: Int, destination: Int, slots: UInt64) -> UInt64 {
        send(AllocatorCommand(kind: .withdraw, source: Int32(source), destination: Int32(destination), value: slots))
        return 0
    }

    func resetSource(_ host: Int) {
        send(AllocatorCommand(kind: .resetSource, source: Int32(host), destination: 0, value: 0))
    }

    func removeHost(_ host: Int) {
        send(AllocatorCommand(kind: .removeHost, source: Int32(host), destination: 0, value: 0))
    }

    func requestAgain(source: Int, destination: Int, batch: UInt64) {
        statistics.allocatedSlots &-= 1  // pending again, as inline
        send(
            AllocatorCommand(kind: .requestAgain, source: Int32(source), destination: Int32(destination), value: batch))
    }

    /// Through the command ring, in order with the demand and purges sent.
    func setSourcePinned(_ host: Int, _ on: Bool) {
        send(AllocatorCommand(kind: .pinSource, source: Int32(host), destination: 0, value: on ? 1 : 0))
    }

    func setSourceHeld(_ host: Int, _ on: Bool) -> Bool { false }

    func advance<R: AllocationReceiver>(now: UInt64, current: UInt64, lookahead: Int, receiver: R) {
        takeResults(now: now, current: current, receiver: receiver)
    }

    /// Polled at most every microsecond while the next batch is overdue.
    func nextDeadline(batchDue: UInt64) -> UInt64 { max(batchDue, pollAfter) }
}
