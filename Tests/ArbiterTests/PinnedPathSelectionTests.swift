import FastpassProtocol
import TestSupport
import Testing

@testable import FastpassArbiter

/// Path selection with pinned sources (reference endpoints, whose packets take the spine
/// the switches pin them to): on batches the allocator made, over random fabrics with
/// links down, random pinned hosts.
@Suite("Path selection with pinned sources")
struct PinnedPathSelectionTests {
    /// What one batch's colouring did, checked against the fabric.
    struct Tally {
        var pinnedRouted = 0
        var pinnedRefused = 0
        var unpinnedRefused = 0
        var routed = 0
    }

    /// Colours `batch` with `pinned` and checks: every pinned inter-rack allocation is on
    /// its pinned spine or unroutable, and unroutable only when allocations pinned to that
    /// spine already fill its link at one end (or no spine is usable at both racks); no
    /// link carries more than its capacity in a slot, in either direction; no down link is
    /// used; intra-rack allocations get no spine.
    static func check(
        _ batch: BatchAllocations, selector: PathSelector, topology t: Topology, pinned: [Bool], tally: inout Tally
    ) {
        let entries = batch.allocationEntries
        var out = [Int16](repeating: 0, count: max(1, entries.count))
        let rackOf = t.rackOf
        let failed = pinned.withUnsafeBufferPointer { p in
            rackOf.withUnsafeBufferPointer { r in
                out.withUnsafeMutableBufferPointer { o in
                    selector.assignBatch(
                        entries: entries.baseAddress!, count: entries.count, rackOf: r.baseAddress!,
                        firstSlot: batch.firstSlot, batchSize: batch.batchSize, spinesOut: o.baseAddress!,
                        pinned: p.baseAddress!)
                }
            }
        }
        let S = t.spineCount
        var up = [Int](repeating: 0, count: batch.batchSize * t.rackCount * S)
        var down = up
        var pinnedUp = up
        var pinnedDown = up
        var refusedPinned: [(slot: Int, u: Int, v: Int, spine: Int?)] = []
        var unroutable = 0
        for (i, e) in entries.enumerated() {
            let slot = Int(e >> 32)
            let source = Int(e & 0xFFFF)
            let u = Int(t.rackOf[source])
            let v = Int(t.rackOf[Int((e >> 16) & 0xFFFF)])
            let spine = Int(out[i])
            if u == v {
                #expect(spine == Int(BatchAllocations.intraRack))
                continue
            }
            let pinnedSpine = t.pinnedSpine(sourceRack: u, destinationRack: v)
            if spine == Int(BatchAllocations.unroutable) {
                unroutable += 1
                if pinned[source] {
                    tally.pinnedRefused += 1
                    refusedPinned.append((slot, u, v, pinnedSpine))
                } else {
                    tally.unpinnedRefused += 1
                }
                continue
            }
            #expect(spine >= 0 && spine < S)
            #expect(t.isUsable(rack: u, spine: spine) && t.isUsable(rack: v, spine: spine), "down link used")
            tally.routed += 1
            up[(slot * t.rackCount + u) * S + spine] += 1
            down[(slot * t.rackCount + v) * S + spine] += 1
            if pinned[source] {
                tally.pinnedRouted += 1
                #expect(spine == pinnedSpine, "pinned allocation on spine \(spine), not \(pinnedSpine ?? -1)")
                pinnedUp[(slot * t.rackCount + u) * S + spine] += 1
                pinnedDown[(slot * t.rackCount + v) * S + spine] += 1
            }
        }
        #expect(failed == unroutable)
        for slot in 0..<batch.batchSize {
            let c = t.linkRate.capacity(inSlot: batch.firstSlot + UInt64(slot))
            for k in 0..<(t.rackCount * S) {
                #expect(up[slot * t.rackCount * S + k] <= c && down[slot * t.rackCount * S + k] <= c, "over capacity")
            }
        }
        for r in refusedPinned {
            guard let p = r.spine else { continue }
            let c = t.linkRate.capacity(inSlot: batch.firstSlot + UInt64(r.slot))
            let full =
                pinnedUp[(r.slot * t.rackCount + r.u) * S + p] == c
                || pinnedDown[(r.slot * t.rackCount + r.v) * S + p] == c
            #expect(full, "a pinned allocation refused while its spine had room for it")
        }
    }

