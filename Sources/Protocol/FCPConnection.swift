/// What an ``FCPConnection`` tells its owner while it handles an event. Mirrors the
/// reference's callback table (`fpproto_ops`), in the order the reference calls it.
///
/// Implementations are meant to be concrete types the connection is specialised on; the
/// payload views passed in point into the packet being received and must not be kept.
public protocol FCPConnectionDelegate {
    /// A protocol reset was applied: sequence numbers restarted, every unacknowledged
    /// packet was forgotten. The owner must rebase its own per-connection state.
    mutating func fcpDidReset()
    /// Packet `sequence` was acknowledged (possibly after it was negatively acknowledged).
    mutating func fcpAcknowledged(sequence: UInt64)
    /// Packet `sequence` timed out, or fell off the 192-packet window unacknowledged.
    mutating func fcpNegativelyAcknowledged(sequence: UInt64)
    /// The protocol wants a packet sent soon (to acknowledge, or to answer a RESET).
    mutating func fcpTransmissionRequested()
    /// An ALLOC payload arrived.
    mutating func fcpReceivedAlloc(_ payload: FCPAllocPayloadView)
    /// An A-REQ payload arrived (demand at the arbiter, allocation report at an endpoint).
    mutating func fcpReceivedRequests(_ payload: FCPRequestsPayloadView)
    /// An extension payload arrived on a connection with extensions enabled.
    mutating func fcpReceivedExtension(_ payload: FCPExtensionPayloadView)
    /// The retransmission timer should fire at `deadline` (ns).
    mutating func fcpTimerSet(deadline: UInt64)
    /// The retransmission timer should not fire.
    mutating func fcpTimerCancelled()
    /// Packet `ackSequence` of a received header was acknowledged for the first time,
    /// `nanoseconds` after it was sent: a round-trip sample (including the time the peer
    /// took to answer).
    mutating func fcpMeasuredRoundTrip(nanoseconds: UInt64)
    /// The payloads about to be delivered come from this packet: which of the peer's
    /// packets a counter covers, whether its MAC was verified, the arbiter epoch known.
    mutating func fcpWillDeliverPayloads(of packet: FCPPacketInfo)
}

/// What the connection knows about the packet whose payloads it is delivering.
public struct FCPPacketInfo: Sendable, Hashable {
    /// The peer's full 64-bit sequence number of the packet.
    public var sequence: UInt64
    /// The packet carried a trailer whose MAC verified.
    public var authenticated: Bool
    /// Highest arbiter epoch known, including this packet's EPOCH payload.
    public var highestEpoch: UInt64
}

extension FCPConnectionDelegate {
    public mutating func fcpReceivedExtension(_ payload: FCPExtensionPayloadView) {}
    public mutating func fcpTimerSet(deadline: UInt64) {}
    public mutating func fcpTimerCancelled() {}
    public mutating func fcpMeasuredRoundTrip(nanoseconds: UInt64) {}
    public mutating func fcpWillDeliverPayloads(of packet: FCPPacketInfo) {}
}

/// What happened to one received packet.
public struct FCPReceiveResult: Sendable, Hashable {
    /// The header-level checks passed and payload processing followed
    /// (`fpproto_handle_rx_packet` returned true).
    public var headerAccepted: Bool
    /// Whether every payload parsed (`fpproto_perform_rx_callbacks`); nil when payload
    /// processing did not run.
    public var payloadsParsed: Bool?
    /// The packet's sequence number entered the receive window: it will be acknowledged,
    /// and a copy arriving later is a duplicate.
    public var delivered: Bool
    /// Why the packet was dropped or only partly processed.
    public var error: FCPDecodeError?

    static func dropped(_ error: FCPDecodeError) -> FCPReceiveResult {
        FCPReceiveResult(headerAccepted: false, payloadsParsed: nil, delivered: false, error: error)
    }
}

