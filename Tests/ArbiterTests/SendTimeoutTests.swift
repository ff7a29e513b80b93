import FastpassProtocol
import Testing

@testable import FastpassArbiter

/// The arbiter's send timeout follows the endpoints' round trips, so that a round trip
/// longer than the configured timeout does not make every packet time out and be sent again.
@Suite("Adaptive send timeout")
struct SendTimeoutTests {
    /// Eight hosts asking each other for slots over a control network of `latency` ns each
    /// way, for `duration` ns; returns the arbiter's timed-out packets, its final send
    /// timeout and the slots the endpoints used.
    static func run(
        latency: UInt64, adaptive: Bool, duration: UInt64, budget: Bool = true
    ) throws -> (timeouts: UInt64, timeout: UInt64, used: UInt64) {
        let topology = try Topology(.regular(racks: 2, hostsPerRack: 4, spines: 2))
        var configuration = ArbiterCoreConfiguration()
        configuration.adaptiveSendTimeout = adaptive
        if !budget { configuration.controlPacketsPerSecond = 0 }
        var network = try ArbiterCoreTests.Network(topology: topology, referenceHosts: [], configuration: configuration)
        network.control.latency = latency
        let asked = network.askEach(stride: 1, count: 3) { _, _ in 400 }
        #expect(asked.values.reduce(0, +) > 0)
        network.run(for: duration, step: latency / 10)
        var timeouts: UInt64 = 0
        for h in 0..<topology.hostCount {
            timeouts +=
                network.core.session(forAddress: topology.addresses[h])?.connection.statistics.timeoutPackets ?? 0
        }
        return (timeouts, network.core.sendTimeoutNanoseconds, network.usedPerPair.values.reduce(0, +))
    }

    // Round trips this long leave every allocation too late to use (they are beyond the
    // 64 slots an endpoint accepts early): what is left to see is the control traffic,
    // as under an arbiter that has fallen behind. Without a control budget, whose floor
    // would hide the difference.
    @Test("with 400 µs round trips the timeout grows past them, and packets stop timing out")
    func followsLongRoundTrips() throws {
        let fixed = try Self.run(latency: 200_000, adaptive: false, duration: 30_000_000, budget: false)
        let adaptive = try Self.run(latency: 200_000, adaptive: true, duration: 30_000_000, budget: false)
        #expect(fixed.timeout == 200_000)
        #expect(adaptive.timeout >= 800_000, "timeout \(adaptive.timeout) ns against 400 µs round trips")
        #expect(
            adaptive.timeouts * 4 < fixed.timeouts,
            "timed out: \(adaptive.timeouts) adaptive against \(fixed.timeouts) fixed")
    }

    @Test("short round trips keep the configured timeout")
    func keepsTheFloor() throws {
        let short = try Self.run(latency: 2_000, adaptive: true, duration: 10_000_000)
        // The configured timeout, plus the longest a paced endpoint may hold an answer with
        // nothing new: 8 endpoints share the default budget.
        let c = ArbiterCoreConfiguration()
        let paced = ControlPacer(
            packetsPerSecond: c.controlPacketsPerSecond / 8, burst: UInt64(c.controlBurst), now: 0)
        #expect(short.timeout == c.session.sendTimeoutNanoseconds + paced.longestWaitWithoutNews)
        #expect(short.used > 0)
    }
}
