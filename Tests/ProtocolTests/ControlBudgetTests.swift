import TestSupport
import Testing

@_spi(Testing) @testable import FastpassProtocol

/// The control budget: BUDGET on the wire, the endpoint's pacer, and the extension on and
/// off against the other side.
@Suite("Control budget")
struct ControlBudgetTests {
    static let share = FCPControlBudget(revision: 3, packetsPerSecond: 1_562, burst: 8)

    @Test("BUDGET vector: 12-byte body, revision, packets per second, burst")
    func vector() throws {
        let hex = ExtensionVectorTests.write { w throws(FCPEncodeError) in try Self.share.write(to: &w) }
        #expect(hex == "d000000c" + "00000003" + "0000061a" + "0008" + "0000")
        let parsed = try hexBytes(hex).withUnsafeBytes {
            FCPExtensionPayloadView.parse($0, at: 0).flatMap { FCPControlBudget(body: $0.body) }
        }
        #expect(parsed == Self.share)
        // Too short is not a budget; longer (a later version) is.
        let short = [UInt8](repeating: 0, count: 11)
        let long = [UInt8](repeating: 0, count: 16)
        let parsedShort = short.withUnsafeBytes { FCPControlBudget(body: $0) }
        let parsedLong = long.withUnsafeBytes { FCPControlBudget(body: $0) }
        #expect(parsedShort == nil)
        #expect(parsedLong != nil)
    }