/// The header fields a committed packet must carry; encode them with ``FCPPacketWriter``.
public struct FCPOutgoingHeader: Sendable, Hashable {
    /// Full 64-bit sequence number of this packet.
    public var sequence: UInt64
    /// Full 64-bit highest sequence number received from the peer.
    public var ackSequence: UInt64
    public var ackVector: UInt16
    /// Whether the packet must start with RESET(`resetTimestamp`).
    public var sendReset: Bool
    public var resetTimestamp: UInt64
}

/// Settings of one connection.
public struct FCPConnectionConfiguration: Sendable, Hashable {
    public var side: FCPSide
    /// Total width of the window in which a RESET timestamp counts as recent (reference:
    /// 2 s at the endpoint, 1 s at the arbiter).
    public var resetWindowNanoseconds: UInt64
    /// An unacknowledged packet is negatively acknowledged this long after it was sent
    /// (reference: 200 µs).
    public var sendTimeoutNanoseconds: UInt64

    public init(side: FCPSide, resetWindowNanoseconds: UInt64? = nil, sendTimeoutNanoseconds: UInt64 = 200_000) {
        self.side = side
        self.resetWindowNanoseconds = resetWindowNanoseconds ?? (side == .endpoint ? 2_000_000_000 : 1_000_000_000)
        self.sendTimeoutNanoseconds = sendTimeoutNanoseconds
    }
}

/// One end of an FCP connection: sequence numbers, acknowledgements, timeouts and the
/// reset handshake, with exactly the reference's semantics (pinned by
/// `fcp-vectors/decode.json`), plus the hooks the extensions need.
///
/// Sans-IO: it never reads a clock or touches a socket. Feed it received packets with
/// ``receive(_:now:delegate:)``, timer expiries with ``handleTimeout(now:delegate:)``, and
/// to send: ``prepareToSend(delegate:)``, fill the packet, ``commit(now:delegate:)``,
/// encode. Reliability is at-most-once: nothing is retransmitted; the owner learns of
/// each packet's fate through acknowledgement callbacks and resends *state* (cumulative
/// counters), not packets.
public struct FCPConnection {
    /// Consecutive bad packets that force a new reset.
    public static let badPacketResetThreshold = 10
    /// A forced reset is skipped when the last one is within this much of now.
    public static let badPacketResetGuardNanoseconds: UInt64 = 1_000_000_000

    public private(set) var configuration: FCPConnectionConfiguration
    public var side: FCPSide { configuration.side }

    /// Timestamp of the reset epoch in force.
    public private(set) var lastResetTime: UInt64
    /// Whether the peer is known to be in this epoch; while false, every packet sent
    /// starts with RESET(`lastResetTime`).
    public private(set) var inSync: Bool
    /// Highest peer sequence number delivered.
    public private(set) var highestReceived: UInt64
    /// Receive window: bit 63 ↔ `highestReceived`, bit 63-k ↔ `highestReceived - k`.
    public private(set) var receiveWindow: UInt64
    /// First sequence number not yet timed out.
    public private(set) var nextTimeoutSequence: UInt64
    public private(set) var consecutiveBadPackets: Int = 0
    public private(set) var statistics = FCPConnectionStatistics()
    /// When the retransmission timer should fire, for owners that poll instead of
    /// listening to the timer callbacks.
    public private(set) var timerDeadline: UInt64?

    var outgoing: FCPOutgoingWindow

    // MARK: Extension hooks (set by the session that negotiated them)

    /// Parse payload types 5–15 as extension payloads instead of dropping the packet.
    public var extensionsEnabled = false
    /// Key that authenticates packets in both directions.
    public var authenticator: FCPAuthenticator?
    /// Drop every packet that is not authenticated with ``authenticator``.
    public var requireAuthentication = false
    /// Drop arbiter packets that carry no epoch (set once an extended session is up).
    public var requireEpoch = false
    /// Highest arbiter epoch seen; packets with a lower one are dropped (fencing).
    public private(set) var highestEpoch: UInt64 = 0

