/// A packet I/O backend's counters (the arbiter's `/status` → `io`, the agent's → `transport`),
/// as `PacketIOStatistics` keeps them.
///
/// The JSON keys are spelled out rather than derived: scripts, dashboards and docs read
/// them, so renaming a Swift property must not rename a key.
public struct PacketIOCounters: Sendable, Hashable, Codable {
    public var received: UInt64 = 0
    public var receiveBatches: UInt64 = 0
    /// Datagrams larger than a batch buffer, dropped.
    public var tooLong: UInt64 = 0
    /// Datagrams whose IPv4 header was malformed or not FCP's, dropped.
    public var badHeader: UInt64 = 0
    public var sent: UInt64 = 0
    public var sendBatches: UInt64 = 0
    /// Datagrams the device would not take (queue full, no route), dropped.
    public var sendDropped: UInt64 = 0
    /// Frames for another station or of another protocol (backends that see frames), or
    /// datagrams to another local address than the one a socket is bound to.
    public var notForUs: UInt64 = 0
    /// ARP requests for the local address answered (backends that see frames).
    public var arpAnswered: UInt64 = 0
    /// ARP requests sent for peers whose MAC was not known.
    public var arpRequestsSent: UInt64 = 0
    /// Sends dropped because the peer's MAC was not yet known (FCP datagrams among them
    /// are also in `sendDropped`).
    public var unresolved: UInt64 = 0
    /// Frames the device dropped before they were read: its ring was full (DPDK).
    public var receiveMissed: UInt64 = 0

    public init() {}

    enum CodingKeys: String, CodingKey {
        case received = "received"
        case receiveBatches = "receive_batches"
        case tooLong = "too_long"
        case badHeader = "bad_header"
        case sent = "sent"
        case sendBatches = "send_batches"
        case sendDropped = "send_dropped"
        case notForUs = "not_for_us"
        case arpAnswered = "arp_answered"
        case arpRequestsSent = "arp_requests_sent"
        case unresolved = "unresolved"
        case receiveMissed = "receive_missed"
    }
}
