/// Features an endpoint asks for in HELLO and the arbiter grants in WELCOME.
public struct FCPCapabilities: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Every arbiter→endpoint packet carries the arbiter's leader epoch; the endpoint
    /// drops packets from a lower epoch (a deposed arbiter).
    public static let epochFencing = FCPCapabilities(rawValue: 1 << 0)
    /// WELCOME announces the timeslot length and origin; allocations travel as
    /// WIDE-ALLOC with 64-bit slot numbers and a 16-bit path field.
    public static let announcedClock = FCPCapabilities(rawValue: 1 << 1)
    /// Demand and reports travel as WIDE-REQUESTS / WIDE-REPORT: 32-bit destinations,
    /// 64-bit cumulative counters, so no request window and no 16-bit ambiguity.
    public static let wideCounters = FCPCapabilities(rawValue: 1 << 2)
    /// The endpoint may withdraw demand it no longer needs (GIVE-BACK).
    public static let giveBack = FCPCapabilities(rawValue: 1 << 3)
    /// Packets carry a keyed MAC (see ``FCPAuthenticator``).
    public static let authentication = FCPCapabilities(rawValue: 1 << 4)
    /// The arbiter announces the endpoint's share of its packet budget (BUDGET, see
    /// ``FCPControlBudget``) and the endpoint paces its packets within it.
    public static let controlBudget = FCPCapabilities(rawValue: 1 << 5)

    /// Everything this version of the protocol defines.
    public static let all: FCPCapabilities = [
        .epochFencing, .announcedClock, .wideCounters, .giveBack, .authentication, .controlBudget,
    ]

    public var description: String {
        var names: [String] = []
        if contains(.epochFencing) { names.append("epoch") }
        if contains(.announcedClock) { names.append("clock") }
        if contains(.wideCounters) { names.append("wide") }
        if contains(.giveBack) { names.append("give-back") }
        if contains(.authentication) { names.append("auth") }
        if contains(.controlBudget) { names.append("budget") }
        return "[" + names.joined(separator: ",") + "]"
    }
}

/// Why an arbiter refused an endpoint's HELLO.
public enum FCPRefusalReason: UInt8, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The stated node id or address is not in the topology.
    case unknownIdentity = 1
    /// Another live endpoint already registered that identity.
    case duplicateIdentity = 2
    /// The node id and the address name different hosts.
    case identityMismatch = 3
    /// The endpoint speaks a version the arbiter does not.
    case unsupportedVersion = 4
    /// The arbiter requires authentication and the endpoint did not offer it.
    case authenticationRequired = 5
    /// The arbiter has no room for another endpoint.
    case capacityExhausted = 6
    /// This arbiter is a standby, not the leader.
    case notLeader = 7

    public var description: String {
        switch self {
        case .unknownIdentity: "unknown identity"
        case .duplicateIdentity: "duplicate identity"
        case .identityMismatch: "node id and address disagree"
        case .unsupportedVersion: "unsupported protocol version"
        case .authenticationRequired: "authentication required"
        case .capacityExhausted: "arbiter capacity exhausted"
        case .notLeader: "arbiter is not the leader"
        }
    }
}

/// HELLO (type 5, endpoint→arbiter): asks for extensions and states who the endpoint is.
///
/// Body, 16 bytes: `u8 version, u8 reserved, u16 reserved, u32 capabilities,
/// u32 node id (0xFFFFFFFF: not stated), u32 IPv4 address (0: not stated)`.
public struct FCPHello: Sendable, Hashable {
    public static let version: UInt8 = 1
    public static let bodyLength = 16
    public static let unstatedNode: UInt32 = 0xFFFF_FFFF

    public var version: UInt8 = FCPHello.version
    public var capabilities: FCPCapabilities
    public var node: NodeID?
    /// IPv4 address in host byte order (a.b.c.d = a<<24 | …).
    public var address: UInt32?

    public init(capabilities: FCPCapabilities, node: NodeID?, address: UInt32?) {
        self.capabilities = capabilities
        self.node = node
        self.address = address
    }

    public func write(to writer: inout FCPPacketWriter) throws(FCPEncodeError) {
        try writer.writeExtension(.hello, bodyLength: Self.bodyLength) { body in
            body[0] = version
            writeBE32(body, 4, capabilities.rawValue)
            writeBE32(body, 8, node?.rawValue ?? Self.unstatedNode)
            writeBE32(body, 12, address ?? 0)
        }
    }

    /// Parses a HELLO body; nil when too short. Longer bodies (later versions) are fine.
    public init?(body: UnsafeRawBufferPointer) {
        guard body.count >= Self.bodyLength else { return nil }
        version = body[0]
        capabilities = FCPCapabilities(rawValue: readBE32(body, 4))
        let node = readBE32(body, 8)
        self.node = node == Self.unstatedNode ? nil : NodeID(node)
        let address = readBE32(body, 12)
        self.address = address == 0 ? nil : address
    }
}

/// WELCOME (type 6, arbiter→endpoint): the answer to HELLO.
///
/// Body, 32 bytes: `u8 status (0 accepted, else an ``FCPRefusalReason``), u8 version,
/// u16 reserved, u32 granted capabilities, u32 registered node id, u32 timeslot length in
/// picoseconds, u64 arbiter epoch, u64 slot origin (ns on the arbiter's clock: slot n
/// starts at origin + n · length)`.
public struct FCPWelcome: Sendable, Hashable {
    public static let bodyLength = 32

