/// Time-weighted histogram of a queue's occupancy: how long it held each amount.
struct OccupancyHistogram {
    /// Width of a byte bucket.
    static let byteBucket = 64
    var bytes: [UInt64]
    var packets: [UInt64]
    /// Data bytes alone (FCP packets left out), same buckets.
    var dataBytes: [UInt64]
    var maxBytes = 0
    var maxPackets = 0

    init() {
        bytes = [UInt64](repeating: 0, count: 1 << 16)
        packets = [UInt64](repeating: 0, count: 1 << 13)
        dataBytes = [UInt64](repeating: 0, count: 1 << 16)
    }

    /// The queue held `b` bytes in `p` packets for `duration` ns.
    mutating func add(bytes b: Int, packets p: Int, duration: UInt64) {
        guard duration > 0 else { return }
        bytes[min(bytes.count - 1, (b + Self.byteBucket - 1) / Self.byteBucket)] &+= duration
        packets[min(packets.count - 1, p)] &+= duration
    }

    /// The queue held `b` bytes of data packets for `duration` ns.
    mutating func addData(bytes b: Int, duration: UInt64) {
        guard duration > 0 else { return }
        dataBytes[min(dataBytes.count - 1, (b + Self.byteBucket - 1) / Self.byteBucket)] &+= duration
    }

    mutating func noteMaximum(bytes b: Int, packets p: Int) {
        maxBytes = max(maxBytes, b)
        maxPackets = max(maxPackets, p)
    }

    /// The smallest bucket holding fraction `q` of the time, as its upper bound.
    static func quantile(_ h: [UInt64], _ q: Double, width: Int) -> Int {
        let total = h.reduce(0, &+)
        guard total > 0 else { return 0 }
        let target = UInt64((Double(total) * q).rounded(.up))
        var sum: UInt64 = 0
        for (i, t) in h.enumerated() {
            sum &+= t
            if sum >= target { return i * width }
        }
        return (h.count - 1) * width
    }

    func summary() -> QueueSummary {
        QueueSummary(
            p50Bytes: Self.quantile(bytes, 0.5, width: Self.byteBucket),
            p99Bytes: Self.quantile(bytes, 0.99, width: Self.byteBucket), maxBytes: maxBytes,
            p50Packets: Self.quantile(packets, 0.5, width: 1), p99Packets: Self.quantile(packets, 0.99, width: 1),
            maxPackets: maxPackets, p99DataBytes: Self.quantile(dataBytes, 0.99, width: Self.byteBucket))
    }

    /// Points of the occupancy CDF in bytes, for plots.
    func cdf(points: Int = 200) -> [[Double]] {
        let total = Double(bytes.reduce(0, &+))
        guard total > 0 else { return [] }
        var out: [[Double]] = []
        var sum = 0.0
        let last = bytes.lastIndex { $0 > 0 } ?? 0
        let stride = max(1, last / points)
        for i in 0...last {
            sum += Double(bytes[i])
            if i % stride == 0 || i == last { out.append([Double(i * Self.byteBucket), sum / total]) }
        }
        return out
    }
}

/// Occupancy of one class of switch ports, time-weighted over the run. Quantiles are
/// upper bounds of 64-byte buckets.
public struct QueueSummary: Codable, Sendable, Hashable {
    public var p50Bytes: Int
    public var p99Bytes: Int
    public var maxBytes: Int
    public var p50Packets: Int
    public var p99Packets: Int
    public var maxPackets: Int
    /// The p99 of data bytes alone: what the arbiter booked, without the FCP packets (which
    /// have priority and are not scheduled) waiting with it.
    public var p99DataBytes: Int
}

/// Flow completion time and slowdown (FCT over the time the flow would take alone on an
/// idle fabric) of one size bucket.
public struct FlowSummary: Codable, Sendable, Hashable {
    public var bucket: String
    public var flows: Int
    public var fctP50Microseconds: Double
    public var fctP99Microseconds: Double
    public var slowdownP50: Double
    public var slowdownP99: Double
}

/// The value at fraction `q` of sorted `values` (nearest rank), 0 when empty.
func percentile(_ sorted: [Double], _ q: Double) -> Double {
    guard !sorted.isEmpty else { return 0 }
    let rank = Int((q * Double(sorted.count)).rounded(.up)) - 1
    return sorted[min(sorted.count - 1, max(0, rank))]
}

/// Jain's index of `values`: 1 when all are equal, 1/n when one takes everything.
func jainIndex(_ values: [Double]) -> Double {
    guard !values.isEmpty else { return 1 }
    let sum = values.reduce(0, +)
    let squares = values.reduce(0) { $0 + $1 * $1 }
    return squares > 0 ? sum * sum / (Double(values.count) * squares) : 1
}

