import Testing

@testable import FastpassFabric

/// The arbiter's modelled CPU: an arbiter made slow on purpose (the scaled-down collapse
/// test of issue 22).
@Suite("Arbiter CPU model")
struct ArbiterCPUTests {
    /// 16 hosts, web search at 60 %, 4 ms, a receive queue of 64 packets so that it fills.
    static func fabric(packetNanoseconds: UInt64) -> FabricConfiguration {
        var c = SimulationTests.small()
        c.arbiterCPU.packetNanoseconds = packetNanoseconds
        c.arbiterCPU.receiveQueuePackets = 64
        return c
    }

    static func run(_ c: FabricConfiguration) throws -> (SystemResult, Simulation) {
        let s = try Simulation(configuration: c, system: .fastpass)
        return (s.run(), s)
    }

    /// What must hold however slow the arbiter: no slot booked twice, no data packet lost,
    /// every packet of every flow either delivered, waiting in its agent or on its way,
    /// and every FCP packet the receive queue refused counted.
    static func checkNothingLost(_ r: SystemResult, _ s: Simulation) {
        #expect(r.doubleBookedSlots == 0)
        #expect(r.dataDrops == 0)
        #expect(r.reorderedBeyondWindow == 0)
        for (f, flow) in s.flows.enumerated() where flow.queuedToAgent > 0 {
            let onTheWay = Int(flow.queuedToAgent) - Int(flow.expected) - Int(flow.inAgent)
            #expect(onTheWay >= 0, "flow \(f)")
            if flow.finish > 0 { #expect(flow.expected == flow.packetCount, "flow \(f)") }
        }
        let a = r.arbiter!
        #expect(a.modelled)
        #expect(a.receiveQueueMaxPackets <= 64)
        #expect(Double(a.receiveQueueDrops) <= a.receivedPerSecond * r.simulatedMilliseconds / 1000)
    }

    @Test(
        "an arbiter slowed to 5 µs a packet: its core saturates, throughput falls, flows still complete, nothing is lost"
    )
    func slowArbiterDegradesGracefully() throws {
        let (normal, _) = try Self.run(
            Self.fabric(packetNanoseconds: ArbiterCPUConfiguration.IO.dpdk.packetNanoseconds))
        let (slow, s) = try Self.run(Self.fabric(packetNanoseconds: 5_000))
        let n = normal.arbiter!
        let a = slow.arbiter!
        print(
            "slow arbiter: \(slow.throughputGbps) of \(normal.throughputGbps) Gbit/s, completed \(slow.flowsCompleted) of \(normal.flowsCompleted), busy \(a.communicationLoad) (normal \(n.communicationLoad)), queue max \(a.receiveQueueMaxPackets), drops \(a.receiveQueueDrops)"
        )
        #expect(n.communicationLoad < 0.5)
        #expect(a.communicationLoad > 0.9)
        #expect(slow.throughputGbps < normal.throughputGbps)
        #expect(slow.throughputGbps > 0.4 * normal.throughputGbps)
        #expect(slow.flowsCompleted * 3 >= normal.flowsCompleted)
        Self.checkNothingLost(slow, s)
    }

    @Test("an arbiter slowed to 20 µs a packet: throughput should fall, not collapse")
    func verySlowArbiter() throws {
        let (normal, _) = try Self.run(
            Self.fabric(packetNanoseconds: ArbiterCPUConfiguration.IO.dpdk.packetNanoseconds))
        let (slow, s) = try Self.run(Self.fabric(packetNanoseconds: 20_000))
        print(
            "very slow arbiter: \(slow.throughputGbps) of \(normal.throughputGbps) Gbit/s, completed \(slow.flowsCompleted), rx / tx \(slow.arbiter!.receivedPerSecond) / \(slow.arbiter!.sentPerSecond) pkt/s, queue drops \(slow.arbiter!.receiveQueueDrops)"
        )
        Self.checkNothingLost(slow, s)
        // It collapses: the core answers later than the allocator's lookahead, so nearly
        // every allocation arrives after its slot and is asked for again (0.0 Gbit/s, no
        // flow completed). Recorded as known until the arbiter adapts how far ahead it
        // allocates to how late its packets leave.
        withKnownIssue("an arbiter slower than its lookahead collapses") {
            #expect(slow.throughputGbps > 0.1 * normal.throughputGbps)
            #expect(slow.flowsCompleted > 0)
        }
    }

    @Test("with the model off the arbiter costs no time, and the report says what it would have needed")
    func modelOff() throws {
        var c = Self.fabric(packetNanoseconds: 2_800)
        c.arbiterCPU.enabled = false
        let (r, _) = try Self.run(c)
        let a = r.arbiter!
        #expect(!a.modelled)
        #expect(a.receiveQueueMaxPackets == 0 && a.receiveQueueDrops == 0)
        #expect(a.receivedPerSecond > 0 && a.sentPerSecond > 0)
        let load = (a.receivedPerSecond + a.sentPerSecond) * 2_800e-9
        #expect(abs(a.communicationLoad - load) < 1e-6)
        #expect(a.allocatorCoresNeeded > 0)
    }
}
