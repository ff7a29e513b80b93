import FastpassProtocol
import TestSupport
import Testing

@testable import FastpassArbiter

/// Random slots of inter-rack allocations within the racks' capacity: every allocation is
/// routed, no link is over capacity in either direction, no down link is used.
@Suite("Path selection")
struct PathSelectionTests {

    /// A slot's allocations: a random partial permutation of hosts (each host sends and
    /// receives at most once), keeping only inter-rack pairs and respecting each rack's
    /// capacity to and from the spines.
    static func slotEdges(_ t: Topology, slot: UInt64, load: Double, random: inout TestRandom) -> ([UInt16], [UInt16]) {
        var destinations = Array(0..<t.hostCount)
        for i in stride(from: destinations.count - 1, to: 0, by: -1) { destinations.swapAt(i, random.below(i + 1)) }
        var up = (0..<t.rackCount).map { t.rackCapacity(rack: $0, slot: slot) }
        var down = up
        var sources: [UInt16] = []
        var targets: [UInt16] = []
        for h in 0..<t.hostCount where Double(random.below(1000)) < load * 1000 {
            let u = Int(t.rackOf[h])
            let v = Int(t.rackOf[destinations[h]])
            guard u != v, up[u] > 0, down[v] > 0 else { continue }
            up[u] -= 1
            down[v] -= 1
            sources.append(UInt16(u))
            targets.append(UInt16(v))
        }
        return (sources, targets)
    }

    static func check(
        _ t: Topology, seed: UInt64, slots: Int, load: Double, method: PathSelector.Method = .edgeColoring
    ) -> (routed: Int, unroutable: Int) {
        let selector = PathSelector(topology: t, method: method)
        var random = TestRandom(seed: seed)
        var routed = 0
        var failed = 0
        var out = [Int16](repeating: 0, count: t.hostCount)
        for slot in 0..<UInt64(slots) {
            let (sources, targets) = slotEdges(t, slot: slot, load: load, random: &random)
            let unroutable = sources.withUnsafeBufferPointer { s in
                targets.withUnsafeBufferPointer { d in
                    out.withUnsafeMutableBufferPointer { o in
                        selector.assign(sources: s, destinations: d, slot: slot, spinesOut: o)
                    }
                }
            }
            failed += unroutable
            let capacity = t.linkRate.capacity(inSlot: slot)
            var upLoad = [Int](repeating: 0, count: t.rackCount * t.spineCount)
            var downLoad = upLoad
            for e in 0..<sources.count {
                let s = Int(out[e])
                if s < 0 { continue }
                routed += 1
                #expect(s < t.spineCount)
                #expect(
                    t.isUsable(rack: Int(sources[e]), spine: s) && t.isUsable(rack: Int(targets[e]), spine: s),
                    "down link used")
                upLoad[Int(sources[e]) * t.spineCount + s] += 1
                downLoad[Int(targets[e]) * t.spineCount + s] += 1
            }
            #expect(
                upLoad.allSatisfy { $0 <= capacity } && downLoad.allSatisfy { $0 <= capacity },
                "link over capacity in slot \(slot)")
            #expect(sources.count - unroutable == sources.indices.filter { out[$0] >= 0 }.count)
        }
        return (routed, failed)
    }

    @Test(
        "every link up: all routed, capacity kept",
        arguments: [
            (4, 4, 4, 1.0), (8, 16, 4, 1.0), (8, 8, 8, 1.0), (32, 32, 8, 1.0), (8, 16, 6, 1.0), (6, 12, 3, 1.0),
            (32, 32, 8, 3.0), (5, 9, 7, 1.5), (16, 8, 2, 1.0), (3, 5, 1, 1.0),
            // 20 spines of 4 packets: 80 colours, more than one bitmap word per rack.
            (4, 80, 20, 1.0),
        ] as [(Int, Int, Int, Double)])
    func allLinksUp(racks: Int, hostsPerRack: Int, spines: Int, oversubscription: Double) throws {
        let t = try Topology(
            .regular(racks: racks, hostsPerRack: hostsPerRack, spines: spines, oversubscription: oversubscription))
        for method in PathSelector.Method.allCases {
            let r = Self.check(t, seed: UInt64(racks * 1000 + spines), slots: 200, load: 1.0, method: method)
            #expect(r.unroutable == 0, "\(method)")
            #expect(r.routed > 0)
        }
    }

    @Test func downLinksAreNeverUsed() throws {
        var t = try Topology(.regular(racks: 8, hostsPerRack: 8, spines: 4))
        try t.setLink(rack: 2, spine: 1, up: false)
        try t.setSpine(3, up: false)
        // Loaded to the racks' remaining capacity: colouring within the usable spines
        // routes nearly everything; what it cannot is counted, never misplaced.
        let r = Self.check(t, seed: 9, slots: 200, load: 1.0)
        #expect(r.routed > 0)
        #expect(Double(r.unroutable) <= 0.01 * Double(r.routed + r.unroutable), "\(r)")
    }

    @Test("with links down, a colour that the down link would block is swapped for one that works")
    func degradedRecolouring() throws {
        // 5 racks, 2 spines of 2 packets, spine 0 down at racks 1 and 3: edges 2→1, 4→3,
        // 0→3, 0→1 have a valid assignment (2→1 on spine 1's second packet frees room).
        var c = TopologyConfiguration.regular(racks: 5, hostsPerRack: 4, spines: 2)
        c.uplinkGbpsPerSpine = 20
        var t = try Topology(c)
        try t.setLink(rack: 1, spine: 0, up: false)
        try t.setLink(rack: 3, spine: 0, up: false)
        let selector = PathSelector(topology: t)
        let sources: [UInt16] = [2, 4, 0, 0]
        let destinations: [UInt16] = [1, 3, 3, 1]
        var out = [Int16](repeating: 0, count: 4)
        let failed = sources.withUnsafeBufferPointer { s in
            destinations.withUnsafeBufferPointer { d in
                out.withUnsafeMutableBufferPointer { o in
                    selector.assign(sources: s, destinations: d, slot: 0, spinesOut: o)
                }
            }
        }
        #expect(failed == 0, "spines \(out)")
        #expect(out.allSatisfy { $0 == 1 })
    }
}

