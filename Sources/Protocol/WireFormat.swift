/// Payload type nibbles (the high 4 bits of a payload's first byte).
///
/// 0–4 are the reference's; 5–15 are unused by it, which is where our extensions live.
/// A reference peer stops parsing a packet at an unknown type and does not acknowledge it,
/// so extension payloads are only ever sent on connections that negotiated them.
public enum FCPPayloadType: UInt8, Sendable, CaseIterable {
    case padding = 0x0
    case reset = 0x1
    case requests = 0x2
    case alloc = 0x3
    case ack = 0x4
    // Extensions (docs/protocol.md).
    case hello = 0x5
    case welcome = 0x6
    case epoch = 0x7
    case wideRequests = 0x8
    case wideReport = 0x9
    case wideAlloc = 0xA
    case authentication = 0xB
    case giveBack = 0xC
    case budget = 0xD
    case ackDelay = 0xE
}

/// Sizes and limits of the reference wire format.
public enum FCPWire {
    /// seq, ack_seq, ack_vec, checksum: four big-endian u16.
    public static let headerLength = 8
    /// RESET: type nibble + 56-bit timestamp.
    public static let resetLength = 8
    /// Extended ACK: type nibble + 28 + 16 bits of ack vector.
    public static let extendedAckLength = 6
    /// Packets are zero-padded to at least this many bytes (a minimum Ethernet frame).
    public static let minimumPacketLength = 26
    /// The reference endpoint's packet limit.
    public static let endpointMaxLength = 58
    /// The reference arbiter's packet limit.
    public static let arbiterMaxLength = 154
    /// Most destinations one ALLOC payload can list (4-bit field).
    public static let maxAllocDestinations = 15
    /// Most descriptor bytes one ALLOC payload can carry (6-bit count of byte pairs).
    public static let maxAllocDescriptorBytes = 126
    /// Most (destination, count) pairs one A-REQ payload can carry (6-bit field).
    public static let maxRequestEntries = 63
    /// The reference puts at most this many A-REQ entries in one packet.
    public static let referenceRequestsPerPacket = 10
    /// Extension payloads start with [type|version][flags][u16 body length].
    public static let extensionHeaderLength = 4
    /// Largest FCP packet we accept or build (fits any Ethernet MTU with IPv4 header).
    public static let maxPacketLength = 1480
}

@inline(__always) @usableFromInline
func readBE16(_ p: UnsafeRawBufferPointer, _ offset: Int) -> UInt16 {
    UInt16(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
}

@inline(__always) @usableFromInline
func readBE32(_ p: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
    UInt32(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
}

@inline(__always) @usableFromInline
func readBE64(_ p: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
    UInt64(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
}

@inline(__always) @usableFromInline
func writeBE16(_ p: UnsafeMutableRawBufferPointer, _ offset: Int, _ v: UInt16) {
    p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt16.self)
}

@inline(__always) @usableFromInline
func writeBE32(_ p: UnsafeMutableRawBufferPointer, _ offset: Int, _ v: UInt32) {
    p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt32.self)
}

@inline(__always) @usableFromInline
func writeBE64(_ p: UnsafeMutableRawBufferPointer, _ offset: Int, _ v: UInt64) {
    p.storeBytes(of: v.bigEndian, toByteOffset: offset, as: UInt64.self)
}

/// The fixed 8-byte FCP header as it appears on the wire.
public struct FCPHeader: Sendable, Hashable {
    /// Low 16 bits of the sender's sequence number.
    public var sequence: UInt16
    /// Low 16 bits of the highest sequence number the sender has received.
    public var ackSequence: UInt16
    /// Selective-ack summary; see ``FCPAckVector``.
    public var ackVector: UInt16
    public var checksum: UInt16

    /// Reads the header; nil when fewer than 8 bytes are given.
    public init?(_ packet: UnsafeRawBufferPointer) {
        guard packet.count >= FCPWire.headerLength else { return nil }
        sequence = readBE16(packet, 0)
        ackSequence = readBE16(packet, 2)
        ackVector = readBE16(packet, 4)
        checksum = readBE16(packet, 6)
    }
}

/// The ack vector's two encodings.
public enum FCPAckVector {
    /// The 16-bit header field a sender derives from its 64-bit receive window (bit 63 is
    /// the highest sequence number received): bits 62–48 of the window go in bits 14–0, and
    /// bit 15 says whether all 48 bits below them are set.
    @inlinable
    public static func encode(window: UInt64) -> UInt16 {
        let recent = UInt16(truncatingIfNeeded: (window >> 48) & 0x7FFF)
        let allOlder: UInt16 = (window & (~UInt64(0) >> 16)) == (~UInt64(0) >> 16) ? 0x8000 : 0
        return recent | allOlder
    }

    /// The 64-bit mask of acknowledged sequence numbers `[ack-63, ack]` (bit i ↔ ack-63+i)
    /// that a header ack vector stands for; the ack sequence itself is always acknowledged.
    @inlinable
    public static func decodeHeader(_ field: UInt16) -> UInt64 {
        let older: UInt64 = field & 0x8000 != 0 ? (1 << 48) - 1 : 0
        return older | (UInt64(field & 0x7FFF) << 48) | (1 << 63)
    }

    /// The mask carried by an extended ACK payload: 28 bits then 16 bits, placed in bits
    /// 63–20 and 19–4.
    @inlinable
    public static func decodeExtended(high28: UInt32, low16: UInt16) -> UInt64 {
        (UInt64(high28 & 0x0FFF_FFFF) << 20) | (UInt64(low16) << 4)
    }
}
