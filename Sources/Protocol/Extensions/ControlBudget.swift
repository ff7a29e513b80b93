/// BUDGET (type 13, arbiter→endpoint): the endpoint's share of the arbiter's packet
/// budget, for a connection that negotiated ``FCPCapabilities/controlBudget``.
///
/// Body, 12 bytes: `u32 revision, u32 packets per second (0: no limit), u16 burst in
/// packets, u16 reserved`. The arbiter sends it in the packet that carries WELCOME and
/// again, in the next packet to the endpoint, whenever the share changes; it repeats it
/// until a packet carrying it is acknowledged. The endpoint keeps the highest revision, so
/// a late copy of an older budget changes nothing.
public struct FCPControlBudget: Sendable, Hashable {
    public static let bodyLength = 12

    /// Increases with every change of the share (per arbiter, not per endpoint).
    public var revision: UInt32
    /// Packets per second the endpoint may send to the arbiter on average; 0: no limit.
    public var packetsPerSecond: UInt32
    /// Packets the endpoint may send back to back after a quiet spell.
    public var burst: UInt16

    public init(revision: UInt32, packetsPerSecond: UInt32, burst: UInt16) {
        self.revision = revision
        self.packetsPerSecond = packetsPerSecond
        self.burst = burst
    }

    public func write(to writer: inout FCPPacketWriter) throws(FCPEncodeError) {
        try writer.writeExtension(.budget, bodyLength: Self.bodyLength) { body in
            writeBE32(body, 0, revision)
            writeBE32(body, 4, packetsPerSecond)
            writeBE16(body, 8, burst)
        }
    }

    /// Parses a BUDGET body; nil when too short. Longer bodies (later versions) are fine.
    public init?(body: UnsafeRawBufferPointer) {
        guard body.count >= Self.bodyLength else { return nil }
        revision = readBE32(body, 0)
        packetsPerSecond = readBE32(body, 4)
        burst = readBE16(body, 8)
    }
}

/// ACK-DELAY (type 14, endpoint→arbiter), part of ``FCPCapabilities/controlBudget``: how
/// long the newest packet this one acknowledges waited at the endpoint before this packet
/// left. A paced endpoint holds acknowledgements; without this the arbiter would count the
/// wait as network delay, and send allocations (and allocate) further ahead than the path
/// needs.
///
/// Body, 4 bytes: `u32 nanoseconds` (saturating).
public enum FCPAckDelayPayload {
    public static let bodyLength = 4

    public static func write(_ nanoseconds: UInt64, to writer: inout FCPPacketWriter) throws(FCPEncodeError) {
        try writer.writeExtension(.ackDelay, bodyLength: bodyLength) {
            writeBE32($0, 0, UInt32(clamping: nanoseconds))
        }
    }

    /// The delay in a body; nil when too short.
    public static func nanoseconds(_ body: UnsafeRawBufferPointer) -> UInt64? {
        body.count >= bodyLength ? UInt64(readBE32(body, 0)) : nil
    }
}