    /// A connection in the reset epoch `resetTime`, out of sync (`fpproto_init_conn`).
    public init(configuration: FCPConnectionConfiguration, resetTime: UInt64) {
        self.configuration = configuration
        lastResetTime = 0
        inSync = false
        highestReceived = 0
        receiveWindow = ~0
        nextTimeoutSequence = 0
        outgoing = FCPOutgoingWindow(head: 0)
        applyReset(to: resetTime, inSync: false)
    }

    /// Changes how long an unacknowledged packet waits before it is negatively
    /// acknowledged, from the next timer on (packets already timed keep their deadline
    /// until the timer is set again).
    public mutating func setSendTimeout(nanoseconds: UInt64) {
        precondition(nanoseconds > 0, "a send timeout must be positive")
        configuration.sendTimeoutNanoseconds = nanoseconds
    }

    /// Highest sequence number committed (the out-window's head).
    public var highestSent: UInt64 { outgoing.head }

    /// Sequence numbers still waiting for an acknowledgement, oldest first.
    public var unacknowledged: [UInt64] {
        var result: [UInt64] = []
        var next = outgoing.edge
        while let s = outgoing.firstMarked(atOrAfter: next) {
            result.append(s)
            next = s &+ 1
        }
        return result
    }

    /// Number of packets waiting for an acknowledgement.
    public var unacknowledgedCount: Int { outgoing.count }

    /// Raises the highest arbiter epoch known (learnt elsewhere, e.g. from a WELCOME);
    /// never lowers it.
    public mutating func noteEpoch(_ epoch: UInt64) {
        if epoch > highestEpoch { highestEpoch = epoch }
    }

    /// Lets tests and vectors start from a chosen synchronisation state.
    @_spi(Testing)
    public mutating func setInSync(_ value: Bool) { inSync = value }

    // MARK: Receiving

