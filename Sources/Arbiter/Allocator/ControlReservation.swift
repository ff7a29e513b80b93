import Atomics

/// Timeslots in which one rack's uplinks (and, separately, its downlinks) carry no
/// inter-rack data: room kept for the FCP packets of an arbiter attached to that rack.
///
/// Every FCP packet between the arbiter and a host in another rack crosses the arbiter
/// rack's ToR↔spine links. The allocator books those links to their per-slot capacity, so
/// without room set aside the control packets (which have priority) push booked data back
/// until the port drops it. On an oversubscribed fabric the slot headroom (5 % of the
/// link) is far from enough: in the simulator (128 hosts, 4:1, web search at 60 %) the
/// arbiter's allocations took 17.8 % of each of its rack's 10 Gbit/s uplinks, which then
/// held 299 KB at p99 and dropped 6 308 data and 2 923 FCP packets in 20 ms; no other
/// port dropped anything, and no link was ever booked beyond its capacity.
///
/// Whole slots, not a share of each: FCP packets take any spine, so every link of the rack
/// needs the room. Taking a few packets off the rack's total instead left the lowest spines
/// (which path selection fills first) fully booked: at 4:1 the arbiter rack's spine
/// downlinks then held more than a packet waiting for 29–53 % of the time, against 4 % on
/// the spine that got the room.
///
/// Upwards, the arbiter sends its allocations in a burst each time it allocates a batch,
/// `lookahead` slots before the batch starts, so the kept slots are the first `upSlots` of
/// every batch-length period counted from a burst: slot `t` is kept if `(t + phase) mod
/// batchSize < upSlots`. Downwards the requests come in spread over time, so `downSlots`
/// of every `batchSize` slots are kept, spread evenly. The owner (the arbiter core) sizes
/// both from the FCP bytes it exchanged with other racks; allocation stages read them at
/// the start of every batch.
public final class ControlReservation: @unchecked Sendable {
    /// rack + 1 (0: none), up slots, down slots, phase.
    let words = AtomicWords(count: 4)

    public init() {}

    /// Keeps `upSlots` and `downSlots` of every `batchSize` slots free of inter-rack data to
    /// and from `rack` (nil: no rack), from the next batch on.
    public func set(rack: Int?, upSlots: Int, downSlots: Int, phase: Int) {
        words[0].store(UInt64((rack ?? -1) + 1), ordering: .relaxed)
        words[1].store(UInt64(max(0, upSlots)), ordering: .relaxed)
        words[2].store(UInt64(max(0, downSlots)), ordering: .relaxed)
        words[3].store(UInt64(max(0, phase)), ordering: .relaxed)
    }

    /// The rack, slots kept up and down, and phase, as last set (rack -1: none).
    public var current: (rack: Int, upSlots: Int, downSlots: Int, phase: Int) {
        (
            Int(words[0].load(ordering: .relaxed)) - 1, Int(words[1].load(ordering: .relaxed)),
            Int(words[2].load(ordering: .relaxed)), Int(words[3].load(ordering: .relaxed))
        )
    }

    /// Whether slot `t` is kept free of data leaving the rack.
    @inlinable
    public static func keepsUp(slot t: UInt64, upSlots: Int, phase: Int, batchSize: Int) -> Bool {
        Int((t &+ UInt64(phase)) % UInt64(batchSize)) < upSlots
    }

    /// Whether slot `t` is kept free of data entering the rack: `downSlots` of every
    /// `batchSize`, as evenly spaced as integers allow.
    @inlinable
    public static func keepsDown(slot t: UInt64, downSlots: Int, batchSize: Int) -> Bool {
        let b = UInt64(batchSize)
        let k = UInt64(min(downSlots, batchSize))
        let phase = t % b
        return (phase &+ 1) &* k / b != phase &* k / b
    }
}
