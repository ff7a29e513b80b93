/// Counters of one FCP connection.
///
/// The first group carries the reference implementation's counters under their
/// reference names (``forEachReferenceCounter(_:)``), so its operators' dashboards and the
/// golden vectors read the same numbers; the second group counts what only our extensions
/// can drop.
public struct FCPConnectionStatistics: Sendable, Hashable {
    public var rxPackets: UInt64 = 0
    public var rxTooShort: UInt64 = 0
    public var rxChecksumError: UInt64 = 0
    public var rxUnknownPayload: UInt64 = 0
    public var rxIncompleteReset: UInt64 = 0
    public var rxIncompleteAlloc: UInt64 = 0
    public var rxIncompleteRequests: UInt64 = 0
    public var rxIncompleteAck: UInt64 = 0
    public var rxDuplicatePackets: UInt64 = 0
    public var sequenceBeforeReceiveWindow: UInt64 = 0
    public var receiveWindowJumped: UInt64 = 0
    public var rxOutOfOrder: UInt64 = 0
    public var tooEarlyAck: UInt64 = 0
    public var ackedPackets: UInt64 = 0
    public var timeoutPackets: UInt64 = 0
    public var fallOffOutWindow: UInt64 = 0
    public var neverAckedPackets: UInt64 = 0
    public var resetPayloads: UInt64 = 0
    public var redundantReset: UInt64 = 0
    public var resetBothRecentLastResetWins: UInt64 = 0
    public var resetBothRecentPayloadWins: UInt64 = 0
    public var resetLastRecentPayloadOld: UInt64 = 0
    public var resetLastOldPayloadRecent: UInt64 = 0
    public var resetBothOld: UInt64 = 0
    public var resetFromBadPackets: UInt64 = 0
    public var noResetBecauseRecent: UInt64 = 0
    public var protocolResets: UInt64 = 0
    public var forcedResets: UInt64 = 0
    public var committedPackets: UInt64 = 0
    public var reprogrammedTimer: UInt64 = 0
    public var timeoutHandlerRuns: UInt64 = 0
    public var ackPayloads: UInt64 = 0
    public var informativeAckPayloads: UInt64 = 0

    // Ours.
    public var rxTooLong: UInt64 = 0
    public var rxIncompleteExtension: UInt64 = 0
    public var rxDroppedDuplicate: UInt64 = 0
    public var rxAuthenticationFailed: UInt64 = 0
    public var rxStaleEpoch: UInt64 = 0
    public var rxMissingEpoch: UInt64 = 0

    public init() {}

    /// Visits every reference counter as (reference name, value).
    public func forEachReferenceCounter(_ body: (String, UInt64) -> Void) {
        body("rx_pkts", rxPackets)
        body("rx_too_short", rxTooShort)
        body("rx_checksum_error", rxChecksumError)
        body("rx_unknown_payload", rxUnknownPayload)
        body("rx_incomplete_reset", rxIncompleteReset)
        body("rx_incomplete_alloc", rxIncompleteAlloc)
        body("rx_incomplete_areq", rxIncompleteRequests)
        body("rx_incomplete_ack", rxIncompleteAck)
        body("rx_dup_pkt", rxDuplicatePackets)
        body("seqno_before_inwnd", sequenceBeforeReceiveWindow)
        body("inwnd_jumped", receiveWindowJumped)
        body("rx_out_of_order", rxOutOfOrder)
        body("too_early_ack", tooEarlyAck)
        body("acked_packets", ackedPackets)
        body("timeout_pkts", timeoutPackets)
        body("fall_off_outwnd", fallOffOutWindow)
        body("never_acked_pkts", neverAckedPackets)
        body("reset_payloads", resetPayloads)
        body("redundant_reset", redundantReset)
        body("reset_both_recent_last_reset_wins", resetBothRecentLastResetWins)
        body("reset_both_recent_payload_wins", resetBothRecentPayloadWins)
        body("reset_last_recent_payload_old", resetLastRecentPayloadOld)
        body("reset_last_old_payload_recent", resetLastOldPayloadRecent)
        body("reset_both_old", resetBothOld)
        body("reset_from_bad_pkts", resetFromBadPackets)
        body("no_reset_because_recent", noResetBecauseRecent)
        body("proto_resets", protocolResets)
        body("forced_reset", forcedResets)
        body("committed_pkts", committedPackets)
        body("reprogrammed_timer", reprogrammedTimer)
        body("timeout_handler_runs", timeoutHandlerRuns)
        body("ack_payloads", ackPayloads)
        body("informative_ack_payloads", informativeAckPayloads)
    }

