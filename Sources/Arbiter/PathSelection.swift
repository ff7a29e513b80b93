import FixedStorage

/// Assigns a spine to every inter-rack allocation of one timeslot, so that no ToR↔spine
/// link carries more than its per-slot capacity in either direction and no link or spine
/// that is down is used. Intra-rack allocations need no spine.
///
/// The rack multigraph of one slot (an edge per allocation, from its source's rack to its
/// destination's rack) is edge-coloured. A rack's degree is at most S × c (S spines of c
/// packets each per slot), which the allocator guarantees, and by König's theorem S × c
/// colours then suffice. Methods:
/// - *edge colouring* (the default, any number of spines): colour `k` is packet `k / S`
///   of spine `k mod S`, so the lowest colours, tried first, spread a slot's packets over
///   the spines before any link takes a second one (packets sharing a link in one slot
///   arrive together and queue behind each other). Every rack side keeps a bitmap of its
///   free colours; an edge takes
///   the lowest colour free at both its racks, and when there is none, colours α (free at
///   the source) and β (free at the destination) are swapped along the alternating α/β
///   path from the destination, which cannot reach the source, freeing α there. With links
///   down, a rack's bitmap only holds the colours of its usable spines, and an allocation
///   that cannot be coloured is reported unroutable (counted, not sent);
/// - *Euler split* (power-of-two spine counts, every link up): the rack-to-rack count
///   matrix is halved recursively (even counts divide exactly, pairs with an odd count are
///   balanced at every rack); after log2(S) levels each of the S parts has row and column
///   sums within a link's capacity.
///
/// *Pinned sources* (reference endpoints, which cannot be told a path: their packets take
/// whatever spine the switches route them to) are booked on their pinned spine, the lowest
/// spine usable at both racks (``Topology/pinnedSpine(sourceRack:destinationRack:)``). In
/// a batch with pinned allocations those are coloured first, each with a colour of its
/// pinned spine (an alternating path may swap it with another colour of the same spine,
/// never with another spine's); then the others, whose alternating paths stop at a pinned
/// edge. A pinned allocation whose spine has no room is unroutable. Euler split does not
/// know pinned edges: batches with any pinned source are edge-coloured.
///
/// All storage is sized at construction from the topology; `assign` allocates nothing.
public final class PathSelector: @unchecked Sendable {
    /// How spines are chosen (see the type's documentation).
    public enum Method: String, Sendable, Hashable, CaseIterable, Codable {
        /// Edge colouring with colour bitmaps and alternating paths, whatever the spine count.
        case edgeColoring
        /// Euler split when the spine count is a power of two and every link is up; edge
        /// colouring otherwise.
        case eulerSplit
    }

    public private(set) var topology: Topology
    public let method: Method
    let racks: Int
    let spines: Int
    let maxEdges: Int

    // Edge colouring, for up to `slotsPerCall` slots at once. Per slot and rack side: the
    // free colours (`words` 64-bit words each) and the edge holding each colour (epoch-tagged
    // so that tables need no clearing between calls). Per capacity c (packets per link in a
    // slot): the colours each rack may use (those of its usable spines) and each colour's
    // spine. Per edge of the call: its racks and colour.
    let peakColors: Int
    let words: Int
    public let slotsPerCall: Int
    let upFree: FixedBuffer<UInt64>
    let downFree: FixedBuffer<UInt64>
    let allowedByCapacity: FixedBuffer<UInt64>
    let spineOfColor: FixedBuffer<Int16>
    let upEdge: FixedBuffer<UInt32>
    let downEdge: FixedBuffer<UInt32>
    @exclusivity(unchecked) var epoch: UInt32 = 0
    static let edgeBits: UInt32 = 23
    let capacityOfSlot: FixedBuffer<Int>
    let spineBase: FixedBuffer<UnsafeMutablePointer<Int16>>
    let path: FixedBuffer<Int32>
    let pathLimit: Int
    let maxBatchEdges: Int
    /// Per rack, the spines it may use (`spineWords` words each): pinned spines are the
    /// lowest common bit of two racks' sets.
    let spineWords: Int
    let usableSpines: FixedBuffer<UInt64>
    /// A call's allocation indices, pinned ones first (batches with pinned sources).
    let order: FixedBuffer<Int32>

    // Euler split: rack-pair aggregation (open addressing, keys u·R+v+1, 0 empty), parts as
    // (pair, count) lists double-buffered per level, odd-count balancing, and the final
    // per-pair, per-spine counts with a cursor per pair.
    let pairKeys: FixedBuffer<UInt32>
    let pairSlots: FixedBuffer<Int32>
    let bucketMask: Int
    let pairSource: FixedBuffer<UInt16>
    let pairDestination: FixedBuffer<UInt16>
    let pairCount: FixedBuffer<Int32>
    let touchedBuckets: FixedBuffer<Int32>
    @exclusivity(unchecked) var pairTotal = 0
    let edgePair: FixedBuffer<Int32>
    let partPairA: FixedBuffer<Int32>
    let partCountA: FixedBuffer<Int32>
    let partPairB: FixedBuffer<Int32>
    let partCountB: FixedBuffer<Int32>
    let partStart: FixedBuffer<Int32>
    let nextPartStart: FixedBuffer<Int32>
    let oddPair: FixedBuffer<Int32>
    let oddHalf: FixedBuffer<UInt8>
    let partnerAtSource: FixedBuffer<Int32>
    let partnerAtDestination: FixedBuffer<Int32>
    let pendingAtSource: FixedBuffer<Int32>
    let pendingAtDestination: FixedBuffer<Int32>
    let pairSpineCount: FixedBuffer<Int32>
    let pairCursor: FixedBuffer<Int32>

