/// Sequence-number arithmetic of reference FCP.
///
/// Both directions number their packets from a base derived from the reset timestamp
/// both ends agreed on, so a packet from an older reset epoch fails the checksum. The wire
/// carries only the low 16 bits; the receiver reconstructs the rest from its own state.
public enum FCPSequence {
    /// Endpoint→arbiter packets are numbered from `base + 0`.
    public static let towardsArbiterOffset: UInt64 = 0
    /// Arbiter→endpoint packets are numbered from `base + 0xDEADBEEF`.
    public static let towardsEndpointOffset: UInt64 = 0xDEAD_BEEF

    /// `base = T + h + (h << 32)` with `h = jhash_1word(low32 T, high32 T)`.
    @inlinable
    public static func base(resetTimestamp t: UInt64) -> UInt64 {
        let h = UInt64(timeHash(resetTimestamp: t))
        return t &+ h &+ (h << 32)
    }

    /// `jhash_1word(low32 T, initval: high32 T)`.
    @inlinable
    public static func timeHash(resetTimestamp t: UInt64) -> UInt32 {
        JenkinsHash.hash1(UInt32(truncatingIfNeeded: t), initval: UInt32(truncatingIfNeeded: t >> 32))
    }

    /// Offset added to the base for packets this side sends.
    @inlinable
    public static func egressOffset(_ side: FCPSide) -> UInt64 {
        side == .endpoint ? towardsArbiterOffset : towardsEndpointOffset
    }

    /// Offset added to the base for packets this side receives.
    @inlinable
    public static func ingressOffset(_ side: FCPSide) -> UInt64 {
        side == .endpoint ? towardsEndpointOffset : towardsArbiterOffset
    }

    /// Reconstructs a full sequence number from its low 16 bits: the result is the unique
    /// value congruent to `wire` in `[reference, reference + 65535]`.
    @inlinable
    public static func widen16(_ wire: UInt16, from reference: UInt64) -> UInt64 {
        reference &+ ((UInt64(wire) &- reference) & 0xFFFF)
    }

    /// The lowest full incoming sequence number a 16-bit value can stand for, given the
    /// highest one delivered so far: `in_max - 2^14`, so reordering of up to 16384 packets
    /// backwards and 49151 forwards is reconstructed correctly.
    @inlinable
    public static func incomingReference(highestDelivered: UInt64) -> UInt64 {
        highestDelivered &- (1 << 14)
    }

    /// The lowest full sequence number an incoming ack field can stand for, given the
    /// highest sequence number this side has sent: `head - 2^16 + 1`.
    @inlinable
    public static func ackReference(highestSent: UInt64) -> UInt64 {
        highestSent &- (1 << 16) &+ 1
    }

    /// Widens a 56-bit RESET timestamp around `now`: the result lies in
    /// `[now - 2^55, now + 2^55)`.
    @inlinable
    public static func widenResetTimestamp(_ low56: UInt64, now: UInt64) -> UInt64 {
        let start = now &- (1 << 55)
        return start &+ ((low56 &- start) & ((1 << 56) - 1))
    }
}

/// Which end of an FCP connection this is. The reference calls the arbiter "controller".
public enum FCPSide: Sendable, Hashable, CustomStringConvertible {
    case endpoint
    case arbiter

    public var description: String { self == .endpoint ? "endpoint" : "arbiter" }
}

/// Wrapping ("jiffies") comparisons of 64-bit counters, as the reference uses for
/// sequence numbers and timestamps: `a` is after `b` when `b - a` is negative as a
/// signed number.
@usableFromInline
enum Wrapping {
    @inline(__always) @usableFromInline
    static func after(_ a: UInt64, _ b: UInt64) -> Bool { Int64(bitPattern: b &- a) < 0 }
    @inline(__always) @usableFromInline
    static func before(_ a: UInt64, _ b: UInt64) -> Bool { after(b, a) }
    @inline(__always) @usableFromInline
    static func afterOrEqual(_ a: UInt64, _ b: UInt64) -> Bool { Int64(bitPattern: a &- b) >= 0 }
    @inline(__always) @usableFromInline
    static func beforeOrEqual(_ a: UInt64, _ b: UInt64) -> Bool { afterOrEqual(b, a) }
}
