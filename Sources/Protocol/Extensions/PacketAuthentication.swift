/// Optional authentication of FCP packets with a pre-shared cluster key.
///
/// An authenticated packet ends with a 12-byte trailer, after any padding:
/// `[0xB0][key id][0x00 0x08][tag: u64 big-endian]`. The tag is SipHash-2-4 over the
/// sender's full 64-bit sequence number and ack sequence number (little-endian), then the
/// packet from its first byte up to the tag with the checksum field as zero. Binding the
/// full sequence numbers means a packet replayed from another reset epoch fails the MAC
/// even though its 16-bit wire fields look valid, and a replay within the epoch is a
/// duplicate the receive window drops.
///
/// The receiver checks the tag *before* anything else, including the checksum, so that a
/// forged packet cannot even count towards the ten-bad-packets reset.
public struct FCPAuthenticator: Sendable, Hashable {
    public static let trailerLength = 12
    static let tagLength = 8

    /// Identifies the key, so a cluster can roll keys (receivers reject other ids).
    public let keyID: UInt8
    let key0: UInt64
    let key1: UInt64

    /// - Parameter key: exactly 16 bytes.
    public init?(key: [UInt8], keyID: UInt8 = 0) {
        guard key.count == 16 else { return nil }
        var k0: UInt64 = 0
        var k1: UInt64 = 0
        for i in 0..<8 {
            k0 |= UInt64(key[i]) << (8 * UInt64(i))
            k1 |= UInt64(key[8 + i]) << (8 * UInt64(i))
        }
        self.key0 = k0
        self.key1 = k1
        self.keyID = keyID
    }

    /// Parses a key file's contents: 32 hexadecimal digits (whitespace and a trailing
    /// newline are ignored). Returns nil with anything else.
    public init?(hexKey text: String, keyID: UInt8 = 0) {
        let digits = text.filter { !$0.isWhitespace }
        guard digits.count == 32 else { return nil }
        var bytes: [UInt8] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let next = digits.index(index, offsetBy: 2)
            guard let byte = UInt8(digits[index..<next], radix: 16) else { return nil }
            bytes.append(byte)
            index = next
        }
        self.init(key: bytes, keyID: keyID)
    }

    /// The tag of `packet[0..<tagOffset]` (checksum bytes treated as zero).
    func tag(_ packet: UnsafeRawBufferPointer, tagOffset: Int, sequence: UInt64, ackSequence: UInt64) -> UInt64 {
        var mac = SipHash24(key0: key0, key1: key1)
        mac.append(littleEndian: sequence)
        mac.append(littleEndian: ackSequence)
        mac.append(UnsafeRawBufferPointer(rebasing: packet[0..<6]))
        mac.append(0)
        mac.append(0)
        mac.append(UnsafeRawBufferPointer(rebasing: packet[8..<tagOffset]))
        return mac.finalize()
    }

    /// Writes the trailer at `length` (the caller checked there is room).
    func appendTrailer(
        to buffer: UnsafeMutableRawBufferPointer, length: Int, sequence: UInt64, ackSequence: UInt64
    ) {
        buffer.storeBytes(of: FCPPayloadType.authentication.rawValue << 4, toByteOffset: length, as: UInt8.self)
        buffer.storeBytes(of: keyID, toByteOffset: length + 1, as: UInt8.self)
        writeBE16(buffer, length + 2, UInt16(Self.tagLength))
        let tagOffset = length + 4
        let value = tag(
            UnsafeRawBufferPointer(buffer), tagOffset: tagOffset, sequence: sequence, ackSequence: ackSequence)
        writeBE64(buffer, tagOffset, value)
    }

    /// Whether `packet` ends with something shaped like this key's trailer (the tag is not
    /// checked; that needs the reconstructed sequence numbers).
    public func hasTrailer(_ packet: UnsafeRawBufferPointer) -> Bool {
        let n = packet.count
        guard n >= FCPWire.headerLength + Self.trailerLength else { return false }
        let start = n - Self.trailerLength
        return packet[start] == FCPPayloadType.authentication.rawValue << 4
            && packet[start + 1] == keyID
            && readBE16(packet, start + 2) == UInt16(Self.tagLength)
    }

    /// Whether `packet` ends with a trailer carrying this key's id and a correct tag.
    /// On success the authenticated content is `packet[0..<packet.count - trailerLength]`.
    public func verify(_ packet: UnsafeRawBufferPointer, sequence: UInt64, ackSequence: UInt64) -> Bool {
        let n = packet.count
        guard n >= FCPWire.headerLength + Self.trailerLength else { return false }
        let start = n - Self.trailerLength
        guard packet[start] == FCPPayloadType.authentication.rawValue << 4,
            packet[start + 1] == keyID,
            readBE16(packet, start + 2) == UInt16(Self.tagLength)
        else { return false }
        let expected = tag(packet, tagOffset: start + 4, sequence: sequence, ackSequence: ackSequence)
        // Constant-time comparison: the difference is folded before the single branch.
        let diff = expected ^ readBE64(packet, start + 4)
        return diff == 0
    }
}
