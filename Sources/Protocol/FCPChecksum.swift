/// The FCP packet checksum.
///
/// An Internet (ones'-complement) checksum over the whole FCP packet, plus the length
/// and protocol number as a pseudo-header, seeded with a Jenkins hash of both full 64-bit
/// sequence numbers. The seed is what makes a packet from another reset epoch, or one
/// whose 16-bit sequence fields were reconstructed wrongly, fail the check. Addresses are
/// deliberately not included: the reference leaves them out, and so must we.
public enum FCPChecksum {
    /// IPv4 protocol number FCP travels as.
    public static let ipProtocol: UInt32 = 222

    /// The checksum of `packet`, treating bytes 6–7 (the checksum field) as zero.
    ///
    /// - Parameters:
    ///   - sequence: the sender's full 64-bit sequence number for this packet.
    ///   - ackSequence: the sender's full 64-bit acknowledged sequence number.
    @inlinable
    public static func compute(
        _ packet: UnsafeRawBufferPointer, sequence: UInt64, ackSequence: UInt64
    ) -> UInt16 {
        let seed = JenkinsHash.hash3(
            UInt32(truncatingIfNeeded: sequence), UInt32(truncatingIfNeeded: sequence >> 32),
            UInt32(truncatingIfNeeded: ackSequence),
            initval: UInt32(truncatingIfNeeded: ackSequence >> 32))
        var sum = onesComplementSum(packet, skippingChecksumField: true)
        sum = addCarrying(sum, UInt64(packet.count) &+ UInt64(ipProtocol))
        // The reference adds the seed in host (little-endian) order; in the big-endian
        // domain this sum lives in, that is the byte-swapped 16-bit fold of the seed.
        sum = addCarrying(sum, UInt64(fold16(UInt64(seed)).byteSwapped))
        return ~fold16(sum)
    }

    /// Writes the checksum into bytes 6–7 of `packet` (big-endian).
    @inlinable
    public static func store(
        into packet: UnsafeMutableRawBufferPointer, sequence: UInt64, ackSequence: UInt64
    ) {
        let value = compute(UnsafeRawBufferPointer(packet), sequence: sequence, ackSequence: ackSequence)
        packet.storeBytes(of: value.bigEndian, toByteOffset: 6, as: UInt16.self)
    }

    /// Whether the checksum stored in bytes 6–7 matches.
    @inlinable
    public static func verify(
        _ packet: UnsafeRawBufferPointer, sequence: UInt64, ackSequence: UInt64
    ) -> Bool {
        guard packet.count >= 8 else { return false }
        let stored = UInt16(bigEndian: packet.loadUnaligned(fromByteOffset: 6, as: UInt16.self))
        return stored == compute(packet, sequence: sequence, ackSequence: ackSequence)
    }

    @usableFromInline @inline(__always)
    static func addCarrying(_ a: UInt64, _ b: UInt64) -> UInt64 {
        let (s, overflow) = a.addingReportingOverflow(b)
        return overflow ? s &+ 1 : s
    }

    @usableFromInline @inline(__always)
    static func fold16(_ value: UInt64) -> UInt16 {
        var s = (value & 0xFFFF_FFFF) &+ (value >> 32)
        s = (s & 0xFFFF_FFFF) &+ (s >> 32)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        s = (s & 0xFFFF) &+ (s >> 16)
        return UInt16(truncatingIfNeeded: s)
    }

    /// Ones'-complement sum of big-endian 16-bit words, eight bytes at a time.
    ///
    /// Each 8-byte word is split into its two 32-bit halves and both are added to a 64-bit
    /// accumulator, which cannot overflow for any packet shorter than 16 GiB; the end-around
    /// carries are folded in once at the end. Same folded result as 16-bit sums (RFC 1071).
    @usableFromInline
    static func onesComplementSum(_ bytes: UnsafeRawBufferPointer, skippingChecksumField: Bool) -> UInt64 {
        let count = bytes.count
        guard let base = bytes.baseAddress, count > 0 else { return 0 }
        var sum: UInt64 = 0
        var offset = 0
        if count >= 8 {
            var word = UInt64(bigEndian: base.loadUnaligned(as: UInt64.self))
            if skippingChecksumField { word &= 0xFFFF_FFFF_FFFF_0000 }
            sum = (word >> 32) &+ (word & 0xFFFF_FFFF)
            offset = 8
            while offset + 8 <= count {
                let w = UInt64(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                sum &+= (w >> 32) &+ (w & 0xFFFF_FFFF)
                offset += 8
            }
        }
        if offset < count {
            // Gather the 1–7 trailing bytes into one big-endian word, zero-padded.
            var word: UInt64 = 0
            var shift: UInt64 = 56
            var i = offset
            while i < count {
                var byte = UInt64(base.load(fromByteOffset: i, as: UInt8.self))
                if skippingChecksumField && (i == 6 || i == 7) { byte = 0 }
                word |= byte << shift
                shift &-= 8
                i += 1
            }
            sum &+= (word >> 32) &+ (word & 0xFFFF_FFFF)
        }
        return sum
    }
}