@Suite("Topology")
struct TopologyTests {
    @Test func derivedCapacities() throws {
        let t = try Topology(.regular(racks: 4, hostsPerRack: 16, spines: 4))
        #expect(t.linkRate == LinkRate(numerator: 4, denominator: 1))
        #expect(t.rackCapacity(rack: 0, slot: 0) == 16)
        #expect(abs(t.timeslotNanoseconds - 1230.4) < 0.01)
        let over = try Topology(.regular(racks: 32, hostsPerRack: 32, spines: 8, oversubscription: 3))
        #expect(over.linkRate == LinkRate(numerator: 4, denominator: 3))
        #expect((0..<3).map { over.linkRate.capacity(inSlot: UInt64($0)) } == [1, 1, 2])
        let six = try Topology(.regular(racks: 8, hostsPerRack: 16, spines: 6))
        #expect((0..<3).map { six.linkRate.capacity(inSlot: UInt64($0)) }.reduce(0, +) == 8)
        #expect(t.index(of: NodeID(17)) == 17 && t.index(ofAddress: Topology.parseIPv4("10.0.1.2")!) == 17)
    }

    @Test func invalidConfigurationsNameTheField() {
        func problem(_ edit: (inout TopologyConfiguration) -> Void) -> String {
            var c = TopologyConfiguration.regular(racks: 2, hostsPerRack: 2, spines: 2)
            edit(&c)
            do {
                _ = try Topology(c)
                return "accepted"
            } catch {
                return error.description
            }
        }
        #expect(problem { $0.racks = 0 }.hasPrefix("topology.racks:"))
        #expect(problem { $0.spines = 0 }.hasPrefix("topology.spines:"))
        #expect(problem { $0.hostLinkGbps = -1 }.hasPrefix("topology.hostLinkGbps:"))
        #expect(problem { $0.uplinkGbpsPerSpine = .nan }.hasPrefix("topology.uplinkGbpsPerSpine:"))
        #expect(problem { $0.hosts[1].id = $0.hosts[0].id }.hasPrefix("topology.hosts[1].id:"))
        #expect(problem { $0.hosts[2].address = "10.0.0" }.hasPrefix("topology.hosts[2].address:"))
        #expect(problem { $0.hosts[3].address = $0.hosts[0].address }.contains("hosts[0]"))
        #expect(problem { $0.hosts[1].mac = "zz" }.hasPrefix("topology.hosts[1].mac:"))
        #expect(problem { $0.hosts[1].rack = 9 }.hasPrefix("topology.hosts[1].rack:"))
        #expect(problem { $0.hosts.removeLast(2) }.contains("rack 1 has no hosts"))
        #expect(problem { $0.timeslotNanoseconds = 1 }.hasPrefix("topology.timeslotNanoseconds:"))
    }

    @Test("reference endpoints: at most 4 spines, slots at least the reference's, 1251.285 ns by default")
    func referenceEndpointLimits() throws {
        var c = TopologyConfiguration.regular(racks: 2, hostsPerRack: 4, spines: 2)
        c.referenceEndpoints = true
        #expect(try Topology(c).timeslotNanoseconds == Topology.referenceTimeslotNanoseconds)
        // 2^19/419 = 1251.28401 ns: not a picosecond shorter.
        #expect(Topology.referenceTimeslotNanoseconds == 1251.285)
        c.timeslotNanoseconds = 1230.4
        #expect(
            throws: TopologyError(
                field: "timeslotNanoseconds",
                reason: "reference endpoints count slots of 1251.285 ns; ours must not be shorter (got 1230.4)")
        ) {
            try Topology(c)
        }
        var wide = TopologyConfiguration.regular(racks: 2, hostsPerRack: 4, spines: 6)
        wide.referenceEndpoints = true
        do {
            _ = try Topology(wide)
            Issue.record("six spines accepted for reference endpoints")
        } catch {
            #expect(error.field == "spines")
        }
    }

    /// Reference endpoints name hosts by an 8-bit MAC hash: a collision names both hosts.
    @Test func referenceIDCollisionNamesBothHosts() throws {
        var c = TopologyConfiguration.regular(racks: 2, hostsPerRack: 16, spines: 2)
        c.referenceEndpoints = true
        do {
            _ = try Topology(c)
            Issue.record("a colliding topology was accepted")
        } catch {
            #expect(error.field.hasSuffix(".mac") && error.reason.contains("collides with hosts["), "\(error)")
        }
        // MACs chosen not to collide: accepted, and every reference id maps back.
        var used = Set<UInt16>()
        var k: UInt64 = 0
        for i in c.hosts.indices {
            while true {
                k += 1
                let mac = MACAddress(rawValue: 0x0200_0000_0000 | k)
                if used.insert(ReferenceNodeID.hash(mac)).inserted {
                    c.hosts[i].mac = mac.description
                    break
                }
            }
        }
        let t = try Topology(c)
        for i in 0..<t.hostCount { #expect(t.index(ofReferenceID: ReferenceNodeID.hash(t.macs[i])) == i) }
    }
}
