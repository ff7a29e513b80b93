import TestSupport
import Testing

@testable import FastpassArbiter

/// The row-and-column purges of a direct pair table forget exactly what a purge that reads
/// every entry would.
@Suite("Pair table purges")
struct DemandTablePurgeTests {
    /// Two tables with the same random demand, some of it merged into active pairs.
    static func tables(hosts: Int, seed: UInt64) -> (DemandTable, DemandTable) {
        let a = DemandTable(capacity: hosts * hosts, hostCount: hosts, layout: .direct)
        let b = DemandTable(capacity: hosts * hosts, hostCount: hosts, layout: .direct)
        var random = TestRandom(seed: seed)
        for _ in 0..<(hosts * hosts) {
            let s = UInt32(random.below(hosts))
            let d = UInt32(random.below(hosts))
            guard s != d else { continue }
            let slots = UInt32(1 + random.below(50))
            _ = a.add(source: s, destination: d, slots: slots)
            _ = b.add(source: s, destination: d, slots: slots)
        }
        return (a, b)
    }

    @Test("a source's purge equals the full scan's, and leaves other sources alone", arguments: [1, 2, 3] as [UInt64])
    func sourcePurge(seed: UInt64) {
        let hosts = 24
        let (fast, full) = Self.tables(hosts: hosts, seed: seed)
        let source = UInt32(seed % UInt64(hosts))
        let cleared = fast.purge(source: source)
        #expect(cleared == full.purge { src, _ in src == source })
        #expect(cleared > 0)
        #expect(fast.waitingDemand == full.waitingDemand)
        for s in 0..<hosts {
            for d in 0..<hosts {
                let p = s * hosts + d
                #expect(fast.isCurrent(pair: p) == full.isCurrent(pair: p), "pair \(s)→\(d)")
                #expect(fast.isCurrent(pair: p) == (UInt32(s) != source || !fast.isActive(UInt32(s), UInt32(d))))
            }
        }
    }

    @Test("a host's purge equals the full scan's: its row and its column", arguments: [4, 5, 6] as [UInt64])
    func hostPurge(seed: UInt64) {
        let hosts = 24
        let (fast, full) = Self.tables(hosts: hosts, seed: seed)
        let host = UInt32(seed % UInt64(hosts))
        let cleared = fast.purge(host: host)
        #expect(cleared == full.purge { src, dst in src == host || dst == host })
        #expect(cleared > 0)
        #expect(fast.waitingDemand == full.waitingDemand)
        for p in 0..<(hosts * hosts) {
            #expect(fast.isCurrent(pair: p) == full.isCurrent(pair: p), "entry \(p)")
        }
    }
}
