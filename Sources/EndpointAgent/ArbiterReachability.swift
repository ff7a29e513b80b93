/// Where the agent stands with the arbiter.
public enum AgentState: String, Sendable {
    /// No session established yet: scheduled packets wait.
    case connecting
    /// Packets leave in their allocated timeslots.
    case scheduled
    /// The arbiter did not answer in time: packets leave unscheduled.
    case fallback
    /// The arbiter did not answer, and the policy is to keep holding packets.
    case holding
}

/// What an agent does when the arbiter stops answering.
public enum AgentUnreachablePolicy: String, Sendable {
    /// Send queued and new packets unscheduled until the arbiter answers again: the
    /// fabric keeps working, with queues, instead of stalling.
    case fallback
    /// Keep holding packets until the arbiter answers.
    case hold
}

/// A change of ``AgentState`` worth telling an operator about.
public enum AgentTransition: Sendable, Hashable {
    /// The first session with the arbiter is established.
    case established
    /// The arbiter answers again after it was unreachable.
    case reachableAgain
    /// Packets waited `silentNanoseconds` without a word from the arbiter (nil: it was never
    /// heard from): it is unreachable, and the agent now follows `policy`.
    case unreachable(silentNanoseconds: UInt64?, policy: AgentUnreachablePolicy)
}

/// Whether the arbiter is answering, decided from what the agent's session hears and how
/// long its packets have waited. Sans-IO: the agent core feeds it the times.
///
/// Any answer is not enough to schedule again: a restarted arbiter answers the reset
/// handshake first, and scheduling before that completes would hold packets again. And on
/// becoming unreachable the owner starts a new reset epoch, whose HELLO is retransmitted
/// until answered, so that the agent notices the arbiter's return even with no demand
/// outstanding (the restart bug fixed in 391b599).
struct ArbiterReachability {
    private(set) var state = AgentState.connecting
    /// When the arbiter was last heard from (0: never).
    private(set) var lastHeard: UInt64 = 0
    /// When packets started waiting with none queued before them (nil: none wait).
    private(set) var waitingSince: UInt64?
    private(set) var unreachableEvents: UInt64 = 0
    private(set) var reachableAgain: UInt64 = 0

    /// The arbiter answered; `established`: the session's handshake is complete.
    mutating func heard(now: UInt64, established: Bool) -> AgentTransition? {
        lastHeard = now
        switch state {
        case .connecting:
            guard established else { return nil }
            state = .scheduled
            return .established
        case .fallback, .holding:
            guard established else { return nil }
            reachableAgain &+= 1
            state = .scheduled
            return .reachableAgain
        case .scheduled:
            return nil
        }
    }

    /// How many packets wait now: the wait starts when the first one queues and ends when
    /// none is left.
    mutating func note(queuedPackets: Int, now: UInt64) {
        if queuedPackets == 0 {
            waitingSince = nil
        } else if waitingSince == nil {
            waitingSince = now
        }
    }

    /// When the wait would make the arbiter unreachable (nil: nothing waits, or it is
    /// already unreachable).
    func deadline(after limit: UInt64) -> UInt64? {
        guard state == .scheduled || state == .connecting, let since = startOfSilence else { return nil }
        return since &+ limit &+ 1
    }

    /// Packets waiting longer than `limit` without a word from the arbiter (or with no
    /// session yet: answers that do not complete the handshake do not count) make it
    /// unreachable.
    mutating func check(now: UInt64, limit: UInt64, policy: AgentUnreachablePolicy) -> AgentTransition? {
        guard state == .scheduled || state == .connecting, let since = startOfSilence else { return nil }
        guard now > since, now - since > limit else { return nil }
        unreachableEvents &+= 1
        state = policy == .fallback ? .fallback : .holding
        return .unreachable(silentNanoseconds: lastHeard == 0 ? nil : now - lastHeard, policy: policy)
    }

    private var startOfSilence: UInt64? {
        guard let waiting = waitingSince else { return nil }
        return state == .connecting ? waiting : max(lastHeard, waiting)
    }
}
