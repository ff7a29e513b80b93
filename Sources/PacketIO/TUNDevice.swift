import CPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// A TUN device (IPv4 packets, no packet-information prefix) read by the host agent:
/// routes that point at it hand the agent the applications' packets unchanged. Created
/// non-persistent, so the kernel removes it, and every route through it, when the last
/// descriptor closes, crash included. Needs `CAP_NET_ADMIN`.
public final class TUNDevice {
    public let descriptor: Int32
    /// The name the kernel gave the device.
    public let name: String

    /// Creates the device `name` (at most 15 bytes), non-blocking.
    public init(name: String) throws(PacketIOError) {
        var actual = [CChar](repeating: 0, count: 16)
        let fd = fp_tun_open(name, &actual)
        guard fd >= 0 else { throw PacketIOError(operation: "open TUN device \(name)", code: -fd) }
        descriptor = fd
        self.name = String(decoding: actual.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    deinit { close(descriptor) }

    /// Reads one packet into `buffer` without waiting. Returns its length, 0 when none is
    /// waiting. A packet longer than the buffer is cut (the device's MTU should not allow
    /// one).
    @inline(__always)
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(PacketIOError) -> Int {
        let n = fp_read_packet(descriptor, buffer.baseAddress, UInt(buffer.count))
        if n < 0 { throw PacketIOError(operation: "read(\(name))", code: Int32(-n)) }
        return n
    }
}

extension RawIPv4Socket {
    /// Marks every packet this socket sends with `mark` (`SO_MARK`), so a routing rule can
    /// send them another way than the same destinations' other traffic. Needs
    /// `CAP_NET_ADMIN`.
    public func setMark(_ mark: UInt32) throws(PacketIOError) {
        let r = fp_set_mark(descriptor, mark)
        if r != 0 { throw PacketIOError(operation: "setsockopt(SO_MARK)", code: r) }
    }

    /// Sends only through the interface `name`, whatever the routes say of other ones.
    public func bindToInterface(_ name: String) throws(PacketIOError) {
        let r = fp_bind_device(descriptor, name)
        if r != 0 { throw PacketIOError(operation: "setsockopt(SO_BINDTODEVICE, \(name))", code: r) }
    }

    /// Sends one whole IPv4 packet (header included; the socket must be a
    /// ``headerIncludedSender()``) to the destination its header names. Returns 0, or the
    /// error number when the kernel refused it (no buffer space, no route): the caller
    /// counts it, nothing is retried.
    @inline(__always)
    public func sendIPv4Packet(_ packet: UnsafeRawBufferPointer) -> Int32 {
        guard packet.count >= IPv4.headerLength else { return EINVAL }
        let destination = packet.loadUnaligned(fromByteOffset: 16, as: UInt32.self)
        return fp_send_ipv4(descriptor, packet.baseAddress, UInt(packet.count), destination)
    }

    /// Waits up to `timeoutNanoseconds` (negative: forever) until this socket or
    /// `other` has something to read. Returns false on timeout or signal.
    public func waitReadable(orDescriptor other: Int32, timeoutNanoseconds: Int64) throws(PacketIOError) -> Bool {
        let r = fp_wait_readable2(descriptor, other, timeoutNanoseconds)
        if r == -EINTR || r == 0 { return false }
        if r < 0 { throw PacketIOError(operation: "ppoll", code: -r) }
        return true
    }
}