    /// Allocations reported unroutable, in total.
    @exclusivity(unchecked) public private(set) var unroutable: UInt64 = 0
    /// Alternating paths walked (an allocation found no colour free at both racks).
    @exclusivity(unchecked) public private(set) var recolorings: UInt64 = 0
    /// Edges whose colour an alternating path swapped.
    @exclusivity(unchecked) public private(set) var recoloredEdges: UInt64 = 0

    private static func make<T: BitwiseCopyable>(_ count: Int, _ value: T) -> FixedBuffer<T> {
        FixedBuffer(repeating: value, count: max(1, count))
    }

    /// - Parameters:
    ///   - maxEdgesPerSlot: most allocations one slot has (default: the hosts).
    ///   - slotsPerCall: most slots ``assignBatch(entries:count:rackOf:firstSlot:batchSize:spinesOut:)``
    ///     colours at once (the allocator's batch size).
    public init(
        topology: Topology, method: Method = .edgeColoring, maxEdgesPerSlot: Int? = nil, slotsPerCall: Int = 16
    ) {
        self.topology = topology
        self.method = method
        racks = topology.rackCount
        spines = topology.spineCount
        maxEdges = max(1, maxEdgesPerSlot ?? topology.hostCount)
        peakColors = max(1, topology.linkRate.peak * spines)
        words = (peakColors + 63) / 64
        self.slotsPerCall = max(1, slotsPerCall)
        pathLimit = 2 * racks + 4
        let sides = self.slotsPerCall * racks
        upFree = Self.make(sides * words, 0)
        downFree = Self.make(sides * words, 0)
        let peak = topology.linkRate.peak
        allowedByCapacity = Self.make((peak + 1) * racks * words, 0)
        spineOfColor = Self.make((peak + 1) * peakColors, -1)
        upEdge = Self.make(sides * peakColors, 0)
        downEdge = Self.make(sides * peakColors, 0)
        maxBatchEdges = self.slotsPerCall * maxEdges
        capacityOfSlot = Self.make(self.slotsPerCall, 0)
        spineBase = Self.make(self.slotsPerCall, spineOfColor.base)
        path = Self.make(pathLimit, 0)
        spineWords = (spines + 63) / 64
        usableSpines = Self.make(racks * spineWords, 0)
        order = Self.make(maxBatchEdges, 0)

        var buckets = 16
        while buckets < maxEdges * 2 { buckets <<= 1 }
        bucketMask = buckets - 1
        let euler = spines.isPowerOfTwo && method == .eulerSplit
        let pairs = euler ? maxEdges : 1
        pairKeys = Self.make(euler ? buckets : 1, 0)
        pairSlots = Self.make(euler ? buckets : 1, -1)
        pairSource = Self.make(pairs, 0)
        pairDestination = Self.make(pairs, 0)
        pairCount = Self.make(pairs, 0)
        touchedBuckets = Self.make(pairs, 0)
        edgePair = Self.make(pairs, 0)
        partPairA = Self.make(2 * pairs, 0)
        partCountA = Self.make(2 * pairs, 0)
        partPairB = Self.make(2 * pairs, 0)
        partCountB = Self.make(2 * pairs, 0)
        partStart = Self.make(spines + 1, 0)
        nextPartStart = Self.make(spines + 1, 0)
        oddPair = Self.make(pairs, 0)
        oddHalf = Self.make(pairs, 0)
        partnerAtSource = Self.make(pairs, -1)
        partnerAtDestination = Self.make(pairs, -1)
        pendingAtSource = Self.make(euler ? racks : 1, -1)
        pendingAtDestination = Self.make(euler ? racks : 1, -1)
        pairSpineCount = Self.make(euler ? pairs * spines : 1, 0)
        pairCursor = Self.make(pairs, 0)
        prepareColors()
    }

    /// Takes links and spines as `topology` now has them (same racks and spines).
    public func update(_ topology: Topology) {
        precondition(topology.rackCount == racks && topology.spineCount == spines)
        self.topology = topology
        prepareColors()
    }

