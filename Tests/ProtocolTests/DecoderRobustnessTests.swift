import TestSupport
import Testing

@_spi(Testing) @testable import FastpassProtocol

/// Arbitrary and mutated packets never trap, every packet is either delivered or dropped
/// with a typed reason, and every reason is counted. (The libFuzzer target in Fuzz/ runs
/// the same entry points with coverage guidance; this keeps a seeded slice in the suite.)
@Suite("Decoder robustness")
struct DecoderRobustnessTests {
    /// Valid packets of every shape, from real sessions, to mutate.
    static func seedPackets() -> [[UInt8]] {
        var packets: [[UInt8]] = []
        for extended in [false, true] {
            var e = EndpointSessionConfiguration()
            e.mode = extended ? .extended(fallbackToReference: false) : .reference
            e.node = NodeID(9)
            var a = ArbiterSessionConfiguration()
            a.slotOrigin = DirectPair.t0 - 1_000_000_000
            var pair = DirectPair(endpoint: e, arbiter: a)
            for d in 1...12 { pair.endpoint.addDemand(to: NodeID(UInt32(d)), slots: UInt64(d)) }
            for round in 0..<6 {
                let up = pair.endpointPacket()
                packets.append(up)
                pair.deliverToArbiter(up)
                let clock = pair.arbiter.negotiation.granted.contains(.announcedClock)
                let current =
                    clock ? pair.endpoint.currentSlot(now: pair.now) : ReferenceTimeslot.slot(atNanoseconds: pair.now)
                for k in 0..<20 {
                    _ = pair.arbiter.recordAllocation(
                        slot: current + 4 + UInt64(round * 20 + k), destination: NodeID(UInt32(1 + k % 12)),
                        path: PathID(UInt16(k % 3)))
                }
                let down = pair.arbiterPacket()
                packets.append(down)
                pair.deliverToEndpoint(down)
            }
        }
        return packets
    }

