import TestSupport
import Testing

@_spi(Testing) @testable import FastpassProtocol

/// Our own vectors for the extension layer (docs/protocol.md lists the same bytes).
@Suite("Extension payload vectors")
struct ExtensionVectorTests {
    static func write(_ body: (inout FCPPacketWriter) throws(FCPEncodeError) -> Void) -> String {
        var storage = [UInt8](repeating: 0, count: 512)
        return storage.withUnsafeMutableBytes { buffer in
            var writer = FCPPacketWriter(buffer)
            do throws(FCPEncodeError) { try body(&writer) } catch { return "error \(error)" }
            return hexString(buffer[0..<writer.length])
        }
    }

    static let origin: UInt64 = 1_700_000_000_000_000_000

    @Test func hello() throws {
        let hello = FCPHello(
            capabilities: [.epochFencing, .announcedClock, .wideCounters], node: NodeID(1000), address: 0x0A00_0005)
        let hex = Self.write { w throws(FCPEncodeError) in try hello.write(to: &w) }
        #expect(hex == "50000010" + "01000000" + "00000007" + "000003e8" + "0a000005")
        let bytes = try hexBytes(hex)
        let parsed = bytes.withUnsafeBytes {
            FCPExtensionPayloadView.parse($0, at: 0).flatMap { FCPHello(body: $0.body) }
        }
        #expect(parsed == hello)
        // Not stated: node all ones, address zero.
        let anonymous = FCPHello(capabilities: [], node: nil, address: nil)
        let anonymousHex = Self.write { w throws(FCPEncodeError) in try anonymous.write(to: &w) }
        #expect(anonymousHex == "50000010" + "01000000" + "00000000" + "ffffffff" + "00000000")
    }

    @Test func welcome() throws {
        let welcome = FCPWelcome(
            capabilities: [.epochFencing, .announcedClock, .wideCounters], node: NodeID(1000),
            timeslotPicoseconds: 1_230_400, epoch: 7, slotOrigin: Self.origin)
        let hex = Self.write { w throws(FCPEncodeError) in try welcome.write(to: &w) }
        #expect(
            hex == "60000020" + "00010000" + "00000007" + "000003e8" + "0012c640" + "0000000000000007"
                + "17979cfe362a0000")
        let parsed = try hexBytes(hex).withUnsafeBytes {
            FCPExtensionPayloadView.parse($0, at: 0).flatMap { FCPWelcome(body: $0.body) }
        }
        #expect(parsed == welcome)