    /// Chooses spines for one slot's inter-rack allocations.
    ///
    /// - Parameters:
    ///   - sources, destinations: racks of each allocation's source and destination (all
    ///     different: intra-rack allocations are not passed in).
    ///   - slot: the timeslot (link capacities vary by slot when rates are fractional).
    ///   - spinesOut: receives each allocation's spine, or -1 when it cannot be routed.
    /// - Returns: how many allocations could not be routed.
    @discardableResult
    public func assign(
        sources: UnsafeBufferPointer<UInt16>, destinations: UnsafeBufferPointer<UInt16>, slot: UInt64,
        spinesOut: UnsafeMutableBufferPointer<Int16>
    ) -> Int {
        let n = sources.count
        precondition(n <= maxEdges && destinations.count == n && spinesOut.count >= n)
        guard n > 0 else { return 0 }
        let capacity = topology.linkRate.capacity(inSlot: slot)
        guard capacity > 0 else {
            for e in 0..<n { spinesOut[e] = -1 }
            unroutable &+= UInt64(n)
            return n
        }
        if method == .eulerSplit && spines.isPowerOfTwo && topology.allLinksUp {
            aggregate(sources, destinations)
            eulerSplit()
            for e in 0..<n {
                let p = Int(edgePair[e])
                var s = Int(pairCursor[p])
                while pairSpineCount[p * spines + s] == 0 { s += 1 }
                pairSpineCount[p * spines + s] -= 1
                pairCursor[p] = Int32(s)
                spinesOut[e] = Int16(s)
            }
            clearAggregation()
            return 0
        }
        let sourceRacks = sources.baseAddress!
        let destinationRacks = destinations.baseAddress!
        let failed = color(
            count: n, firstSlot: slot, slots: 1, spinesOut: spinesOut.baseAddress!,
            unroutableMark: -1
        ) { e in (Int(sourceRacks[e]), Int(destinationRacks[e]), 0) }
        unroutable &+= UInt64(failed)
        return failed
    }

    /// Whether ``assignBatch(entries:count:rackOf:firstSlot:batchSize:spinesOut:)`` is the
    /// way to use this selector (edge colouring); Euler split goes slot by slot.
    public var colorsWholeBatches: Bool { !(method == .eulerSplit && spines.isPowerOfTwo && topology.allLinksUp) }

    /// Chooses spines for a whole batch of allocations at once, each slot coloured on its
    /// own: `entries` are `source host | destination host << 16 | batch slot << 32` in any
    /// order. Writes each allocation's spine, ``BatchAllocations/intraRack`` (-1) when its
    /// hosts share a rack, or ``BatchAllocations/unroutable`` (-2). Returns how many are
    /// unroutable.
    ///
    /// - Parameter pinned: per source host, whether its packets are pinned to their
    ///   pinned spine (see the type's documentation); nil when no host is.
    @discardableResult
    public func assignBatch(
        entries: UnsafePointer<UInt64>, count: Int, rackOf: UnsafePointer<UInt16>, firstSlot: UInt64, batchSize: Int,
        spinesOut: UnsafeMutablePointer<Int16>, pinned: UnsafePointer<Bool>? = nil
    ) -> Int {
        precondition(batchSize <= slotsPerCall && count <= maxBatchEdges)
        guard count > 0 else { return 0 }
        if let pinned {
            let failed = colorPinned(
                entries: entries, count: count, rackOf: rackOf, firstSlot: firstSlot, slots: batchSize,
                spinesOut: spinesOut, pinned: pinned)
            unroutable &+= UInt64(failed)
            return failed
        }
        if words == 1 {
            let failed = colorOneWord(
                entries: entries, count: count, rackOf: rackOf, firstSlot: firstSlot, slots: batchSize,
                spinesOut: spinesOut)
            unroutable &+= UInt64(failed)
            return failed
        }
        let failed = color(
            count: count, firstSlot: firstSlot, slots: batchSize, spinesOut: spinesOut, unroutableMark: -2
        ) { i in
            let e = entries[i]
            return (
                Int(rackOf[Int(truncatingIfNeeded: e & 0xFFFF)]),
                Int(rackOf[Int(truncatingIfNeeded: (e >> 16) & 0xFFFF)]),
                Int(truncatingIfNeeded: e >> 32)
            )
        }
        unroutable &+= UInt64(failed)
        return failed
    }

    // MARK: Edge colouring

    /// Fills, for every capacity a slot can have, the colours each rack may use and the
    /// spine of each colour.
    private func prepareColors() {
        let peak = topology.linkRate.peak
        for c in 0...peak {
            for r in 0..<racks {
                let base = (c * racks + r) * words
                for w in 0..<words { allowedByCapacity[base + w] = 0 }
                guard c > 0 else { continue }
                for s in 0..<spines where topology.isUsable(rack: r, spine: s) {
                    for j in 0..<c {
                        let k = j * spines + s
                        allowedByCapacity[base + k >> 6] |= 1 << UInt64(k & 63)
                    }
                }
            }
            for k in 0..<peakColors {
                spineOfColor[c * peakColors + k] = c > 0 && k < spines * c ? Int16(k % spines) : -1
            }
        }
        for r in 0..<racks {
            for w in 0..<spineWords { usableSpines[r * spineWords + w] = 0 }
            for s in 0..<spines where topology.isUsable(rack: r, spine: s) {
                usableSpines[r * spineWords + s >> 6] |= 1 << UInt64(s & 63)
            }
        }
    }

