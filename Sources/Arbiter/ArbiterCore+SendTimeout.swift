import FastpassProtocol

extension ArbiterCore {
    /// Gives every session (and new ones) the send timeout the round trips call for
    /// (`timeout`: smoothed round trip plus four deviations), never below the configured
    /// one. Changes under an eighth are ignored, so sessions are not rewritten for noise;
    /// the walk over sessions happens once per estimate update at most.
    func adaptSendTimeout(to timeout: UInt64) {
        guard configuration.adaptiveSendTimeout else { return }
        let wanted = max(configuration.session.sendTimeoutNanoseconds, timeout)
        let current = sessionTemplate.sendTimeoutNanoseconds
        let change = wanted > current ? wanted - current : current - wanted
        guard change > current / 8 else { return }
        sessionTemplate.sendTimeoutNanoseconds = wanted
        statistics.sendTimeoutChanges &+= 1
        for h in 0..<hostCount where sessions.contains(h) {
            sessions[h].setSendTimeout(nanoseconds: wanted)
        }
    }

    /// The send timeout sessions use now (ns).
    public var sendTimeoutNanoseconds: UInt64 { sessionTemplate.sendTimeoutNanoseconds }
}
