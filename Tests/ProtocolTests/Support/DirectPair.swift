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

    /// The next endpoint packet, a microsecond on, without delivering it.
    mutating func endpointPacket() -> [UInt8] {
        now += 1_000
        return try! endpointSend().get()
    }

    mutating func arbiterPacket() -> [UInt8] {
        now += 1_000
        return try! arbiterSend().get()
    }

    /// What the endpoint sends now; the clock stays where the caller put it.
    mutating func endpointSend() -> Result<[UInt8], FCPEncodeError> {
        buffer.withUnsafeMutableBytes { endpoint.send(now: now, into: $0) }.map { Array(buffer[0..<$0]) }
    }

    mutating func arbiterSend() -> Result<[UInt8], FCPEncodeError> {
        buffer.withUnsafeMutableBytes { arbiter.send(now: now, into: $0) }.map { Array(buffer[0..<$0]) }
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
}
