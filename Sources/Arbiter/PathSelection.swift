/// Assigns a spine to every inter-rack allocation of one timeslot, so that no ToR↔spine
/// link carries more than its per-slot capacity in either direction and no link or spine
/// that is down is used. Intra-rack allocations need no spine.
///
/// Methods, by case:
/// - every link up and a power-of-two number of spines: the rack-to-rack count matrix is
///   halved recursively (an *Euler split*: even counts divide exactly, pairs with an odd
///   count are balanced at every rack); after log2(S) levels each of the S parts has row
///   and column sums ≤ ⌈Δ/S⌉, which is within a link's capacity because the allocator
///   keeps every rack's degree Δ ≤ S × capacity;
/// - every link up, other spine counts: bipartite edge colouring of the rack multigraph
///   with S × capacity colours by alternating paths (König's theorem guarantees it), colour
///   k going to spine k / capacity;
/// - links or spines down: each allocation takes the usable spine with the most room at
///   both its racks; one that finds none is reported unroutable (counted, not sent).
///
/// All storage is sized at start-up from the topology; `assign` allocates nothing.
public struct PathSelector {
    public let topology: Topology
    let racks: Int
    let spines: Int
    let maxEdges: Int

    // Rack-pair aggregation (open addressing, keys u·R+v+1, 0 empty).
    var pairKeys: [UInt32]
    var pairSlots: [Int32]
    var bucketMask: Int
    var pairSource: [UInt16]
    var pairDestination: [UInt16]
    var pairCount: [Int32]
    var touchedBuckets: [Int32]
    var pairTotal = 0
    var edgePair: [Int32]

    // Euler split: parts as (pair, count) lists, double-buffered per level.
    var partPairA: [Int32]
    var partCountA: [Int32]
    var partPairB: [Int32]
    var partCountB: [Int32]
    var partStart: [Int32]
    var nextPartStart: [Int32]
    // Odd-count pairs of one part, and their balancing.
    var oddPair: [Int32]
    var oddHalf: [UInt8]
    var partnerAtSource: [Int32]
    var partnerAtDestination: [Int32]
    var pendingAtSource: [Int32]
    var pendingAtDestination: [Int32]
    // Final per-pair, per-spine counts and a cursor per pair.
    var pairSpineCount: [Int32]
    var pairCursor: [Int32]

    // Edge colouring (general case): colour of each edge, and per rack-side the edge of
    // each colour (-1 none).
    var edgeColor: [Int32]
    var colorEdge: [Int32]
    var usedColors: [UInt64]

    // Degraded case: remaining capacity per (rack, spine) up and down.
    var upRoom: [Int32]
    var downRoom: [Int32]

    /// Allocations reported unroutable, in total.
    public private(set) var unroutable: UInt64 = 0

    public init(topology: Topology, maxEdgesPerSlot: Int? = nil) {
        self.topology = topology
        racks = topology.rackCount
        spines = topology.spineCount
        maxEdges = max(1, maxEdgesPerSlot ?? topology.hostCount)
        var buckets = 16
        while buckets < maxEdges * 2 { buckets <<= 1 }
        bucketMask = buckets - 1
        pairKeys = [UInt32](repeating: 0, count: buckets)
        pairSlots = [Int32](repeating: -1, count: buckets)
        pairSource = [UInt16](repeating: 0, count: maxEdges)
        pairDestination = [UInt16](repeating: 0, count: maxEdges)
        pairCount = [Int32](repeating: 0, count: maxEdges)
        touchedBuckets = [Int32](repeating: 0, count: maxEdges)
        edgePair = [Int32](repeating: 0, count: maxEdges)
        let partCapacity = maxEdges * 2
        partPairA = [Int32](repeating: 0, count: partCapacity)
        partCountA = [Int32](repeating: 0, count: partCapacity)
        partPairB = [Int32](repeating: 0, count: partCapacity)
        partCountB = [Int32](repeating: 0, count: partCapacity)
        partStart = [Int32](repeating: 0, count: spines + 1)
        nextPartStart = [Int32](repeating: 0, count: spines + 1)
        oddPair = [Int32](repeating: 0, count: maxEdges)
        oddHalf = [UInt8](repeating: 0, count: maxEdges)
        partnerAtSource = [Int32](repeating: -1, count: maxEdges)
        partnerAtDestination = [Int32](repeating: -1, count: maxEdges)
        pendingAtSource = [Int32](repeating: -1, count: racks)
        pendingAtDestination = [Int32](repeating: -1, count: racks)
        pairSpineCount = [Int32](repeating: 0, count: spines.isPowerOfTwo ? maxEdges * spines : 0)
        pairCursor = [Int32](repeating: 0, count: maxEdges)
        let maxColors = topology.linkRate.peak * spines
        edgeColor = [Int32](repeating: -1, count: maxEdges)
        colorEdge = [Int32](repeating: -1, count: spines.isPowerOfTwo ? 0 : 2 * racks * maxColors)
        usedColors = [UInt64](repeating: 0, count: spines.isPowerOfTwo ? 0 : 2 * racks * ((maxColors + 63) / 64))
        upRoom = [Int32](repeating: 0, count: racks * spines)
        downRoom = [Int32](repeating: 0, count: racks * spines)
        pendingRecolor = [Int32](repeating: 0, count: 4 * racks + 16)
    }

