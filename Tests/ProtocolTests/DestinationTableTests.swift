import Testing

@testable import FastpassProtocol

/// The destination table starts small and grows with the destinations in use; indices,
/// lookups and the capacity limit must not notice.
@Suite("Destination table growth")
struct DestinationTableTests {
    @Test func growingKeepsIndicesAndLookups() {
        var table = DestinationTable(capacity: 4095)
        #expect(table.storage == DestinationTable.initialStorage)
        let nodes = (0..<300).map { NodeID(UInt32($0 * 7 + 3)) }
        for (k, node) in nodes.enumerated() {
            let r = table.findOrInsert(node)
            #expect(r?.index == k && r?.inserted == true)
        }
        #expect(table.count == 300 && table.storage >= 300 && table.storage < 4095)
        for (k, node) in nodes.enumerated() {
            #expect(table.index(of: node) == k)
            let again = table.findOrInsert(node)
            #expect(again?.inserted == false)
        }
        #expect(table.index(of: NodeID(1)) == nil)
    }

    @Test func capacityStillBoundsAfterGrowing() {
        var table = DestinationTable(capacity: 40)
        for k in 0..<40 {
            let r = table.findOrInsert(NodeID(UInt32(k)))
            #expect(r?.index == k)
        }
        #expect(table.storage == 40)
        let refused = table.findOrInsert(NodeID(100))
        #expect(refused == nil)
        #expect(table.index(of: NodeID(39)) == 39)
    }

    @Test func compactionAfterGrowingRenumbersInOrder() {
        var table = DestinationTable(capacity: 1000)
        for k in 0..<100 { _ = table.findOrInsert(NodeID(UInt32(1000 + k))) }
        var moves: [(Int, Int)] = []
        table.compact(keeping: { $0 % 3 == 0 }) { moves.append(($0, $1)) }
        #expect(table.count == 34)
        for j in 0..<34 { #expect(table.index(of: NodeID(UInt32(1000 + 3 * j))) == j) }
        #expect(table.index(of: NodeID(1001)) == nil)
        #expect(moves.count == 33 && moves.allSatisfy { $0.0 == 3 * $0.1 })
    }

    @Test func sessionTakesDemandForManyDestinations() {
        var e = EndpointSessionConfiguration()
        e.maxDestinations = 4095
        var endpoint = EndpointSession(configuration: e, now: 1_000_000)
        var taken = 0
        for k in 1...4095 where endpoint.addDemand(to: NodeID(UInt32(k)), slots: UInt64(k)) { taken += 1 }
        let beyond = endpoint.addDemand(to: NodeID(5000), slots: 1)
        #expect(taken == 4095 && !beyond)
        #expect(endpoint.statistics.destinationTableFull == 1)
        #expect(endpoint.flow(to: NodeID(4000))?.need == 4000)
        #expect(endpoint.flow(to: NodeID(17))?.need == 17)
    }
}
