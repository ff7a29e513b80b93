public import SeededRandom

/// The test suites' generator: the shared SplitMix64. The arbiter and agent suites seed it
/// with ``init(seed:)``, the protocol suite with the raw state (``init(state:)``), each as it
/// always did, so every seed in them reproduces the run it was chosen for.
public typealias TestRandom = SplitMix64

extension SplitMix64 {
    /// The test suites' generator for `seed`.
    public init(seed: UInt64) { self.init(state: seed &* 0x2545_F491_4F6C_DD1D) }
}
