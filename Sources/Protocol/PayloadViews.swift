/// Why a received packet was dropped (or only partly processed). Every case is counted
/// under the reference's counter of the same meaning (see ``FCPConnectionStatistics``).
public enum FCPDecodeError: Error, Sendable, Hashable {
    /// Shorter than the 8-byte header (`rx_too_short`).
    case tooShort
    /// Longer than ``FCPWire/maxPacketLength``; never processed.
    case tooLong
    /// A first-payload RESET shorter than 8 bytes (`rx_incomplete_reset`).
    case incompleteReset
    /// The checksum does not match the reconstructed sequence numbers (`rx_checksum_error`).
    case checksumMismatch
    /// A RESET the acceptance table rejected; the rest of the packet is ignored.
    case resetNotApplied
    /// Already delivered, or older than the 64-packet receive window.
    case duplicate
    /// Extended ACK shorter than 6 bytes (`rx_incomplete_ack`).
    case incompleteAck
    /// ALLOC shorter than its type word announces (`rx_incomplete_alloc`).
    case incompleteAlloc
    /// A-REQ shorter than its count announces (`rx_incomplete_areq`).
    case incompleteRequests
    /// An extension payload shorter than its length field (`rx_incomplete_extension`).
    case incompleteExtension
    /// A payload type this connection does not speak (`rx_unknown_payload`).
    case unknownPayload(type: UInt8)
    /// The connection requires authentication and the trailer is missing or wrong.
    case authenticationFailed
    /// An arbiter epoch lower than one already seen: a deposed arbiter (fencing).
    case staleEpoch
    /// An extended connection's arbiter packet without its epoch.
    case missingEpoch
}

/// A received ALLOC payload, viewed in place.
///
/// Valid only while the packet buffer it was parsed from is; do not store it.
@frozen
public struct FCPAllocPayloadView {
    /// The payload's bytes, starting at its type word.
    public let bytes: UnsafeRawBufferPointer
    /// Number of destinations listed (0–15).
    public let destinationCount: Int
    /// Number of descriptor bytes (always even: the type word counts pairs).
    public let descriptorCount: Int

    @usableFromInline
    init(bytes: UnsafeRawBufferPointer, destinationCount: Int, descriptorCount: Int) {
        self.bytes = bytes
        self.destinationCount = destinationCount
        self.descriptorCount = descriptorCount
    }

    /// The wire base field: the first slot of the payload divided by 16, low 16 bits.
    @inlinable
    public var baseField: UInt16 { readBE16(bytes, 2) }
    /// The base in slots, as the reference hands it to the endpoint (wire × 16).
    @inlinable
    public var baseTimeslot: UInt32 { UInt32(baseField) << 4 }

    /// Raw destination `i` (node id in bits 13–0, path id in bits 15–14).
    @inlinable
    public func destination(_ i: Int) -> UInt16 {
        precondition(i >= 0 && i < destinationCount)
        return readBE16(bytes, 4 + 2 * i)
    }

    /// The one-byte slot descriptors.
    @inlinable
    public var descriptors: UnsafeRawBufferPointer {
        let start = 4 + 2 * destinationCount
        return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + descriptorCount)])
    }

    /// Total length of the payload on the wire.
    @inlinable
    public var length: Int { 4 + 2 * destinationCount + descriptorCount }

    /// Parses an ALLOC payload starting at `offset` of `packet`; nil when truncated.
    @inlinable
    public static func parse(_ packet: UnsafeRawBufferPointer, at offset: Int) -> FCPAllocPayloadView? {
        guard offset + 2 <= packet.count else { return nil }
        let typeWord = readBE16(packet, offset)
        let destinations = Int((typeWord >> 8) & 0xF)
        let descriptors = 2 * Int(typeWord & 0x3F)
        let length = 4 + 2 * destinations + descriptors
        guard offset + length <= packet.count else { return nil }
        return FCPAllocPayloadView(
            bytes: UnsafeRawBufferPointer(rebasing: packet[offset..<(offset + length)]),
            destinationCount: destinations, descriptorCount: descriptors)
    }
}

/// A received A-REQ payload (demand from an endpoint) or allocation report (from the
/// arbiter), viewed in place. Valid only while the packet buffer is; do not store it.
@frozen
public struct FCPRequestsPayloadView {
    public let bytes: UnsafeRawBufferPointer
    /// Number of (destination, count) entries.
    public let count: Int

    @usableFromInline
    init(bytes: UnsafeRawBufferPointer, count: Int) {
        self.bytes = bytes
        self.count = count
    }

