/// Why a packet could not be built. The first five mirror the reference encoder's return
/// codes -1…-5; the rest are inputs the reference would have encoded into malformed bytes
/// and we refuse instead.
public enum FCPEncodeError: Error, Sendable, Hashable {
    /// The buffer cannot hold the 8-byte header (reference -1).
    case noRoomForHeader
    /// No room for the RESET payload (reference -2).
    case noRoomForReset
    /// No room for the A-REQ / report payload (reference -3).
    case noRoomForRequests
    /// No room to pad to the minimum size (reference -4).
    case noRoomForPadding
    /// A payload would make the packet longer than allowed (reference -5; the reference
    /// noticed this only after writing past the limit, we check before writing).
    case packetTooLong
    /// More than 15 destinations in one ALLOC.
    case tooManyDestinations(Int)
    /// An odd number of descriptor bytes: the type word counts byte pairs, so the next
    /// payload would start one byte early.
    case oddDescriptorCount(Int)
    /// More descriptor bytes than the 6-bit pair count can announce.
    case tooManyDescriptors(Int)
    /// More entries than the 6-bit count of an A-REQ can announce.
    case tooManyRequests(Int)
    /// An extension body longer than its 16-bit length field, or a malformed field.
    case invalidExtension

    /// The reference encoder's return code for the same condition, where it has one.
    public var referenceReturnCode: Int? {
        switch self {
        case .noRoomForHeader: -1
        case .noRoomForReset: -2
        case .noRoomForRequests: -3
        case .noRoomForPadding: -4
        case .packetTooLong: -5
        default: nil
        }
    }
}

/// Builds one FCP packet in a caller-owned buffer, payload by payload, in the order the
/// protocol requires: header, [RESET], [extension control payloads], [ALLOC], [A-REQ],
/// padding, then ``finalize(sequence:ackSequence:authenticator:)`` stores the checksum (and
/// the authentication trailer when a key is given).
///
/// Every method checks the space it needs before writing, so a packet never exceeds
/// `maxLength` and a failed call leaves the bytes written so far untouched.
public struct FCPPacketWriter {
    public let buffer: UnsafeMutableRawBufferPointer
    /// The packet may not grow beyond this many bytes.
    public let maxLength: Int
    /// Bytes written so far.
    public private(set) var length: Int = 0
    /// Whether the packet currently ends in zero padding (a parser stops there).
    private var endsInPadding = false

    /// - Parameter maxLength: defaults to the buffer's size; larger values are clamped to it.
    public init(_ buffer: UnsafeMutableRawBufferPointer, maxLength: Int? = nil) {
        self.buffer = buffer
        self.maxLength = min(maxLength ?? buffer.count, buffer.count)
    }

    @inlinable
    public var remaining: Int { maxLength - length }

    /// Writes the header with a zero checksum. Sequence numbers are truncated to 16 bits.
    public mutating func writeHeader(sequence: UInt64, ackSequence: UInt64, ackVector: UInt16)
        throws(FCPEncodeError)
    {
        guard maxLength >= FCPWire.headerLength else { throw .noRoomForHeader }
        writeBE16(buffer, 0, UInt16(truncatingIfNeeded: sequence))
        writeBE16(buffer, 2, UInt16(truncatingIfNeeded: ackSequence))
        writeBE16(buffer, 4, ackVector)
        writeBE16(buffer, 6, 0)
        length = FCPWire.headerLength
        endsInPadding = false
    }

    /// RESET: the low 56 bits of the reset timestamp.
    public mutating func writeReset(timestamp: UInt64) throws(FCPEncodeError) {
        guard remaining >= FCPWire.resetLength else { throw .noRoomForReset }
        let high =
            (UInt32(FCPPayloadType.reset.rawValue) << 28)
            | (UInt32(truncatingIfNeeded: timestamp >> 32) & 0x00FF_FFFF)
        writeBE32(buffer, length, high)
        writeBE32(buffer, length + 4, UInt32(truncatingIfNeeded: timestamp))
        length += FCPWire.resetLength
        endsInPadding = false
    }

    /// ALLOC: base (in units of 16 slots), the destination list (path id in bits 15–14),
    /// then the slot descriptors, which must be an even number of bytes.
    public mutating func writeAlloc(
        baseField: UInt16, destinationCount: Int, destination: (Int) -> UInt16,
        descriptors: UnsafeRawBufferPointer
    ) throws(FCPEncodeError) {
        guard destinationCount <= FCPWire.maxAllocDestinations, destinationCount >= 0 else {
            throw .tooManyDestinations(destinationCount)
        }
        let descriptorCount = descriptors.count
        guard descriptorCount & 1 == 0 else { throw .oddDescriptorCount(descriptorCount) }
        guard descriptorCount <= FCPWire.maxAllocDescriptorBytes else {
            throw .tooManyDescriptors(descriptorCount)
        }
        let needed = 4 + 2 * destinationCount + descriptorCount
        guard remaining >= needed else { throw .packetTooLong }
        let typeWord =
            UInt16(FCPPayloadType.alloc.rawValue) << 12
            | UInt16(destinationCount) << 8 | UInt16(descriptorCount / 2)
        writeBE16(buffer, length, typeWord)
        writeBE16(buffer, length + 2, baseField)
        var offset = length + 4
        for i in 0..<destinationCount {
            writeBE16(buffer, offset, destination(i))
            offset += 2
        }
        if descriptorCount > 0, let src = descriptors.baseAddress {
            (buffer.baseAddress! + offset).copyMemory(from: src, byteCount: descriptorCount)
        }
        length += needed
        endsInPadding = false
    }