        let refused = FCPWelcome.refused(.duplicateIdentity, epoch: 7)
        let refusedHex = Self.write { w throws(FCPEncodeError) in try refused.write(to: &w) }
        #expect(
            refusedHex == "60000020" + "02010000" + "00000000" + "00000000" + "00000000" + "0000000000000007"
                + "0000000000000000")
        #expect(
            try hexBytes(refusedHex).withUnsafeBytes {
                FCPExtensionPayloadView.parse($0, at: 0).flatMap { FCPWelcome(body: $0.body) }
            }?.refusal == .duplicateIdentity)
        // An unknown status is not a welcome.
        var unknown = try hexBytes(refusedHex)
        unknown[4] = 0x7F
        #expect(
            unknown.withUnsafeBytes { FCPExtensionPayloadView.parse($0, at: 0).flatMap { FCPWelcome(body: $0.body) } }
                == nil)
    }

    @Test func epochAndLists() {
        let epoch = Self.write { w throws(FCPEncodeError) in try FCPEpochPayload.write(7, to: &w) }
        #expect(epoch == "70000008" + "0000000000000007")
        let requests: [(UInt32, UInt64)] = [(5, 300), (70_000, 1)]
        let wide = Self.write { w throws(FCPEncodeError) in
            try w.writeExtension(.wideRequests, bodyLength: 24) { body in
                for (k, e) in requests.enumerated() {
                    writeBE32(body, 12 * k, e.0)
                    writeBE64(body, 12 * k + 4, e.1)
                }
            }
        }
        #expect(wide == "80000018" + "00000005" + "000000000000012c" + "00011170" + "0000000000000001")
    }

    @Test func wideAllocFromPendingWindow() {
        var pending = PendingAllocations()
        let a = pending.add(slot: 1000, node: NodeID(5), path: PathID(2))
        let b = pending.add(slot: 1003, node: NodeID(70_000), path: PathID(0))
        #expect(a == .added && b == .added)
        let hex = Self.write { w throws(FCPEncodeError) in _ = pending.takeWide(into: &w) }
        #expect(hex == "a0000018" + "00000000000003e8" + "0000" + "0002" + "00000005" + "0003" + "0000" + "00011170")
        #expect(pending.isEmpty)
    }

    /// Bytes computed by an independent Python model of the checksum, jhash and SipHash-2-4
    /// (not by this code): a 26-byte packet with no payload, signed with key 00..0f, id 1.
    @Test func authenticatedPacket() throws {
        let key = try #require(FCPAuthenticator(hexKey: "000102030405060708090a0b0c0d0e0f", keyID: 1))
        let sequence: UInt64 = 0x0000_0001_0000_1234
        let ack: UInt64 = 0x0000_0002_0000_5678
        let hex = Self.write { w throws(FCPEncodeError) in
            try w.writeHeader(sequence: sequence, ackSequence: ack, ackVector: 0xFFFF)
            try w.pad()
            _ = try w.finalize(sequence: sequence, ackSequence: ack, authenticator: key)
        }
        #expect(hex == "12345678ffff10b8000000000000000000000000000000000000b00100089235aed720c51e82")
        let bytes = try hexBytes(hex)
        bytes.withUnsafeBytes { raw in
            #expect(key.verify(raw, sequence: sequence, ackSequence: ack))
            #expect(
                !key.verify(raw, sequence: sequence &+ 1, ackSequence: ack), "the tag binds the full sequence number")
            #expect(FCPChecksum.verify(raw, sequence: sequence, ackSequence: ack))
        }
        let otherKey = try #require(FCPAuthenticator(hexKey: "0f0e0d0c0b0a09080706050403020100", keyID: 1))
        #expect(!bytes.withUnsafeBytes { otherKey.verify($0, sequence: sequence, ackSequence: ack) })
        #expect(FCPAuthenticator(hexKey: "0011") == nil)
        #expect(FCPAuthenticator(hexKey: "zz0102030405060708090a0b0c0d0e0f") == nil)
    }

    /// Published SipHash-2-4 vectors: key 00..0f, message 00..(n-1).
    @Test func sipHashVectors() {
        let expected: [Int: UInt64] = [
            0: 0x726f_db47_dd0e_0e31, 1: 0x74f8_39c5_93dc_67fd, 2: 0x0d6c_8009_d9a9_4f5a, 3: 0x8567_6696_d7fb_7e2d,
            4: 0xcf27_94e0_2771_87b7, 7: 0xab02_00f5_8b01_d137, 8: 0x93f5_f579_9a93_2462, 15: 0xa129_ca61_49be_45e5,
            16: 0x3f2a_cc7f_57c2_9bdb, 63: 0x958a_324c_eb06_4572,
        ]
        for (n, value) in expected {
            let message = (0..<n).map { UInt8($0) }
            // Absorb in uneven pieces to exercise the buffering.
            var mac = SipHash24(key0: 0x0706_0504_0302_0100, key1: 0x0f0e_0d0c_0b0a_0908)
            var start = 0
            var piece = 1
            while start < n {
                let end = min(n, start + piece)
                message[start..<end].withUnsafeBytes { mac.append($0) }
                start = end
                piece = piece * 2 + 1
            }
            #expect(mac.finalize() == value, "n = \(n)")
        }
    }
}

