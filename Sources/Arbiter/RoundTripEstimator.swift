/// The arbiter's view of how long its packets take to reach endpoints: a histogram of
/// round-trip times (from sending a packet to the endpoint's acknowledgement of it),
/// decayed so that it follows changes, with its 99th percentile.
///
/// The send rule uses the round trip, not half of it, as the arbiter→endpoint delay: what
/// delays an allocation is mostly the endpoint getting to run and read it, which the round
/// trip contains once, while the way back only adds the arbiter's own receive, short on a
/// polling arbiter. Erring long costs a little request→slot latency; erring short costs
/// the slot.
///
/// Fixed storage made once; recording allocates nothing.
struct RoundTripEstimator {
    /// Width of a bucket, ns.
    static let bucketNanoseconds: UInt64 = 500
    /// Buckets (the last one holds everything longer: 2 ms and more).
    static let bucketCount = 4096
    /// Samples between two updates of the percentile; the counts are halved at each, so
    /// older samples weigh less.
    static let samplesPerUpdate: UInt32 = 256

    private var counts: [UInt32]
    private var total: UInt32 = 0
    private var sinceUpdate: UInt32 = 0
    /// The 99th percentile at the last update (ns, a bucket's upper edge); nil before the
    /// first update.
    private(set) var p99Nanoseconds: UInt64?
    /// Samples recorded in all.
    private(set) var samples: UInt64 = 0

    init() {
        counts = [UInt32](repeating: 0, count: Self.bucketCount)
    }

    /// Records one sample. Returns true when the percentile was updated by it.
    mutating func record(nanoseconds: UInt64) -> Bool {
        let bucket = Int(min(UInt64(Self.bucketCount - 1), nanoseconds / Self.bucketNanoseconds))
        counts[bucket] &+= 1
        total &+= 1
        samples &+= 1
        sinceUpdate &+= 1
        guard sinceUpdate >= Self.samplesPerUpdate else { return false }
        sinceUpdate = 0
        update()
        return true
    }

    private mutating func update() {
        let rank = total - total / 100
        var seen: UInt32 = 0
        var p99 = Self.bucketCount - 1
        for i in 0..<Self.bucketCount {
            seen &+= counts[i]
            if seen >= rank {
                p99 = i
                break
            }
        }
        p99Nanoseconds = UInt64(p99 + 1) * Self.bucketNanoseconds
        total = 0
        for i in 0..<Self.bucketCount {
            counts[i] >>= 1
            total &+= counts[i]
        }
    }
}
