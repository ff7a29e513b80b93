/// The project's one seeded generator: SplitMix64 (Steele, Lea and Flood's mixer of a
/// Weyl sequence), small, fast and the same on every machine, so a seed reproduces a
/// simulation, a benchmark workload or a randomised test exactly.
///
/// Each user keeps the seeding it always had (``init(state:)`` takes the raw state; the
/// simulator, the benchmarks and the tests each derive it from their seed their own way),
/// so the streams, and with them every recorded result, are unchanged by the merge.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    /// The Weyl sequence's current value.
    public var state: UInt64

    /// A generator starting from `state` as it is.
    public init(state: UInt64) { self.state = state }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in 0..<n (by remainder: the bias is below 2^-40 for the small `n` used here).
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    /// Uniform in [0, 1), on a grid of 2^-53.
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { unit() < p }
}
