import FastpassProtocol
import TestSupport
import Testing

@testable import FastpassArbiter

/// Reference endpoints cannot be told a path: the original endpoint looks an ALLOC
/// destination up as a raw 16-bit value, so path bits make it name no flow. The arbiter
/// therefore never sends them path bits, and books their inter-rack packets on the spine
/// the switches are configured to pin them to (the lowest spine usable at both racks).
@Suite("Reference endpoints' paths")
struct ReferencePathTests {
    @Test(
        "a faithful reference endpoint (path bits not stripped) uses every slot it is allocated on a 2-spine fabric, both ways between racks"
    )
    func faithfulReferenceEndpointsUseEverySlot() throws {
        let topology = try ArbiterCoreTests.referenceTopology()
        #expect(topology.spineCount == 2 && topology.rackCount == 2)
        var network = try ArbiterCoreTests.Network(
            topology: topology, referenceHosts: Set(0..<topology.hostCount), stripsReferencePathBits: false)
        var asked: [Int: UInt64] = [:]
        for h in 0..<topology.hostCount {
            for d in 0..<topology.hostCount where topology.rackOf[d] != topology.rackOf[h] {
                let added = network.ask(from: h, to: d, slots: UInt64(40 + 3 * h + d))
                #expect(added)
                asked[h * 64 + d] = UInt64(40 + 3 * h + d)
            }
        }
        network.run(for: 6_000_000)
        let got = network.usedPerPair
        #expect(got == asked, "used \(got.values.reduce(0, +)) of \(asked.values.reduce(0, +)) slots asked for")
        for (h, host) in network.hosts.enumerated() {
            let s = host.session.statistics
            #expect(s.allocationsUnwanted == 0, "host \(h): \(s.allocationsUnwanted) allocations named no flow")
            #expect(host.used.allSatisfy { $0.path == 0 })
        }
        #expect(!network.referenceAllocDestinations.isEmpty)
        #expect(network.referenceAllocDestinations.allSatisfy { $0 & 0xC000 == 0 })
        ArbiterCoreTests.checkSchedule(network)
        #expect(network.core.statistics.allocationsOffPinnedSpine == 0)
    }

    @Test("ALLOCs to reference sessions never carry path bits, while extended endpoints still use every spine")
    func referenceAllocsCarryNoPathBits() throws {
        var c = TopologyConfiguration.regular(racks: 2, hostsPerRack: 4, spines: 4)
        c.referenceEndpoints = true
        let topology = try Topology(c)
        let reference: Set<Int> = [0, 1, 5]
        var network = try ArbiterCoreTests.Network(topology: topology, referenceHosts: reference)
        let asked = network.askEach(stride: 1, count: 7) { h, k in UInt64(30 + 5 * k + h) }
        network.run(for: 6_000_000)
        #expect(network.usedPerPair == asked)
        #expect(!network.referenceAllocDestinations.isEmpty)
        let withPath = network.referenceAllocDestinations.filter { $0 & 0xC000 != 0 }
        #expect(withPath.isEmpty, "\(withPath.count) ALLOC destinations with path bits")
        var extendedSpines: Set<UInt16> = []
        for (h, host) in network.hosts.enumerated() {
            for u in host.used where topology.rackOf[h] != topology.rackOf[u.destination] {
                if reference.contains(h) {
                    #expect(u.path == 0)
                } else {
                    extendedSpines.insert(u.path)
                }
            }
        }
        #expect(extendedSpines.count == 4, "extended endpoints used spines \(extendedSpines.sorted())")
        ArbiterCoreTests.checkSchedule(network)
        #expect(network.core.statistics.allocationsOffPinnedSpine == 0)
    }

    @Test("an extended endpoint registered without the announced clock gets reference ALLOCs and is pinned too")
    func clocklessExtendedEndpointIsPinned() throws {
        let topology = try ArbiterCoreTests.referenceTopology()
        var network = try ArbiterCoreTests.Network(topology: topology, referenceHosts: [])
        network.makeClockless(0)
        let asked = network.askEach(stride: 1, count: 7) { h, k in UInt64(40 + 3 * k + h) }
        network.run(for: 6_000_000)
        #expect(network.usedPerPair == asked)
        if case .established = network.hosts[0].session.negotiation {
        } else {
            Issue.record("host 0 did not register: \(network.hosts[0].session.negotiation)")
        }
        #expect(!network.hosts[0].session.negotiation.granted.contains(.announcedClock))
        var others: Set<UInt16> = []
        for (h, host) in network.hosts.enumerated() {
            for u in host.used where topology.rackOf[h] != topology.rackOf[u.destination] {
                if h == 0 { #expect(u.path == 0) } else { others.insert(u.path) }
            }
        }
        #expect(others == [0, 1], "endpoints with the clock used spines \(others.sorted())")
        ArbiterCoreTests.checkSchedule(network)
        #expect(network.core.statistics.allocationsOffPinnedSpine == 0)
    }
}