    /// Processes one received FCP packet (without its IP header).
    @discardableResult
    public mutating func receive<D: FCPConnectionDelegate>(
        _ packet: UnsafeRawBufferPointer, now: UInt64, delegate: inout D
    ) -> FCPReceiveResult {
        statistics.rxPackets &+= 1
        let length = packet.count
        guard length >= FCPWire.headerLength else {
            statistics.rxTooShort &+= 1
            return .dropped(.tooShort)
        }
        guard length <= FCPWire.maxPacketLength else {
            statistics.rxTooLong &+= 1
            return .dropped(.tooLong)
        }

        // Where the payloads end: before the authentication trailer, if there is one.
        var end = length
        var trailerPresent = false
        if let authenticator, authenticator.hasTrailer(packet) {
            end = length - FCPAuthenticator.trailerLength
            trailerPresent = true
        } else if requireAuthentication {
            statistics.rxAuthenticationFailed &+= 1
            return .dropped(.authenticationFailed)
        }

        let firstType: UInt8 = end == FCPWire.headerLength ? 0 : packet[FCPWire.headerLength] >> 4
        let carriesReset = firstType == FCPPayloadType.reset.rawValue
        if carriesReset && end < FCPWire.headerLength + FCPWire.resetLength {
            statistics.rxIncompleteReset &+= 1
            return .dropped(.incompleteReset)
        }
        let (incoming, acked, resetTimestamp) = reconstruct(packet, carriesReset: carriesReset, now: now)

        if trailerPresent,
            let authenticator,
            !authenticator.verify(packet, sequence: incoming, ackSequence: acked)
        {
            statistics.rxAuthenticationFailed &+= 1
            return .dropped(.authenticationFailed)
        }

        guard FCPChecksum.verify(packet, sequence: incoming, ackSequence: acked) else {
            badPacket(now: now, delegate: &delegate)
            statistics.rxChecksumError &+= 1
            return .dropped(.checksumMismatch)
        }
        consecutiveBadPackets = 0

        let body = UnsafeRawBufferPointer(rebasing: packet[0..<end])
        if side == .endpoint && (extensionsEnabled || requireEpoch) {
            // A RESET to a new timestamp opens a reset epoch in which nothing has been
            // negotiated yet, so it need not carry an arbiter epoch (a lower one present
            // is still refused).
            let opensEpoch = carriesReset && resetTimestamp != lastResetTime
            if let error = checkEpoch(body, at: carriesReset ? 16 : 8, required: requireEpoch && !opensEpoch) {
                return .dropped(error)
            }
        }

        var cursor = FCPWire.headerLength
        if carriesReset {
            // A RESET in either direction keeps RESETs flowing until the endpoint decides
            // it is in sync.
            inSync = false
            if side == .arbiter { delegate.fcpTransmissionRequested() }
            guard handleResetPayload(resetTimestamp, now: now, delegate: &delegate) else {
                return .dropped(.resetNotApplied)
            }
            cursor += FCPWire.resetLength
        } else {
            inSync = true
        }

        guard mayAccept(incoming) else {
            statistics.rxDroppedDuplicate &+= 1
            return .dropped(.duplicate)
        }

        // Header acknowledgements take effect even if a payload later fails to parse.
        processAcks(acked, mask: FCPAckVector.decodeHeader(readBE16(packet, 4)), now: now, delegate: &delegate)

        if cursor == end {
            updateReceiveWindow(incoming)
            return FCPReceiveResult(headerAccepted: false, payloadsParsed: nil, delivered: true, error: nil)
        }

        if body[cursor] >> 4 == FCPPayloadType.ack.rawValue {
            guard cursor + FCPWire.extendedAckLength <= end else {
                statistics.rxIncompleteAck &+= 1
                return .dropped(.incompleteAck)
            }
            let mask = FCPAckVector.decodeExtended(high28: readBE32(body, cursor), low16: readBE16(body, cursor + 4))
            processAcks(acked, mask: mask, now: now, delegate: &delegate)
        }

        delegate.fcpWillDeliverPayloads(
            of: FCPPacketInfo(sequence: incoming, authenticated: trailerPresent, highestEpoch: highestEpoch))
        if let error = deliverPayloads(body, delegate: &delegate) {
            return FCPReceiveResult(headerAccepted: true, payloadsParsed: false, delivered: false, error: error)
        }
        updateReceiveWindow(incoming)
        return FCPReceiveResult(headerAccepted: true, payloadsParsed: true, delivered: true, error: nil)
    }

    /// The full 64-bit sequence and ack sequence numbers this connection reads the
    /// packet's 16-bit fields as at `now` (and the widened RESET timestamp, or 0): what
    /// its checksum and MAC are verified against. Nil when the packet is too short to say.
    public func reconstructedSequences(of packet: UnsafeRawBufferPointer, now: UInt64)
        -> (sequence: UInt64, ackSequence: UInt64, resetTimestamp: UInt64)?
    {
        guard packet.count >= FCPWire.headerLength else { return nil }
        var end = packet.count
        if let authenticator, authenticator.hasTrailer(packet) { end -= FCPAuthenticator.trailerLength }
        let carriesReset =
            end > FCPWire.headerLength && packet[FCPWire.headerLength] >> 4 == FCPPayloadType.reset.rawValue
        if carriesReset && end < FCPWire.headerLength + FCPWire.resetLength { return nil }
        let r = reconstruct(packet, carriesReset: carriesReset, now: now)
        return (r.0, r.1, r.2)
    }

