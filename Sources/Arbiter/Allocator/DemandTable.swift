import Atomics
import CPlatform

/// How the allocator's pair table finds a (source, destination) pair's entry.
public enum PairTableLayout: String, Sendable, Hashable, CaseIterable, Codable {
    /// Direct where it takes no more memory than hashed, else hashed.
    case automatic
    /// An entry for every ordered pair of hosts: 16 bytes × hosts², no probing.
    case direct
    /// Open addressing sized by the pair capacity: 32 bytes × at least twice the records.
    case hashed
}

/// The allocator's per-pair state, in one of two layouts chosen at start-up by memory:
///
/// - *Direct* (few hosts, where every pair having an entry costs no more memory than
///   hashing): entry `p = source × hosts + destination`, pair words in one array, eight
///   to a cache line. No key, no probing: adding demand touches one line of an array small
///   enough to stay mostly in the caches (512 KiB at 256 hosts).
/// - *Hashed*: an open-addressing table from (source, destination) to an entry of four
///   words, two to a cache line, sized by the pairs active at once (twice the record
///   capacity in entries, rounded up to a power of two), not by hosts². Word `0` is the
///   pair word, word `1` the last service; word `2` holds the key (`source << 16 |
///   destination`, all ones when the entry never held a pair) in its low half and, in its
///   high half, how far from entry `p` the keys that hash to it were placed: once every
///   entry has been used there is no empty entry to end a search, and this keeps a search
///   for an absent pair short. Adding demand reads one line.
///
/// Either way, entry `p` (the pair index records carry) has a pair word (`active | purged |
/// delta`, see ``PairWord``) and slot + 1 of the pair's last service (written by a stage
/// when the pair goes idle), so that a flow coming back is ordered by when it was really
/// last served. A direct table keeps the last services in an array of their own: the pair
/// words alone are what every request touches.
///
/// Keys and the probe sequence are the communication role's alone; stages only touch the
/// pair word and the last service of entries whose record they hold. An idle hashed entry
/// (no record circulates) keeps its key, and with it its last service, until the slot is
/// needed for another pair. The fourth word of a hashed entry is unused: two entries fill
/// a cache line exactly.
public final class DemandTable: @unchecked Sendable {
    /// Most pairs with a record at once for new demand.
    public let capacity: Int
    /// Most records there can be: the capacity, plus room for slots given back (an
    /// allocation that could not be routed or placed goes back as demand even when new
    /// demand is refused). Every record buffer of the stages holds this many.
    public let recordCapacity: Int
    public let hostCount: Int
    /// Entries: hosts² when direct, else a power of two at least twice the record capacity.
    public let entryCount: Int
    /// Whether entries are indexed by `source × hosts + destination` (no keys).
    public let isDirect: Bool
    /// Pair word of entry `p` at word `p << entryShift` (0 direct, 2 hashed); its last
    /// service at `serviceBase + p << entryShift`.
    let entryShift: Int
    let serviceBase: Int
    let entries: AtomicWords
    /// Change counters, one per group of entries (`pair & changeMask`): moved on whenever
    /// the pair word of an entry of the group changes under a circulating record (demand
    /// added or withdrawn, a purge). Small enough to stay in cache, so a stage can check a
    /// record's group on every visit and read the pair word only when it moved.
    let changes: AtomicHalfwords
    let changeMask: Int
    private let entryMask: Int
    /// How far from its home entry a pair may be placed.
    static let probeLimit = 64
    /// Records made (communication role) and records retired (published by the stages at
    /// the end of each batch): their difference bounds the records circulating, which
    /// must stay within the stages' buffers.
    @exclusivity(unchecked) public private(set) var activations = 0
    let retirements = ManagedAtomic<Int>(0)
    #if DEBUG
        /// Debug builds: the demand added to pair words and not yet absorbed, kept as the
        /// words change (``waitingDemand`` reads every word), so the allocator can check its
        /// accounting after every batch at a cost in proportion to the batch.
        let waitingDemandKept = ManagedAtomic<Int64>(0)
    #endif

    /// Bytes the table's arrays take.
    public var memoryBytes: Int { entries.count * 8 + changes.count * 2 }

