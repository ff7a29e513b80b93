import PacketIO
import TestSupport
import Testing

@Suite("Ethernet, ARP and IPv4 framing")
struct EthernetTests {
    let ourIP = IPv4.parse("10.0.0.1")!
    let ourMAC = Ethernet.parse("02:00:00:00:00:01")!
    let peerIP = IPv4.parse("10.0.0.2")!
    let peerMAC = Ethernet.parse("02:00:00:00:00:02")!

    /// A frame from the peer to us: Ethernet + IPv4 (protocol `proto`) + `payload` bytes.
    func frame(
        to destinationMAC: Ethernet.Address? = nil, ip destination: UInt32? = nil, proto: UInt8 = 222,
        payload: Int = 40
    ) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: 14 + 20 + payload)
        bytes.withUnsafeMutableBytes { b in
            Ethernet.writeHeader(
                b.baseAddress!, destination: destinationMAC ?? ourMAC, source: peerMAC, type: Ethernet.typeIPv4)
            IPv4.writeHeader(
                into: UnsafeMutableRawBufferPointer(rebasing: b[14..<34]), source: peerIP,
                destination: destination ?? ourIP, payloadLength: payload, protocolNumber: proto)
            IPv4.setChecksum(b.baseAddress! + 14)
            for i in 0..<payload { b[34 + i] = UInt8(truncatingIfNeeded: i) }
        }
        return bytes
    }

    func classify(_ bytes: [UInt8]) -> Ethernet.Frame {
        bytes.withUnsafeBytes { Ethernet.classify($0.baseAddress!, length: $0.count, ip: ourIP, mac: ourMAC) }
    }

    @Test func macAddressesParseAndFormat() {
        #expect(Ethernet.parse("02:0a:FF:00:10:01") == 0x020A_FF00_1001)
        #expect(Ethernet.format(0x020A_FF00_1001) == "02:0a:ff:00:10:01")
        for bad in ["", "02:00:00:00:00", "02:00:00:00:00:00:00", "0g:00:00:00:00:00", "2:00:00:00:00:000"] {
            #expect(Ethernet.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func checksumMatchesAKnownHeader() {
        // The classic example header (RFC 1071 style), checksum 0xb861.
        let header: [UInt8] = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ]
        #expect(header.withUnsafeBytes { IPv4.checksum($0) } == 0xB861)
        var withSum = header
        withSum[10] = 0xB8
        withSum[11] = 0x61
        #expect(withSum.withUnsafeBytes { IPv4.checksum($0) } == 0)
    }

    @Test func fcpToUsIsTakenWithItsSourceAndPayload() {
        #expect(
            classify(frame())
                == .ipv4(source: peerIP, sourceMAC: peerMAC, protocolNumber: 222, headerLength: 20, payloadLength: 40))
        // Broadcast frames to our address too (some stacks send them while resolving).
        if case .ipv4 = classify(frame(to: Ethernet.broadcast)) {} else { Issue.record("broadcast refused") }
        // Another protocol is still IPv4 to us; the backend decides what to do with it.
        if case .ipv4(_, _, 17, _, _) = classify(frame(proto: 17)) {} else { Issue.record("UDP not classified") }
    }

    @Test func framesForOthersOrOurOwnAreForeign() {
        #expect(classify(frame(to: peerMAC)) == .foreign)
        #expect(classify(frame(ip: IPv4.parse("10.0.0.9")!)) == .foreign)
        var own = frame()
        own.withUnsafeMutableBytes { Ethernet.storeAddress(ourMAC, $0.baseAddress!, at: 6) }
        #expect(classify(own) == .foreign)
        var ipv6 = frame()
        ipv6[12] = 0x86
        ipv6[13] = 0xDD
        #expect(classify(ipv6) == .foreign)
    }

    @Test func fragmentsAndImpossibleSourcesAreMalformed() {
        var fragment = frame()
        fragment[14 + 6] = 0x20  // more fragments
        fragment.withUnsafeMutableBytes { IPv4.setChecksum($0.baseAddress! + 14) }
        #expect(classify(fragment) == .malformed)
        var offset = frame()
        offset[14 + 6] = 0x40
        offset[14 + 7] = 0x10  // fragment offset 16, don't-fragment set
        offset.withUnsafeMutableBytes { IPv4.setChecksum($0.baseAddress! + 14) }
        #expect(classify(offset) == .malformed)
        for source: Ethernet.Address in [0, 0x0100_5E00_0001] {
            var f = frame()
            f.withUnsafeMutableBytes { Ethernet.storeAddress(source, $0.baseAddress!, at: 6) }
            #expect(classify(f) == .malformed)
        }
    }

    @Test func damagedFramesAreMalformed() {
        var badSum = frame()
        badSum[24] ^= 0xFF
        #expect(classify(badSum) == .malformed)
        var longer = frame()
        longer[16] = 0x05  // total length beyond what arrived
        #expect(classify(longer) == .malformed)
        #expect(classify(Array(frame().prefix(30))) == .malformed)
        #expect(classify(Array(frame().prefix(10))) == .malformed)
        var version6 = frame()
        version6[14] = 0x65
        #expect(classify(version6) == .malformed)
    }

    @Test func arpRequestForUsIsAnsweredWithOurMAC() {
        var request = [UInt8](repeating: 0, count: 64)
        let n = request.withUnsafeMutableBytes {
            Ethernet.writeARP(
                $0.baseAddress!, operation: 1, senderMAC: peerMAC, senderIP: peerIP, targetMAC: 0, targetIP: ourIP)
        }
        #expect(n == 60)
        #expect(Array(request[0..<6]) == [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(classify(Array(request[0..<n])) == .arpRequest(senderIP: peerIP, senderMAC: peerMAC))
        // Our reply, as the peer sees it.
        var reply = [UInt8](repeating: 0, count: 64)
        let m = reply.withUnsafeMutableBytes {
            Ethernet.writeARP(
                $0.baseAddress!, operation: 2, senderMAC: ourMAC, senderIP: ourIP, targetMAC: peerMAC,
                targetIP: peerIP)
        }
        let seen = reply.withUnsafeBytes {
            Ethernet.classify($0.baseAddress!, length: m, ip: peerIP, mac: peerMAC)
        }
        #expect(seen == .arpOther(senderIP: ourIP, senderMAC: ourMAC))
        #expect(reply.withUnsafeBytes { Ethernet.loadAddress($0.baseAddress!, at: 0) } == peerMAC)
        // A request for someone else is only worth learning from; a truncated one is malformed.
        let other = request.withUnsafeBytes {
            Ethernet.classify($0.baseAddress!, length: n, ip: IPv4.parse("10.0.0.7")!, mac: ourMAC)
        }
        #expect(other == .arpOther(senderIP: peerIP, senderMAC: peerMAC))
        #expect(classify(Array(request[0..<30])) == .malformed)
    }

    @Test func neighbourTableLearnsUpdatesAndRateLimitsQuestions() {
        var table = NeighbourTable(expected: 8)
        let before = table.lookup(peerIP)
        #expect(before == nil)
        let first = table.shouldAsk(peerIP, now: 1_000, interval: 1_000_000)
        let soon = table.shouldAsk(peerIP, now: 2_000, interval: 1_000_000)
        let later = table.shouldAsk(peerIP, now: 1_002_000, interval: 1_000_000)
        #expect(first && !soon && later)
        table.learn(peerIP, peerMAC)
        let learnt = table.lookup(peerIP)
        let count1 = table.count
        #expect(learnt == peerMAC && count1 == 1)
        let known = table.shouldAsk(peerIP, now: 5_000_000, interval: 1_000_000)
        #expect(!known)
        table.learn(peerIP, ourMAC)
        let moved = table.lookup(peerIP)
        let count2 = table.count
        #expect(moved == ourMAC && count2 == 1)
        // Far more addresses than it was sized for: it forgets some, never grows or fails.
        for i in 0..<10_000 { table.learn(UInt32(0x0A01_0000 + i), Ethernet.Address(i + 1)) }
        let count3 = table.count
        let last = table.lookup(UInt32(0x0A01_0000 + 9_999))
        #expect(count3 == table.capacity)
        #expect(last == 10_000)
    }

    @Test("hosts numbered in the low bits of many subnets all fit; a full window keeps its known peers")
    func neighbourTableSpreadsSubnetsAndKeepsKnownPeers() {
        // 10.P.0.H: 64 subnets of 16 hosts, which a hash of the low bits alone crowds together.
        var table = NeighbourTable(expected: 1024)
        let addresses = (0..<64).flatMap { p in (1...16).map { h in UInt32(10 << 24 | p << 16 | h) } }
        for (i, a) in addresses.enumerated() { table.learn(a, Ethernet.Address(0x0200_0000_0000 + i)) }
        var found = 0
        for (i, a) in addresses.enumerated() where table.lookup(a) == Ethernet.Address(0x0200_0000_0000 + i) {
            found += 1
        }
        let count = table.count
        #expect(found == addresses.count && count == addresses.count)
        // A zero MAC is never learned.
        table.learn(IPv4.parse("10.99.0.1")!, 0)
        let zero = table.lookup(IPv4.parse("10.99.0.1")!)
        #expect(zero == nil && table.count == addresses.count)

        // Fill a small table with known peers, then ask for strangers: none pushes a known
        // peer out, and the questions that find no slot are rate-limited together.
        var small = NeighbourTable(expected: 8)
        var known: [UInt32] = []
        var ip: UInt32 = 0x0A00_0001
        while small.count < small.capacity {
            small.learn(ip, Ethernet.Address(ip))
            known.append(ip)
            ip += 1
        }
        // Filling windows may have pushed a few out (learning does): keep those still held.
        known = known.filter { small.lookup($0) != nil }
        #expect(known.count == small.capacity)
        var asked = 0
        for k in 0..<1000 where small.shouldAsk(0x0B00_0000 + UInt32(k), now: 5_000, interval: 1_000_000) { asked += 1 }
        var kept = 0
        for a in known where small.lookup(a) == Ethernet.Address(a) { kept += 1 }
        #expect(asked == 1)
        #expect(kept == known.count)
        // What other hosts' ARP says updates a held entry only.
        small.refresh(known[0], 0x0200_0000_BEEF)
        small.refresh(0x0C00_0001, 0x0200_0000_BEEF)
        let refreshed = small.lookup(known[0])
        let stranger = small.lookup(0x0C00_0001)
        #expect(refreshed == 0x0200_0000_BEEF && stranger == nil)
    }

    @Test("500 000 random and mutated frames: classified without a crash, never beyond what arrived")
    func randomFramesAreClassifiedSafely() {
        var random = TestRandom(seed: 0xE7E7)
        let valid = frame(payload: 64)
        var arp = [UInt8](repeating: 0, count: 60)
        _ = arp.withUnsafeMutableBytes {
            Ethernet.writeARP(
                $0.baseAddress!, operation: 1, senderMAC: peerMAC, senderIP: peerIP, targetMAC: 0, targetIP: ourIP)
        }
        var table = NeighbourTable(expected: 16)
        var kinds = [0, 0, 0, 0, 0]
        for i in 0..<500_000 {
            var bytes: [UInt8]
            switch i % 3 {
            case 0:
                bytes = (0..<Int.random(in: 0...120, using: &random)).map { _ in
                    UInt8.random(in: 0...255, using: &random)
                }
            case 1:
                bytes = valid
            default:
                bytes = arp
            }
            if i % 3 != 0 {
                for _ in 0..<Int.random(in: 1...4, using: &random) where !bytes.isEmpty {
                    bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                }
                bytes.removeLast(Int.random(in: 0...min(8, bytes.count), using: &random))
            }
            switch classify(bytes) {
            case .ipv4(let source, let mac, _, let h, let l):
                #expect(h >= 20 && 14 + h + l <= bytes.count)
                table.learn(source, mac)
                kinds[0] += 1
            case .arpRequest(let ip, let mac), .arpOther(let ip, let mac):
                #expect(bytes.count >= 42 && mac & 0x0100_0000_0000 == 0)
                table.learn(ip, mac)
                kinds[1] += 1
            case .foreign: kinds[2] += 1
            case .malformed: kinds[3] += 1
            }
        }
        // Every kind of outcome was reached, so the mutations exercised each path.
        #expect(kinds[0] > 1000 && kinds[1] > 1000 && kinds[2] > 1000 && kinds[3] > 1000)
    }
}