    private func reconstruct(_ packet: UnsafeRawBufferPointer, carriesReset: Bool, now: UInt64)
        -> (UInt64, UInt64, UInt64)
    {
        var incoming: UInt64
        var acked: UInt64
        var resetTimestamp: UInt64 = 0
        if carriesReset {
            let low56 = UInt64(readBE32(packet, 8) & 0x00FF_FFFF) << 32 | UInt64(readBE32(packet, 12))
            resetTimestamp = FCPSequence.widenResetTimestamp(low56, now: now)
            let base = FCPSequence.base(resetTimestamp: resetTimestamp)
            incoming = base &+ FCPSequence.ingressOffset(side)
            acked = base &+ FCPSequence.egressOffset(side) &- 1
        } else {
            incoming = FCPSequence.incomingReference(highestDelivered: highestReceived)
            acked = FCPSequence.ackReference(highestSent: outgoing.head)
        }
        incoming = FCPSequence.widen16(readBE16(packet, 0), from: incoming)
        acked = FCPSequence.widen16(readBE16(packet, 2), from: acked)
        return (incoming, acked, resetTimestamp)
    }

    /// Convenience for byte arrays (tests, tools).
    @discardableResult
    public mutating func receive<D: FCPConnectionDelegate>(
        _ packet: [UInt8], now: UInt64, delegate: inout D
    ) -> FCPReceiveResult {
        packet.withUnsafeBytes { receive($0, now: now, delegate: &delegate) }
    }

    private mutating func deliverPayloads<D: FCPConnectionDelegate>(
        _ body: UnsafeRawBufferPointer, delegate: inout D
    ) -> FCPDecodeError? {
        let error = FCPPacketParser.walkPayloads(body, extensionsEnabled: extensionsEnabled, delegate: &delegate)
        switch error {
        case .incompleteAlloc: statistics.rxIncompleteAlloc &+= 1
        case .incompleteRequests: statistics.rxIncompleteRequests &+= 1
        case .incompleteExtension: statistics.rxIncompleteExtension &+= 1
        case .unknownPayload: statistics.rxUnknownPayload &+= 1
        default: break
        }
        return error
    }

    /// Fencing: an extended arbiter stamps its leader epoch right after the header (and
    /// RESET). A lower epoch than one already seen comes from a deposed arbiter.
    private mutating func checkEpoch(_ body: UnsafeRawBufferPointer, at offset: Int, required: Bool) -> FCPDecodeError?
    {
        if offset < body.count, body[offset] >> 4 == FCPPayloadType.epoch.rawValue,
            let view = FCPExtensionPayloadView.parse(body, at: offset), view.body.count >= 8
        {
            let epoch = readBE64(view.body, 0)
            if epoch < highestEpoch {
                statistics.rxStaleEpoch &+= 1
                return .staleEpoch
            }
            highestEpoch = epoch
            return nil
        }
        if required {
            statistics.rxMissingEpoch &+= 1
            return .missingEpoch
        }
        return nil
    }

    /// The reset acceptance table (see ``FCPResetTable``). Returns whether to go on
    /// processing the packet.
    private mutating func handleResetPayload<D: FCPConnectionDelegate>(
        _ timestamp: UInt64, now: UInt64, delegate: inout D
    ) -> Bool {
        statistics.resetPayloads &+= 1
        if timestamp == lastResetTime {
            // The endpoint always arrives here out of sync (the RESET cleared it): this is
            // how it learns the arbiter joined its epoch. The arbiter stays out of sync and
            // keeps echoing RESET until the endpoint sends a plain packet.
            if !(side == .endpoint && !inSync) { statistics.redundantReset &+= 1 }
            inSync = side == .endpoint
            return true
        }
        let row = FCPResetTable.decide(
            last: lastResetTime, payload: timestamp, now: now, window: configuration.resetWindowNanoseconds)
        switch row {
        case .bothRecentLastWins: statistics.resetBothRecentLastResetWins &+= 1
        case .bothRecentPayloadWins: statistics.resetBothRecentPayloadWins &+= 1
        case .lastRecentPayloadOld: statistics.resetLastRecentPayloadOld &+= 1
        case .lastOldPayloadRecent: statistics.resetLastOldPayloadRecent &+= 1
        case .bothOld: statistics.resetBothOld &+= 1
        }
        switch row.action {
        case .keepLast:
            return false
        case .resetToNow:
            applyReset(to: now, inSync: side == .endpoint)
            delegate.fcpDidReset()
            return false
        case .acceptPayload:
            applyReset(to: timestamp, inSync: side == .endpoint)
            delegate.fcpDidReset()
            return true
        }
    }