    /// A-REQ (endpoint→arbiter: cumulative demand) or its arbiter→endpoint reuse as an
    /// allocation report (cumulative allocations), both as (destination, count) pairs.
    public mutating func writeRequests(count: Int, entry: (Int) -> (destination: UInt16, count: UInt16))
        throws(FCPEncodeError)
    {
        guard count >= 0, count <= FCPWire.maxRequestEntries else { throw .tooManyRequests(count) }
        let needed = 2 + 4 * count
        guard remaining >= needed else { throw .noRoomForRequests }
        writeBE16(buffer, length, UInt16(FCPPayloadType.requests.rawValue) << 12 | UInt16(count))
        var offset = length + 2
        for i in 0..<count {
            let e = entry(i)
            writeBE16(buffer, offset, e.destination)
            writeBE16(buffer, offset + 2, e.count)
            offset += 4
        }
        length += needed
        endsInPadding = false
    }

    /// An extension payload: `[type << 4 | version][flags][u16 body length][body]`.
    /// `body` receives exactly `bodyLength` bytes to fill.
    public mutating func writeExtension(
        _ type: FCPPayloadType, flags: UInt8 = 0, bodyLength: Int,
        body: (UnsafeMutableRawBufferPointer) -> Void
    ) throws(FCPEncodeError) {
        guard type.rawValue >= FCPPayloadType.hello.rawValue, bodyLength >= 0, bodyLength <= 0xFFFF else {
            throw .invalidExtension
        }
        let needed = FCPWire.extensionHeaderLength + bodyLength
        guard remaining >= needed else { throw .packetTooLong }
        buffer.storeBytes(of: type.rawValue << 4, toByteOffset: length, as: UInt8.self)
        buffer.storeBytes(of: flags, toByteOffset: length + 1, as: UInt8.self)
        writeBE16(buffer, length + 2, UInt16(bodyLength))
        let start = length + FCPWire.extensionHeaderLength
        let bodyBuffer = UnsafeMutableRawBufferPointer(rebasing: buffer[start..<(start + bodyLength)])
        bodyBuffer.initializeMemory(as: UInt8.self, repeating: 0)
        body(bodyBuffer)
        length += needed
        endsInPadding = false
    }

    /// Zero-pads to `minimumLength` bytes.
    public mutating func pad(toMinimum minimumLength: Int = FCPWire.minimumPacketLength) throws(FCPEncodeError) {
        guard length < minimumLength else { return }
        guard maxLength >= minimumLength else { throw .noRoomForPadding }
        UnsafeMutableRawBufferPointer(rebasing: buffer[length..<minimumLength])
            .initializeMemory(as: UInt8.self, repeating: 0)
        length = minimumLength
        endsInPadding = true
    }

    /// Appends the authentication trailer if a key is given, stores the checksum, and
    /// returns the packet's length.
    ///
    /// - Parameters:
    ///   - sequence: the full 64-bit sequence number whose low 16 bits are in the header.
    ///   - ackSequence: the full 64-bit ack sequence number.
    public mutating func finalize(
        sequence: UInt64, ackSequence: UInt64, authenticator: FCPAuthenticator? = nil
    ) throws(FCPEncodeError) -> Int {
        if let authenticator {
            // A zero byte before the trailer ends parsing for a reader without the key (a
            // reference peer), which would otherwise stop at the unknown type and drop the
            // packet. After padding it is already there.
            let separator = endsInPadding ? 0 : 1
            guard remaining >= separator + FCPAuthenticator.trailerLength else { throw .packetTooLong }
            if separator == 1 {
                buffer.storeBytes(of: 0 as UInt8, toByteOffset: length, as: UInt8.self)
                length += 1
            }
            authenticator.appendTrailer(
                to: buffer, length: length, sequence: sequence, ackSequence: ackSequence)
            length += FCPAuthenticator.trailerLength
        }
        let packet = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length])
        FCPChecksum.store(into: packet, sequence: sequence, ackSequence: ackSequence)
        return length
    }
}

extension FCPPacketWriter {
    /// Declares that bytes up to `length` were written by another writer over the same
    /// buffer (used to give one payload a tighter limit than the packet).
    mutating func skip(to length: Int) throws(FCPEncodeError) {
        guard length <= maxLength, length >= self.length else { throw .packetTooLong }
        if length > self.length { endsInPadding = false }
        self.length = length
    }
}