    /// Visits the counters only the extended protocol keeps.
    public func forEachExtensionCounter(_ body: (String, UInt64) -> Void) {
        body("rx_too_long", rxTooLong)
        body("rx_incomplete_extension", rxIncompleteExtension)
        body("rx_dropped_duplicate", rxDroppedDuplicate)
        body("rx_auth_failed", rxAuthenticationFailed)
        body("rx_stale_epoch", rxStaleEpoch)
        body("rx_missing_epoch", rxMissingEpoch)
    }

    /// Every counter, reference ones first, as (name, value) pairs.
    public var allCounters: [(name: String, value: UInt64)] {
        var result: [(name: String, value: UInt64)] = []
        forEachReferenceCounter { result.append(($0, $1)) }
        forEachExtensionCounter { result.append(($0, $1)) }
        return result
    }

    /// Adds another connection's counters (for totals across endpoints).
    public mutating func add(_ other: FCPConnectionStatistics) {
        rxPackets &+= other.rxPackets
        rxTooShort &+= other.rxTooShort
        rxChecksumError &+= other.rxChecksumError
        rxUnknownPayload &+= other.rxUnknownPayload
        rxIncompleteReset &+= other.rxIncompleteReset
        rxIncompleteAlloc &+= other.rxIncompleteAlloc
        rxIncompleteRequests &+= other.rxIncompleteRequests
        rxIncompleteAck &+= other.rxIncompleteAck
        rxDuplicatePackets &+= other.rxDuplicatePackets
        sequenceBeforeReceiveWindow &+= other.sequenceBeforeReceiveWindow
        receiveWindowJumped &+= other.receiveWindowJumped
        rxOutOfOrder &+= other.rxOutOfOrder
        tooEarlyAck &+= other.tooEarlyAck
        ackedPackets &+= other.ackedPackets
        timeoutPackets &+= other.timeoutPackets
        fallOffOutWindow &+= other.fallOffOutWindow
        neverAckedPackets &+= other.neverAckedPackets
        resetPayloads &+= other.resetPayloads
        redundantReset &+= other.redundantReset
        resetBothRecentLastResetWins &+= other.resetBothRecentLastResetWins
        resetBothRecentPayloadWins &+= other.resetBothRecentPayloadWins
        resetLastRecentPayloadOld &+= other.resetLastRecentPayloadOld
        resetLastOldPayloadRecent &+= other.resetLastOldPayloadRecent
        resetBothOld &+= other.resetBothOld
        resetFromBadPackets &+= other.resetFromBadPackets
        noResetBecauseRecent &+= other.noResetBecauseRecent
        protocolResets &+= other.protocolResets
        forcedResets &+= other.forcedResets
        committedPackets &+= other.committedPackets
        reprogrammedTimer &+= other.reprogrammedTimer
        timeoutHandlerRuns &+= other.timeoutHandlerRuns
        ackPayloads &+= other.ackPayloads
        informativeAckPayloads &+= other.informativeAckPayloads
        rxTooLong &+= other.rxTooLong
        rxIncompleteExtension &+= other.rxIncompleteExtension
        rxDroppedDuplicate &+= other.rxDroppedDuplicate
        rxAuthenticationFailed &+= other.rxAuthenticationFailed
        rxStaleEpoch &+= other.rxStaleEpoch
        rxMissingEpoch &+= other.rxMissingEpoch
    }
}