    @Test("the pacer: a full bucket of `burst`, then one packet per interval; half the bucket kept for news")
    func pacer() {
        var p = ControlPacer(packetsPerSecond: 1_000, burst: 4, now: 0)
        #expect(p.intervalNanoseconds == 1_000_000)
        #expect(p.reserve == 2)
        // A full bucket: without news, two may leave before the reserve is reached.
        #expect(p.earliestSend(now: 0, carriesNews: false) == 0)
        #expect((p.take(0)) as Bool)
        #expect((p.take(0)) as Bool)
        #expect(p.earliestSend(now: 0, carriesNews: false) == 1_000_000)
        #expect(p.earliestSend(now: 0, carriesNews: true) == 0)
        #expect((p.take(0)) as Bool)
        #expect((p.take(0)) as Bool)
        // Empty: news waits one interval, the rest three.
        #expect(p.earliestSend(now: 0, carriesNews: true) == 1_000_000)
        #expect(p.earliestSend(now: 0, carriesNews: false) == 3_000_000)
        #expect(p.longestWaitWithoutNews == 3_000_000)
        #expect(!(p.take(500_000)) as Bool, "an early packet is above the budget")
        // Credit never exceeds the bucket.
        #expect(p.earliestSend(now: 100_000_000, carriesNews: false) == 100_000_000)
        for _ in 0..<4 { #expect((p.take(100_000_000)) as Bool) }
        #expect(!(p.take(100_000_000)) as Bool)
        // Unlimited: always now.
        var free = ControlPacer()
        #expect(free.earliestSend(now: 5, carriesNews: false) == 5)
        #expect((free.take(5)) as Bool)
    }

    @Test("back-off after losses doubles per episode, is capped, and ends with an acknowledgement")
    func backoff() {
        var p = ControlPacer()
        p.noteLoss(now: 1_000, base: 50_000)
        #expect(p.backoffLevel == 1 && p.earliestSend(now: 1_000, carriesNews: true) == 51_000)
        // The same episode: no further doubling.
        p.noteLoss(now: 2_000, base: 50_000)
        #expect(p.backoffLevel == 1)
        p.noteLoss(now: 51_000, base: 50_000)
        #expect(p.backoffLevel == 2 && p.earliestSend(now: 51_000, carriesNews: true) == 151_000)
        var t: UInt64 = 151_000
        for _ in 0..<10 {
            p.noteLoss(now: t, base: 50_000)
            t = p.earliestSend(now: t, carriesNews: true)
        }
        #expect(p.backoffLevel == ControlPacer.maxBackoffLevel)
        p.noteAcknowledged()
        #expect(p.backoffLevel == 0 && p.earliestSend(now: t, carriesNews: false) == t)
    }

    static func pair(endpoint capabilities: FCPCapabilities, arbiter supported: FCPCapabilities = .all) -> DirectPair {
        var a = ExtensionBehaviourTests.arbiterConfiguration()
        a.supportedCapabilities = supported
        var pair = DirectPair(endpoint: ExtensionBehaviourTests.extendedEndpoint(capabilities), arbiter: a)
        pair.arbiter.setControlBudget(Self.share, now: pair.now)
        return pair
    }

    @Test(
        "on: the WELCOME packet carries BUDGET, the endpoint paces by it, and the arbiter stops sending it once acknowledged"
    )
    func negotiated() {
        var pair = Self.pair(endpoint: [.epochFencing, .announcedClock, .wideCounters, .giveBack, .controlBudget])
        pair.deliverToArbiter(pair.endpointPacket())
        let reply = pair.arbiterPacket()
        #expect(FCPPayloadLayout.types(in: reply).prefix(4) == [1, 7, 6, 13])
        pair.deliverToEndpoint(reply)
        #expect(pair.endpoint.pacer.packetsPerSecond == 1_562 && pair.endpoint.pacer.burst == 8)
        #expect(pair.endpoint.statistics.budgetsApplied == 1)
        #expect(pair.arbiter.statistics.budgetsSent == 1)
        // Acknowledged with the endpoint's next packet: later ones carry no BUDGET.
        pair.endpoint.addDemand(to: NodeID(5), slots: 3)
        pair.deliverToArbiter(pair.endpointPacket())
        let next = pair.arbiterPacket()
        #expect(!FCPPayloadLayout.types(in: next).contains(13))
        #expect(pair.arbiter.statistics.budgetsSent == 1)
        #expect(pair.handler.pending[NodeID(5)] == 3)
    }

    /// The arbiter halves the share (revision 4); the next packet to the endpoint carries
    /// BUDGET, and the endpoint paces by it.
    static func halveTheShare(_ pair: inout DirectPair) {
        pair.arbiter.setControlBudget(FCPControlBudget(revision: 4, packetsPerSecond: 781, burst: 8), now: pair.now)
        pair.endpoint.addDemand(to: NodeID(5), slots: 1)
        pair.deliverToArbiter(pair.endpointPacket())
        let next = pair.arbiterPacket()
        #expect(FCPPayloadLayout.types(in: next).contains(13))
        pair.deliverToEndpoint(next)
        #expect(pair.endpoint.pacer.packetsPerSecond == 781)
    }

    @Test("a new share is announced once, riding on the next packet; an older revision arriving late changes nothing")
    func changedShare() {
        var pair = Self.pair(endpoint: .all.subtracting(.authentication))
        pair.exchange()
        #expect(pair.endpoint.pacer.packetsPerSecond == 1_562)
        Self.halveTheShare(&pair)
        // A copy of revision 3 (as a late, reordered packet would bring) is stale.
        pair.arbiter.setControlBudget(Self.share, now: pair.now)
        pair.endpoint.addDemand(to: NodeID(5), slots: 1)
        pair.now += 10_000_000
        pair.deliverToArbiter(pair.endpointPacket())
        pair.deliverToEndpoint(pair.arbiterPacket())
        #expect(pair.endpoint.pacer.packetsPerSecond == 781)
        #expect(pair.endpoint.statistics.budgetsApplied == 2)
    }

    @Test(
        "off, either side: no BUDGET on the wire, the endpoint is not paced by one",
        arguments: [true, false])
    func notNegotiated(endpointOffers: Bool) {
        let endpoint: FCPCapabilities = [.epochFencing, .announcedClock, .wideCounters, .giveBack]
        var pair =
            endpointOffers
            ? Self.pair(endpoint: endpoint.union(.controlBudget), arbiter: endpoint)
            : Self.pair(endpoint: endpoint)
        for _ in 0..<4 {
            pair.endpoint.addDemand(to: NodeID(5), slots: 1)
            if pair.endpoint.wantsToSend { pair.deliverToArbiter(pair.endpointPacket()) }
            if pair.arbiter.wantsToSend {
                let p = pair.arbiterPacket()
                #expect(!FCPPayloadLayout.types(in: p).contains(13))
                pair.deliverToEndpoint(p)
            }
        }
        #expect(pair.endpoint.pacer.packetsPerSecond == 0)
        #expect(pair.endpoint.earliestSendTime(now: pair.now) == pair.now)
        #expect(pair.arbiter.statistics.budgetsSent == 0)
        #expect(pair.handler.pending[NodeID(5)] == 4)
    }

    @Test("the arbiter counts packets above the share; a paced endpoint stays within it")
    func enforcement() {
        for paced in [true, false] {
            var pair = Self.pair(endpoint: .all.subtracting(.authentication))
            pair.exchange()
            let start = pair.now
            var sent = 0
            // 200 ms of demand changes every 50 µs: far more than 1 562 packets/s.
            while pair.now < start + 200_000_000 {
                pair.now += 50_000
                pair.endpoint.addDemand(to: NodeID(UInt32(5 + sent % 3)), slots: 1)
                guard pair.endpoint.wantsToSend, !paced || pair.endpoint.earliestSendTime(now: pair.now) <= pair.now
                else { continue }
                pair.deliverToArbiter(try! pair.endpointSend().get())
                sent += 1
                if pair.arbiter.wantsToSend { pair.deliverToEndpoint(try! pair.arbiterSend().get()) }
            }
            if paced {
                // 200 ms at 1 562/s, plus the burst.
                #expect(sent <= 313 + 8)
                #expect(pair.arbiter.statistics.packetsOverBudget == 0)
                #expect(pair.endpoint.statistics.packetsAboveBudget == 0)
            } else {
                #expect(sent > 3_000)
                #expect(pair.arbiter.statistics.packetsOverBudget > 2_500)
                #expect(pair.endpoint.statistics.packetsAboveBudget > 2_500)
            }
            // Coalesced, nothing lost: every slot asked for reached the arbiter.
            if pair.endpoint.wantsToSend {
                pair.now += 100_000_000
                pair.deliverToArbiter(try! pair.endpointSend().get())
            }
            let total = (5...7).reduce(0) { $0 + (pair.handler.pending[NodeID(UInt32($1))] ?? 0) }
            #expect(total == 4_000, "paced: \(paced)")
        }
    }

    @Test("an endpoint whose demand packets go unanswered backs off instead of resending at once")
    func backsOffOnLoss() {
        var pair = Self.pair(endpoint: .all.subtracting(.authentication))
        pair.exchange()
        pair.endpoint.addDemand(to: NodeID(5), slots: 2)
        _ = pair.endpointPacket()  // lost
        // Earlier packets with acknowledgements alone may time out first: no back-off for them.
        while pair.endpoint.statistics.backoffs == 0, let deadline = pair.endpoint.timerDeadline {
            pair.now = deadline
            pair.endpoint.handleTimeout(now: pair.now)
        }
        #expect(pair.endpoint.statistics.backoffs == 1)
        let wants = pair.endpoint.wantsToSend
        let waits = pair.endpoint.earliestSendTime(now: pair.now) > pair.now
        #expect(wants && waits)
        // Once it may, the resend gets through and the back-off ends with its answer.
        pair.now = pair.endpoint.earliestSendTime(now: pair.now)
        pair.deliverToArbiter(try! pair.endpointSend().get())
        pair.deliverToEndpoint(pair.arbiterPacket())
        #expect(pair.endpoint.pacer.backoffLevel == 0)
        #expect(pair.handler.pending[NodeID(5)] == 2)
    }
}

extension ControlPacer {
    /// ``consume(now:)`` as a plain call: `#expect` cannot call a mutating method.
    fileprivate mutating func take(_ now: UInt64) -> Bool {
        let within = consume(now: now)
        return within
    }
}

extension ControlBudgetTests {
    @Test("ACK-DELAY vector, and the arbiter takes the endpoint's hold off its round-trip sample")
    func ackDelay() throws {
        let hex = ExtensionVectorTests.write { w throws(FCPEncodeError) in try FCPAckDelayPayload.write(250_000, to: &w)
        }
        #expect(hex == "e0000004" + "0003d090")
        let parsed = try hexBytes(hex).withUnsafeBytes {
            FCPExtensionPayloadView.parse($0, at: 0).flatMap { FCPAckDelayPayload.nanoseconds($0.body) }
        }
        #expect(parsed == 250_000)

        var pair = Self.pair(endpoint: .all.subtracting(.authentication))
        pair.exchange()
        _ = pair.arbiter.takeRoundTripSample()
        // An arbiter packet, answered 300 µs later by a packet that says it waited 300 µs.
        pair.endpoint.addDemand(to: NodeID(5), slots: 1)
        pair.deliverToArbiter(pair.endpointPacket())
        pair.deliverToEndpoint(pair.arbiterPacket())
        pair.now += 300_000
        let answer = try pair.endpointSend().get()
        #expect(FCPPayloadLayout.types(in: answer).contains(14))
        pair.deliverToArbiter(answer)
        let sample = pair.arbiter.takeRoundTripSample()
        #expect(sample != nil && sample! < 10_000, "sample \(String(describing: sample)) ns")
        // Without the budget negotiated, no ACK-DELAY: the sample is the whole wait.
        var plain = Self.pair(endpoint: [.epochFencing, .announcedClock, .wideCounters, .giveBack])
        plain.exchange()
        plain.endpoint.addDemand(to: NodeID(5), slots: 1)
        plain.deliverToArbiter(plain.endpointPacket())
        plain.deliverToEndpoint(plain.arbiterPacket())
        _ = plain.arbiter.takeRoundTripSample()
        plain.now += 300_000
        let plainAnswer = try plain.endpointSend().get()
        #expect(!FCPPayloadLayout.types(in: plainAnswer).contains(14))
        plain.deliverToArbiter(plainAnswer)
        #expect((plain.arbiter.takeRoundTripSample() ?? 0) >= 300_000)
    }
}

extension ControlBudgetTests {
    @Test("a share that changes while the packet carrying the old one is unacknowledged is still sent")
    func changeWhileInFlight() {
        var pair = Self.pair(endpoint: .all.subtracting(.authentication))
        pair.deliverToArbiter(pair.endpointPacket())
        let welcome = pair.arbiterPacket()  // carries revision 3
        pair.deliverToEndpoint(welcome)
        // The share changes before the endpoint's acknowledgement of that packet arrives.
        Self.halveTheShare(&pair)
    }
}

extension ControlBudgetTests {
    @Test("an arbiter restarted without a budget: the endpoint's old pace goes with the new WELCOME")
    func paceForgottenWithANewArbiter() {
        var pair = Self.pair(endpoint: .all.subtracting(.authentication))
        pair.exchange()
        #expect(pair.endpoint.pacer.packetsPerSecond == 1_562)
        var a = ExtensionBehaviourTests.arbiterConfiguration()
        a.supportedCapabilities = [.epochFencing, .announcedClock, .wideCounters, .giveBack]
        pair.arbiter = ArbiterSession(configuration: a, now: pair.now)
        pair.handler = TestAllocator()
        pair.endpoint.forceReset(now: pair.now)
        for _ in 0..<8 {
            pair.now += 1_000_000
            if pair.endpoint.wantsToSend { pair.deliverToArbiter(pair.endpointPacket()) }
            if pair.arbiter.wantsToSend { pair.deliverToEndpoint(pair.arbiterPacket()) }
        }
        guard case .established = pair.endpoint.negotiation else {
            Issue.record("not established: \(pair.endpoint.negotiation)")
            return
        }
        #expect(pair.endpoint.pacer.packetsPerSecond == 0)
    }
}
