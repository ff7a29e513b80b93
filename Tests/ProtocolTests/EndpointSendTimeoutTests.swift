import Testing

@_spi(Testing) @testable import FastpassProtocol

/// An endpoint's send timeout follows the round trips of the packets the arbiter had to
/// answer, never below the configured one.
@Suite("Endpoint send timeout")
struct EndpointSendTimeoutTests {
    /// Demand every `gap` ns, each answered `answer` ns later; returns the endpoint's
    /// timeout and its timed-out packets.
    static func run(answer: UInt64, rounds: Int = 64) -> (timeout: UInt64, timeouts: UInt64) {
        var pair = DirectPair(
            endpoint: ExtensionBehaviourTests.extendedEndpoint(),
            arbiter: ExtensionBehaviourTests.arbiterConfiguration())
        pair.exchange()
        for _ in 0..<rounds {
            pair.endpoint.addDemand(to: NodeID(5), slots: 1)
            let request = pair.endpointPacket()
            pair.now += answer
            if let d = pair.endpoint.timerDeadline, d <= pair.now { pair.endpoint.handleTimeout(now: pair.now) }
            pair.deliverToArbiter(request)
            pair.deliverToEndpoint(pair.arbiterPacket())
            pair.now += 1_000_000
        }
        return (pair.endpoint.sendTimeoutNanoseconds, pair.endpoint.connection.statistics.timeoutPackets)
    }

    @Test("an arbiter answering in 600 µs: the timeout grows past it and requests stop timing out")
    func slowArbiter() {
        let slow = Self.run(answer: 600_000)
        #expect(slow.timeout > 600_000, "timeout \(slow.timeout) ns")
        // The first few time out while the estimate learns; then none.
        #expect(slow.timeouts < 8, "\(slow.timeouts) timed out")
    }

    @Test("a fast arbiter keeps the configured timeout")
    func fastArbiter() {
        let fast = Self.run(answer: 5_000)
        #expect(fast.timeout == EndpointSessionConfiguration().sendTimeoutNanoseconds)
        #expect(fast.timeouts == 0)
    }
}

/// An endpoint owed allocations by an arbiter that went silent asks again.
@Suite("Endpoint probe")
struct EndpointProbeTests {
    @Test("after an arbiter restart that lost acknowledged demand, the endpoint's probe gets it asked for again")
    func restartedArbiterLearnsTheDemand() {
        let a = ExtensionBehaviourTests.arbiterConfiguration()
        var pair = DirectPair(endpoint: ExtensionBehaviourTests.extendedEndpoint(), arbiter: a)
        pair.exchange()
        pair.endpoint.addDemand(to: NodeID(5), slots: 7)
        pair.exchange()
        #expect(pair.handler.pending[NodeID(5)] == 7)
        // The arbiter restarts: a new session, no demand; the endpoint has nothing new to say.
        pair.arbiter = ArbiterSession(configuration: a, now: pair.now)
        pair.handler = TestAllocator()
        #expect(!pair.endpoint.wantsToSend)
        var waited: UInt64 = 0
        while !pair.endpoint.wantsToSend, let d = pair.endpoint.timerDeadline, waited < 100_000_000 {
            waited = d - DirectPair.t0
            pair.now = max(pair.now, d)
            pair.endpoint.handleTimeout(now: pair.now)
        }
        #expect(pair.endpoint.wantsToSend, "a probe after \(waited) ns")
        #expect(pair.endpoint.statistics.probes == 1)
        // The new arbiter resets the connection; the reset sends the demand again.
        pair.exchange(rounds: 8)
        #expect(pair.handler.pending[NodeID(5)] == 7)
    }

    @Test("an endpoint that is owed nothing sends no probe")
    func nothingOwed() {
        var pair = DirectPair(
            endpoint: ExtensionBehaviourTests.extendedEndpoint(),
            arbiter: ExtensionBehaviourTests.arbiterConfiguration())
        pair.exchange()
        pair.now += 1_000_000_000
        pair.endpoint.handleTimeout(now: pair.now)
        #expect(!pair.endpoint.wantsToSend && pair.endpoint.statistics.probes == 0)
    }
}
