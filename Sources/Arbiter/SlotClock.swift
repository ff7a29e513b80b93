import FastpassProtocol

/// The arbiter's slot clock: slots of ``picoseconds`` each from ``origin`` (ns), and how
/// reference endpoints, which count slots of their own, number them.
///
/// Our slots are plain `UInt64`; reference ones are ``ReferenceSlot``, so the compiler
/// catches one passed for the other.
public struct SlotClock: Sendable, Hashable {
    /// Start of slot 0, in nanoseconds.
    public let origin: UInt64
    /// Slot length in picoseconds.
    public let picoseconds: UInt64

    public init(origin: UInt64, picoseconds: UInt64) {
        self.origin = origin
        self.picoseconds = picoseconds
    }

    /// The slot in progress at `now`.
    @inline(__always)
    public func slot(at now: UInt64) -> UInt64 {
        Self.slot(at: now, origin: origin, picoseconds: picoseconds)
    }

    static func slot(at now: UInt64, origin: UInt64, picoseconds: UInt64) -> UInt64 {
        guard now > origin else { return 0 }
        let (high, low) = (now - origin).multipliedFullWidth(by: 1000)
        return picoseconds.dividingFullWidth((high, low)).quotient
    }

    /// When `slot` starts: the first whole nanosecond in it, so that
    /// `slot(at: start(ofSlot: s)) == s` (rounding down would give a time still in the slot
    /// before, and a caller waking then would find nothing to do, forever).
    public func start(ofSlot slot: UInt64) -> UInt64 {
        let (high, low) = slot.multipliedFullWidth(by: picoseconds)
        let (q, r) = UInt64(1000).dividingFullWidth((high, low))
        return origin &+ q &+ (r > 0 ? 1 : 0)
    }

    /// The number a session uses for our slot `slot`: ours for an endpoint that took the
    /// announced clock, the reference slot containing its midpoint otherwise.
    func sessionSlot(_ slot: UInt64, announcedClock: Bool) -> UInt64 {
        announcedClock
            ? slot
            : Self.referenceSlot(containingMiddleOf: slot, origin: origin, picoseconds: picoseconds).rawValue
    }

    /// The reference slot that contains the exact middle of our slot `slot` (slots of
    /// `picoseconds` from `origin` ns), numbered as the reference numbers them:
    /// ⌊ns · 419 / 2^19⌋ modulo 2^45, which is what its wrapping 64-bit product gives.
    ///
    /// The middle is kept to the picosecond. Rounded to whole nanoseconds, middles of
    /// consecutive slots are 1251 or 1252 ns apart against the reference's 1251.284, so in
    /// stretches of slots two of ours fell in one reference slot and the endpoint could not
    /// tell them apart (seen as double-booked slots in the namespace test). Exact middles are
    /// a whole slot apart, at least a reference slot, so no two share one.
    public static func referenceSlot(
        containingMiddleOf slot: UInt64, origin: UInt64, picoseconds: UInt64
    ) -> ReferenceSlot {
        let middle = UInt128(origin) * 1000 + UInt128(slot) * UInt128(picoseconds) + UInt128(picoseconds / 2)
        let product = middle * UInt128(ReferenceTimeslot.multiplier)
        // One 128-by-64-bit hardware division (this runs for every reference allocation):
        // the quotient, ps·419 / 2^19 / 1000, fits 64 bits for any 64-bit time in ns.
        let quotient = UInt64(1000 << ReferenceTimeslot.shift).dividingFullWidth(
            (UInt64(truncatingIfNeeded: product >> 64), UInt64(truncatingIfNeeded: product))
        ).quotient
        return ReferenceSlot(rawValue: quotient & (1 << 45 - 1))
    }

    /// Our slot whose middle falls in reference slot `reference`, searched near `estimate`
    /// (within a slot of it); nil if none does (reference slots are shorter than ours, so
    /// about one in 2 million holds no middle).
    public static func slot(
        ofReference reference: ReferenceSlot, near estimate: UInt64, origin: UInt64, picoseconds: UInt64
    ) -> UInt64? {
        for s in [estimate, estimate &+ 1, estimate &- 1]
        where referenceSlot(containingMiddleOf: s, origin: origin, picoseconds: picoseconds) == reference {
            return s
        }
        return nil
    }
}
