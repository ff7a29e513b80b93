/// The reference's notion of time in timeslots, reproduced for compatibility mode only.
///
/// The reference derives the slot straight from wall-clock nanoseconds,
/// `slot = (ns * 419) >> 19` (≈ 1251 ns), in wrapping 64-bit arithmetic, so its slot
/// numbers wrap every ~509 days. Our own clock (announced by the arbiter in the extended
/// handshake) never wraps; this type exists so reference endpoints can be served.
public enum ReferenceTimeslot {
    public static let multiplier: UInt64 = 419
    public static let shift: UInt64 = 19

    /// `(ns * 419) >> 19` with the multiplication wrapping modulo 2^64, as in C.
    @inlinable
    public static func slot(atNanoseconds ns: UInt64) -> UInt64 {
        (ns &* multiplier) >> shift
    }

    /// Widens an ALLOC payload's base (the 16-bit wire field times 16) around the current
    /// slot: the result lies in `[current - 2^18, current + 3·2^18)`, a quarter behind and
    /// three quarters ahead.
    @inlinable
    public static func widenAllocBase(_ base: UInt32, currentSlot: UInt64) -> UInt64 {
        let start = currentSlot &- (1 << 18)
        return start &+ ((UInt64(base) &- start) & 0xF_FFFF)
    }
}

/// When an endpoint may still use an allocated slot: not more than `missThreshold` slots
/// after it has passed, and not more than `maxPreload` slots before it starts.
public struct AllocationTimeWindow: Sendable, Hashable {
    /// Slots an allocation may be late and still be used (reference: 16).
    public var missThreshold: UInt64
    /// Slots an allocation may be early and still be accepted (reference: 64).
    public var maxPreload: UInt64

    /// The reference endpoint's defaults.
    public static let reference = AllocationTimeWindow(missThreshold: 16, maxPreload: 64)

    public init(missThreshold: UInt64, maxPreload: UInt64) {
        self.missThreshold = missThreshold
        self.maxPreload = maxPreload
    }

    public enum Placement: Sendable, Hashable {
        case tooLate
        case premature
        case inWindow
    }

    /// Where `slot` falls relative to `currentSlot`, compared with wrapping arithmetic.
    @inlinable
    public func classify(slot: UInt64, currentSlot: UInt64) -> Placement {
        if Wrapping.before(slot, currentSlot &- missThreshold) { return .tooLate }
        if Wrapping.after(slot, currentSlot &+ maxPreload) { return .premature }
        return .inWindow
    }
}
