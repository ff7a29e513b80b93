/// SplitMix64, so that every randomised test run is reproducible from its seed. Shared by
/// the arbiter and agent test suites.
public struct TestRandom: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed &* 0x2545_F491_4F6C_DD1D }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in 0..<n.
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }
}
