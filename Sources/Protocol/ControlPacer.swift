/// Paces the FCP packets an endpoint sends to the arbiter: a token bucket at the rate the
/// arbiter announced (``FCPControlBudget``), with half the bucket kept back for packets
/// that carry news (a flow starting, a resend, HELLO), and an exponential back-off after
/// losses so that an overloaded arbiter is not answered with more packets.
///
/// The arbiter keeps one per endpoint too, to count packets above the endpoint's share.
/// Times are in nanoseconds; the bucket holds "credit" in nanoseconds, one packet costing
/// `10⁹ / rate`, so no division happens per packet.
public struct ControlPacer: Sendable, Hashable {
    /// Packets per second on average; 0: no limit.
    public private(set) var packetsPerSecond: UInt64 = 0
    /// Packets that may leave back to back after a quiet spell.
    public private(set) var burst: UInt64 = 1
    /// Consecutive loss episodes the back-off has doubled for (0: none).
    public private(set) var backoffLevel = 0
    var cost: UInt64 = 0
    var credit: UInt64 = 0
    var updated: UInt64 = 0
    var backoffUntil: UInt64 = 0

    /// Most doublings of the back-off: 2⁵ times its base.
    public static let maxBackoffLevel = 5

    /// An unlimited pacer.
    public init() {}

    /// A pacer at `packetsPerSecond` (0: no limit) with a full bucket of `burst` packets.
    public init(packetsPerSecond: UInt64, burst: UInt64, now: UInt64) {
        setRate(packetsPerSecond: packetsPerSecond, burst: burst, now: now)
    }

    /// Changes the rate, keeping the credit already earned (up to the new bucket's size);
    /// a pacer that had no limit starts with a full bucket.
    public mutating func setRate(packetsPerSecond: UInt64, burst: UInt64, now: UInt64) {
        let wasUnlimited = cost == 0
        refill(now)
        updated = max(updated, now)
        self.packetsPerSecond = packetsPerSecond
        self.burst = max(1, burst)
        cost = packetsPerSecond == 0 ? 0 : max(1, 1_000_000_000 / packetsPerSecond)
        credit = wasUnlimited ? cost &* self.burst : min(credit, cost &* self.burst)
    }

    /// Time between packets at the full rate (0: no limit).
    public var intervalNanoseconds: UInt64 { cost }

    private mutating func refill(_ now: UInt64) {
        guard now > updated else { return }
        credit = min(credit &+ (now - updated), cost &* burst)
        updated = now
    }

    /// Tokens a packet without news must leave in the bucket: half of it, so that a few
    /// flows starting at once find tokens even when acknowledgements and more demand for
    /// flows being served keep the bucket low.
    public var reserve: UInt64 { burst / 2 }

    /// The longest a packet without news may wait for its token from an empty bucket (ns).
    public var longestWaitWithoutNews: UInt64 { cost &* (reserve &+ 1) }

    /// The earliest time at or after `now` the next packet may leave. A packet without
    /// news waits until ``reserve`` tokens would remain for the ones that have news.
    public func earliestSend(now: UInt64, carriesNews: Bool) -> UInt64 {
        let t = max(now, backoffUntil)
        guard cost > 0 else { return t }
        let need = carriesNews ? cost : cost &* (reserve &+ 1)
        let have = min(credit &+ (t > updated ? t - updated : 0), cost &* burst)
        return have >= need ? t : t + (need - have)
    }

    /// Takes one packet's token at `now`. Returns false when the bucket was empty: the
    /// packet left above the budget (the caller counts it).
    @discardableResult
    public mutating func consume(now: UInt64) -> Bool {
        guard cost > 0 else { return true }
        refill(now)
        guard credit >= cost else {
            credit = 0
            return false
        }
        credit -= cost
        return true
    }

    /// A packet was lost (timed out) at `now`: the next packets wait `base` doubled once per
    /// loss episode (losses during a back-off belong to the same episode).
    public mutating func noteLoss(now: UInt64, base: UInt64) {
        guard now >= backoffUntil else { return }
        backoffLevel = min(backoffLevel + 1, Self.maxBackoffLevel)
        backoffUntil = now &+ max(base, cost) << UInt64(backoffLevel - 1)
    }

    /// A packet was acknowledged: the path works, the back-off ends.
    public mutating func noteAcknowledged() {
        backoffLevel = 0
        backoffUntil = 0
    }
}
