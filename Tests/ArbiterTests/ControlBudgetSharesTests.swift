import FastpassProtocol
import Testing

@testable import FastpassArbiter

/// How the arbiter divides its packet budget among endpoints, and follows what its thread
/// measures it can take.
@Suite("Control budget shares")
struct ControlBudgetSharesTests {
    @Test("the share follows the sessions in powers of two, never below the minimum; revisions only grow")
    func followsSessions() {
        var c = ArbiterCoreConfiguration()
        c.controlPacketsPerSecond = 200_000
        c.minimumControlShare = 100
        var shares = ControlBudgetShares(configuration: c)
        #expect(shares.share?.packetsPerSecond == 200_000)
        var revisions: [UInt32] = [shares.share!.revision]
        var changes = 0
        for _ in 0..<1024 {
            let before = shares.share
            shares.sessionStarted()
            if shares.share != before {
                changes += 1
                revisions.append(shares.share!.revision)
            }
        }
        #expect(changes == 10, "1 024 sessions: 2, 4, … 1 024")
        #expect(shares.share?.packetsPerSecond == 195)
        #expect(revisions == revisions.sorted() && Set(revisions).count == revisions.count)
        for _ in 0..<3000 { shares.sessionStarted() }
        #expect(shares.share?.packetsPerSecond == 100, "4 024 sessions: the minimum")
        var off = ArbiterCoreConfiguration()
        off.controlPacketsPerSecond = 0
        #expect(ControlBudgetShares(configuration: off).share == nil)
    }

    @Test("a measured capacity lowers the share, never raises it above the configured one, and noise moves nothing")
    func followsMeasurement() {
        var c = ArbiterCoreConfiguration()
        c.controlPacketsPerSecond = 200_000
        var shares = ControlBudgetShares(configuration: c)
        for _ in 0..<16 { shares.sessionStarted() }
        #expect(shares.share?.packetsPerSecond == 12_500)
        shares.noteMeasuredCapacity(80_000)
        #expect(shares.capacity == 80_000 && shares.share?.packetsPerSecond == 5_000)
        let revision = shares.share?.revision
        shares.noteMeasuredCapacity(90_000)  // within a quarter: no change
        #expect(shares.share?.revision == revision && shares.capacity == 80_000)
        shares.noteMeasuredCapacity(1_000_000)
        #expect(shares.capacity == 200_000 && shares.share?.packetsPerSecond == 12_500)
    }

    @Test("the core hands out its target load of what the thread measured")
    func coreTargetLoad() throws {
        let topology = try Topology(.regular(racks: 2, hostsPerRack: 4, spines: 2))
        var c = ArbiterCoreConfiguration()
        c.controlPacketsPerSecond = 200_000
        c.controlTargetLoad = 0.5
        let core = try ArbiterCore(topology: topology, configuration: c, now: 1_000)
        core.noteMeasuredCapacity(receivedPerBusySecond: 100_000)
        #expect(core.controlCapacity == 50_000)
        // The load gone, the configured capacity is back (a low measure must not stick).
        core.noteCommunicationLoad(busyFraction: 0.1)
        #expect(core.controlCapacity == 200_000)
        c.measuresControlCapacity = false
        let fixed = try ArbiterCore(topology: topology, configuration: c, now: 1_000)
        fixed.noteMeasuredCapacity(receivedPerBusySecond: 100_000)
        #expect(fixed.controlCapacity == 200_000)
    }
}