    private mutating func badPacket<D: FCPConnectionDelegate>(now: UInt64, delegate: inout D) {
        inSync = false
        consecutiveBadPackets += 1
        if consecutiveBadPackets >= Self.badPacketResetThreshold {
            consecutiveBadPackets = 0
            let guardBand = Self.badPacketResetGuardNanoseconds
            if Wrapping.afterOrEqual(lastResetTime, now &- guardBand)
                && Wrapping.beforeOrEqual(lastResetTime, now &+ guardBand)
            {
                statistics.noResetBecauseRecent &+= 1
            } else {
                statistics.resetFromBadPackets &+= 1
                applyReset(to: now, inSync: false)
                delegate.fcpDidReset()
            }
        }
        // Whatever happened, send something so the peer can make progress.
        delegate.fcpTransmissionRequested()
    }

    /// At-most-once: accept sequence numbers after the highest delivered, or inside the
    /// 64-packet window and not yet delivered.
    private func mayAccept(_ seq: UInt64) -> Bool {
        let head = highestReceived
        if Wrapping.after(seq, head) { return true }
        if Wrapping.beforeOrEqual(seq, head &- 64) { return false }
        return receiveWindow & (1 << (63 - (head &- seq))) == 0
    }

    private mutating func updateReceiveWindow(_ seq: UInt64) {
        let head = highestReceived
        if Wrapping.afterOrEqual(seq, head &+ 64) {
            statistics.receiveWindowJumped &+= 1
            highestReceived = seq
            receiveWindow = 1 << 63
        } else if Wrapping.after(seq, head) {
            receiveWindow >>= (seq &- head)
            receiveWindow |= 1 << 63
            highestReceived = seq
        } else if Wrapping.beforeOrEqual(seq, head &- 64) {
            statistics.sequenceBeforeReceiveWindow &+= 1
        } else if receiveWindow & (1 << (63 - (head &- seq))) != 0 {
            statistics.rxDuplicatePackets &+= 1
        } else {
            receiveWindow |= 1 << (63 - (head &- seq))
            statistics.rxOutOfOrder &+= 1
        }
    }

    private mutating func processAcks<D: FCPConnectionDelegate>(
        _ ackSequence: UInt64, mask: UInt64, now: UInt64, delegate: inout D
    ) {
        statistics.ackPayloads &+= 1
        guard !outgoing.isBefore(ackSequence) else {
            statistics.tooEarlyAck &+= 1
            return
        }
        var todo = mask & outgoing.mask(endingAt: ackSequence)
        guard todo != 0 else { return }
        while todo != 0 {
            let offset = UInt64(todo.trailingZeroBitCount)
            let seq = ackSequence &- 63 &+ offset
            statistics.ackedPackets &+= 1
            // Only the packet the header names was just answered: older ones acknowledged
            // now may have waited for a later packet to carry their bit.
            if seq == ackSequence { delegate.fcpMeasuredRoundTrip(nanoseconds: now &- outgoing.sentTime(seq)) }
            outgoing.clear(seq)
            delegate.fcpAcknowledged(sequence: seq)
            todo &= todo &- 1
        }
        rearmTimer(delegate: &delegate)
        statistics.informativeAckPayloads &+= 1
    }