    /// The spine pinned allocations from rack `u` to rack `v` take: the lowest usable at
    /// both (as ``Topology/pinnedSpine(sourceRack:destinationRack:)``), or -1.
    @inline(__always)
    func pinnedSpine(from u: Int, to v: Int) -> Int {
        let a = usableSpines.base + u &* spineWords
        let b = usableSpines.base + v &* spineWords
        for w in 0..<spineWords {
            let m = a[w] & b[w]
            if m != 0 { return w << 6 | m.trailingZeroBitCount }
        }
        return -1
    }

    /// Starts a call over `slots` slots from `firstSlot`: a new epoch (which makes every
    /// table entry of earlier calls stale at once), and each slot's capacity and free
    /// colours. Returns the epoch's tag for table entries.
    private func beginCall(firstSlot: UInt64, slots: Int) -> UInt32 {
        let colors = peakColors
        epoch &+= 1
        if epoch >= 1 << (32 - Self.edgeBits) {
            upEdge.base.update(repeating: 0, count: slotsPerCall * racks * colors)
            downEdge.base.update(repeating: 0, count: slotsPerCall * racks * colors)
            epoch = 1
        }
        for s in 0..<slots {
            let c = topology.linkRate.capacity(inSlot: firstSlot &+ UInt64(s))
            capacityOfSlot[s] = c
            let from = allowedByCapacity.base + c * racks * words
            (upFree.base + s * racks * words).update(from: from, count: racks * words)
            (downFree.base + s * racks * words).update(from: from, count: racks * words)
        }
        return epoch << Self.edgeBits
    }

    /// The colouring loop behind both interfaces: edge `i`'s racks and batch slot come from
    /// `edge(i)`; returns how many edges could not be coloured (marked `unroutableMark`).
    @inline(__always)
    private func color(
        count: Int, firstSlot: UInt64, slots: Int, spinesOut: UnsafeMutablePointer<Int16>, unroutableMark: Int16,
        edge: (Int) -> (Int, Int, Int)
    ) -> Int {
        let words = self.words
        let colors = peakColors
        let racks = self.racks
        let tag = beginCall(firstSlot: firstSlot, slots: slots)
        var failed = 0
        for i in 0..<count {
            let (u, v, s) = edge(i)
            if u == v {
                spinesOut[i] = BatchAllocations.intraRack
                continue
            }
            let side = s &* racks
            let up = upFree.base + (side &+ u) &* words
            let down = downFree.base + (side &+ v) &* words
            var k = -1
            if words == 1 {
                let m = up[0] & down[0]
                if m != 0 { k = m.trailingZeroBitCount }
            } else {
                for w in 0..<words {
                    let m = up[w] & down[w]
                    if m != 0 {
                        k = w << 6 | m.trailingZeroBitCount
                        break
                    }
                }
            }
            if k < 0 {
                k = recolor(
                    u: u, v: v, slot: s, onSpine: -1, tag: tag, spinesOut: spinesOut,
                    racksOf: { e in
                        let (a, b, _) = edge(e)
                        return (a, b)
                    }, pinned: nil)
                guard k >= 0 else {
                    spinesOut[i] = unroutableMark
                    failed &+= 1
                    continue
                }
            }
            take(i, u: u, v: v, slot: s, color: k, tag: tag)
            spinesOut[i] = spineOfColor[capacityOfSlot[s] &* colors &+ k]
        }
        return failed
    }

