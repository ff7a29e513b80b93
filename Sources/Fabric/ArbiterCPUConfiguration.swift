/// The modelled CPU of the simulated arbiter: a communication core that handles FCP
/// packets one service time each, a bounded receive queue in front of it, and allocator
/// cores whose work is counted per allocation and per slot.
///
/// The defaults come from `docs/benchmarks.md` (see `docs/simulator.md`, "The arbiter's
/// CPU"): what the daemon costs today, so a simulated arbiter is overloaded where a real
/// one would be.
public struct ArbiterCPUConfiguration: Sendable {
    /// The communication core's I/O, which sets the default per-packet cost.
    public enum IO: String, Sendable, CaseIterable {
        /// Raw sockets: fcp-load's busy time per packet handled, the arbiter's own work plus
        /// the socket calls (339–821 + 2 038–2 236 ns; the socket floor alone is 2 840 ns).
        case sockets
        /// DPDK: the arbiter's own work per packet handled (664 ns, fcp-load at 16 endpoints)
        /// plus 33–40 ns of DPDK I/O per packet (the `net_null` loops).
        case dpdk

        /// Service time per FCP packet handled, received or sent.
        public var packetNanoseconds: UInt64 {
            switch self {
            case .sockets: 2_800
            case .dpdk: 700
            }
        }
    }

    /// Off: the arbiter costs no time, as the simulator modelled it before.
    public var enabled = true
    /// Communication-core time per FCP packet handled, received or sent (fcp-load's "ns per
    /// packet" counts both the same way).
    public var packetNanoseconds = IO.sockets.packetNanoseconds
    /// FCP packets the receive queue holds (a socket buffer or NIC ring); one arriving at a
    /// full queue is dropped.
    public var receiveQueuePackets = 4096
    /// Cores the allocator and path selection run on.
    public var allocatorCores = 2
    /// Allocator time per slot allocated, demand added included (the allocator benchmark's
    /// slope: about 7 ns at 256 and 1 024 hosts, load 0.6).
    public var allocationNanoseconds = 7.0
    /// Path selection per slot allocated (edge colouring: 2 620 ns per timeslot for 895
    /// inter-rack allocations, 32 × 32 hosts, 8 spines).
    public var pathNanoseconds = 3.0
    /// Allocator time per slot of a batch whatever its allocations (the allocator
    /// benchmark's intercept: 25–40 ns per slot at loads 0.1 and 0.2).
    public var slotNanoseconds = 30.0

    public init() {}

    /// FCP packets handled in one receive or send call: the daemon's I/O batch.
    static let ioBatch = 32
    /// I/O batches received, then sent, in one round of the daemon's loop at most
    /// (`ArbiterRuntime.receiveBatchesPerRound`, `sendBatchesPerRound`).
    static let batchesPerRound = 16

    var problem: String? {
        if packetNanoseconds > 100_000_000 { return "packetNanoseconds must be at most 100 ms" }
        if receiveQueuePackets < 1 || receiveQueuePackets > 1 << 20 {
            return "receiveQueuePackets must be in 1...1048576 (got \(receiveQueuePackets))"
        }
        if allocatorCores < 1 || allocatorCores > 256 {
            return "allocatorCores must be in 1...256 (got \(allocatorCores))"
        }
        for (name, v) in [
            ("allocationNanoseconds", allocationNanoseconds), ("pathNanoseconds", pathNanoseconds),
            ("slotNanoseconds", slotNanoseconds),
        ] where !(v >= 0 && v <= 1e9) {
            return "\(name) must be in 0...1e9 (got \(v))"
        }
        return nil
    }
}
