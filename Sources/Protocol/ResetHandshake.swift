/// The timestamp-based reset handshake of reference FCP.
///
/// Either side may start a new "reset epoch" by sending RESET(T) with a fresh timestamp;
/// both sides then number packets from a base derived from T. When a RESET(T) arrives and
/// T differs from the receiver's own last reset, this table decides, by whether each
/// timestamp is *recent* (within half the reset window of now):
///
/// |                    | last reset recent          | last reset old              |
/// |--------------------|----------------------------|-----------------------------|
/// | **payload recent** | accept the later of the two| accept the payload          |
/// | **payload old**    | keep last, drop the packet | reset to *now*, drop packet |
///
/// Recency keeps a replayed ancient RESET from resetting a live connection, and "the
/// later wins" makes two simultaneous resets converge on one epoch.
public enum FCPResetTable {
    /// Which cell of the table applied.
    public enum Row: Sendable, Hashable {
        case bothRecentLastWins
        case bothRecentPayloadWins
        case lastRecentPayloadOld
        case lastOldPayloadRecent
        case bothOld

        /// What the receiver does.
        public var action: Action {
            switch self {
            case .bothRecentPayloadWins, .lastOldPayloadRecent: .acceptPayload
            case .bothRecentLastWins, .lastRecentPayloadOld: .keepLast
            case .bothOld: .resetToNow
            }
        }
    }

    public enum Action: Sendable, Hashable {
        /// Reset to the payload's timestamp and go on processing the packet.
        case acceptPayload
        /// Ignore the RESET and drop the packet.
        case keepLast
        /// Reset to the current time and drop the packet.
        case resetToNow
    }

    /// Whether `timestamp` lies in `[now - window/2, now + (window+1)/2)`, compared as
    /// plain unsigned numbers like the reference.
    @inlinable
    public static func isRecent(_ timestamp: UInt64, now: UInt64, window: UInt64) -> Bool {
        timestamp >= now &- window / 2 && timestamp < now &+ (window &+ 1) / 2
    }

    /// The table's decision for a RESET(payload) whose timestamp differs from `last`.
    public static func decide(last: UInt64, payload: UInt64, now: UInt64, window: UInt64) -> Row {
        let lastRecent = isRecent(last, now: now, window: window)
        let payloadRecent = isRecent(payload, now: now, window: window)
        switch (lastRecent, payloadRecent) {
        case (true, true): return Wrapping.before(payload, last) ? .bothRecentLastWins : .bothRecentPayloadWins
        case (true, false): return .lastRecentPayloadOld
        case (false, true): return .lastOldPayloadRecent
        case (false, false): return .bothOld
        }
    }
}