    @Test(
        "pinned sources always get their pinned spine, no link is over capacity, and only a full pinned spine refuses one"
    )
    func pinnedProperties() throws {
        var total = Tally()
        var recolorings: UInt64 = 0
        for seed in 1...24 as ClosedRange<UInt64> {
            var random = TestRandom(seed: seed)
            let racks = 2 + random.below(5)
            let spines = 1 + random.below(4)
            let over = [1.0, 1.0, 1.5, 4.0 / 3.0][random.below(4)]
            let c = TopologyConfiguration.regular(
                racks: racks, hostsPerRack: 2 + random.below(8), spines: spines, oversubscription: over)
            var configuration = TimeslotAllocatorConfiguration()
            configuration.batchSize = 16
            let allocator = try TimeslotAllocator(
                topology: try Topology(c), configuration: configuration, routing: false)
            if seed % 3 == 0 {
                for _ in 0..<(1 + random.below(2)) {
                    try allocator.setLink(rack: random.below(racks), spine: random.below(spines), up: false)
                }
            }
            let t = allocator.topology
            let selector = PathSelector(topology: t, slotsPerCall: 16)
            let share = [0.2, 0.5, 1.0][random.below(3)]
            var pinned = (0..<t.hostCount).map { _ in random.chance(share) }
            var tally = Tally()
            for b in 0..<80 {
                for _ in 0..<(t.hostCount * 2) {
                    let s = random.below(t.hostCount)
                    let d = random.below(t.hostCount)
                    if s != d { allocator.addDemand(source: s, destination: d, slots: UInt32(1 + random.below(20))) }
                }
                // Sessions come and go: a few hosts change pinning between batches.
                if b % 10 == 9 { pinned[random.below(t.hostCount)].toggle() }
                let batch = allocator.allocateNextBatch()
                Self.check(batch, selector: selector, topology: t, pinned: pinned, tally: &tally)
            }
            // (A rack whose only spine is down sends nothing across.)
            #expect(tally.routed > 0 || !t.allLinksUp, "seed \(seed): nothing routed")
            if t.allLinksUp && pinned.allSatisfy({ !$0 }) { #expect(tally.unpinnedRefused == 0) }
            total.pinnedRouted += tally.pinnedRouted
            total.pinnedRefused += tally.pinnedRefused
            total.unpinnedRefused += tally.unpinnedRefused
            recolorings += selector.recolorings
        }
        // The properties were exercised: pinned allocations routed and refused, and
        // alternating paths walked among them.
        #expect(total.pinnedRouted > 1_000 && total.pinnedRefused > 0 && recolorings > 0, "\(total), \(recolorings)")
    }

    @Test(
        "the path stage pins from the next batch routed, with Euler split configured too, and applies the pin changes a batch carries"
    )
    func pathStagePins() throws {
        let t = try Topology(.regular(racks: 4, hostsPerRack: 4, spines: 4))
        let stage = PathStage(topology: t, batchSize: 4, method: .eulerSplit)
        let batch = BatchAllocations(batchSize: 4, hostCount: t.hostCount, withdrawalCapacity: 16)
        // Host 0 (rack 0) sends to host 4 (rack 1) in every slot; hosts 1-3 of rack 0 to
        // rack 2 in slot 0.
        var entries: [UInt64] = (0..<4).map { UInt64(0) | 4 << 16 | UInt64($0) << 32 }
        entries += [1 | 8 << 16, 2 | 9 << 16, 3 | 10 << 16]
        stage.setSourcePinned(0, true)
        entries.withUnsafeBufferPointer { batch.replace(firstSlot: 16, with: $0) }
        stage.route(batch)
        #expect((0..<4).allSatisfy { batch.spine($0) == 0 })
        #expect((4..<7).allSatisfy { batch.spine($0) > 0 }, "unpinned packets of the rack on other spines")
        // A change a batch carries (the pipeline's way) applies before that batch.
        entries.withUnsafeBufferPointer { batch.replace(firstSlot: 32, with: $0) }
        batch.notePinChange(host: 0, pinned: false)
        batch.notePinChange(host: 1, pinned: true)
        stage.route(batch)
        #expect(!stage.isSourcePinned(0) && stage.isSourcePinned(1) && stage.pinnedCount == 1)
        #expect(batch.spine(4) == 0)
    }

    @Test("the pinned spine is the lowest usable at both racks")
    func pinnedSpineRule() throws {
        var t = try Topology(.regular(racks: 3, hostsPerRack: 2, spines: 3))
        #expect(t.pinnedSpine(sourceRack: 0, destinationRack: 1) == 0)
        try t.setLink(rack: 1, spine: 0, up: false)
        #expect(t.pinnedSpine(sourceRack: 0, destinationRack: 1) == 1)
        #expect(t.pinnedSpine(sourceRack: 0, destinationRack: 2) == 0)
        try t.setSpine(1, up: false)
        #expect(t.pinnedSpine(sourceRack: 1, destinationRack: 0) == 2)
        try t.setLink(rack: 0, spine: 2, up: false)
        #expect(t.pinnedSpine(sourceRack: 1, destinationRack: 0) == nil)
        let selector = PathSelector(topology: t)
        for u in 0..<3 {
            for v in 0..<3 where u != v {
                #expect(selector.pinnedSpine(from: u, to: v) == t.pinnedSpine(sourceRack: u, destinationRack: v) ?? -1)
            }
        }
    }
}
