/// A round trip smoothed as TCP smooths it (RFC 6298: gains 1/8 and 1/4), for a send
/// timeout: the arbiter's towards its endpoints (its send rule's histogram stops at 2 ms,
/// and an overloaded arbiter's round trips reach tens of milliseconds), and an endpoint's
/// towards an arbiter that is slow to answer. A timeout below the round trip resends every
/// packet, the load an overloaded arbiter can least afford.
public struct SmoothedRoundTrip: Sendable, Hashable {
    /// Smoothed round trip and its mean deviation (ns); zero before the first sample.
    public private(set) var smoothed: UInt64 = 0
    public private(set) var deviation: UInt64 = 0

    public init() {}

    public mutating func record(nanoseconds sample: UInt64) {
        if smoothed == 0 {
            smoothed = sample
            deviation = sample / 2
            return
        }
        let difference = sample > smoothed ? sample - smoothed : smoothed - sample
        deviation = deviation - deviation / 4 + difference / 4
        smoothed = smoothed - smoothed / 8 + sample / 8
    }

    /// Smoothed round trip plus four deviations, and at least twice the round trip: what a
    /// sender should wait before it takes a packet for lost. (TCP's floor is a clock tick;
    /// here a steady round trip has no deviation, and a timeout at the round trip itself
    /// would fire for half the packets.)
    public var timeoutNanoseconds: UInt64 { max(smoothed &+ 4 &* deviation, 2 &* smoothed) }
}
