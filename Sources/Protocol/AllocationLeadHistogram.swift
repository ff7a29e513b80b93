/// How far ahead of the current slot allocations arrive at an endpoint: one count per
/// allocation, by `slot − current slot` on arrival (negative: the slot had already begun).
///
/// It tells whether the arbiter's lead covers the path to the endpoint: a reference
/// endpoint refuses slots more than 16 behind (too late) or 64 ahead (premature), so an
/// arbiter sending on time keeps this distribution inside that window with room to spare.
/// Fixed storage, made once: recording allocates nothing.
public struct AllocationLeadHistogram: Sendable, Hashable {
    /// Leads below this are counted in the lowest bucket.
    public static let lowest = -256
    /// Leads above this are counted in the highest bucket.
    public static let highest = 255

    private var counts: [UInt64]
    /// Allocations recorded.
    public private(set) var total: UInt64 = 0

    public init() {
        counts = [UInt64](repeating: 0, count: Self.highest - Self.lowest + 1)
    }

    /// A copy with storage of its own (a plain copy shares it until either side writes):
    /// for a reader on another thread than the owner's.
    public init(copying other: AllocationLeadHistogram) {
        counts = other.counts.map { $0 }
        total = other.total
    }

    /// Counts one allocation for `slot` arriving during `current` (slot numbers compared
    /// with wrapping arithmetic, as the time window does).
    @inlinable
    public mutating func record(slot: UInt64, current: UInt64) {
        record(lead: Int64(bitPattern: slot &- current))
    }

    /// Counts one allocation that arrived `lead` slots ahead of its slot.
    public mutating func record(lead: Int64) {
        let clamped = Int(max(Int64(Self.lowest), min(Int64(Self.highest), lead)))
        counts[clamped - Self.lowest] &+= 1
        total &+= 1
    }

    /// Allocations that arrived with a lead of `lead` slots (the end buckets hold
    /// everything beyond them).
    public func count(lead: Int) -> UInt64 {
        guard lead >= Self.lowest && lead <= Self.highest else { return 0 }
        return counts[lead - Self.lowest]
    }

    /// Allocations that arrived with a lead below `lead` (more late than `-lead` slots).
    public func count(below lead: Int) -> UInt64 {
        let end = max(0, min(counts.count, lead - Self.lowest))
        return counts[0..<end].reduce(0, &+)
    }

    /// The lead at quantile `q` (0...1) of what was recorded; nil when nothing was.
    public func quantile(_ q: Double) -> Int? {
        guard total > 0 else { return nil }
        let rank = UInt64((Double(total - 1) * min(1, max(0, q))).rounded(.down)) + 1
        var seen: UInt64 = 0
        for (i, c) in counts.enumerated() {
            seen &+= c
            if seen >= rank { return i + Self.lowest }
        }
        return Self.highest
    }

    /// Takes another histogram's counts in place: a reader keeping a copy of a histogram
    /// that its owner goes on recording into makes the owner's next record copy the whole
    /// storage, which this avoids.
    public mutating func assign(_ other: borrowing AllocationLeadHistogram) {
        for i in counts.indices { counts[i] = other.counts[i] }
        total = other.total
    }

    /// Adds another histogram's counts (several endpoints summed).
    public mutating func add(_ other: AllocationLeadHistogram) {
        for i in counts.indices { counts[i] &+= other.counts[i] }
        total &+= other.total
    }
}
