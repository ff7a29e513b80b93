/// What the arbiter core asks of a timeslot allocator, whether it runs inline
/// (``InlineAllocator``) or on threads of its own (``ThreadedAllocator``). The core holds
/// one as an ``ArbiterAllocator``, chosen once when it is made.
///
/// Demand, withdrawals, resets and pins go in; batches come back through an
/// ``AllocationReceiver``, in order: inline as ``advance(now:current:lookahead:receiver:)``
/// allocates them, from the threads as they finish them.
protocol AllocatorBackend {
    /// Whether allocation runs on threads of its own.
    var isThreaded: Bool { get }
    /// The allocator's counters.
    var statistics: TimeslotAllocatorStatistics { get }
    /// The first slot of the next batch to be allocated (threads: to come back).
    var nextSlot: UInt64 { get }
    /// Offers demand, in order; what the pair table refuses goes to `receiver` (inline, at
    /// once; threads, as they apply it).
    func offer<R: AllocationReceiver>(_ demand: UnsafeMutableBufferPointer<DemandRequest>, refusalsTo receiver: R)
    /// Offers refused demand again; false when it is refused again at once (inline).
    func offerAgain(source: Int, destination: Int, slots: UInt32) -> Bool
    /// Withdraws up to `slots` of the pair's demand; returns what was withdrawn at once
    /// (the rest comes back as withdrawals with the batches).
    func withdraw(source: Int, destination: Int, slots: UInt64) -> UInt64
    /// Forgets all demand from `host` (its endpoint reset).
    func resetSource(_ host: Int)
    /// Forgets all demand from and to `host` (it went away).
    func removeHost(_ host: Int)
    /// Gives back one slot of an allocation from batch `batch` that could not be used.
    func requestAgain(source: Int, destination: Int, batch: UInt64)
    /// Pins `host`'s inter-rack allocations to their pinned spine, or frees them.
    func setSourcePinned(_ host: Int, _ on: Bool)
    /// Holds `host` back from allocation or lets it go; false when the allocator does not
    /// hold sources (threads).
    func setSourceHeld(_ host: Int, _ on: Bool) -> Bool
    /// Allocates (inline) or takes back (threads) every batch due by `now`, handing what
    /// comes to `receiver`; `current` is the slot in progress and `lookahead` how far
    /// ahead of it batches are allocated.
    func advance<R: AllocationReceiver>(now: UInt64, current: UInt64, lookahead: Int, receiver: R)
    /// When the core must next call ``advance(now:current:lookahead:receiver:)``, given
    /// that the next batch falls due at `batchDue`.
    func nextDeadline(batchDue: UInt64) -> UInt64
}

/// Where an ``AllocatorBackend`` hands what its batches bring: the arbiter core.
protocol AllocationReceiver: AnyObject {
    /// Slot `slot` (the core's numbering) allocated to `source` towards `destination`
    /// through `spine`; `batch` is to be given back with
    /// ``AllocatorBackend/requestAgain(source:destination:batch:)``.
    func allocated(slot: UInt64, source: Int, destination: Int, spine: Int16, batch: UInt64)
    /// `slots` of `source`'s demand towards `destination` were withdrawn.
    func withdrawn(source: Int, destination: Int, slots: UInt64)
    /// The pair table refused `slots` of demand; `again`: demand offered again.
    func refused(source: Int, destination: Int, slots: UInt32, again: Bool)
    /// Time to offer the refused demand again (inline: every advance; threads: once a
    /// batch).
    func offerRefusedAgain()
    /// A batch is next (inline: before it is allocated; threads: as it comes back):
    /// `reservation` is the allocator's, to be sized for the batches to come.
    func updateControlReservation(_ reservation: ControlReservation)
    /// A batch was allocated, `unroutable` of its allocations without a spine.
    func batchAllocated(unroutable: UInt64)
    /// `slots` began before they could be allocated.
    func slotsSkipped(_ slots: UInt64)
    /// Allocator threads, after taking back what came: allocations dropped as purged,
    /// those that came back too late, and commands that have waited for the ring so far.
    func threadResults(purged: UInt64, late: UInt64, commandsDelayed: UInt64)
}