    /// The colouring of a batch with pinned sources: their inter-rack allocations first,
    /// each on its pinned spine, then the others (see the type's documentation). Returns
    /// how many allocations could not be coloured (marked unroutable).
    @inline(never)
    private func colorPinned(
        entries: UnsafePointer<UInt64>, count: Int, rackOf: UnsafePointer<UInt16>, firstSlot: UInt64, slots: Int,
        spinesOut: UnsafeMutablePointer<Int16>, pinned: UnsafePointer<Bool>
    ) -> Int {
        let colors = peakColors
        let tag = beginCall(firstSlot: firstSlot, slots: slots)
        // Local functions, not closure values: passed only as non-escaping arguments, their
        // contexts stay on the stack.
        func racksOf(_ e: Int) -> (Int, Int) {
            let x = entries[e]
            return (
                Int(rackOf[Int(truncatingIfNeeded: x & 0xFFFF)]),
                Int(rackOf[Int(truncatingIfNeeded: (x &>> 16) & 0xFFFF)])
            )
        }
        // The pinned allocations' indices, then the others', each in order, without a
        // branch per allocation (which one it is follows no pattern the processor could
        // predict).
        @inline(__always) func flag(_ i: Int) -> Int {
            Int(unsafeBitCast(pinned[Int(truncatingIfNeeded: entries[i] & 0xFFFF)], to: UInt8.self))
        }
        var pinnedCount = 0
        for i in 0..<count { pinnedCount &+= flag(i) }
        var front = 0
        var back = pinnedCount
        for i in 0..<count {
            let f = flag(i)
            order[f != 0 ? front : back] = Int32(truncatingIfNeeded: i)
            front &+= f
            back &+= 1 &- f
        }
        var failed = 0
        // Pinned allocations first: no colour of their spine is held by anything else yet,
        // so they are refused only when their own kind fills the spine's link. Then the
        // others, with the one-word loop where the colours fit one.
        for pass in 0..<(words == 1 ? 1 : 2) {
            for n in (pass == 0 ? 0..<pinnedCount : pinnedCount..<count) {
                let i = Int(order[n])
                let (u, v) = racksOf(i)
                if u == v {
                    spinesOut[i] = BatchAllocations.intraRack
                    continue
                }
                let s = Int(truncatingIfNeeded: entries[i] &>> 32)
                let c = capacityOfSlot[s]
                let up = upFree.base + (s &* racks &+ u) &* words
                let down = downFree.base + (s &* racks &+ v) &* words
                var k = -1
                var spine = -1
                if pass == 0 {
                    spine = pinnedSpine(from: u, to: v)
                    if spine >= 0 {
                        // Colours of one spine are j · S + spine, one per packet it carries.
                        for j in 0..<c {
                            let candidate = j &* spines &+ spine
                            let bit: UInt64 = 1 &<< UInt64(truncatingIfNeeded: candidate & 63)
                            if up[candidate &>> 6] & down[candidate &>> 6] & bit != 0 {
                                k = candidate
                                break
                            }
                        }
                    }
                } else {
                    k = firstCommon(up, down)
                }
                if k < 0 && (pass == 1 || spine >= 0) {
                    k = recolor(
                        u: u, v: v, slot: s, onSpine: spine, tag: tag, spinesOut: spinesOut, racksOf: racksOf,
                        pinned: (pinned, entries))
                }
                guard k >= 0 else {
                    spinesOut[i] = BatchAllocations.unroutable
                    failed &+= 1
                    continue
                }
                take(i, u: u, v: v, slot: s, color: k, tag: tag)
                spinesOut[i] = spineOfColor[c &* colors &+ k]
            }
        }
        if words == 1 {
            failed &+= colorOneWordLoop(
                entries: entries, count: count, rackOf: rackOf, slots: slots, spinesOut: spinesOut, tag: tag,
                pinned: (pinned, UnsafeBufferPointer(start: order.base + pinnedCount, count: count &- pinnedCount)))
        }
        return failed
    }

    /// The lowest colour set in both bitmaps, or -1.
    @inline(__always)
    private func firstCommon(_ a: UnsafeMutablePointer<UInt64>, _ b: UnsafeMutablePointer<UInt64>) -> Int {
        for w in 0..<words {
            let m = a[w] & b[w]
            if m != 0 { return w << 6 | m.trailingZeroBitCount }
        }
        return -1
    }

    /// ``color(count:firstSlot:slots:spinesOut:unroutableMark:edge:)`` for batches whose
    /// colours fit one word (S × c ≤ 64, the usual case), with the index arithmetic folded.
    @inline(never)
    private func colorOneWord(
        entries: UnsafePointer<UInt64>, count: Int, rackOf: UnsafePointer<UInt16>, firstSlot: UInt64, slots: Int,
        spinesOut: UnsafeMutablePointer<Int16>
    ) -> Int {
        let tag = beginCall(firstSlot: firstSlot, slots: slots)
        return colorOneWordLoop(
            entries: entries, count: count, rackOf: rackOf, slots: slots, spinesOut: spinesOut, tag: tag, pinned: nil)
    }

    /// The loop of ``colorOneWord(entries:count:rackOf:firstSlot:slots:spinesOut:)``, inlined
    /// where it is used: without pins (`pinned` nil, its tests fold away), over every
    /// allocation; and after the pinned allocations of a call were coloured, over the
    /// others (`pinned.others`, indices in order), with alternating paths that do not move
    /// a pinned allocation off its spine.
    @inline(__always)
    private func colorOneWordLoop(
        entries: UnsafePointer<UInt64>, count: Int, rackOf: UnsafePointer<UInt16>, slots: Int,
        spinesOut: UnsafeMutablePointer<Int16>, tag: UInt32,
        pinned: (hosts: UnsafePointer<Bool>, others: UnsafeBufferPointer<Int32>)?
    ) -> Int {
        let colors = peakColors
        let racks = self.racks
        let upFree = self.upFree.base
        let downFree = self.downFree.base
        let upEdge = self.upEdge.base
        let downEdge = self.downEdge.base
        // Each slot's colour-to-spine table, for its capacity.
        let spineBase = self.spineBase.base
        for s in 0..<slots { spineBase[s] = spineOfColor.base + capacityOfSlot[s] &* colors }
        var failed = 0
        for n in 0..<(pinned?.others.count ?? count) {
            let i = pinned.map { Int($0.others[n]) } ?? n
            let e = entries[i]
            let u = Int(rackOf[Int(truncatingIfNeeded: e & 0xFFFF)])
            let v = Int(rackOf[Int(truncatingIfNeeded: (e &>> 16) & 0xFFFF)])
            if u == v {
                spinesOut[i] = BatchAllocations.intraRack
                continue
            }
            let s = Int(truncatingIfNeeded: e &>> 32)
            let side = s &* racks
            let ui = side &+ u
            let vi = side &+ v
            let m = upFree[ui] & downFree[vi]
            var k: Int
            if m != 0 {
                k = m.trailingZeroBitCount
            } else {
                k = recolor(
                    u: u, v: v, slot: s, onSpine: -1, tag: tag, spinesOut: spinesOut,
                    racksOf: { e in
                        let x = entries[e]
                        return (
                            Int(rackOf[Int(truncatingIfNeeded: x & 0xFFFF)]),
                            Int(rackOf[Int(truncatingIfNeeded: (x &>> 16) & 0xFFFF)])
                        )
                    }, pinned: pinned.map { ($0.hosts, entries) })
                guard k >= 0 else {
                    spinesOut[i] = BatchAllocations.unroutable
                    failed &+= 1
                    continue
                }
            }
            let bit: UInt64 = 1 &<< UInt64(truncatingIfNeeded: k)
            upFree[ui] &= ~bit
            downFree[vi] &= ~bit
            let entry = tag | UInt32(truncatingIfNeeded: i &+ 1)
            upEdge[ui &* colors &+ k] = entry
            downEdge[vi &* colors &+ k] = entry
            spinesOut[i] = spineBase[s][k]
        }
        return failed
    }

