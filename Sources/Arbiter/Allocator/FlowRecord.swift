/// A flow (source, destination) with demand, as it travels through the allocator's
/// stages: 16 bytes of plain data, copied from round to round and between stages, so it
/// carries only what the allocation loop reads on every visit. Rarely needed facts (when
/// the pair was last served, whether it was purged, its weight) live per pair or per host.
///
/// `a` = source (16 bits) | destination (16) | demand (32);
/// `b` = pair (32) | seen change (16) | batch of last service (16).
public struct FlowRecord: BitwiseCopyable, Sendable, Hashable {
    public var a: UInt64
    public var b: UInt64

    @inlinable
    init(a: UInt64, b: UInt64) {
        self.a = a
        self.b = b
    }

    @inlinable
    public init(source: Int, destination: Int, pair: Int, demand: UInt32, seenChange: UInt16, lastServedBatch: UInt16) {
        a =
            UInt64(UInt16(truncatingIfNeeded: source)) | UInt64(UInt16(truncatingIfNeeded: destination)) << 16
            | UInt64(demand) << 32
        b = UInt64(UInt32(truncatingIfNeeded: pair)) | UInt64(seenChange) << 32 | UInt64(lastServedBatch) << 48
    }

    /// Dense host index of the sender.
    @inlinable public var source: Int { Int(a & 0xFFFF) }
    /// Dense host index of the receiver.
    @inlinable public var destination: Int { Int((a >> 16) & 0xFFFF) }
    /// Both hosts as `source | destination << 16`, the form allocations are written in.
    @inlinable public var hosts: UInt32 { UInt32(truncatingIfNeeded: a) }
    /// Slots still to allocate that this record carries.
    @inlinable public var demand: UInt32 {
        get { UInt32(truncatingIfNeeded: a >> 32) }
        set { a = (a & 0xFFFF_FFFF) | UInt64(newValue) << 32 }
    }
    /// Index of the flow's entry in the ``DemandTable``.
    @inlinable public var pair: Int { Int(b & 0xFFFF_FFFF) }
    /// The change counter of the pair's group when this record last looked at its pair's
    /// shared word: while the counter is unchanged nothing about the pair changed, so the
    /// stage need not read the word (which lives in a table too large for the cache).
    @inlinable public var seenChange: UInt16 {
        get { UInt16(truncatingIfNeeded: b >> 32) }
        set { b = (b & ~(0xFFFF << 32)) | UInt64(newValue) << 32 }
    }
    /// Number (mod 2^16) of the batch in which the flow was last served; orders flows
    /// least recently served first when newly active ones join the stream.
    @inlinable public var lastServedBatch: UInt16 {
        get { UInt16(truncatingIfNeeded: b >> 48) }
        set { b = (b & 0x0000_FFFF_FFFF_FFFF) | UInt64(newValue) << 48 }
    }
}

/// The shared state word of a pair: `active (bit 63) | purged (bit 62) | withdrawal (31
/// bits) | added (31 bits)`. `active` says the pair's one record circulates in the
/// pipeline; `purged` says its demand was forgotten since the record last looked; `added`
/// is demand the communication side added and `withdrawal` slots it asked to withdraw,
/// neither absorbed by the record yet. A withdrawal takes from `added` first, so the two
/// are only both non-zero when the withdrawal came first: it applies to the demand the
/// record carries, and `added` is new demand after it. While a record circulates, every
/// change is a compare-and-swap of the whole word (a single-threaded allocator uses plain
/// loads and stores), so the record can only retire (clear `active`) when nothing waits
/// for it, and a pair never has two records. Activating an idle pair is a plain store: no
/// other thread touches the word of a pair without a record.
@usableFromInline
enum PairWord {
    @usableFromInline static let activeBit: UInt64 = 1 << 63
    @usableFromInline static let purgedBit: UInt64 = 1 << 62
    @usableFromInline static let fieldMask: UInt64 = (1 << 31) - 1
    /// Largest value either field may reach; beyond it the communication side refuses
    /// (adding) or stops counting (withdrawing).
    @usableFromInline static let fieldLimit: UInt64 = (1 << 31) - 1

    @inline(__always) @usableFromInline
    static func added(_ w: UInt64) -> UInt64 { w & fieldMask }
    @inline(__always) @usableFromInline
    static func withdrawal(_ w: UInt64) -> UInt64 { (w >> 31) & fieldMask }
    @inline(__always) @usableFromInline
    static func isActive(_ w: UInt64) -> Bool { w & activeBit != 0 }
    @inline(__always) @usableFromInline
    static func isPurged(_ w: UInt64) -> Bool { w & purgedBit != 0 }
    /// Whether something waits for the record: added demand, a withdrawal or a purge.
    @inline(__always) @usableFromInline
    static func hasChanges(_ w: UInt64) -> Bool { w & ~activeBit != 0 }
    @inline(__always) @usableFromInline
    static func make(active: Bool, purged: Bool = false, withdrawal: UInt64 = 0, added: UInt64 = 0) -> UInt64 {
        (active ? activeBit : 0) | (purged ? purgedBit : 0) | (withdrawal & fieldMask) << 31 | (added & fieldMask)
    }
}

/// How the allocator orders flows that compete for the same sources and destinations.
public enum AllocationPolicy: String, Sendable, Hashable, CaseIterable, Codable {
    /// Least recently served first, one slot per flow per round: max-min fair shares.
    case maxMinFair
    /// Fewest remaining slots first, each flow taking every slot it can: short flows finish
    /// first (the record's demand is what the allocator knows is remaining).
    case shortestRemainingFirst
    /// Like max-min, but a flow takes up to its weight in slots per round: competing flows
    /// get shares in proportion to their weights (set per source host and class).
    case weightedFair
    /// Lower classes first: a class is served (max-min fair within it) before any slot of
    /// the batch goes to a higher class number.
    case strictPriority
}