    /// nil when accepted.
    public var refusal: FCPRefusalReason?
    public var version: UInt8 = FCPHello.version
    public var capabilities: FCPCapabilities
    public var node: NodeID
    public var timeslotPicoseconds: UInt32
    public var epoch: UInt64
    public var slotOrigin: UInt64

    public init(
        capabilities: FCPCapabilities, node: NodeID, timeslotPicoseconds: UInt32, epoch: UInt64, slotOrigin: UInt64
    ) {
        self.refusal = nil
        self.capabilities = capabilities
        self.node = node
        self.timeslotPicoseconds = timeslotPicoseconds
        self.epoch = epoch
        self.slotOrigin = slotOrigin
    }

    public static func refused(_ reason: FCPRefusalReason, epoch: UInt64) -> FCPWelcome {
        var w = FCPWelcome(capabilities: [], node: NodeID(0), timeslotPicoseconds: 0, epoch: epoch, slotOrigin: 0)
        w.refusal = reason
        return w
    }

    public func write(to writer: inout FCPPacketWriter) throws(FCPEncodeError) {
        try writer.writeExtension(.welcome, bodyLength: Self.bodyLength) { body in
            body[0] = refusal?.rawValue ?? 0
            body[1] = version
            writeBE32(body, 4, capabilities.rawValue)
            writeBE32(body, 8, node.rawValue)
            writeBE32(body, 12, timeslotPicoseconds)
            writeBE64(body, 16, epoch)
            writeBE64(body, 24, slotOrigin)
        }
    }

    /// Parses a WELCOME body; nil when too short or the status is not a known reason.
    public init?(body: UnsafeRawBufferPointer) {
        guard body.count >= Self.bodyLength else { return nil }
        let status = body[0]
        if status == 0 {
            refusal = nil
        } else {
            guard let reason = FCPRefusalReason(rawValue: status) else { return nil }
            refusal = reason
        }
        version = body[1]
        capabilities = FCPCapabilities(rawValue: readBE32(body, 4))
        node = NodeID(readBE32(body, 8))
        timeslotPicoseconds = readBE32(body, 12)
        epoch = readBE64(body, 16)
        slotOrigin = readBE64(body, 24)
    }
}

/// EPOCH (type 7, arbiter→endpoint): the arbiter's leader epoch, first after the header
/// (and RESET) of every packet of a connection that negotiated ``FCPCapabilities/epochFencing``.
public enum FCPEpochPayload {
    public static let bodyLength = 8

    public static func write(_ epoch: UInt64, to writer: inout FCPPacketWriter) throws(FCPEncodeError) {
        try writer.writeExtension(.epoch, bodyLength: bodyLength) { writeBE64($0, 0, epoch) }
    }
}

/// Entry sizes and writers of the list-shaped extension payloads.
///
/// - WIDE-REQUESTS (type 8, endpoint→arbiter): `(u32 destination, u64 cumulative demand)`.
/// - WIDE-REPORT (type 9, arbiter→endpoint):
///   `(u32 destination, u64 cumulative allocated, u64 cumulative withdrawn)`.
/// - GIVE-BACK (type 12, endpoint→arbiter): `(u32 destination, u64 cumulative slots the
///   endpoint asks to withdraw)`.
/// - WIDE-ALLOC (type 10, arbiter→endpoint): `u64 base slot`, then
///   `(u16 slot offset from base, u16 path, u32 destination)`.
///
/// Every counter is cumulative since the last reset, so a lost or duplicated payload is
/// harmless: the receiver keeps the maximum.
public enum FCPListPayload {
    public static let wideRequestEntryLength = 12
    public static let wideReportEntryLength = 20
    public static let giveBackEntryLength = 12
    public static let wideAllocHeaderLength = 8
    public static let wideAllocEntryLength = 8

    /// Number of whole entries in a body.
    public static func entryCount(_ body: UnsafeRawBufferPointer, entryLength: Int, headerLength: Int = 0) -> Int {
        body.count < headerLength ? 0 : (body.count - headerLength) / entryLength
    }

    /// Entry `i` of a WIDE-REQUESTS or GIVE-BACK body.
    public static func counterEntry(_ body: UnsafeRawBufferPointer, _ i: Int) -> (destination: NodeID, count: UInt64) {
        let o = i * wideRequestEntryLength
        return (NodeID(readBE32(body, o)), readBE64(body, o + 4))
    }

    /// Entry `i` of a WIDE-REPORT body.
    public static func reportEntry(_ body: UnsafeRawBufferPointer, _ i: Int)
        -> (destination: NodeID, allocated: UInt64, withdrawn: UInt64)
    {
        let o = i * wideReportEntryLength
        return (NodeID(readBE32(body, o)), readBE64(body, o + 4), readBE64(body, o + 12))
    }

    /// Entry `i` of a WIDE-ALLOC body.
    public static func allocEntry(_ body: UnsafeRawBufferPointer, _ i: Int)
        -> (slot: UInt64, path: PathID, destination: NodeID)
    {
        let o = wideAllocHeaderLength + i * wideAllocEntryLength
        let base = readBE64(body, 0)
        return (base &+ UInt64(readBE16(body, o)), PathID(readBE16(body, o + 2)), NodeID(readBE32(body, o + 4)))
    }
}
