import FastpassProtocol

extension ArbiterCore {
    /// Gives every session (and new ones) the send timeout the round trips call for
    /// (`timeout`: smoothed round trip plus four deviations), never below the floor
    /// (``sendTimeoutFloor``). Changes under an eighth are ignored, so sessions are not
    /// rewritten for noise; the walk over sessions happens once per estimate update at most.
    func adaptSendTimeout(to timeout: UInt64) {
        roundTripTimeout = timeout
        applySendTimeout()
    }

    /// The least send timeout: the configured one, plus the longest an endpoint at its
    /// share may hold an answer with nothing new in it (see ``ControlPacer``); without it
    /// every packet to a paced endpoint would time out.
    var sendTimeoutFloor: UInt64 { configuration.session.sendTimeoutNanoseconds &+ longestPacedAnswer }

    /// How long an endpoint at its share may hold an answer with nothing new (0: no budget).
    var longestPacedAnswer: UInt64 {
        guard let share = budget.share else { return 0 }
        return ControlPacer(packetsPerSecond: UInt64(share.packetsPerSecond), burst: UInt64(share.burst), now: 0)
            .longestWaitWithoutNews
    }

    func applySendTimeout() {
        let wanted = configuration.adaptiveSendTimeout ? max(sendTimeoutFloor, roundTripTimeout) : sendTimeoutFloor
        let current = sessionTemplate.sendTimeoutNanoseconds
        let change = wanted > current ? wanted - current : current - wanted
        guard change > current / 8 else { return }
        sessionTemplate.sendTimeoutNanoseconds = wanted
        statistics.sendTimeoutChanges &+= 1
        for h in 0..<hostCount where sessions.contains(h) {
            sessions[h].setSendTimeout(nanoseconds: wanted)
        }
    }

    /// The endpoints' share changed: how long they may stay silent, and how long their
    /// answers may take, follow it.
    func budgetChanged() {
        silenceAllowance = UInt64(lookaheadCeiling) &* timeslotPicoseconds / 1000 &+ longestPacedAnswer
        applySendTimeout()
    }

    /// The send timeout sessions use now (ns).
    public var sendTimeoutNanoseconds: UInt64 { sessionTemplate.sendTimeoutNanoseconds }
}
