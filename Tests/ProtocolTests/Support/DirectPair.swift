@_spi(Testing) @testable import FastpassProtocol

/// An endpoint session and an arbiter session wired back to back with no loss, for
/// step-by-step tests of the handshake and the extensions.
struct DirectPair {
    static let t0: UInt64 = 1_700_000_000_000_000_000
    var endpoint: EndpointSession
    var arbiter: ArbiterSession
    var handler = TestAllocator()
    var now = DirectPair.t0
    var buffer = [UInt8](repeating: 0, count: 1500)

    init(endpoint e: EndpointSessionConfiguration, arbiter a: ArbiterSessionConfiguration) {
        precondition(e.problem == nil && a.problem == nil, "\(e.problem ?? "") \(a.problem ?? "")")
        endpoint = EndpointSession(configuration: e, now: DirectPair.t0)
        arbiter = ArbiterSession(configuration: a, now: DirectPair.t0 - 3_000_000_000)
    }

    /// The next endpoint packet, without delivering it.
    mutating func endpointPacket() -> [UInt8] {
        now += 1_000
        let n = try! buffer.withUnsafeMutableBytes { endpoint.send(now: now, into: $0) }.get()
        return Array(buffer[0..<n])
    }

    mutating func arbiterPacket() -> [UInt8] {
        now += 1_000
        let n = try! buffer.withUnsafeMutableBytes { arbiter.send(now: now, into: $0) }.get()
        return Array(buffer[0..<n])
    }

    @discardableResult
    mutating func deliverToArbiter(_ p: [UInt8]) -> FCPReceiveResult {
        p.withUnsafeBytes { arbiter.receive($0, now: now, handler: &handler) }
    }

    @discardableResult
    mutating func deliverToEndpoint(_ p: [UInt8]) -> FCPReceiveResult {
        p.withUnsafeBytes { endpoint.receive($0, now: now) }
    }

    /// Lets both sides send whatever they want to, `rounds` times.
    mutating func exchange(rounds: Int = 4) {
        for _ in 0..<rounds {
            if endpoint.wantsToSend { deliverToArbiter(endpointPacket()) }
            if arbiter.wantsToSend { deliverToEndpoint(arbiterPacket()) }
        }
    }

    /// Offset of the first payload of `type` in `packet`, if any.
    static func offset(of type: UInt8, in packet: [UInt8]) -> Int? {
        var offset = 8
        while offset < packet.count {
            let t = packet[offset] >> 4
            if t == type { return offset }
            switch t {
            case 0: return nil
            case 1: offset += 8
            case 4: offset += 6
            case 2: offset += 2 + 4 * Int(packet[offset + 1] & 0x3F)
            case 3: offset += 4 + 2 * Int((packet[offset] & 0xF)) + 2 * Int(packet[offset + 1] & 0x3F)
            default: offset += 4 + (Int(packet[offset + 2]) << 8 | Int(packet[offset + 3]))
            }
        }
        return nil
    }

    /// Rewrites the checksum of a (tampered) packet so that `receiver` accepts it as
    /// intact at `now`: what an attacker who knows the sequence numbers can do.
    static func fixChecksum(_ packet: inout [UInt8], for receiver: FCPConnection, now: UInt64) {
        guard let r = packet.withUnsafeBytes({ receiver.reconstructedSequences(of: $0, now: now) }) else { return }
        packet.withUnsafeMutableBytes { FCPChecksum.store(into: $0, sequence: r.sequence, ackSequence: r.ackSequence) }
    }

    /// The payload types of a packet as a reference parser would walk it (extension
    /// types included), starting after the header.
    static func payloadTypes(_ packet: [UInt8]) -> [UInt8] {
        var types: [UInt8] = []
        var offset = 8
        while offset < packet.count {
            let t = packet[offset] >> 4
            types.append(t)
            switch t {
            case 0: offset = packet.count
            case 1: offset += 8
            case 4: offset += 6
            case 2: offset += 2 + 4 * Int(packet[offset + 1] & 0x3F)
            case 3: offset += 4 + 2 * Int((packet[offset] & 0xF)) + 2 * Int(packet[offset + 1] & 0x3F)
            default: offset += 4 + (Int(packet[offset + 2]) << 8 | Int(packet[offset + 3]))
            }
        }
        return types
    }
}
