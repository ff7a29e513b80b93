// libFuzzer entry point for the FCP decoder and state machines.
//
// Compiled together with Sources/Protocol into one module by scripts/fuzz.sh, so it can
// reach internals. The first input byte picks a configuration; the rest is a sequence of
// packets, each preceded by a one-byte length, fed to one fresh connection or session with
// time advancing between them. Every few packets the checksum is repaired for the
// receiver's sequence space so the payload parsers behind it are reached too.

@_cdecl("LLVMFuzzerTestOneInput")
public func fcpFuzzTestOneInput(_ data: UnsafeRawPointer, _ size: Int) -> CInt {
    let input = UnsafeRawBufferPointer(start: data, count: size)
    guard let mode = input.first else { return 0 }
    var packets: [[UInt8]] = []
    var offset = 1
    while offset < input.count && packets.count < 32 {
        let length = Int(input[offset])
        offset += 1
        let end = min(input.count, offset + length)
        packets.append(Array(input[offset..<end]))
        offset = end
    }
    let t0: UInt64 = 1_700_000_000_000_000_000
    var now = t0

    switch mode % 4 {
    case 0, 1:
        var conn = FCPConnection(configuration: .init(side: mode & 1 == 0 ? .endpoint : .arbiter), resetTime: t0)
        conn.extensionsEnabled = mode & 4 != 0
        if mode & 8 != 0 {
            conn.authenticator = FCPAuthenticator(key: Array(0..<16))
            conn.requireAuthentication = mode & 16 != 0
        }
        var delegate = FuzzDelegate()
        for (i, original) in packets.enumerated() {
            now &+= UInt64(1 + (mode >> 5)) * 100_000
            var p = original
            if i % 3 != 0, let r = p.withUnsafeBytes({ conn.reconstructedSequences(of: $0, now: now) }) {
                p.withUnsafeMutableBytes {
                    FCPChecksum.store(into: $0, sequence: r.sequence, ackSequence: r.ackSequence)
                }
            }
            let result = p.withUnsafeBytes { conn.receive($0, now: now, delegate: &delegate) }
            precondition(result.delivered != (result.error != nil))
            if i % 2 == 0 {
                conn.prepareToSend(delegate: &delegate)
                _ = conn.commit(now: now, delegate: &delegate)
            }
            conn.handleTimeout(now: now, delegate: &delegate)
            precondition(conn.unacknowledgedCount <= 192)
        }
    case 2:
        var configuration = EndpointSessionConfiguration()
        configuration.mode = mode & 4 != 0 ? .reference : .extended(fallbackToReference: true)
        configuration.maxDestinations = 8
        var endpoint = EndpointSession(configuration: configuration, now: t0)
        var buffer = [UInt8](repeating: 0, count: 1500)
        for (i, original) in packets.enumerated() {
            now &+= 3_000
            var p = original
            if i % 3 != 0, let r = p.withUnsafeBytes({ endpoint.connection.reconstructedSequences(of: $0, now: now) }) {
                p.withUnsafeMutableBytes {
                    FCPChecksum.store(into: $0, sequence: r.sequence, ackSequence: r.ackSequence)
                }
            }
            _ = p.withUnsafeBytes { endpoint.receive($0, now: now) }
            endpoint.addDemand(to: NodeID(UInt32(i % 10)), slots: 2)
            if endpoint.wantsToSend {
                let sent = buffer.withUnsafeMutableBytes { endpoint.send(now: now, into: $0) }
                if case .failure = sent { preconditionFailure("endpoint could not build a packet") }
            }
            endpoint.handleTimeout(now: now)
            while endpoint.takeAllocation(dueBy: now) != nil {}
        }
    default:
        var configuration = ArbiterSessionConfiguration()
        configuration.maxDestinations = 8
        var arbiter = ArbiterSession(configuration: configuration, now: t0)
        var handler = FuzzHandler()
        var buffer = [UInt8](repeating: 0, count: 1500)
        for (i, original) in packets.enumerated() {
            now &+= 3_000
            var p = original
            if i % 3 != 0, let r = p.withUnsafeBytes({ arbiter.connection.reconstructedSequences(of: $0, now: now) }) {
                p.withUnsafeMutableBytes {
                    FCPChecksum.store(into: $0, sequence: r.sequence, ackSequence: r.ackSequence)
                }
            }
            _ = p.withUnsafeBytes { arbiter.receive($0, now: now, handler: &handler) }
            _ = arbiter.recordAllocation(
                slot: UInt64(i) &* 7, destination: NodeID(UInt32(i % 10)), path: PathID(UInt16(i % 5)))
            if arbiter.wantsToSend {
                let sent = buffer.withUnsafeMutableBytes { arbiter.send(now: now, into: $0) }
                if case .failure = sent { preconditionFailure("arbiter could not build a packet") }
            }
            arbiter.handleTimeout(now: now, handler: &handler)
        }
    }
    return 0
}

struct FuzzDelegate: FCPConnectionDelegate {
    var sink = 0
    mutating func fcpDidReset() { sink &+= 1 }
    mutating func fcpAcknowledged(sequence: UInt64) { sink &+= Int(truncatingIfNeeded: sequence) }
    mutating func fcpNegativelyAcknowledged(sequence: UInt64) { sink &+= Int(truncatingIfNeeded: sequence) }
    mutating func fcpTransmissionRequested() { sink &+= 1 }
    mutating func fcpReceivedAlloc(_ payload: FCPAllocPayloadView) {
        for i in 0..<payload.destinationCount { sink &+= Int(payload.destination(i)) }
        var walker = AllocDescriptorWalker(
            baseSlot: UInt64(payload.baseTimeslot), destinationCount: payload.destinationCount,
            descriptors: payload.descriptors)
        while let step = walker.next() {
            if case .allocation(_, _, let index) = step {
                precondition(index >= 1 && index <= payload.destinationCount)
            }
        }
    }
    mutating func fcpReceivedRequests(_ payload: FCPRequestsPayloadView) {
        for i in 0..<payload.count { sink &+= Int(payload.entry(i).count) }
    }
    mutating func fcpReceivedExtension(_ payload: FCPExtensionPayloadView) {
        _ = FCPHello(body: payload.body)
        _ = FCPWelcome(body: payload.body)
        sink &+= payload.body.count
    }
}

struct FuzzHandler: ArbiterSessionHandler {
    var pending: UInt64 = 0
    mutating func endpointReset() { pending = 0 }
    mutating func registrationRequested(_ hello: FCPHello) -> FCPRegistrationDecision {
        hello.capabilities.rawValue & 1 == 0 ? .accept(hello.node ?? NodeID(1)) : .refuse(.unknownIdentity)
    }
    mutating func demandIncreased(destination: NodeID, by slots: UInt64) { pending &+= slots }
    mutating func withdrawalRequested(destination: NodeID, upTo slots: UInt64) -> UInt64 {
        let w = min(slots, pending)
        pending -= w
        return w
    }
}
