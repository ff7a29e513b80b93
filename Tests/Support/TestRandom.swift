public import SeededRandom

/// The arbiter and agent suites' generator: the shared SplitMix64, seeded as these suites
/// always seeded it, so every seed in them reproduces the run it was chosen for.
public typealias TestRandom = SplitMix64

extension SplitMix64 {
    /// The test suites' generator for `seed`.
    public init(seed: UInt64) { self.init(state: seed &* 0x2545_F491_4F6C_DD1D) }
}