    /// Re-arms the timer for the oldest packet that has neither been acknowledged nor
    /// timed out, or cancels it when there is none.
    private mutating func rearmTimer<D: FCPConnectionDelegate>(delegate: inout D) {
        guard let seq = outgoing.firstMarked(atOrAfter: nextTimeoutSequence) else {
            nextTimeoutSequence = outgoing.head &+ 1
            timerDeadline = nil
            delegate.fcpTimerCancelled()
            return
        }
        nextTimeoutSequence = seq
        let deadline = outgoing.sentTime(seq) &+ configuration.sendTimeoutNanoseconds
        timerDeadline = nil
        delegate.fcpTimerCancelled()
        timerDeadline = deadline
        delegate.fcpTimerSet(deadline: deadline)
        statistics.reprogrammedTimer &+= 1
    }

    // MARK: Timers

    /// The retransmission timer fired: negatively acknowledges every packet whose timeout
    /// passed (they stay in the window and may still be acknowledged later).
    public mutating func handleTimeout<D: FCPConnectionDelegate>(now: UInt64, delegate: inout D) {
        statistics.timeoutHandlerRuns &+= 1
        var seq = nextTimeoutSequence
        while let pending = outgoing.firstMarked(atOrAfter: seq) {
            let deadline = outgoing.sentTime(pending) &+ configuration.sendTimeoutNanoseconds
            if Wrapping.after(deadline, now) {
                nextTimeoutSequence = pending
                timerDeadline = deadline
                delegate.fcpTimerSet(deadline: deadline)
                return
            }
            statistics.timeoutPackets &+= 1
            delegate.fcpNegativelyAcknowledged(sequence: pending)
            seq = pending &+ 1
        }
        nextTimeoutSequence = outgoing.head &+ 1
        timerDeadline = nil
    }

    // MARK: Sending

    /// Makes room for the next packet: the oldest packet of the window, if still
    /// unacknowledged, is dropped from it (and negatively acknowledged unless it already
    /// timed out). Call before filling a packet, so the owner can react to the NACK in it.
    public mutating func prepareToSend<D: FCPConnectionDelegate>(delegate: inout D) {
        let edge = outgoing.edge
        guard outgoing.isMarked(edge) else { return }
        statistics.neverAckedPackets &+= 1
        if Wrapping.afterOrEqual(edge, nextTimeoutSequence) {
            statistics.fallOffOutWindow &+= 1
            delegate.fcpNegativelyAcknowledged(sequence: edge)
            nextTimeoutSequence = edge &+ 1
            rearmTimer(delegate: &delegate)
        }
        outgoing.clear(edge)
    }

    /// Assigns the next sequence number to a packet being sent at `now` and returns the
    /// header fields it must carry. From here on the packet is tracked until acknowledged
    /// or negatively acknowledged.
    public mutating func commit<D: FCPConnectionDelegate>(now: UInt64, delegate: inout D) -> FCPOutgoingHeader {
        if outgoing.isMarked(outgoing.edge) { prepareToSend(delegate: &delegate) }
        let header = FCPOutgoingHeader(
            sequence: outgoing.head &+ 1, ackSequence: highestReceived,
            ackVector: FCPAckVector.encode(window: receiveWindow),
            sendReset: !inSync, resetTimestamp: lastResetTime)
        _ = outgoing.append(sentAt: now)
        statistics.committedPackets &+= 1
        rearmTimer(delegate: &delegate)
        return header
    }

    /// Starts a new reset epoch at `now` without telling the delegate
    /// (`fpproto_force_reset`); the owner rebases its own state itself.
    public mutating func forceReset(now: UInt64) {
        statistics.forcedResets &+= 1
        applyReset(to: now, inSync: false)
    }

    private mutating func applyReset(to timestamp: UInt64, inSync: Bool) {
        let base = FCPSequence.base(resetTimestamp: timestamp)
        lastResetTime = timestamp
        outgoing.reset(head: base &+ FCPSequence.egressOffset(side) &- 1)
        highestReceived = base &+ FCPSequence.ingressOffset(side) &- 1
        receiveWindow = ~0
        consecutiveBadPackets = 0
        nextTimeoutSequence = outgoing.head &+ 1
        self.inSync = inSync
        statistics.protocolResets &+= 1
    }
}
