/// One endpoint in the arbiter's `GET /endpoints` (a JSON array of them).
public struct EndpointStatus: Sendable, Hashable, Codable {
    public var address: String
    public var id: UInt32
    public var rack: Int
    /// Registered: it has a session with the arbiter.
    public var connected: Bool
    /// Speaks the extended protocol (false: reference FCP).
    public var extended: Bool
    public var demandSlots: UInt64
    public var allocationsSent: UInt64
    /// Allocations that fell out of the pending window unsent.
    public var allocationsLate: UInt64
    public var allocationsRejected: UInt64
    public var withdrawnSlots: UInt64
    public var packetsReceived: UInt64
    public var checksumErrors: UInt64
    /// Protocol and forced resets of its FCP connection.
    public var resets: UInt64

    public init(
        address: String, id: UInt32, rack: Int, connected: Bool, extended: Bool, demandSlots: UInt64,
        allocationsSent: UInt64, allocationsLate: UInt64, allocationsRejected: UInt64, withdrawnSlots: UInt64,
        packetsReceived: UInt64, checksumErrors: UInt64, resets: UInt64
    ) {
        self.address = address
        self.id = id
        self.rack = rack
        self.connected = connected
        self.extended = extended
        self.demandSlots = demandSlots
        self.allocationsSent = allocationsSent
        self.allocationsLate = allocationsLate
        self.allocationsRejected = allocationsRejected
        self.withdrawnSlots = withdrawnSlots
        self.packetsReceived = packetsReceived
        self.checksumErrors = checksumErrors
        self.resets = resets
    }

    enum CodingKeys: String, CodingKey {
        case address, id, rack, connected, extended
        case demandSlots = "demand_slots"
        case allocationsSent = "allocations_sent"
        case allocationsLate = "allocations_late"
        case allocationsRejected = "allocations_rejected"
        case withdrawnSlots = "withdrawn_slots"
        case packetsReceived = "packets_received"
        case checksumErrors = "checksum_errors"
        case resets
    }
}