/// Everything measured in one run of one system.
public struct SystemResult: Codable, Sendable {
    public var system: String
    public var simulatedMilliseconds: Double
    /// Switch queue occupancy over every switch port (ToR down, ToR up, spine down).
    public var queueP50Bytes: Int
    public var queueP99Bytes: Int
    public var queueMaxBytes: Int
    public var queueP99Packets: Int
    public var queueMaxPackets: Int
    /// By port class: "tor_down", "tor_up", "spine_down".
    public var queues: [String: QueueSummary]
    public var drops: UInt64
    public var dataDrops: UInt64
    public var controlDrops: UInt64
    public var ecnMarks: UInt64
    /// Payload delivered to receivers per second of the run.
    public var throughputGbps: Double
    /// Throughput over the capacity of every host link.
    public var utilization: Double
    /// Payload delivered in order between hosts of different racks, per second of the run.
    public var interRackThroughputGbps: Double
    /// Bytes of the flows between racks that arrived in the run, per second: the inter-rack
    /// load offered.
    public var interRackOfferedGbps: Double
    /// Capacity of every rack's uplinks together, one direction (racks × spines × uplink
    /// rate): what inter-rack traffic can use at most.
    public var uplinkCapacityGbps: Double
    public var flowsStarted: Int
    public var flowsCompleted: Int
    public var fctSlowdownP50Small: Double
    public var fctSlowdownP99Small: Double
    public var flowBuckets: [FlowSummary]
    /// Jain's index of the completed flows' throughputs (incast: the competing senders);
    /// nil when no flow completed.
    public var jainFairness: Double?
    /// FCP bytes on the wire (both ways), and their share of the host links' capacity.
    public var controlBytes: UInt64
    public var controlShare: Double
    /// Time a packet waited in its agent for its slot (fastpass only): p50 / p99.
    public var agentWaitP50Microseconds: Double
    public var agentWaitP99Microseconds: Double
    /// From demand to a destination the agent had nothing queued for to the arrival of
    /// that destination's first allocation (fastpass only): p50 / p99. The arbiter's
    /// response time, including FCP pacing and the fabric both ways; the wait behind the
    /// host's own earlier demand is in the agent wait instead.
    public var requestToAllocationP50Microseconds: Double
    public var requestToAllocationP99Microseconds: Double
    /// Demand raised to an idle destination whose first release used an allocation that
    /// arrived before it (left over from earlier demand): not a sample of the above.
    public var requestToAllocationSkipped: UInt64
    /// Timeslots two hosts' packets shared at one receiver, or one host sent twice in;
    /// links over capacity (checked on every packet a switch forwards).
    public var doubleBookedSlots: UInt64
    /// Fastpass data packets that arrived before an earlier packet of their flow (the
    /// receiver holds them until the gap fills), and those more than 64 packets ahead,
    /// which it cannot hold (their flow stalls).
    public var reorderedPackets: UInt64
    public var reorderedBeyondWindow: UInt64
    /// Scheduled packets a ToR moved off a spine that was down (slots allocated before the
    /// arbiter learnt of the failure).
    public var reroutedScheduledPackets: UInt64
    /// Data packets each spine forwarded.
    public var spinePackets: [UInt64]
    public var retransmissionTimeouts: UInt64
    /// With agents that fall back (``FabricConfiguration/agentUnreachableAfterNanoseconds``):
    /// times an agent found the arbiter unreachable and found it again, and the data packets
    /// sent unscheduled meanwhile; FCP packets lost in an arbiter outage. Absent otherwise.
    public var agentUnreachableEvents: UInt64?
    public var agentReachableAgainEvents: UInt64?
    public var unscheduledPackets: UInt64?
    public var controlLostInOutage: UInt64?
    /// The arbiter's CPU: packet rates, load, receive queue, allocator cores (fastpass only).
    public var arbiter: ArbiterCPUSummary? = nil
    public var events: UInt64
    public var eventsPerSecond: Double
    public var wallSeconds: Double
    /// Occupancy CDF over every switch port, time-weighted: (bytes, fraction), for the report.
    public var queueCDF: [[Double]]
    /// Queue bytes at the busiest ToR downlink, sampled every 10 µs: (µs, bytes).
    public var timeline: [[Double]]
}

/// Distribution of durations in nanoseconds with bounded memory: 16 linear sub-buckets
/// per power of two (quantiles within 1/16 of the true value), so a run of any length
/// keeps 8 KB per distribution instead of one value per packet.
struct DurationHistogram {
    private var counts = [UInt64](repeating: 0, count: 64 * 16)
    private(set) var total: UInt64 = 0

    private static func bucket(_ ns: UInt64) -> Int {
        guard ns >= 16 else { return Int(ns) }
        let exponent = 63 - ns.leadingZeroBitCount  // ≥ 4
        let sub = Int((ns >> UInt64(exponent - 4)) & 15)
        return (exponent - 3) * 16 + sub
    }

    /// The smallest value of a bucket's range.
    private static func lowerBound(_ b: Int) -> UInt64 {
        guard b >= 16 else { return UInt64(b) }
        let exponent = b / 16 + 3
        return (16 + UInt64(b % 16)) << UInt64(exponent - 4)
    }

    mutating func add(_ ns: UInt64) {
        // Capped below the last power of two, whose bucket has no upper neighbour.
        counts[Self.bucket(min(ns, 1 << 62))] &+= 1
        total &+= 1
    }

    /// The value at fraction `q` (the middle of its bucket), in microseconds; 0 when empty.
    func quantileMicroseconds(_ q: Double) -> Double {
        guard total > 0 else { return 0 }
        let target = max(1, UInt64((Double(total) * q).rounded(.up)))
        var sum: UInt64 = 0
        for (b, n) in counts.enumerated() where n > 0 {
            sum &+= n
            if sum >= target {
                let low = Self.lowerBound(b)
                let high = b + 1 < counts.count ? Self.lowerBound(b + 1) : low
                return Double(low + (high - low) / 2) / 1000
            }
        }
        return 0
    }
}
