import SeededRandom

/// The protocol suite's generator: the shared SplitMix64 started from the seed itself, as
/// this suite always did, so every seed in it reproduces the run it was chosen for.
typealias SeededRandom = SplitMix64

extension SplitMix64 {
    init(seed: UInt64) { self.init(state: seed) }
}
