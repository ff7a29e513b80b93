/// An FCP connection's counters under their Swift names in snake case (the arbiter's `/status`
/// → `fcp`, summed over endpoints), as `FCPConnectionStatistics` keeps them.
///
/// The JSON keys are spelled out rather than derived: scripts, dashboards and docs read
/// them, so renaming a Swift property must not rename a key.
public struct FCPCounters: Sendable, Hashable, Codable {
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
    public var rxTooLong: UInt64 = 0
    public var rxIncompleteExtension: UInt64 = 0
    public var rxDroppedDuplicate: UInt64 = 0
    public var rxAuthenticationFailed: UInt64 = 0
    public var rxStaleEpoch: UInt64 = 0
    public var rxMissingEpoch: UInt64 = 0

    public init() {}

    /// Adds another's counters (for totals across endpoints).
    public mutating func add(_ other: FCPCounters) {
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

    enum CodingKeys: String, CodingKey {
        case rxPackets = "rx_packets"
        case rxTooShort = "rx_too_short"
        case rxChecksumError = "rx_checksum_error"
        case rxUnknownPayload = "rx_unknown_payload"
        case rxIncompleteReset = "rx_incomplete_reset"
        case rxIncompleteAlloc = "rx_incomplete_alloc"
        case rxIncompleteRequests = "rx_incomplete_requests"
        case rxIncompleteAck = "rx_incomplete_ack"
        case rxDuplicatePackets = "rx_duplicate_packets"
        case sequenceBeforeReceiveWindow = "sequence_before_receive_window"
        case receiveWindowJumped = "receive_window_jumped"
        case rxOutOfOrder = "rx_out_of_order"
        case tooEarlyAck = "too_early_ack"
        case ackedPackets = "acked_packets"
        case timeoutPackets = "timeout_packets"
        case fallOffOutWindow = "fall_off_out_window"
        case neverAckedPackets = "never_acked_packets"
        case resetPayloads = "reset_payloads"
        case redundantReset = "redundant_reset"
        case resetBothRecentLastResetWins = "reset_both_recent_last_reset_wins"
        case resetBothRecentPayloadWins = "reset_both_recent_payload_wins"
        case resetLastRecentPayloadOld = "reset_last_recent_payload_old"
        case resetLastOldPayloadRecent = "reset_last_old_payload_recent"
        case resetBothOld = "reset_both_old"
        case resetFromBadPackets = "reset_from_bad_packets"
        case noResetBecauseRecent = "no_reset_because_recent"
        case protocolResets = "protocol_resets"
        case forcedResets = "forced_resets"
        case committedPackets = "committed_packets"
        case reprogrammedTimer = "reprogrammed_timer"
        case timeoutHandlerRuns = "timeout_handler_runs"
        case ackPayloads = "ack_payloads"
        case informativeAckPayloads = "informative_ack_payloads"
        case rxTooLong = "rx_too_long"
        case rxIncompleteExtension = "rx_incomplete_extension"
        case rxDroppedDuplicate = "rx_dropped_duplicate"
        case rxAuthenticationFailed = "rx_authentication_failed"
        case rxStaleEpoch = "rx_stale_epoch"
        case rxMissingEpoch = "rx_missing_epoch"
    }
}
