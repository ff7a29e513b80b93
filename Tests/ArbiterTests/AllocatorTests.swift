import FastpassProtocol
import TestSupport
import Testing

@testable import FastpassArbiter

/// Checks one batch against the fabric: one packet per source and per destination per
/// slot, racks within their uplink capacity, every inter-rack allocation on a usable
/// spine whose link has room, intra-rack ones on none.
func checkBatch(_ batch: BatchAllocations, topology t: Topology, routed: Bool) {
    batch.groupBySlot()
    for slot in 0..<batch.batchSize {
        let global = batch.firstSlot + UInt64(slot)
        var sending = Set<Int>()
        var receiving = Set<Int>()
        var up = [Int](repeating: 0, count: t.rackCount)
        var down = [Int](repeating: 0, count: t.rackCount)
        var linkUp = [Int](repeating: 0, count: t.rackCount * t.spineCount)
        var linkDown = [Int](repeating: 0, count: t.rackCount * t.spineCount)
        for i in 0..<batch.count(inSlot: slot) {
            let s = batch.source(slot: slot, i)
            let d = batch.destination(slot: slot, i)
            #expect(s != d)
            #expect(sending.insert(s).inserted, "source \(s) twice in slot \(global)")
            #expect(receiving.insert(d).inserted, "destination \(d) twice in slot \(global)")
            let rs = Int(t.rackOf[s])
            let rd = Int(t.rackOf[d])
            guard rs != rd else {
                if routed { #expect(batch.spine(slot: slot, i) == BatchAllocations.intraRack) }
                continue
            }
            up[rs] += 1
            down[rd] += 1
            guard routed else { continue }
            let spine = Int(batch.spine(slot: slot, i))
            if spine == Int(BatchAllocations.unroutable) { continue }
            #expect(spine >= 0 && spine < t.spineCount)
            #expect(t.isUsable(rack: rs, spine: spine) && t.isUsable(rack: rd, spine: spine), "down link used")
            linkUp[rs * t.spineCount + spine] += 1
            linkDown[rd * t.spineCount + spine] += 1
        }
        for r in 0..<t.rackCount {
            let capacity = t.rackCapacity(rack: r, slot: global)
            #expect(up[r] <= capacity, "rack \(r) sends \(up[r]) over uplinks for \(capacity) in slot \(global)")
            #expect(down[r] <= capacity, "rack \(r) receives \(down[r]) over downlinks for \(capacity)")
        }
        let perLink = t.linkRate.capacity(inSlot: global)
        #expect(linkUp.allSatisfy { $0 <= perLink }, "uplink over capacity in slot \(global)")
        #expect(linkDown.allSatisfy { $0 <= perLink }, "downlink over capacity in slot \(global)")
    }
}

@Suite("Timeslot allocator")
struct AllocatorTests {
    /// A random fabric: 1–6 racks of 1–12 hosts, 1–6 spines, sometimes oversubscribed or
    /// with a fractional uplink rate.
    static func randomTopology(_ random: inout TestRandom) throws -> Topology {
        let racks = 1 + random.below(6)
        let perRack = 1 + random.below(12)
        let spines = 1 + random.below(6)
        let over = [1.0, 1.0, 1.5, 3.0, 4.0 / 3.0][random.below(5)]
        var c = TopologyConfiguration.regular(
            racks: racks, hostsPerRack: perRack, spines: spines, oversubscription: over)
        if racks * perRack < 2 { c = .regular(racks: 1, hostsPerRack: 2, spines: spines) }
        return try Topology(c)
    }

    /// Random demand, withdrawals, resets, host removals and link failures against a model
    /// of what every pair is still owed: the allocator never allocates a pair more than it
    /// asked for, never breaks the fabric's constraints, and accounts for every slot.
    @Test("random fabrics and demand: constraints hold and demand is conserved", arguments: 1...24)
    func randomProperties(seed: UInt64) throws {
        var random = TestRandom(seed: seed)
        let topology = try Self.randomTopology(&random)
        var configuration = TimeslotAllocatorConfiguration()
        configuration.batchSize = [1, 3, 16, 16, 17, 64][random.below(6)]
        configuration.policy = AllocationPolicy.allCases[random.below(AllocationPolicy.allCases.count)]
        let hosts = topology.hostCount
        configuration.hostWeights = (0..<hosts).map { _ in UInt8(1 + random.below(4)) }
        configuration.hostClasses = (0..<hosts).map { _ in UInt8(random.below(3)) }
        // Both pair table layouts (small fabrics would otherwise always be direct).
        configuration.pairTable = seed % 2 == 0 ? .hashed : .direct
        let allocator = try TimeslotAllocator(topology: topology, configuration: configuration)
        #expect(allocator.table.isDirect == (seed % 2 == 1))
        var owed: [Int: Int64] = [:]  // source * hosts + destination
        var model = topology
        for step in 0..<200 {
            // Events between batches, in random order.
            for _ in 0..<random.below(8) {
                switch random.below(20) {
                case 0..<13:
                    let s = random.below(hosts)
                    var d = random.below(hosts - 1)
                    if d >= s { d += 1 }
                    let slots = UInt32(1 + random.below(40))
                    #expect(allocator.addDemand(source: s, destination: d, slots: slots))
                    owed[s * hosts + d, default: 0] += Int64(slots)
                case 13..<17:
                    let keys = owed.keys.sorted()
                    guard !keys.isEmpty else { break }
                    let key = keys[random.below(keys.count)]
                    let asked = UInt64(1 + random.below(30))
                    let now = allocator.withdraw(source: key / hosts, destination: key % hosts, slots: asked)
                    #expect(now <= asked)
                    owed[key, default: 0] -= Int64(now)
                case 17:
                    let s = random.below(hosts)
                    allocator.resetSource(s)
                    for key in owed.keys where key / hosts == s { owed[key] = 0 }
                case 18:
                    guard random.chance(0.5) else { break }
                    let h = random.below(hosts)
                    allocator.removeHost(h)
                    for key in owed.keys where key / hosts == h || key % hosts == h { owed[key] = 0 }
                default:
                    guard topology.rackCount > 1 else { break }
                    let rack = random.below(topology.rackCount)
                    let spine = random.below(topology.spineCount)
                    let up = random.chance(0.5)
                    try allocator.setLink(rack: rack, spine: spine, up: up)
                    try model.setLink(rack: rack, spine: spine, up: up)
                }
            }
            let batch = allocator.allocateNextBatch()
            checkBatch(batch, topology: model, routed: true)
            for slot in 0..<batch.batchSize {
                for i in 0..<batch.count(inSlot: slot) where batch.spine(slot: slot, i) != BatchAllocations.unroutable {
                    let key = batch.source(slot: slot, i) * hosts + batch.destination(slot: slot, i)
                    owed[key, default: 0] -= 1
                    #expect(owed[key, default: 0] >= 0, "seed \(seed) step \(step): allocated beyond demand")
                }
            }
            for w in 0..<batch.withdrawalCount {
                let (s, d, slots) = batch.withdrawal(w)
                owed[s * hosts + d, default: 0] -= Int64(slots)
                #expect(owed[s * hosts + d, default: 0] >= 0, "withdrew more than owed")
            }
            let stats = allocator.statistics
            let outstanding = allocator.outstandingSlots
            #expect(stats.lostSlots == 0)
            #expect(
                stats.requestedSlots == stats.allocatedSlots + outstanding + stats.withdrawnSlots + stats.purgedSlots,
                "seed \(seed) step \(step): requested \(stats.requestedSlots) ≠ allocated \(stats.allocatedSlots) + pending \(outstanding) + withdrawn \(stats.withdrawnSlots) + purged \(stats.purgedSlots)"
            )
            #expect(UInt64(owed.values.reduce(0, +)) == outstanding, "seed \(seed) step \(step): model disagrees")
            #if DEBUG
                // The count the per-batch audit keeps as words change agrees with a full read.
                #expect(
                    allocator.table.waitingDemandKept.load(ordering: .relaxed) == Int64(allocator.table.waitingDemand),
                    "seed \(seed) step \(step): kept waiting demand disagrees with the pair words")
            #endif
        }
        // With links back up and no new demand, everything owed is allocated.
        for r in 0..<topology.rackCount {
            for s in 0..<topology.spineCount { try allocator.setLink(rack: r, spine: s, up: true) }
        }
        var guardBatches = 0
        while allocator.outstandingSlots > 0 && guardBatches < 10_000 {
            let batch = allocator.allocateNextBatch()
            checkBatch(batch, topology: topology, routed: true)
            guardBatches += 1
        }
        #expect(allocator.outstandingSlots == 0)
        #expect(allocator.recordCount == 0, "records left after all demand was served")
        let stats = allocator.statistics
        #expect(stats.requestedSlots == stats.allocatedSlots + stats.withdrawnSlots + stats.purgedSlots)
    }

    /// Shares of `flows` (source, destination) over `slots` slots, every flow with more
    /// demand than it can be given.
    static func shares(
        _ flows: [(Int, Int)], topology: Topology, configuration: TimeslotAllocatorConfiguration, slots: Int
    ) throws -> [Double] {
        let allocator = try TimeslotAllocator(topology: topology, configuration: configuration)
        for (s, d) in flows { allocator.addDemand(source: s, destination: d, slots: UInt32(slots * 2)) }
        var counts: [Int: Int] = [:]
        var done = 0
        while done < slots {
            let batch = allocator.allocateNextBatch()
            for i in 0..<batch.totalCount {
                let a = batch.allocation(i)
                counts[a.source * topology.hostCount + a.destination, default: 0] += 1
            }
            done += configuration.batchSize
        }
        return flows.map { Double(counts[$0.0 * topology.hostCount + $0.1, default: 0]) / Double(done) }
    }

    @Test(
        "max-min: k flows into one destination get equal shares within 1 % over 10 000 slots",
        arguments: [2, 3, 5, 7, 17, 40])
    func maxMinOneDestination(k: Int) throws {
        let topology = try Topology(.regular(racks: 4, hostsPerRack: 16, spines: 4))
        let destination = 63
        let flows = (0..<k).map { ($0, destination) }
        let shares = try Self.shares(flows, topology: topology, configuration: .init(), slots: 10_000)
        let fair = 1.0 / Double(k)
        for (i, share) in shares.enumerated() {
            #expect(abs(share - fair) <= 0.01 * fair, "flow \(i) of \(k): share \(share), fair \(fair)")
        }
        #expect(abs(shares.reduce(0, +) - 1) < 0.002, "the destination's link is not kept full")
    }

    @Test("max-min: a flow bottlenecked elsewhere leaves its share to the others")
    func maxMinBottleneck() throws {
        // A: 0→2 and B: 0→3 share source 0; C: 1→3 shares destination 3 with B.
        // Max-min: every flow gets 1/2.
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        let shares = try Self.shares(
            [(0, 2), (0, 3), (1, 3)], topology: topology, configuration: .init(), slots: 10_000)
        for share in shares { #expect(abs(share - 0.5) <= 0.01) }
    }

    @Test("weighted fair: shares follow the source hosts' weights")
    func weighted() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 8, spines: 1))
        var configuration = TimeslotAllocatorConfiguration()
        configuration.policy = .weightedFair
        configuration.hostWeights = [1, 3, 1, 1, 1, 1, 1, 1]
        configuration.classWeights = [1]
        let shares = try Self.shares([(0, 7), (1, 7)], topology: topology, configuration: configuration, slots: 10_000)
        #expect(abs(shares[0] - 0.25) <= 0.01, "weight 1: \(shares[0])")
        #expect(abs(shares[1] - 0.75) <= 0.01, "weight 3: \(shares[1])")
    }

    @Test("strict priority: a backlogged lower class waits, then gets everything")
    func strictPriority() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        var configuration = TimeslotAllocatorConfiguration()
        configuration.policy = .strictPriority
        configuration.hostClasses = [1, 0, 0, 0]
        let allocator = try TimeslotAllocator(topology: topology, configuration: configuration)
        allocator.addDemand(source: 0, destination: 3, slots: 100)  // class 1
        allocator.addDemand(source: 1, destination: 3, slots: 160)  // class 0
        var low = 0
        var high = 0
        for _ in 0..<10 {
            let batch = allocator.allocateNextBatch()
            for i in 0..<batch.totalCount {
                if batch.allocation(i).source == 0 { low += 1 } else { high += 1 }
            }
        }
        #expect(high == 160 && low == 0, "class 0 got \(high), class 1 got \(low)")
        for _ in 0..<10 {
            let batch = allocator.allocateNextBatch()
            for i in 0..<batch.totalCount where batch.allocation(i).source == 0 { low += 1 }
        }
        #expect(low == 100)
    }

    @Test("shortest remaining first: a short flow finishes before a long one that was there first")
    func shortestFirst() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        var configuration = TimeslotAllocatorConfiguration()
        configuration.policy = .shortestRemainingFirst
        let allocator = try TimeslotAllocator(topology: topology, configuration: configuration)
        allocator.addDemand(source: 0, destination: 3, slots: 1000)
        _ = allocator.allocateNextBatch()
        allocator.addDemand(source: 1, destination: 3, slots: 20)
        var short = 0
        var long = 0
        for _ in 0..<2 {
            let batch = allocator.allocateNextBatch()
            for i in 0..<batch.totalCount {
                if batch.allocation(i).source == 1 { short += 1 } else { long += 1 }
            }
        }
        #expect(short == 20 && long == 12, "short \(short), long \(long)")
    }

    @Test("a flow that keeps going idle does not jump the queue (no stale priority)")
    func noStalePriority() throws {
        // One slot per batch into host 2. Flow X (0→2) is always backlogged; flow Y (1→2)
        // asks for one slot again every time it was served. If a returning flow counted as
        // never served, Y would take every slot and X would starve.
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 3, spines: 1))
        var configuration = TimeslotAllocatorConfiguration()
        configuration.batchSize = 1
        let allocator = try TimeslotAllocator(topology: topology, configuration: configuration)
        allocator.addDemand(source: 0, destination: 2, slots: 10_000)
        allocator.addDemand(source: 1, destination: 2, slots: 1)
        var x = 0
        var y = 0
        for _ in 0..<2000 {
            let batch = allocator.allocateNextBatch()
            for i in 0..<batch.totalCount {
                if batch.allocation(i).source == 0 {
                    x += 1
                } else {
                    y += 1
                    allocator.addDemand(source: 1, destination: 2, slots: 1)
                }
            }
        }
        #expect(x + y == 2000)
        #expect(abs(x - y) <= 2, "X got \(x), Y got \(y)")
    }

    @Test("withdrawal: waiting demand goes at once, the rest when the record is next seen")
    func withdrawal() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        let allocator = try TimeslotAllocator(topology: topology)
        allocator.addDemand(source: 0, destination: 1, slots: 100)
        _ = allocator.allocateNextBatch()  // 16 allocated, 84 carried by the record
        allocator.addDemand(source: 0, destination: 1, slots: 10)  // waits in the pair word
        let now = allocator.withdraw(source: 0, destination: 1, slots: 50)
        #expect(now == 10)
        let batch = allocator.allocateNextBatch()
        #expect(batch.withdrawalCount == 1)
        let report = batch.withdrawal(0)
        #expect(report.source == 0 && report.destination == 1 && report.slots == 40)
        #expect(batch.totalCount == 16)
        #expect(allocator.outstandingSlots == 100 - 16 - 40 - 16)
        // Withdrawing more than is left stops the flow; the excess was too late.
        _ = allocator.withdraw(source: 0, destination: 1, slots: 1000)
        let last = allocator.allocateNextBatch()
        #expect(last.totalCount == 0)
        #expect(last.withdrawnSlots == 28 && last.withdrawalsTooLate == 972)
        #expect(allocator.recordCount == 0)
    }

    @Test("a withdrawal applies to the demand carried when it was asked, not to demand added after it")
    func withdrawalThenNewDemand() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        let allocator = try TimeslotAllocator(topology: topology)
        allocator.addDemand(source: 0, destination: 1, slots: 20)
        _ = allocator.allocateNextBatch()  // 16 allocated, 4 carried
        #expect(allocator.withdraw(source: 0, destination: 1, slots: 10) == 0)  // 4 of it can be
        allocator.addDemand(source: 0, destination: 1, slots: 30)  // new demand, whole
        let batch = allocator.allocateNextBatch()
        #expect(batch.withdrawnSlots == 4 && batch.withdrawalsTooLate == 6)
        #expect(batch.totalCount == 16)
        #expect(allocator.outstandingSlots == 14)
        let stats = allocator.statistics
        #expect(stats.requestedSlots == stats.allocatedSlots + allocator.outstandingSlots + stats.withdrawnSlots)
    }

    @Test("reset of a source and removal of a host purge demand, also demand added again after")
    func purges() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        let allocator = try TimeslotAllocator(topology: topology)
        allocator.addDemand(source: 0, destination: 1, slots: 100)
        allocator.addDemand(source: 0, destination: 2, slots: 100)
        allocator.addDemand(source: 3, destination: 2, slots: 100)
        _ = allocator.allocateNextBatch()
        allocator.resetSource(0)
        allocator.addDemand(source: 0, destination: 1, slots: 5)  // after the reset: counts
        var toOne = 0
        var fromZeroToTwo = 0
        for _ in 0..<10 {
            let batch = allocator.allocateNextBatch()
            for i in 0..<batch.totalCount {
                let a = batch.allocation(i)
                if a.source == 0 && a.destination == 1 { toOne += 1 }
                if a.source == 0 && a.destination == 2 { fromZeroToTwo += 1 }
            }
        }
        #expect(toOne == 5)
        #expect(fromZeroToTwo == 0)
        allocator.addDemand(source: 1, destination: 2, slots: 50)
        allocator.removeHost(2)
        let batch = allocator.allocateNextBatch()
        for i in 0..<batch.totalCount { #expect(batch.allocation(i).destination != 2) }
        let stats = allocator.statistics
        #expect(allocator.outstandingSlots == 0)
        #expect(stats.requestedSlots == stats.allocatedSlots + stats.withdrawnSlots + stats.purgedSlots)
    }

    /// Eight hosts in one rack, room for four active pairs.
    static func smallTable(_ layout: PairTableLayout) throws -> TimeslotAllocator {
        var configuration = TimeslotAllocatorConfiguration()
        configuration.pairCapacity = 4
        configuration.pairTable = layout
        return try TimeslotAllocator(
            topology: Topology(.regular(racks: 1, hostsPerRack: 8, spines: 1)), configuration: configuration)
    }

    @Test(
        "the pair table refuses demand when full of active pairs, and takes it again later",
        arguments: [PairTableLayout.direct, .hashed])
    func tableFull(layout: PairTableLayout) throws {
        let allocator = try Self.smallTable(layout)
        for d in 1...4 { #expect(allocator.addDemand(source: 0, destination: d, slots: 1)) }
        #expect(!allocator.addDemand(source: 0, destination: 5, slots: 1))
        #expect(allocator.statistics.refusals == 1)
        _ = allocator.allocateNextBatch()  // serves and retires all four
        #expect(allocator.addDemand(source: 0, destination: 5, slots: 1))
    }

    @Test(
        "requests added together: the same as one by one, refused ones moved to the front in order",
        arguments: [PairTableLayout.direct, .hashed])
    func addTogether(layout: PairTableLayout) throws {
        let together = try Self.smallTable(layout)
        let oneByOne = try Self.smallTable(layout)
        // (0, 1)…(0, 4) fill the table; the other new pairs are refused, demand for the four
        // is taken (refused requests are moved to the front while later ones are still to be
        // read, and the look-ahead runs: more than eight requests).
        let list = [
            (0, 1, 3), (0, 2, 1), (0, 3, 4), (0, 4, 1), (0, 5, 2), (1, 0, 1), (0, 1, 2), (0, 2, 2), (2, 3, 1),
            (0, 3, 1), (0, 4, 3), (3, 0, 2), (0, 1, 1), (0, 6, 5),
        ].map { DemandRequest(source: $0.0, destination: $0.1, slots: UInt32($0.2)) }
        var buffer = list
        let refused = buffer.withUnsafeMutableBufferPointer { together.addDemand($0) }
        #expect(refused == 5)
        #expect(Array(buffer[0..<refused]) == [list[4], list[5], list[8], list[11], list[13]])
        let accepted = list.filter {
            oneByOne.addDemand(source: Int($0.source), destination: Int($0.destination), slots: $0.slots)
        }
        #expect(accepted.count == list.count - refused)
        #expect(together.statistics == oneByOne.statistics)
        #expect(together.outstandingSlots == 18)
        for _ in 0..<4 {
            let a = together.allocateNextBatch().allocationEntries.map { $0 }
            let b = oneByOne.allocateNextBatch().allocationEntries.map { $0 }
            #expect(a == b)
        }
    }

    @Test(
        "slots kept for the arbiter's packets: no inter-rack data leaves its rack in the kept up slots or enters it in the kept down slots; intra-rack data still goes",
        arguments: [1.0, 4.0 / 3.0])
    func controlReservation(oversubscription: Double) throws {
        let topology = try Topology(
            .regular(racks: 3, hostsPerRack: 4, spines: 2, oversubscription: oversubscription))
        let allocator = try TimeslotAllocator(topology: topology)
        let batchSize = allocator.configuration.batchSize
        allocator.controlReservation.set(rack: 0, upSlots: 3, downSlots: 2, phase: 5)
        for s in 0..<12 {
            for d in 0..<12 where d != s { allocator.addDemand(source: s, destination: d, slots: 1000) }
        }
        var (out, into, within) = (0, 0, 0)
        for _ in 0..<8 {
            let batch = allocator.allocateNextBatch()
            checkBatch(batch, topology: topology, routed: true)
            for i in 0..<batch.totalCount {
                let a = batch.allocation(i)
                let t = batch.firstSlot + UInt64(a.slot)
                let from = topology.rackOf[a.source] == 0
                let to = topology.rackOf[a.destination] == 0
                let keptUp = ControlReservation.keepsUp(slot: t, upSlots: 3, phase: 5, batchSize: batchSize)
                let keptDown = ControlReservation.keepsDown(slot: t, downSlots: 2, batchSize: batchSize)
                if from && !to {
                    #expect(!keptUp, "slot \(t): \(a.source) → \(a.destination) leaves rack 0 in a kept slot")
                    out += 1
                }
                if to && !from {
                    #expect(!keptDown, "slot \(t): \(a.source) → \(a.destination) enters rack 0 in a kept slot")
                    into += 1
                }
                if from && to && (keptUp || keptDown) { within += 1 }
            }
        }
        // 3 and 2 of every 16 slots kept: the rest still carry rack 0's traffic.
        #expect(out > 0 && into > 0 && within > 0)
        // Nothing kept: the same demand crosses in every slot again.
        allocator.controlReservation.set(rack: nil, upSlots: 3, downSlots: 2, phase: 5)
        var crossedInKept = false
        for _ in 0..<4 {
            let batch = allocator.allocateNextBatch()
            for i in 0..<batch.totalCount {
                let a = batch.allocation(i)
                let t = batch.firstSlot + UInt64(a.slot)
                if topology.rackOf[a.source] == 0 && topology.rackOf[a.destination] != 0
                    && ControlReservation.keepsUp(slot: t, upSlots: 3, phase: 5, batchSize: batchSize)
                {
                    crossedInKept = true
                }
            }
        }
        #expect(crossedInKept)
    }

    @Test("the automatic pair table is direct only where that takes no more memory than hashing")
    func automaticLayout() throws {
        // With the default capacity the switch is between 724 and 725 hosts.
        for (hosts, perRack) in [(16, 16), (256, 16), (724, 4), (725, 5), (1024, 16)] {
            let topology = try Topology(.regular(racks: hosts / perRack, hostsPerRack: perRack, spines: 2))
            func table(_ layout: PairTableLayout) throws -> DemandTable {
                var c = TimeslotAllocatorConfiguration()
                c.pairTable = layout
                return try TimeslotAllocator(topology: topology, configuration: c, routing: false).table
            }
            let chosen = try table(.automatic)
            let direct = try table(.direct)
            let hashed = try table(.hashed)
            #expect(direct.isDirect && !hashed.isDirect)
            #expect(chosen.isDirect == (direct.memoryBytes <= hashed.memoryBytes), "\(hosts) hosts")
            #expect(chosen.isDirect == (hosts <= 724), "\(hosts) hosts")
        }
    }

    @Test(
        "a host out of range has no pair: nothing is withdrawn from another pair, nothing added",
        arguments: [PairTableLayout.direct, .hashed])
    func hostOutOfRange(layout: PairTableLayout) throws {
        let allocator = try Self.smallTable(layout)
        #expect(allocator.addDemand(source: 1, destination: 2, slots: 5))
        // 1 × 8 + 2 and (1 << 16 | 2) would alias pair (1, 2) without the range check.
        #expect(allocator.withdraw(source: 0, destination: 10, slots: 3) == 0)
        #expect(allocator.withdraw(source: 0, destination: 65_538, slots: 3) == 0)
        #expect(allocator.withdraw(source: 1, destination: 1 << 20, slots: 3) == 0)
        guard case .refused = allocator.table.add(source: 0, destination: 10, slots: 1) else {
            Issue.record("a pair with a host out of range was accepted")
            return
        }
        let batch = allocator.allocateNextBatch()
        #expect(batch.withdrawalCount == 0)
        #expect(batch.totalCount == 5)
        #expect(allocator.statistics.withdrawnSlots == 0)
    }

    @Test(
        "unroutable slots go back into a full pair table through its reserve: nothing lost",
        arguments: [PairTableLayout.direct, .hashed])
    func givenBackIntoFullTable(layout: PairTableLayout) throws {
        var t = try Topology(.regular(racks: 3, hostsPerRack: 4, spines: 2))
        try t.setLink(rack: 0, spine: 0, up: false)
        try t.setLink(rack: 1, spine: 1, up: false)  // racks 0 and 1 share no spine
        var configuration = TimeslotAllocatorConfiguration()
        configuration.pairCapacity = 6
        configuration.pairTable = layout
        let allocator = try TimeslotAllocator(topology: t, configuration: configuration)
        // Rack 0 → rack 1 can never be routed; keep the table full with such pairs and
        // others that can.
        var requested: UInt64 = 0
        for (s, d) in [(0, 4), (1, 5), (2, 6), (3, 7), (0, 8), (4, 9)] {
            #expect(allocator.addDemand(source: s, destination: d, slots: 3))
            requested += 3
        }
        for _ in 0..<20 {
            let batch = allocator.allocateNextBatch()
            checkBatch(batch, topology: t, routed: true)
        }
        let stats = allocator.statistics
        #expect(stats.unroutable > 0)
        #expect(stats.lostSlots == 0)
        #expect(stats.requestedSlots == requested)
        #expect(stats.requestedSlots == stats.allocatedSlots + allocator.outstandingSlots)
        #expect(allocator.outstandingSlots == 12, "the four rack-0→rack-1 pairs keep waiting")
    }

    @Test("invalid allocator configuration is refused naming the field")
    func invalidConfiguration() throws {
        let topology = try Topology(.regular(racks: 1, hostsPerRack: 4, spines: 1))
        var c = TimeslotAllocatorConfiguration()
        c.batchSize = 65
        #expect(throws: TopologyError.self) { try TimeslotAllocator(topology: topology, configuration: c) }
        #expect(c.problem(hosts: 4)?.contains("allocator.batchSize") == true)
        c = .init()
        c.hostWeights = [1, 0, 1, 1]
        #expect(c.problem(hosts: 4)?.contains("allocator.hostWeights[1]") == true)
        c = .init()
        c.pairTable = .direct
        #expect(c.problem(hosts: 8192) == nil)
        #expect(c.problem(hosts: 8193)?.contains("allocator.pairTable") == true)
    }
}
