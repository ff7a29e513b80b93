import FastpassProtocol

/// Divides the packets per second the arbiter takes among the endpoints it serves.
///
/// The capacity is the configured one, or less when the communication thread measures
/// that it cannot take that many (``noteMeasuredCapacity(_:)``). The share follows the
/// number of sessions rounded up to a power of two: as a fleet of a thousand endpoints
/// starts, the share changes ten times, not a thousand, and every change is one more BUDGET
/// payload to each endpoint.
struct ControlBudgetShares {
    let configured: UInt64
    let burst: UInt16
    let minimum: UInt64
    private(set) var sessions = 0
    private(set) var share: FCPControlBudget?
    /// What the thread measured it can take; nil: nothing measured yet.
    private(set) var measured: UInt64?
    /// The capacity the share was last computed from.
    private(set) var capacity: UInt64
    private var servedFor = 0

    init(configuration: ArbiterCoreConfiguration) {
        configured = configuration.controlPacketsPerSecond
        capacity = configured
        burst = UInt16(clamping: configuration.controlBurst)
        minimum = configuration.minimumControlShare
        recompute()
    }

    mutating func sessionStarted() {
        sessions += 1
        recompute()
    }

    mutating func sessionEnded() {
        sessions = max(0, sessions - 1)
        recompute()
    }

    /// The thread measured that it can take `packetsPerSecond` (at its target load). The
    /// share follows when the capacity it implies moved by more than a quarter, so that
    /// measurement noise does not send BUDGET to every endpoint.
    mutating func noteMeasuredCapacity(_ packetsPerSecond: UInt64) {
        guard configured > 0 else { return }
        measured = packetsPerSecond
        let wanted = max(1, min(configured, packetsPerSecond))
        let change = wanted > capacity ? wanted - capacity : capacity - wanted
        guard change > capacity / 4 else { return }
        capacity = wanted
        servedFor = 0
        recompute()
    }

    private mutating func recompute() {
        guard configured > 0 else { return }
        var served = 1
        while served < sessions { served <<= 1 }
        guard served != servedFor || share == nil else { return }
        servedFor = served
        let perEndpoint = UInt32(clamping: max(minimum, capacity / UInt64(served)))
        let revision = (share?.revision ?? 0) &+ 1
        guard perEndpoint != share?.packetsPerSecond else { return }
        share = FCPControlBudget(revision: revision, packetsPerSecond: perEndpoint, burst: burst)
    }
}