    @inline(__always)
    private func take(_ e: Int, u: Int, v: Int, slot s: Int, color k: Int, tag: UInt32) {
        let side = s &* racks
        let entry = tag | UInt32(truncatingIfNeeded: e &+ 1)
        upEdge[(side &+ u) &* peakColors &+ k] = entry
        downEdge[(side &+ v) &* peakColors &+ k] = entry
        upFree[(side &+ u) &* words &+ k &>> 6] &= ~(1 &<< UInt64(truncatingIfNeeded: k & 63))
        downFree[(side &+ v) &* words &+ k &>> 6] &= ~(1 &<< UInt64(truncatingIfNeeded: k & 63))
    }

    @inline(__always)
    private func release(u: Int, v: Int, slot s: Int, color k: Int) {
        let side = s &* racks
        upEdge[(side &+ u) &* peakColors &+ k] = 0
        downEdge[(side &+ v) &* peakColors &+ k] = 0
        upFree[(side &+ u) &* words &+ k &>> 6] |= 1 &<< UInt64(truncatingIfNeeded: k & 63)
        downFree[(side &+ v) &* words &+ k &>> 6] |= 1 &<< UInt64(truncatingIfNeeded: k & 63)
    }

    @inline(__always)
    private func firstSet(_ base: UnsafeMutablePointer<UInt64>) -> Int {
        for w in 0..<words where base[w] != 0 { return w << 6 | base[w].trailingZeroBitCount }
        return -1
    }

    /// The edge holding colour `k` at a rack side, or -1.
    @inline(__always)
    private func holder(_ table: UnsafeMutablePointer<UInt32>, _ index: Int, tag: UInt32) -> Int {
        let entry = table[index]
        guard entry >> Self.edgeBits == tag >> Self.edgeBits else { return -1 }
        return Int(entry & ((1 << Self.edgeBits) - 1)) - 1
    }

    /// No colour is free at both racks of edge (u, v) in slot `s`: frees a colour α (free at
    /// u, and usable at v) at v by swapping α and β (free at v) along the alternating path
    /// that leaves v by its α edge, updating the spines of the edges it recolours. With
    /// links down a swap can end on a rack where its colour's link is down; then other
    /// colours are tried. With `spine` ≥ 0 (a pinned edge) α and β are both colours of that
    /// spine. A path through a pinned edge (`pinned`: per source host, and the entries
    /// naming each edge's source; nil when none is pinned) is swapped only when α and β are
    /// on the same spine, so a pinned edge never changes spine. Returns α, or -1 when no
    /// pair of colours works.
    @inline(never)
    private func recolor(
        u: Int, v: Int, slot s: Int, onSpine spine: Int, tag: UInt32, spinesOut: UnsafeMutablePointer<Int16>,
        racksOf: (Int) -> (Int, Int), pinned: (hosts: UnsafePointer<Bool>, entries: UnsafePointer<UInt64>)?
    ) -> Int {
        let up = upFree.base + (s * racks + u) * words
        let down = downFree.base + (s * racks + v) * words
        let allowedAtV = allowedByCapacity.base + (capacityOfSlot[s] * racks + v) * words
        // An unpinned edge, with pinned ones about: first the pairs that keep off the spine
        // pinned edges between these racks would use (a path through one of those stops
        // short), then any.
        let avoid = pinned != nil && spine < 0 ? pinnedSpine(from: u, to: v) : -1
        var attempts = 0
        for round in 0..<(avoid >= 0 ? 2 : 1) {
            for wa in 0..<words {
                var alphas = up[wa] & allowedAtV[wa]
                while alphas != 0 {
                    let alpha = wa << 6 | alphas.trailingZeroBitCount
                    alphas &= alphas &- 1
                    if spine >= 0 && alpha % spines != spine { continue }
                    for wb in 0..<words {
                        var betas = down[wb]
                        while betas != 0 {
                            let beta = wb << 6 | betas.trailingZeroBitCount
                            betas &= betas &- 1
                            if spine >= 0 && beta % spines != spine { continue }
                            if avoid >= 0 && (round == 0) == (alpha % spines == avoid || beta % spines == avoid) {
                                continue
                            }
                            if swap(
                                alpha: alpha, beta: beta, from: v, slot: s, tag: tag, spinesOut: spinesOut,
                                racksOf: racksOf, pinned: pinned
                            ) {
                                return alpha
                            }
                            attempts += 1
                            // Each try walks a path: a handful is enough for the rare fabric
                            // where the first one fails.
                            if attempts >= 8 { return -1 }
                        }
                    }
                }
            }
        }
        return -1
    }