@Suite("Extension behaviour")
struct ExtensionBehaviourTests {
    static func extendedEndpoint(
        _ capabilities: FCPCapabilities = [.epochFencing, .announcedClock, .wideCounters, .giveBack]
    ) -> EndpointSessionConfiguration {
        var c = EndpointSessionConfiguration()
        c.mode = .extended(fallbackToReference: true)
        c.capabilities = capabilities
        c.node = NodeID(42)
        c.address = 0x0A00_002A
        return c
    }

    static func arbiterConfiguration() -> ArbiterSessionConfiguration {
        var a = ArbiterSessionConfiguration()
        a.epoch = 9
        a.slotOrigin = DirectPair.t0 - 1_000_000_000
        a.timeslotPicoseconds = 1_200_000
        return a
    }

    @Test func handshakeGrantsTheIntersection() {
        var a = Self.arbiterConfiguration()
        a.supportedCapabilities = [.epochFencing, .announcedClock, .wideCounters]
        var pair = DirectPair(endpoint: Self.extendedEndpoint(), arbiter: a)
        let first = pair.endpointPacket()
        // RESET, then HELLO after the (empty) reference payloads.
        #expect(FCPPayloadLayout.types(in: first).prefix(2) == [1, 5])
        pair.deliverToArbiter(first)
        #expect(pair.handler.registrations == 1)
        #expect(
            pair.arbiter.negotiation
                == .extended(node: NodeID(42), capabilities: [.epochFencing, .announcedClock, .wideCounters]))
        let reply = pair.arbiterPacket()
        // RESET (the arbiter is not in sync yet), EPOCH, WELCOME.
        #expect(FCPPayloadLayout.types(in: reply).prefix(3) == [1, 7, 6])
        pair.deliverToEndpoint(reply)
        guard case .established(let w) = pair.endpoint.negotiation else {
            Issue.record("not established: \(pair.endpoint.negotiation)")
            return
        }
        #expect(w.capabilities == [.epochFencing, .announcedClock, .wideCounters], "give-back was not granted")
        #expect(w.epoch == 9 && w.timeslotPicoseconds == 1_200_000)
        // The announced clock: slots count from the origin in 1.2 µs steps.
        #expect(pair.endpoint.currentSlot(now: a.slotOrigin + 12_000_000) == 10_000)
    }

    @Test("refusal reasons reach the endpoint", arguments: FCPRefusalReason.allCases)
    func refusal(reason: FCPRefusalReason) {
        var pair = DirectPair(endpoint: Self.extendedEndpoint(), arbiter: Self.arbiterConfiguration())
        pair.handler.refuse = reason
        pair.exchange()
        #expect(pair.endpoint.negotiation == .refused(reason))
        #expect(pair.arbiter.negotiation == .refused(reason))
        #expect(pair.endpoint.statistics.refusals >= 1)
    }

    @Test func unsupportedVersionAndMissingAuthenticationAreRefusedByTheSession() throws {
        var a = Self.arbiterConfiguration()
        a.authenticator = FCPAuthenticator(hexKey: "000102030405060708090a0b0c0d0e0f")
        var pair = DirectPair(endpoint: Self.extendedEndpoint(), arbiter: a)
        // An arbiter with a key that does not require authentication registers an
        // endpoint that does not offer it (and grants no authentication).
        pair.exchange()
        if case .established(let w) = pair.endpoint.negotiation {
            #expect(!w.capabilities.contains(.authentication))
        } else {
            Issue.record("\(pair.endpoint.negotiation)")
        }

        a.requireAuthentication = true
        var e = Self.extendedEndpoint([.epochFencing, .authentication])
        e.authenticator = a.authenticator
        var strict = DirectPair(endpoint: e, arbiter: a)
        strict.exchange()
        guard case .established(let w) = strict.endpoint.negotiation else {
            Issue.record("\(strict.endpoint.negotiation)")
            return
        }
        #expect(w.capabilities.contains(.authentication))

        // HELLO version 0 is refused without asking the owner.
        var old = DirectPair(endpoint: Self.extendedEndpoint(), arbiter: Self.arbiterConfiguration())
        var packet = old.endpointPacket()
        let helloOffset = 16  // header + RESET
        #expect(packet[helloOffset] >> 4 == 5)
        packet[helloOffset + 4] = 0
        TamperedPacket.reseal(&packet, asSentBy: old.endpoint.connection)
        old.deliverToArbiter(packet)
        #expect(old.arbiter.negotiation == .refused(.unsupportedVersion))
        #expect(old.handler.registrations == 0)
    }

    /// A reference arbiter drops the packet at the unknown HELLO and never acknowledges
    /// it; after the configured number of timeouts the endpoint carries on as plain
    /// reference FCP, and its packets carry nothing a reference parser cannot read.
    /// With a key the session never falls back: the reference arbiter cannot
    /// authenticate, and giving up the key because a HELLO went unanswered would let
    /// anyone who drops HELLOs strip it.
    @Test(
        "an unanswered HELLO makes an endpoint fall back to reference FCP, unless it holds a key",
        arguments: [false, true])
    func fallbackToReference(withKey: Bool) {
        var e = Self.extendedEndpoint()
        e.helloFailuresBeforeFallback = 3
        if withKey { e.authenticator = FCPAuthenticator(hexKey: "000102030405060708090a0b0c0d0e0f") }
        var endpoint = EndpointSession(configuration: e, now: DirectPair.t0)
        var referenceArbiter = FCPConnection(
            configuration: .init(side: .arbiter), resetTime: DirectPair.t0 - 3_000_000_000)
        var ignore = RecordingDelegate()
        var now = DirectPair.t0
        var buffer = [UInt8](repeating: 0, count: 512)
        endpoint.addDemand(to: NodeID(3), slots: 4)
        var helloPackets = 0
        for _ in 0..<20 where endpoint.negotiation != .fellBack {
            now += 1_000
            let n = try! buffer.withUnsafeMutableBytes { endpoint.send(now: now, into: $0) }.get()
            let packet = Array(buffer[0..<n])
            if FCPPayloadLayout.types(in: packet).contains(5) { helloPackets += 1 }
            let r = referenceArbiter.receive(packet, now: now, delegate: &ignore)
            #expect(r.error == .unknownPayload(type: 5))
            // The demand before the HELLO was still seen by the reference parser.
            #expect(ignore.calls.contains { if case .areq = $0 { true } else { false } })
            // It answers (as it would with ALLOCs for that demand), acknowledging nothing
            // it dropped: only an arbiter that answers yet never acknowledges HELLO is a
            // reference one.
            now += 1_000
            let m = buffer.withUnsafeMutableBytes { raw in
                let header = referenceArbiter.commit(now: now, delegate: &ignore)
                var w = FCPPacketWriter(raw)
                try! w.writeHeader(
                    sequence: header.sequence, ackSequence: header.ackSequence, ackVector: header.ackVector)
                if header.sendReset { try! w.writeReset(timestamp: header.resetTimestamp) }
                try! w.pad()
                return try! w.finalize(sequence: header.sequence, ackSequence: header.ackSequence)
            }
            let answer = buffer.withUnsafeBytes {
                endpoint.receive(UnsafeRawBufferPointer(rebasing: $0[0..<m]), now: now)
            }
            #expect(answer.delivered)
            now += 300_000
            endpoint.handleTimeout(now: now)
        }
        if withKey {
            #expect(endpoint.negotiation == .offering, "a keyed endpoint fell back")
            #expect(helloPackets == 20 && endpoint.statistics.fallbacks == 0)
            return
        }
        #expect(endpoint.negotiation == .fellBack)
        #expect(helloPackets == 3)
        #expect(endpoint.statistics.fallbacks == 1)
        endpoint.addDemand(to: NodeID(4), slots: 1)
        now += 1_000
        let n = try! buffer.withUnsafeMutableBytes { endpoint.send(now: now, into: $0) }.get()
        let plain = Array(buffer[0..<n])
        #expect(FCPPayloadLayout.types(in: plain).allSatisfy { $0 <= 4 }, "\(FCPPayloadLayout.types(in: plain))")
        #expect(n <= FCPWire.endpointMaxLength)
        ignore.calls.removeAll()
        let r = referenceArbiter.receive(plain, now: now, delegate: &ignore)
        #expect(r.delivered)
    }

    /// Plain reference mode sends exactly what the reference encoder would.
    @Test func referenceModeIsByteForByteReference() throws {
        var e = EndpointSessionConfiguration()
        e.mode = .reference
        var endpoint = EndpointSession(configuration: e, now: DirectPair.t0)
        endpoint.addDemand(to: NodeID(7), slots: 3)
        endpoint.addDemand(to: NodeID(300), slots: 9)
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = try buffer.withUnsafeMutableBytes { endpoint.send(now: DirectPair.t0 + 5, into: $0) }.get()
        let c = endpoint.connection
        let expected = try ReferenceVectorTests.encode(
            sequence: c.highestSent, ackSequence: c.highestReceived,
            ackVector: FCPAckVector.encode(window: c.receiveWindow),
            resetTimestamp: c.lastResetTime, alloc: nil, requests: [(7, 3), (300, 9)], minSize: 26, maxLength: 58
        ).get()
        #expect(Array(buffer[0..<n]) == expected)
    }

    @Test func staleEpochIsDroppedWithoutSideEffects() throws {
        var pair = DirectPair(endpoint: Self.extendedEndpoint(), arbiter: Self.arbiterConfiguration())
        pair.exchange()
        #expect(pair.endpoint.connection.highestEpoch == 9)
        #expect(pair.endpoint.connection.requireEpoch)
        // A packet from the same arbiter connection, but stamped with epoch 8.
        var packet = pair.arbiterPacket()
        #expect(FCPPayloadLayout.types(in: packet).first == 7)
        packet[8 + 4 + 7] = 8
        TamperedPacket.reseal(&packet, asSentBy: pair.arbiter.connection)
        let before = pair.endpoint.connection
        let r = pair.deliverToEndpoint(packet)
        #expect(r.error == .staleEpoch)
        let after = pair.endpoint.connection
        #expect(after.statistics.rxStaleEpoch == 1)
        #expect(after.highestReceived == before.highestReceived && after.receiveWindow == before.receiveWindow)
        #expect(after.inSync == before.inSync && after.consecutiveBadPackets == 0)
        // Without the epoch payload at all: also dropped.
        var bare = pair.arbiterPacket()
        bare.removeSubrange(8..<20)
        TamperedPacket.reseal(&bare, asSentBy: pair.arbiter.connection)
        let bareResult = pair.deliverToEndpoint(bare)
        #expect(bareResult.error == .missingEpoch)
    }

    @Test func unauthenticatedAndForgedPacketsAreNeverActedOn() throws {
        let key = try #require(FCPAuthenticator(hexKey: "00112233445566778899aabbccddeeff"))
        var a = Self.arbiterConfiguration()
        a.authenticator = key
        a.requireAuthentication = true
        var e = Self.extendedEndpoint([.epochFencing, .wideCounters, .authentication])
        e.authenticator = key
        e.requireAuthentication = true
        var pair = DirectPair(endpoint: e, arbiter: a)
        pair.endpoint.addDemand(to: NodeID(3), slots: 5)
        pair.exchange()
        #expect(pair.handler.pending[NodeID(3)] == 5)
        let established = pair.arbiter.connection

        // A reference endpoint without the key: dropped, counted, nothing changes.
        var plain = EndpointSessionConfiguration()
        plain.mode = .reference
        var intruder = EndpointSession(configuration: plain, now: pair.now)
        intruder.addDemand(to: NodeID(3), slots: 100)
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = try buffer.withUnsafeMutableBytes { intruder.send(now: pair.now, into: $0) }.get()
        for _ in 0..<20 {
            let r = pair.deliverToArbiter(Array(buffer[0..<n]))
            #expect(r.error == .authenticationFailed)
        }

        // A genuine packet with one payload byte flipped: the tag fails before the
        // checksum is even looked at, so it does not count as a bad packet either.
        pair.endpoint.addDemand(to: NodeID(3), slots: 1)
        var tampered = pair.endpointPacket()
        tampered[9] ^= 0x01
        let tamperedResult = pair.deliverToArbiter(tampered)
        #expect(tamperedResult.error == .authenticationFailed)

        let after = pair.arbiter.connection
        #expect(after.statistics.rxAuthenticationFailed == 21)
        #expect(after.statistics.rxChecksumError == established.statistics.rxChecksumError)
        #expect(after.consecutiveBadPackets == 0 && after.inSync == established.inSync)
        #expect(
            after.lastResetTime == established.lastResetTime && after.highestReceived == established.highestReceived)
        #expect(pair.handler.pending[NodeID(3)] == 5, "no demand was taken from unauthenticated packets")
    }

    @Test func giveBackWithdrawsPendingDemand() {
        var pair = DirectPair(endpoint: Self.extendedEndpoint(), arbiter: Self.arbiterConfiguration())
        pair.exchange()
        pair.endpoint.addDemand(to: NodeID(5), slots: 10)
        pair.exchange()
        #expect(pair.handler.pending[NodeID(5)] == 10)
        #expect(pair.endpoint.withdrawDemand(to: NodeID(5), slots: 4) == 4)
        pair.exchange()
        #expect(pair.handler.pending[NodeID(5)] == 6)
        #expect(pair.arbiter.destination(NodeID(5))?.withdrawn == 4)
        let flow = pair.endpoint.flow(to: NodeID(5))
        #expect(flow?.withdrawn == 4 && flow?.need == 6)
        #expect(pair.endpoint.statistics.slotsWithdrawn == 4)
        // Never more than is still needed.
        #expect(pair.endpoint.withdrawDemand(to: NodeID(5), slots: 100) == 6)
    }

    /// The reference endpoint looked demand up by the raw 16-bit destination, so an
    /// allocation with path bits set was "unwanted". Ours strips them and keeps the path.
    @Test func pathBitsAreStrippedFromReferenceAllocations() {
        var e = EndpointSessionConfiguration()
        e.mode = .reference
        var a = ArbiterSessionConfiguration()
        a.epoch = 1
        var pair = DirectPair(endpoint: e, arbiter: a)
        pair.endpoint.addDemand(to: NodeID(5), slots: 1)
        pair.exchange()
        let slot = ReferenceTimeslot.slot(atNanoseconds: pair.now) + 10
        let recorded = pair.arbiter.recordAllocation(slot: slot, destination: NodeID(5), path: PathID(1))
        #expect(recorded)
        pair.deliverToEndpoint(pair.arbiterPacket())
        #expect(pair.endpoint.statistics.allocationsAdmitted == 1)
        #expect(pair.endpoint.statistics.allocationsUnwanted == 0)
        let taken = pair.endpoint.takeAllocation(dueBy: pair.now + 15_000)
        #expect(taken?.destination == NodeID(5) && taken?.path == PathID(1) && taken?.slot == slot)
    }

    /// The original endpoint, reproduced: with `stripsReferencePathBits` off, a destination
    /// with path bits is looked up raw and names no flow, so the allocation is unwanted.
    /// This is what makes a faithful endpoint catch an arbiter that sends path bits.
    @Test func faithfulReferenceEndpointFindsNoFlowForPathBits() {
        var e = EndpointSessionConfiguration()
        e.mode = .reference
        e.stripsReferencePathBits = false
        var a = ArbiterSessionConfiguration()
        a.epoch = 1
        var pair = DirectPair(endpoint: e, arbiter: a)
        pair.endpoint.addDemand(to: NodeID(5), slots: 2)
        pair.exchange()
        let slot = ReferenceTimeslot.slot(atNanoseconds: pair.now) + 10
        let withPath = pair.arbiter.recordAllocation(slot: slot, destination: NodeID(5), path: PathID(1))
        let withoutPath = pair.arbiter.recordAllocation(slot: slot + 1, destination: NodeID(5), path: PathID(0))
        #expect(withPath && withoutPath)
        pair.deliverToEndpoint(pair.arbiterPacket())
        #expect(pair.endpoint.statistics.allocationsUnwanted == 1)
        #expect(pair.endpoint.statistics.allocationsAdmitted == 1)
        let taken = pair.endpoint.takeAllocation(dueBy: pair.now + 15_000)
        #expect(taken?.destination == NodeID(5) && taken?.slot == slot + 1)
    }

    /// The reference arbiter kept sending allocations made before a reset; ours drops
    /// them, and allocations for demand from before the reset are refused.
    @Test func resetPurgesPendingAllocationsAndOldDemand() {
        var pair = DirectPair(endpoint: Self.extendedEndpoint(), arbiter: Self.arbiterConfiguration())
        pair.endpoint.addDemand(to: NodeID(5), slots: 10)
        pair.exchange()
        let slot = pair.endpoint.currentSlot(now: pair.now) + 10
        let recorded = pair.arbiter.recordAllocation(slot: slot, destination: NodeID(5), path: .none)
        #expect(recorded)
        #expect(pair.arbiter.pendingAllocationCount == 1)
        let resetsBefore = pair.handler.resets
        pair.arbiter.forceReset(now: pair.now, handler: &pair.handler)
        #expect(pair.handler.resets == resetsBefore + 1)
        #expect(pair.handler.pending.isEmpty)
        #expect(pair.arbiter.pendingAllocationCount == 0)
        let late = pair.arbiter.recordAllocation(slot: slot + 1, destination: NodeID(5), path: .none)
        #expect(!late)
        #expect(pair.arbiter.statistics.allocationsRejected == 1)
        // The endpoint learns of the reset, re-registers and asks again for what it needs.
        pair.exchange(rounds: 6)
        #expect(pair.handler.pending[NodeID(5)] == 10)
        if case .established = pair.endpoint.negotiation {} else { Issue.record("\(pair.endpoint.negotiation)") }
    }

    @Test func configurationProblemsNameTheField() {
        var e = EndpointSessionConfiguration()
        e.maxDestinations = 0
        #expect(e.problem?.contains("maxDestinations") == true)
        e = EndpointSessionConfiguration()
        e.allocationWindow = AllocationTimeWindow(missThreshold: 200, maxPreload: 100)
        #expect(e.problem?.contains("allocationWindow") == true)
        e = EndpointSessionConfiguration()
        e.maxPacketLength = 100
        #expect(e.problem?.contains("maxPacketLength") == true)
        e = EndpointSessionConfiguration()
        e.requireAuthentication = true
        #expect(e.problem?.contains("authenticator") == true)
        var a = ArbiterSessionConfiguration()
        a.timeslotPicoseconds = 0
        #expect(a.problem?.contains("timeslotPicoseconds") == true)
        a = ArbiterSessionConfiguration()
        a.referenceMaxPacketLength = 100
        #expect(a.problem?.contains("referenceMaxPacketLength") == true)
        #expect(EndpointSessionConfiguration().problem == nil && ArbiterSessionConfiguration().problem == nil)
    }

    @Test func destinationTableLimitIsCounted() {
        var e = EndpointSessionConfiguration()
        e.mode = .reference
        e.maxDestinations = 2
        var endpoint = EndpointSession(configuration: e, now: DirectPair.t0)
        let first = endpoint.addDemand(to: NodeID(1), slots: 1)
        let second = endpoint.addDemand(to: NodeID(2), slots: 1)
        let third = endpoint.addDemand(to: NodeID(3), slots: 1)
        let again = endpoint.addDemand(to: NodeID(1), slots: 1)
        #expect(first && second && !third)
        #expect(again, "existing destinations still take demand")
        #expect(endpoint.statistics.destinationTableFull == 1)
    }
}