    /// Counts what each error should have moved.
    struct Tally {
        var delivered = 0
        var errors: [FCPDecodeError: Int] = [:]
        mutating func add(_ r: FCPReceiveResult) {
            #expect(r.delivered != (r.error != nil), "delivered xor error: \(r)")
            if r.delivered { delivered += 1 }
            if let e = r.error {
                // Unknown payloads of any type are counted under one counter.
                errors[e.normalised, default: 0] += 1
            }
        }
        func check(_ s: FCPConnectionStatistics, inputs: Int) {
            #expect(s.rxPackets == UInt64(inputs))
            let expected: [(FCPDecodeError, UInt64)] = [
                (.tooShort, s.rxTooShort), (.tooLong, s.rxTooLong), (.incompleteReset, s.rxIncompleteReset),
                (.checksumMismatch, s.rxChecksumError), (.duplicate, s.rxDroppedDuplicate),
                (.incompleteAck, s.rxIncompleteAck), (.incompleteAlloc, s.rxIncompleteAlloc),
                (.incompleteRequests, s.rxIncompleteRequests), (.incompleteExtension, s.rxIncompleteExtension),
                (.unknownPayload(type: 0), s.rxUnknownPayload), (.authenticationFailed, s.rxAuthenticationFailed),
                (.staleEpoch, s.rxStaleEpoch), (.missingEpoch, s.rxMissingEpoch),
            ]
            for (error, counter) in expected {
                #expect(
                    UInt64(errors[error] ?? 0) == counter, "\(error): \(errors[error] ?? 0) results, counter \(counter)"
                )
            }
            let resets = s.resetBothRecentLastResetWins + s.resetLastRecentPayloadOld + s.resetBothOld
            #expect(UInt64(errors[.resetNotApplied] ?? 0) == resets)
        }
    }

    static func inputs(count: Int, seed: UInt64) -> [[UInt8]] {
        // This suite's seeds are the generator's raw state.
        var random = TestRandom(state: seed)
        let seeds = seedPackets()
        var out: [[UInt8]] = []
        out.reserveCapacity(count)
        for i in 0..<count {
            if i % 2 == 0 {
                let n = Int(random.next() % 200)
                out.append((0..<n).map { _ in UInt8(truncatingIfNeeded: random.next()) })
            } else {
                var p = seeds[Int(random.next() % UInt64(seeds.count))]
                for _ in 0...(random.next() % 4) {
                    switch random.next() % 4 {
                    case 0 where !p.isEmpty:
                        p[Int(random.next() % UInt64(p.count))] ^= UInt8(truncatingIfNeeded: 1 << (random.next() % 8))
                    case 1 where !p.isEmpty: p.removeLast(Int(random.next() % UInt64(p.count)))
                    case 2:
                        p.append(
                            contentsOf: (0..<(random.next() % 16)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                        )
                    default:
                        if p.count > 9 {
                            p[8 + Int(random.next() % UInt64(p.count - 8))] = UInt8(truncatingIfNeeded: random.next())
                        }
                    }
                }
                out.append(p)
            }
        }
        return out
    }

    @Test("connections, every configuration", arguments: 0..<6)
    func connections(configuration: Int) {
        let side: FCPSide = configuration % 2 == 0 ? .endpoint : .arbiter
        var conn = FCPConnection(configuration: .init(side: side), resetTime: DirectPair.t0)
        conn.extensionsEnabled = configuration >= 2
        if configuration >= 4 {
            conn.authenticator = FCPAuthenticator(hexKey: "000102030405060708090a0b0c0d0e0f")
            conn.requireAuthentication = configuration == 5
        }
        var delegate = CountingDelegate()
        var tally = Tally()
        let packets = Self.inputs(count: 20_000, seed: UInt64(100 + configuration))
        var now = DirectPair.t0
        for (i, original) in packets.enumerated() {
            now += 700
            var p = original
            // Half the time, make the checksum right for this connection, so parsing goes
            // past it (an attacker who can compute it, or a peer with a bug).
            if i % 4 == 1 { TamperedPacket.reseal(&p, forReceiver: conn, now: now) }
            tally.add(conn.receive(p, now: now, delegate: &delegate))
            if i % 50 == 0 {
                conn.prepareToSend(delegate: &delegate)
                _ = conn.commit(now: now, delegate: &delegate)
            }
            if i % 97 == 0 { conn.handleTimeout(now: now + 300_000, delegate: &delegate) }
            #expect(conn.unacknowledgedCount <= 192)
        }
        tally.check(conn.statistics, inputs: packets.count)
        print(
            "connection config \(configuration): \(packets.count) inputs, \(tally.delivered) delivered, errors \(tally.errors.map { "\($0.key): \($0.value)" }.sorted())"
        )
    }

    @Test func sessions() {
        var e = EndpointSessionConfiguration()
        e.mode = .extended(fallbackToReference: true)
        e.maxDestinations = 16
        var endpoint = EndpointSession(configuration: e, now: DirectPair.t0)
        var a = ArbiterSessionConfiguration()
        a.maxDestinations = 16
        var arbiter = ArbiterSession(configuration: a, now: DirectPair.t0)
        var handler = TestAllocator()
        var buffer = [UInt8](repeating: 0, count: 1500)
        var now = DirectPair.t0
        var endpointTally = Tally()
        var arbiterTally = Tally()
        let packets = Self.inputs(count: 20_000, seed: 7)
        for (i, original) in packets.enumerated() {
            now += 900
            // Most packets get a checksum the receiving session accepts, so its payload
            // handlers (allocations, reports, demand, handshake) see hostile contents.
            var toEndpoint = original
            var toArbiter = original
            if i % 4 != 0 {
                TamperedPacket.reseal(&toEndpoint, forReceiver: endpoint.connection, now: now)
                TamperedPacket.reseal(&toArbiter, forReceiver: arbiter.connection, now: now)
            }
            endpointTally.add(toEndpoint.withUnsafeBytes { endpoint.receive($0, now: now) })
            arbiterTally.add(toArbiter.withUnsafeBytes { arbiter.receive($0, now: now, handler: &handler) })
            if i % 40 == 0 {
                endpoint.addDemand(to: NodeID(UInt32(i % 20)), slots: 3)
                _ = buffer.withUnsafeMutableBytes { endpoint.send(now: now, into: $0) }
                _ = buffer.withUnsafeMutableBytes { arbiter.send(now: now, into: $0) }
                _ = arbiter.recordAllocation(slot: UInt64(i), destination: NodeID(UInt32(i % 20)), path: .none)
            }
            if let d = endpoint.timerDeadline, d <= now { endpoint.handleTimeout(now: now) }
            if let d = arbiter.timerDeadline, d <= now { arbiter.handleTimeout(now: now, handler: &handler) }
            while endpoint.takeAllocation(dueBy: now) != nil {}
        }
        endpointTally.check(endpoint.connection.statistics, inputs: packets.count)
        arbiterTally.check(arbiter.connection.statistics, inputs: packets.count)
        // The handlers were reached, not just the checksum.
        #expect(endpointTally.delivered > 1_000 && arbiterTally.delivered > 1_000)
        print(
            "sessions: endpoint delivered \(endpointTally.delivered), arbiter delivered \(arbiterTally.delivered) of \(packets.count)"
        )
        #expect(endpoint.statistics.encodeFailures == 0 && arbiter.statistics.encodeFailures == 0)
    }

    @Test func allocWalkerAcceptsAnyBytes() {
        var random = TestRandom(state: 3)
        for _ in 0..<20_000 {
            let bytes = (0..<Int(random.next() % 140)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            let destinations = Int(random.next() % 16)
            bytes.withUnsafeBytes { raw in
                var walker = AllocDescriptorWalker(
                    baseSlot: random.next(), destinationCount: destinations, descriptors: raw)
                var steps = 0
                while let step = walker.next() {
                    steps += 1
                    if case .allocation(_, _, let index) = step { #expect(index >= 1 && index <= destinations) }
                }
                #expect(steps <= raw.count)
                _ = FCPAllocPayloadView.parse(raw, at: 0)
                _ = FCPRequestsPayloadView.parse(raw, at: 0)
                _ = FCPExtensionPayloadView.parse(raw, at: 0)
                if raw.count >= 16 {
                    _ = FCPHello(body: raw)
                    _ = FCPWelcome(body: UnsafeRawBufferPointer(rebasing: raw[0...]))
                }
            }
        }
    }
}

/// Counts callbacks without keeping them.
struct CountingDelegate: FCPConnectionDelegate {
    var calls = 0
    mutating func fcpDidReset() { calls += 1 }
    mutating func fcpAcknowledged(sequence: UInt64) { calls += 1 }
    mutating func fcpNegativelyAcknowledged(sequence: UInt64) { calls += 1 }
    mutating func fcpTransmissionRequested() { calls += 1 }
    mutating func fcpReceivedAlloc(_ payload: FCPAllocPayloadView) {
        // Touch every byte the view exposes, as a real consumer would.
        for i in 0..<payload.destinationCount { calls &+= Int(payload.destination(i) & 1) }
        for b in payload.descriptors { calls &+= Int(b & 1) }
    }
    mutating func fcpReceivedRequests(_ payload: FCPRequestsPayloadView) {
        for i in 0..<payload.count { calls &+= Int(payload.entry(i).count & 1) }
    }
    mutating func fcpReceivedExtension(_ payload: FCPExtensionPayloadView) { calls &+= payload.body.count }
}

extension FCPDecodeError {
    /// One key per counter.
    var normalised: FCPDecodeError {
        if case .unknownPayload = self { return .unknownPayload(type: 0) }
        return self
    }
}