    /// Swaps α and β along the alternating path leaving destination rack `v` by its α
    /// edge, unless its far end cannot take the colour it would get. Returns whether it did.
    private func swap(
        alpha: Int, beta: Int, from v: Int, slot s: Int, tag: UInt32, spinesOut: UnsafeMutablePointer<Int16>,
        racksOf: (Int) -> (Int, Int), pinned: (hosts: UnsafePointer<Bool>, entries: UnsafePointer<UInt64>)?
    ) -> Bool {
        let colors = peakColors
        let side = s * racks
        // A pinned edge may only trade its colour for another of its spine.
        let sameSpine = alpha % spines == beta % spines
        // At a destination rack follow its edge of the colour looked for to that edge's
        // source rack, then that rack's edge of the other colour, and so on. The path
        // cannot reach the source rack, where α is free.
        var length = 0
        var rack = v
        var atDestination = true
        var wanted = alpha
        while true {
            let edge =
                atDestination
                ? holder(downEdge.base, (side + rack) * colors + wanted, tag: tag)
                : holder(upEdge.base, (side + rack) * colors + wanted, tag: tag)
            guard edge >= 0 else { break }
            guard length < pathLimit else { return false }
            if !sameSpine, let pinned, pinned.hosts[Int(truncatingIfNeeded: pinned.entries[edge] & 0xFFFF)] {
                return false
            }
            path[length] = Int32(truncatingIfNeeded: edge)
            length += 1
            let (source, destination) = racksOf(edge)
            rack = atDestination ? source : destination
            atDestination.toggle()
            wanted = wanted == alpha ? beta : alpha
        }
        guard length > 0 else { return false }
        // The last rack gets `wanted` on its link: it must be usable there.
        let allowed = allowedByCapacity.base + (capacityOfSlot[s] * racks + rack) * words
        guard allowed[wanted >> 6] & (1 << UInt64(wanted & 63)) != 0 else { return false }
        recolorings &+= 1
        recoloredEdges &+= UInt64(length)
        var from = alpha
        for i in 0..<length {
            let edge = Int(path[i])
            let (source, destination) = racksOf(edge)
            release(u: source, v: destination, slot: s, color: from)
            from = from == alpha ? beta : alpha
        }
        var to = beta
        let spineBase = capacityOfSlot[s] * colors
        for i in 0..<length {
            let edge = Int(path[i])
            let (source, destination) = racksOf(edge)
            take(edge, u: source, v: destination, slot: s, color: to, tag: tag)
            spinesOut[edge] = spineOfColor[spineBase + to]
            to = to == alpha ? beta : alpha
        }
        return true
    }

    // MARK: Euler split: aggregation

    func aggregate(_ sources: UnsafeBufferPointer<UInt16>, _ destinations: UnsafeBufferPointer<UInt16>) {
        pairTotal = 0
        for e in 0..<sources.count {
            let key = UInt32(sources[e]) &* UInt32(racks) &+ UInt32(destinations[e]) &+ 1
            var b = Int(truncatingIfNeeded: (key &* 0x9E37_79B1) >> 7) & bucketMask
            while true {
                let k = pairKeys[b]
                if k == key {
                    let p = Int(pairSlots[b])
                    pairCount[p] += 1
                    edgePair[e] = Int32(p)
                    break
                }
                if k == 0 {
                    let p = pairTotal
                    pairKeys[b] = key
                    pairSlots[b] = Int32(p)
                    touchedBuckets[p] = Int32(b)
                    pairSource[p] = sources[e]
                    pairDestination[p] = destinations[e]
                    pairCount[p] = 1
                    edgePair[e] = Int32(p)
                    pairTotal += 1
                    break
                }
                b = (b + 1) & bucketMask
            }
        }
    }

    func clearAggregation() {
        for p in 0..<pairTotal {
            let b = Int(touchedBuckets[p])
            pairKeys[b] = 0
            pairSlots[b] = -1
        }
        pairTotal = 0
    }

    // MARK: Euler split (power-of-two spine counts)

