/// What the arbiter's communication thread needs from a network: receive a batch of FCP
/// payloads with their senders, send a batch to their endpoints. Raw IPv4 sockets
/// (``RawIPv4Socket``) and a DPDK port (``DPDKPort``) implement it.
///
/// Callers are generic over the conforming type (never `any PacketIO`), so the calls
/// specialise and inline on the hot path.
public protocol PacketIO: ~Copyable {
    /// Replaces the batch's contents with the FCP payloads that have arrived, waiting up to
    /// `timeoutNanoseconds` for the first (0: do not wait; negative: wait until one comes).
    /// Returns how many arrived. Malformed datagrams are counted and skipped.
    mutating func receive(into batch: inout PacketBatch, waitingUpTo timeoutNanoseconds: Int64)
        throws(PacketIOError) -> Int

    /// Sends the batch's datagrams to their addresses, then empties it. Returns how many
    /// left; the rest (the device's queue was full) are counted as dropped.
    mutating func send(_ batch: inout PacketBatch) throws(PacketIOError) -> Int

    /// Counters since the backend opened.
    var statistics: PacketIOStatistics { get }
}

/// Counters every ``PacketIO`` backend keeps.
public struct PacketIOStatistics: Sendable, Hashable {
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
    /// are also in ``sendDropped``).
    public var unresolved: UInt64 = 0
    /// Frames the device dropped before they were read: its ring was full (DPDK).
    public var receiveMissed: UInt64 = 0
    public init() {}
}

/// A packet I/O failure, with the call that failed and the system's reason.
public struct PacketIOError: Error, Sendable, Hashable, CustomStringConvertible {
    public var operation: String
    public var code: Int32
    public var description: String { "\(operation): \(String(cString: strerror(code)))" }
    public init(operation: String, code: Int32) {
        self.operation = operation
        self.code = code
    }
}

#if canImport(Glibc)
    import Glibc
#endif