    /// - Parameters:
    ///   - reserve: records beyond `capacity` kept for demand given back (at least one
    ///     batch's allocations).
    ///   - layout: direct or hashed; automatic picks direct where it takes no more memory.
    public init(capacity: Int, hostCount: Int, reserve: Int = 0, layout: PairTableLayout = .automatic) {
        precondition(
            capacity > 0 && capacity <= 1 << 28 && hostCount > 0 && hostCount <= 1 << 16 && reserve >= 0)
        self.capacity = capacity
        self.hostCount = hostCount
        recordCapacity = capacity + reserve
        var n = 64
        while n < recordCapacity * 2 { n <<= 1 }
        // Direct when a pair word and a last service for every pair take no more memory
        // than the hashed table (four words per entry) would.
        switch layout {
        case .automatic: isDirect = hostCount * hostCount * 2 <= n * 4
        case .direct: isDirect = true
        case .hashed: isDirect = false
        }
        if isDirect {
            entryCount = hostCount * hostCount
            entryShift = 0
            entryMask = 0
            serviceBase = entryCount
            entries = AtomicWords(count: 2 * entryCount)
        } else {
            entryCount = n
            entryShift = 2
            entryMask = n - 1
            serviceBase = 1
            entries = AtomicWords(count: 4 * n)
            for p in 0..<n { entries[4 * p + 2].store(UInt64(Self.noKey), ordering: .relaxed) }
        }
        // About four groups per host: few records share a group, and the counters stay
        // small enough for the first-level cache (8 KiB up to 1024 hosts).
        var groups = 4096
        while groups < hostCount * 4 && groups < 65_536 { groups <<= 1 }
        changes = AtomicHalfwords(count: groups)
        changeMask = groups - 1
    }

    /// The key of a hashed entry that never held a pair (no pair joins a host to itself).
    private static let noKey: UInt32 = .max

    @inline(__always)
    private static func key(_ source: UInt32, _ destination: UInt32) -> UInt32 {
        source << 16 | destination
    }

    @inline(__always)
    private func home(_ key: UInt32) -> Int {
        Int(truncatingIfNeeded: (UInt64(key) &* 0x9E37_79B9_7F4A_7C15) >> 29) & entryMask
    }