    /// Entry `i`: raw 16-bit destination and 16-bit cumulative count.
    @inlinable
    public func entry(_ i: Int) -> (destination: UInt16, count: UInt16) {
        precondition(i >= 0 && i < count)
        return (readBE16(bytes, 2 + 4 * i), readBE16(bytes, 4 + 4 * i))
    }

    @inlinable
    public var length: Int { 2 + 4 * count }

    /// Parses an A-REQ payload starting at `offset` of `packet`; nil when truncated.
    @inlinable
    public static func parse(_ packet: UnsafeRawBufferPointer, at offset: Int) -> FCPRequestsPayloadView? {
        guard offset + 2 <= packet.count else { return nil }
        let count = Int(readBE16(packet, offset) & 0x3F)
        let length = 2 + 4 * count
        guard offset + length <= packet.count else { return nil }
        return FCPRequestsPayloadView(
            bytes: UnsafeRawBufferPointer(rebasing: packet[offset..<(offset + length)]), count: count)
    }
}

/// A received extension payload: `[type << 4 | version][flags][u16 length][body]`.
/// Valid only while the packet buffer is; do not store it.
@frozen
public struct FCPExtensionPayloadView {
    /// The payload type nibble (5–15).
    public let type: UInt8
    /// The low nibble of the first byte; 0 in this version of the protocol.
    public let version: UInt8
    public let flags: UInt8
    public let body: UnsafeRawBufferPointer

    @usableFromInline
    init(type: UInt8, version: UInt8, flags: UInt8, body: UnsafeRawBufferPointer) {
        self.type = type
        self.version = version
        self.flags = flags
        self.body = body
    }

    @inlinable
    public var length: Int { FCPWire.extensionHeaderLength + body.count }

    /// Parses an extension payload starting at `offset` of `packet`; nil when truncated.
    @inlinable
    public static func parse(_ packet: UnsafeRawBufferPointer, at offset: Int) -> FCPExtensionPayloadView? {
        guard offset + FCPWire.extensionHeaderLength <= packet.count else { return nil }
        let first = packet[offset]
        let bodyLength = Int(readBE16(packet, offset + 2))
        let start = offset + FCPWire.extensionHeaderLength
        guard start + bodyLength <= packet.count else { return nil }
        return FCPExtensionPayloadView(
            type: first >> 4, version: first & 0xF, flags: packet[offset + 1],
            body: UnsafeRawBufferPointer(rebasing: packet[start..<(start + bodyLength)]))
    }
}

/// Stateless payload parsing, shared by the connection, the fuzzers and the benchmarks.
public enum FCPPacketParser {
    /// Walks every payload of `body` (a whole FCP packet, header included, without any
    /// authentication trailer) from the first one, as `fpproto_perform_rx_callbacks` does:
    /// RESET and extended ACK are skipped (they count only as the first payload, which the
    /// connection handles at header level), ALLOC and A-REQ go to the delegate, padding
    /// ends the packet. Payloads delivered before an error stay delivered, as in the
    /// reference.
    ///
    /// - Returns: nil when every payload parsed, else why parsing stopped.
    @inlinable
    public static func walkPayloads<D: FCPConnectionDelegate>(
        _ body: UnsafeRawBufferPointer, extensionsEnabled: Bool, delegate: inout D
    ) -> FCPDecodeError? {
        var offset = FCPWire.headerLength
        let end = body.count
        while offset < end {
            let type = body[offset] >> 4
            switch type {
            case FCPPayloadType.ack.rawValue:
                offset += FCPWire.extendedAckLength
            case FCPPayloadType.reset.rawValue:
                offset += FCPWire.resetLength
            case FCPPayloadType.alloc.rawValue:
                guard let view = FCPAllocPayloadView.parse(body, at: offset) else { return .incompleteAlloc }
                delegate.fcpReceivedAlloc(view)
                offset += view.length
            case FCPPayloadType.requests.rawValue:
                guard let view = FCPRequestsPayloadView.parse(body, at: offset) else { return .incompleteRequests }
                delegate.fcpReceivedRequests(view)
                offset += view.length
            case FCPPayloadType.padding.rawValue:
                offset = end
            default:
                guard extensionsEnabled else { return .unknownPayload(type: type) }
                guard let view = FCPExtensionPayloadView.parse(body, at: offset) else { return .incompleteExtension }
                delegate.fcpReceivedExtension(view)
                offset += view.length
            }
        }
        return nil
    }
}