    /// Marks links and spines as the topology now has them.
    public mutating func update(_ topology: Topology) {
        precondition(topology.rackCount == racks && topology.spineCount == spines)
        self = PathSelector(topology: topology, maxEdgesPerSlot: maxEdges)
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
    public mutating func assign(
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
        if !topology.allLinksUp {
            return assignDegraded(sources, destinations, capacity: capacity, spinesOut: spinesOut)
        }
        if spines.isPowerOfTwo {
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
        return colorEdges(sources, destinations, capacity: capacity, spinesOut: spinesOut)
    }

    // MARK: Aggregation

    mutating func aggregate(_ sources: UnsafeBufferPointer<UInt16>, _ destinations: UnsafeBufferPointer<UInt16>) {
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

    mutating func clearAggregation() {
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
    mutating func eulerSplit() {
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
    mutating func splitPart(start: Int, end: Int, from useA: Bool, writtenSoFar: Int, childIndex: Int) -> Int {
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
    mutating func balance(_ count: Int) {
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

    // MARK: Edge colouring (other spine counts)

    mutating func colorEdges(
        _ sources: UnsafeBufferPointer<UInt16>, _ destinations: UnsafeBufferPointer<UInt16>, capacity: Int,
        spinesOut: UnsafeMutableBufferPointer<Int16>
    ) -> Int {
        let colors = capacity * spines
        let words = (topology.linkRate.peak * spines + 63) / 64
        let stride = topology.linkRate.peak * spines
        // Vertices 0..<racks are sources, racks..<2·racks destinations.
        for v in 0..<(2 * racks) {
            for w in 0..<words { usedColors[v * words + w] = 0 }
        }
        var failed = 0
        for e in 0..<sources.count {
            let u = Int(sources[e])
            let v = racks + Int(destinations[e])
            guard let alpha = freeColor(u, colors: colors, words: words),
                let beta = freeColor(v, colors: colors, words: words)
            else {
                edgeColor[e] = -1
                failed += 1
                continue
            }
            if !isUsed(v, alpha, words: words) {
                setColor(e, u: u, v: v, color: alpha, stride: stride, words: words)
                continue
            }
            // α is taken at v: swap α and β along the alternating path from v; the path
            // cannot reach u (bipartite), after which α is free at v.
            var x = v
            var colorOut = alpha
            var colorIn = beta
            var pathLength = 0
            while pathLength < 4 * racks {
                let edge = Int(colorEdge[x * stride + colorOut])
                guard edge >= 0 else { break }
                let y = Int(sources[edge]) == x ? racks + Int(destinations[edge]) : Int(sources[edge])
                // Recolour this edge from colorOut to colorIn.
                clearColor(
                    edge, u: Int(sources[edge]), v: racks + Int(destinations[edge]), color: colorOut, stride: stride,
                    words: words)
                pendingRecolor[pathLength] = Int32(edge)
                pathLength += 1
                x = y
                swap(&colorOut, &colorIn)
            }
            // Apply the recolouring (the edges' new colour alternates from β).
            var c = beta
            for k in 0..<pathLength {
                let edge = Int(pendingRecolor[k])
                setColor(
                    edge, u: Int(sources[edge]), v: racks + Int(destinations[edge]), color: c, stride: stride,
                    words: words)
                c = c == beta ? alpha : beta
            }
            setColor(e, u: u, v: v, color: alpha, stride: stride, words: words)
        }
        for e in 0..<sources.count {
            let c = Int(edgeColor[e])
            spinesOut[e] = c < 0 ? -1 : Int16(c / capacity)
        }
        // Clear the colour table for the next slot (only entries this slot used).
        for e in 0..<sources.count where edgeColor[e] >= 0 {
            let c = Int(edgeColor[e])
            colorEdge[Int(sources[e]) * stride + c] = -1
            colorEdge[(racks + Int(destinations[e])) * stride + c] = -1
        }
        unroutable &+= UInt64(failed)
        return failed
    }

    /// Edges recoloured along one alternating path (a simple path: at most 2·racks).
    var pendingRecolor: [Int32]

    @inline(__always)
    func isUsed(_ v: Int, _ c: Int, words: Int) -> Bool {
        usedColors[v * words + (c >> 6)] & (1 << UInt64(c & 63)) != 0
    }

    @inline(__always)
    func freeColor(_ v: Int, colors: Int, words: Int) -> Int? {
        var w = 0
        while w * 64 < colors {
            let free = ~usedColors[v * words + w]
            if free != 0 {
                let c = w * 64 + free.trailingZeroBitCount
                return c < colors ? c : nil
            }
            w += 1
        }
        return nil
    }

    @inline(__always)
    mutating func setColor(_ e: Int, u: Int, v: Int, color c: Int, stride: Int, words: Int) {
        edgeColor[e] = Int32(c)
        colorEdge[u * stride + c] = Int32(e)
        colorEdge[v * stride + c] = Int32(e)
        usedColors[u * words + (c >> 6)] |= 1 << UInt64(c & 63)
        usedColors[v * words + (c >> 6)] |= 1 << UInt64(c & 63)
    }

    @inline(__always)
    mutating func clearColor(_ e: Int, u: Int, v: Int, color c: Int, stride: Int, words: Int) {
        edgeColor[e] = -1
        colorEdge[u * stride + c] = -1
        colorEdge[v * stride + c] = -1
        usedColors[u * words + (c >> 6)] &= ~(1 << UInt64(c & 63))
        usedColors[v * words + (c >> 6)] &= ~(1 << UInt64(c & 63))
    }

    // MARK: Degraded fabric

    mutating func assignDegraded(
        _ sources: UnsafeBufferPointer<UInt16>, _ destinations: UnsafeBufferPointer<UInt16>, capacity: Int,
        spinesOut: UnsafeMutableBufferPointer<Int16>
    ) -> Int {
        for r in 0..<racks {
            for s in 0..<spines {
                let room = topology.isUsable(rack: r, spine: s) ? Int32(capacity) : 0
                upRoom[r * spines + s] = room
                downRoom[r * spines + s] = room
            }
        }
        var failed = 0
        for e in 0..<sources.count {
            let u = Int(sources[e])
            let v = Int(destinations[e])
            var best = -1
            var bestRoom: Int32 = 0
            for s in 0..<spines {
                let room = min(upRoom[u * spines + s], downRoom[v * spines + s])
                if room > bestRoom {
                    bestRoom = room
                    best = s
                }
            }
            if best < 0 {
                spinesOut[e] = -1
                failed += 1
            } else {
                upRoom[u * spines + best] -= 1
                downRoom[v * spines + best] -= 1
                spinesOut[e] = Int16(best)
            }
        }
        unroutable &+= UInt64(failed)
        return failed
    }
}

extension Int {
    var isPowerOfTwo: Bool { self > 0 && self & (self - 1) == 0 }
}