    @inline(__always) func pairWord(_ p: Int) -> UnsafeAtomic<UInt64> { entries[p &<< entryShift] }
    @inline(__always) func lastServiceWord(_ p: Int) -> UnsafeAtomic<UInt64> {
        entries[serviceBase &+ p &<< entryShift]
    }
    /// Key (low half) and reach (high half) of a hashed entry.
    @inline(__always) private func keyWord(_ p: Int) -> UnsafeAtomic<UInt64> { entries[4 &* p &+ 2] }
    @inline(__always) private func key(ofEntry p: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: keyWord(p).load(ordering: .relaxed))
    }
    @inline(__always) private func reach(_ p: Int) -> Int {
        Int(truncatingIfNeeded: keyWord(p).load(ordering: .relaxed) >> 32)
    }

    /// The entry of (source, destination), if it has one.
    @inline(__always)
    public func find(_ source: UInt32, _ destination: UInt32) -> Int? {
        // A host out of range has no pair (and must not alias another pair's entry).
        guard Int(source) < hostCount && Int(destination) < hostCount else { return nil }
        if isDirect { return Int(source) &* hostCount &+ Int(destination) }
        let k = Self.key(source, destination)
        let h = home(k)
        var p = h
        for _ in 0..<reach(h) {
            if key(ofEntry: p) == k { return p }
            p = (p &+ 1) & entryMask
        }
        return nil
    }

    /// Starts loading the line where (source, destination) is looked up (a hint, for a
    /// request a few ahead of the one being added).
    @inline(__always)
    public func prefetch(_ source: UInt32, _ destination: UInt32) {
        let p = isDirect ? Int(source) &* hostCount &+ Int(destination) : home(Self.key(source, destination))
        fp_prefetch_for_write(entries.storage + (p &<< entryShift))
    }

    /// Runs `add` on each request in order, having started to load the pair entry of the
    /// request eight ahead; moves the requests `add` refused to the front, in order, and
    /// returns how many there are. Requests naming hosts out of range are not prefetched
    /// (`add` judges them).
    @inline(__always)
    func addInOrder(
        _ requests: UnsafeMutableBufferPointer<DemandRequest>, _ add: (DemandRequest) -> Bool
    ) -> Int {
        let n = requests.count
        let ahead = 8
        for i in 0..<min(ahead, n) { prefetch(requests[i]) }
        var refused = 0
        for i in 0..<n {
            if i &+ ahead < n { prefetch(requests[i &+ ahead]) }
            let r = requests[i]
            if !add(r) {
                requests[refused] = r
                refused &+= 1
            }
        }
        return refused
    }

    @inline(__always)
    private func prefetch(_ r: DemandRequest) {
        guard Int(UInt32(bitPattern: r.source)) < hostCount && Int(UInt32(bitPattern: r.destination)) < hostCount
        else { return }
        prefetch(UInt32(bitPattern: r.source), UInt32(bitPattern: r.destination))
    }

    /// Makes an entry for (source, destination), which has none: in a never-used entry, or
    /// taking over an idle pair's. Nil when every entry within reach has a record.
    @inline(__always)
    private func insert(_ source: UInt32, _ destination: UInt32) -> Int? {
        let k = Self.key(source, destination)
        let h = home(k)
        var p = h
        var distance = 0
        while true {
            guard distance < Self.probeLimit else { return nil }
            if key(ofEntry: p) == Self.noKey || !PairWord.isActive(pairWord(p).load(ordering: .acquiring)) { break }
            p = (p &+ 1) & entryMask
            distance &+= 1
        }
        if distance >= reach(h) {
            let word = keyWord(h).load(ordering: .relaxed)
            keyWord(h).store(word & 0xFFFF_FFFF | UInt64(distance &+ 1) << 32, ordering: .relaxed)
        }
        // An idle entry has no record anywhere: no stage will touch it.
        let word = keyWord(p).load(ordering: .relaxed)
        keyWord(p).store(word & ~0xFFFF_FFFF | UInt64(k), ordering: .relaxed)
        pairWord(p).store(0, ordering: .relaxed)
        lastServiceWord(p).store(0, ordering: .relaxed)
        return p
    }

    @inline(__always)
    private func noteChange(pair: Int) {
        changes[pair & changeMask].wrappingIncrement(ordering: .releasing)
        changesNoted &+= 1
    }

    /// Changes noted so far (communication role): a group counter can only come back to a
    /// value a record remembers after 65 536 changes.
    @exclusivity(unchecked) public private(set) var changesNoted: UInt64 = 0

    /// What ``add(source:destination:slots:)`` did.
    public enum AddResult {
        /// The pair already had a record circulating; the record will absorb the demand.
        case merged
        /// The pair was idle: this new record must be handed to a stage. `lastServed` is
        /// slot + 1 of the pair's last service (0 when never), for ordering it.
        case activated(FlowRecord, lastServed: UInt64)
        /// No entry could be made (the table is full of active pairs), or the pair's added
        /// demand not yet absorbed would exceed 2^31 − 1 slots; nothing was added.
        case refused
    }

    /// Adds `slots` of demand from `source` to `destination`. `givenBack`: the slots were
    /// allocated and could not be used, so they may use the reserve.
    @inline(__always)
    public func add(source: UInt32, destination: UInt32, slots: UInt32, givenBack: Bool = false) -> AddResult {
        guard slots > 0 else { return .merged }
        guard Int(source) < hostCount && Int(destination) < hostCount && source != destination else { return .refused }
        // A new record needs room: refused before an idle pair's entry is taken over.
        let existing = find(source, destination)
        if existing == nil || !PairWord.isActive(pairWord(existing!).load(ordering: .acquiring)) {
            guard activeCount < (givenBack ? recordCapacity : capacity) else { return .refused }
        }
        guard let p = existing ?? insert(source, destination) else { return .refused }
        let word = pairWord(p)
        var current = word.load(ordering: .acquiring)
        if !PairWord.isActive(current) {
            // No record: nothing but this role writes the word, so a store suffices.
            word.store(PairWord.make(active: true), ordering: .releasing)
            activations &+= 1
            let record = FlowRecord(
                source: Int(source), destination: Int(destination), pair: p, demand: slots,
                seenChange: changes[p & changeMask].load(ordering: .acquiring), lastServedBatch: 0)
            return .activated(record, lastServed: lastServiceWord(p).load(ordering: .relaxed))
        }
        while true {
            let added = PairWord.added(current) + UInt64(slots)
            guard added <= PairWord.fieldLimit else { return .refused }
            let next = PairWord.make(
                active: true, purged: PairWord.isPurged(current), withdrawal: PairWord.withdrawal(current),
                added: added)
            let (done, original) = word.compareExchange(
                expected: current, desired: next, ordering: .acquiringAndReleasing)
            if done {
                noteChange(pair: p)
                noteWaitingChange(Int64(slots))
                return .merged
            }
            current = original
            if !PairWord.isActive(current) {
                // The record retired meanwhile.
                return add(source: source, destination: destination, slots: slots, givenBack: givenBack)
            }
        }
    }

    /// Records circulating, at most (retirements are published at the end of a batch).
    public var activeCount: Int { activations &- retirements.load(ordering: .relaxed) }

    /// Withdraws up to `slots` of the pair's demand. Returns how many were taken at once
    /// (demand added since its record last looked); the rest is left as a withdrawal that
    /// the record applies to the demand it carries when a stage next sees it (reported by
    /// the stage) — slots already allocated by then cannot be withdrawn.
    public func withdraw(source: UInt32, destination: UInt32, slots: UInt64) -> UInt64 {
        guard slots > 0, let p = find(source, destination) else { return 0 }
        let word = pairWord(p)
        var current = word.load(ordering: .acquiring)
        while true {
            guard PairWord.isActive(current) else { return 0 }
            let added = PairWord.added(current)
            let immediate = min(added, slots)
            let pending = min(
                PairWord.withdrawal(current) + min(slots - immediate, PairWord.fieldLimit), PairWord.fieldLimit)
            let next = PairWord.make(
                active: true, purged: PairWord.isPurged(current), withdrawal: pending, added: added - immediate)
            let (done, original) = word.compareExchange(
                expected: current, desired: next, ordering: .acquiringAndReleasing)
            if done {
                if pending > PairWord.withdrawal(current) { noteChange(pair: p) }
                noteWaitingChange(-Int64(immediate))
                return immediate
            }
            current = original
        }
    }

    /// Forgets the demand of every pair matching `matches`: clears waiting changes and
    /// marks circulating records purged. Such a record drops the demand it carries the
    /// next time a stage looks at it (counted by that stage), then adopts demand added
    /// since or retires: a pair never has more than one record. Returns the added demand
    /// not yet absorbed that was cleared here. Reads every entry: see ``purge(source:)``
    /// and ``purge(host:)`` for the cheap common cases.
    public func purge(where matches: (UInt32, UInt32) -> Bool) -> UInt64 {
        var purged: UInt64 = 0
        for p in 0..<entryCount {
            let (source, destination) = hosts(ofEntry: p)
            guard source != .max, matches(source, destination) else { continue }
            purged &+= purge(entry: p)
        }
        return purged
    }

    /// ``purge(where:)`` of the pairs from `source` (its endpoint reset). A direct table
    /// reads only the source's row: an endpoint reset at a thousand hosts read a million
    /// entries, a quarter of the arbiter's time when endpoints reset often.
    public func purge(source: UInt32) -> UInt64 {
        guard isDirect else { return purge { src, _ in src == source } }
        var purged: UInt64 = 0
        let row = Int(source) * hostCount
        for d in 0..<hostCount { purged &+= purge(entry: row + d) }
        return purged
    }

    /// ``purge(where:)`` of the pairs from and to `host` (it went away): in a direct table
    /// its row and its column.
    public func purge(host: UInt32) -> UInt64 {
        guard isDirect else { return purge { src, dst in src == host || dst == host } }
        var purged: UInt64 = 0
        let h = Int(host)
        for other in 0..<hostCount {
            purged &+= purge(entry: h * hostCount + other)
            // The pair (host, host) is in both; the row had it.
            if other != h { purged &+= purge(entry: other * hostCount + h) }
        }
        return purged
    }

    /// Purges the pair in entry `p` if it has a record; returns the added demand cleared.
    private func purge(entry p: Int) -> UInt64 {
        let word = pairWord(p)
        var current = word.load(ordering: .acquiring)
        while PairWord.isActive(current) {
            let (done, original) = word.compareExchange(
                expected: current, desired: PairWord.make(active: true, purged: true),
                ordering: .acquiringAndReleasing)
            if done {
                noteChange(pair: p)
                noteWaitingChange(-Int64(PairWord.added(current)))
                return PairWord.added(current)
            }
            current = original
        }
        return 0
    }

    /// The pair entry `p` holds; `(.max, .max)` for a hashed entry never used.
    func hosts(ofEntry p: Int) -> (UInt32, UInt32) {
        if isDirect { return (UInt32(p / hostCount), UInt32(p % hostCount)) }
        let key = key(ofEntry: p)
        return key == Self.noKey ? (.max, .max) : (key >> 16, key & 0xFFFF)
    }

    /// Keeps ``waitingDemandKept`` (debug builds; nothing in release): `delta` slots were
    /// added to (positive) or taken from the pair words.
    @inline(__always)
    func noteWaitingChange(_ delta: Int64) {
        #if DEBUG
            waitingDemandKept.wrappingIncrement(by: delta, ordering: .relaxed)
        #endif
    }

    /// Demand waiting in the pair words (added and not yet absorbed).
    public var waitingDemand: UInt64 {
        var total: UInt64 = 0
        for p in 0..<entryCount {
            total &+= PairWord.added(pairWord(p).load(ordering: .acquiring))
        }
        return total
    }

    /// ``waitingDemand`` of the pairs (source, destination) `matches` accepts.
    func waitingDemand(where matches: (UInt32, UInt32) -> Bool) -> UInt64 {
        var total: UInt64 = 0
        for p in 0..<entryCount {
            let (source, destination) = hosts(ofEntry: p)
            guard source != .max, matches(source, destination) else { continue }
            total &+= PairWord.added(pairWord(p).load(ordering: .acquiring))
        }
        return total
    }

    /// Whether the record of `pair` carries demand that still counts (not purged since).
    func isCurrent(pair: Int) -> Bool { !PairWord.isPurged(pairWord(pair).load(ordering: .acquiring)) }

    /// Whether the pair has a record circulating.
    public func isActive(_ source: UInt32, _ destination: UInt32) -> Bool {
        guard let p = find(source, destination) else { return false }
        return PairWord.isActive(pairWord(p).load(ordering: .acquiring))
    }
}