    /// Splits the pair counts into `spines` parts, each with row and column sums at most
    /// ⌈Δ/spines⌉, writing `pairSpineCount`.
    func eulerSplit() {
        // Level 0: one part holding every pair.
        for p in 0..<pairTotal {
            partPairA[p] = Int32(p)
            partCountA[p] = pairCount[p]
        }
        partStart[0] = 0
        partStart[1] = Int32(pairTotal)
        var parts = 1
        var useA = true
        while parts < spines {
            nextPartStart[0] = 0
            var written = 0
            for part in 0..<parts {
                let start = Int(partStart[part])
                let end = Int(partStart[part + 1])
                written = splitPart(start: start, end: end, from: useA, writtenSoFar: written, childIndex: 2 * part)
            }
            for k in 0...(2 * parts) { partStart[k] = nextPartStart[k] }
            parts *= 2
            useA.toggle()
        }
        // Record each part's counts as that spine's share of the pair.
        for p in 0..<pairTotal {
            pairCursor[p] = 0
            for s in 0..<spines { pairSpineCount[p * spines + s] = 0 }
        }
        for s in 0..<spines {
            let start = Int(partStart[s])
            let end = Int(partStart[s + 1])
            for k in start..<end {
                let pair = Int(useA ? partPairA[k] : partPairB[k])
                pairSpineCount[pair * spines + s] += useA ? partCountA[k] : partCountB[k]
            }
        }
    }

    /// Splits one part's entries `[start, end)` of the current buffer into two children
    /// appended to the other buffer; returns the new write position.
    func splitPart(start: Int, end: Int, from useA: Bool, writtenSoFar: Int, childIndex: Int) -> Int {
        // Odd counts: one edge each left over after the even halves, to be balanced.
        var oddCount = 0
        for k in start..<end {
            let count = useA ? partCountA[k] : partCountB[k]
            if count & 1 == 1 {
                oddPair[oddCount] = useA ? partPairA[k] : partPairB[k]
                oddCount += 1
            }
        }
        balance(oddCount)
        // Child 0 gets half (rounded down) plus the odd edges given half 0; child 1 the rest.
        var written = writtenSoFar
        var odd = 0
        for half in 0..<2 {
            odd = 0
            for k in start..<end {
                let pair = useA ? partPairA[k] : partPairB[k]
                let count = useA ? partCountA[k] : partCountB[k]
                var share = count >> 1
                if count & 1 == 1 {
                    if Int(oddHalf[odd]) == half { share += 1 }
                    odd += 1
                }
                guard share > 0 else { continue }
                if useA {
                    partPairB[written] = pair
                    partCountB[written] = share
                } else {
                    partPairA[written] = pair
                    partCountA[written] = share
                }
                written += 1
            }
            nextPartStart[childIndex + half + 1] = Int32(written)
        }
        return written
    }

    /// Gives each of the first `count` odd edges a half (0 or 1) so that at every rack the
    /// two halves differ by at most one: edges are paired up at each rack, the pairings
    /// form paths and cycles (even cycles: the graph is bipartite), and halves alternate
    /// along them.
    func balance(_ count: Int) {
        guard count > 0 else { return }
        for e in 0..<count {
            partnerAtSource[e] = -1
            partnerAtDestination[e] = -1
            oddHalf[e] = 2  // unassigned
        }
        for e in 0..<count {
            let pair = Int(oddPair[e])
            let u = Int(pairSource[pair])
            let v = Int(pairDestination[pair])
            let pu = pendingAtSource[u]
            if pu < 0 {
                pendingAtSource[u] = Int32(e)
            } else {
                partnerAtSource[e] = pu
                partnerAtSource[Int(pu)] = Int32(e)
                pendingAtSource[u] = -1
            }
            let pv = pendingAtDestination[v]
            if pv < 0 {
                pendingAtDestination[v] = Int32(e)
            } else {
                partnerAtDestination[e] = pv
                partnerAtDestination[Int(pv)] = Int32(e)
                pendingAtDestination[v] = -1
            }
        }
        // Clear the pending marks for the next part.
        for e in 0..<count {
            let pair = Int(oddPair[e])
            pendingAtSource[Int(pairSource[pair])] = -1
            pendingAtDestination[Int(pairDestination[pair])] = -1
        }
        // Paths first (start where one side has no partner), then cycles.
        for pass in 0..<2 {
            for e in 0..<count where oddHalf[e] == 2 {
                let openAtSource = partnerAtSource[e] < 0
                let openAtDestination = partnerAtDestination[e] < 0
                if pass == 0 && !openAtSource && !openAtDestination { continue }
                // Walk away from the open side (for a cycle: leave through the source side).
                var current = e
                var leaveThroughDestination = openAtSource || (!openAtDestination)
                var half: UInt8 = 0
                while current >= 0 && oddHalf[current] == 2 {
                    oddHalf[current] = half
                    half ^= 1
                    let next = Int(leaveThroughDestination ? partnerAtDestination[current] : partnerAtSource[current])
                    guard next >= 0 else { break }
                    // Arriving at `next` through the side we left by; leave by the other.
                    let arrivedThroughDestination = leaveThroughDestination
                    // In `next`, the shared rack is on the same side (bipartite: sources
                    // pair with sources, destinations with destinations).
                    leaveThroughDestination = !arrivedThroughDestination
                    current = next
                }
            }
        }
    }

}

extension Int {
    var isPowerOfTwo: Bool { self > 0 && self & (self - 1) == 0 }
}
