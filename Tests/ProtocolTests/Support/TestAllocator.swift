@testable import FastpassProtocol

/// The arbiter side of a direct pair: records demand per destination and allocates one
/// slot per timeslot (the source may send one packet per slot), round robin.
struct TestAllocator: ArbiterSessionHandler {
    var pending: [NodeID: UInt64] = [:]
    var order: [NodeID] = []
    var cursor = 0
    var resets = 0
    var registrations = 0
    var refuse: FCPRefusalReason?

    mutating func endpointReset() {
        pending.removeAll()
        resets += 1
    }

    mutating func registrationRequested(_ hello: FCPHello) -> FCPRegistrationDecision {
        registrations += 1
        if let refuse { return .refuse(refuse) }
        return .accept(hello.node ?? NodeID(0))
    }

    mutating func demandIncreased(destination: NodeID, by slots: UInt64) {
        if pending[destination] == nil { order.append(destination) }
        pending[destination, default: 0] += slots
    }

    mutating func withdrawalRequested(destination: NodeID, upTo slots: UInt64) -> UInt64 {
        let w = min(slots, pending[destination] ?? 0)
        pending[destination, default: 0] -= w
        return w
    }

    mutating func nextDestination() -> NodeID? {
        guard !order.isEmpty else { return nil }
        for k in 0..<order.count {
            let d = order[(cursor + k) % order.count]
            if (pending[d] ?? 0) > 0 {
                cursor = (cursor + k + 1) % order.count
                return d
            }
        }
        return nil
    }
}
