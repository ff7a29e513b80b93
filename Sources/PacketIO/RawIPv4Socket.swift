import CPlatform

#if canImport(Glibc)
    import Glibc
#endif

/// FCP over raw IPv4 sockets: IP protocol 222, bound to one local address, sending and
/// receiving in batches (`recvmmsg`/`sendmmsg`), marked DSCP 46 (expedited forwarding) so
/// switches put FCP ahead of the data it schedules. Needs `CAP_NET_RAW`.
public final class RawIPv4Socket: PacketIO {
    /// IANA's "any private encryption scheme" number, which FCP uses.
    public static let fcpProtocol: Int32 = 222
    /// Expedited forwarding.
    public static let defaultDSCP: UInt8 = 46

    public let descriptor: Int32
    /// The bound address (host byte order; 0: any).
    public let localAddress: UInt32
    public private(set) var statistics = PacketIOStatistics()
    /// Whether received datagrams carry the kernel's receive time.
    public private(set) var stampsArrivals = false

    /// Opens a raw socket for `protocolNumber`, bound to `address` (host byte order; 0 takes
    /// packets to any local address), sending with DSCP `dscp`.
    public init(
        address: UInt32, protocolNumber: Int32 = RawIPv4Socket.fcpProtocol, dscp: UInt8 = RawIPv4Socket.defaultDSCP,
        receiveBufferBytes: Int32 = 4 << 20
    ) throws(PacketIOError) {
        let fd = socket(AF_INET, Int32(SOCK_RAW.rawValue), protocolNumber)
        guard fd >= 0 else {
            throw PacketIOError(operation: "socket(AF_INET, SOCK_RAW, \(protocolNumber))", code: errno)
        }
        var tos = Int32(dscp) << 2
        var buffer = receiveBufferBytes
        var local = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET)
        local.sin_addr.s_addr = address.bigEndian
        let failure: (String, Int32)? =
            if setsockopt(fd, Int32(IPPROTO_IP), IP_TOS, &tos, socklen_t(MemoryLayout<Int32>.size)) != 0 {
                ("setsockopt(IP_TOS)", errno)
            } else if setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buffer, socklen_t(MemoryLayout<Int32>.size)) != 0 {
                ("setsockopt(SO_RCVBUF)", errno)
            } else if withUnsafePointer(
                to: &local,
                {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }) != 0
            {
                ("bind(\(IPv4.format(address)))", errno)
            } else {
                nil
            }
        if let (operation, code) = failure {
            close(fd)
            throw PacketIOError(operation: operation, code: code)
        }
        descriptor = fd
        localAddress = address
        // Between socket() and bind() the socket took every protocol-222 packet the host
        // received, for any address: they are not ours, so they go before the first read.
        var scrap = [UInt8](repeating: 0, count: 2048)
        while scrap.withUnsafeMutableBytes({ recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }) >= 0 {}
    }

    deinit { close(descriptor) }

    /// A send-only socket whose datagrams carry their own IPv4 header (`IPPROTO_RAW`),
    /// so each may have its own source address: a load generator speaking for many
    /// endpoints from one socket. Build headers with ``IPv4/writeHeader(into:source:destination:payloadLength:dscp:protocolNumber:)``.
    public static func headerIncludedSender() throws(PacketIOError) -> RawIPv4Socket {
        try RawIPv4Socket(address: 0, protocolNumber: Int32(IPPROTO_RAW), receiveBufferBytes: 1 << 16)
    }

    /// Takes only packets to addresses in `network`/`prefixLength` from now on (a kernel
    /// filter, so the rest are never copied to this socket).
    public func filterDestinations(network: UInt32, prefixLength: Int) throws(PacketIOError) {
        precondition(prefixLength >= 0 && prefixLength <= 32)
        let mask: UInt32 = prefixLength == 0 ? 0 : ~UInt32(0) << UInt32(32 - prefixLength)
        let r = fp_filter_destination(descriptor, network.bigEndian, mask.bigEndian)
        if r != 0 { throw PacketIOError(operation: "setsockopt(SO_ATTACH_FILTER)", code: r) }
    }

    /// Stamps every datagram received from now on with the time the kernel received it
    /// (``PacketBatch/arrivalTime(_:)``): what a process that wakes late needs to judge
    /// when a packet reached the host rather than when it got to it.
    public func enableReceiveTimestamps() throws(PacketIOError) {
        let r = fp_enable_receive_timestamps(descriptor)
        if r != 0 { throw PacketIOError(operation: "setsockopt(SO_TIMESTAMPNS)", code: r) }
        stampsArrivals = true
    }

    public func receive(into batch: inout PacketBatch, waitingUpTo timeoutNanoseconds: Int64) throws(PacketIOError)
        -> Int
    {
        batch.removeAll()
        if timeoutNanoseconds != 0 {
            let r = fp_wait_readable(descriptor, timeoutNanoseconds)
            if r == -EINTR || r == 0 { return 0 }
            if r < 0 { throw PacketIOError(operation: "ppoll", code: -r) }
        }
        let n = fp_receive_batch(
            descriptor, batch.bytes.base, Int32(batch.stride), batch.lengths.base,
            batch.addresses.base, stampsArrivals ? batch.arrivals.base : nil, Int32(batch.capacity))
        if n < 0 { throw PacketIOError(operation: "recvmmsg", code: -n) }
        statistics.receiveBatches &+= 1
        // Compact in place: keep the FCP payloads, drop what is cut or malformed.
        var kept = 0
        for i in 0..<Int(n) {
            let wire = Int(batch.lengths[i])
            let base = batch.storage + i * batch.stride
            guard wire <= batch.stride else {
                statistics.tooLong &+= 1
                continue
            }
            guard let headerLength = IPv4.payloadOffset(UnsafeRawBufferPointer(start: base, count: wire)) else {
                statistics.badHeader &+= 1
                continue
            }
            // A raw socket bound to an address still sees packets for the host's other
            // addresses in some kernels' paths (and saw all of them before bind).
            if localAddress != 0
                && IPv4.destination(ofHeader: UnsafeRawBufferPointer(start: base, count: wire)) != localAddress
            {
                statistics.notForUs &+= 1
                continue
            }
            if kept != i {
                (batch.storage + kept * batch.stride).copyMemory(from: base, byteCount: wire)
            }
            batch.lengths[kept] = Int32(
                IPv4.totalLength(UnsafeRawBufferPointer(start: base, count: wire)) - headerLength)
            batch.offsets[kept] = Int32(headerLength)
            batch.addresses[kept] = UInt32(bigEndian: batch.addresses[i])
            batch.arrivals[kept] = stampsArrivals ? batch.arrivals[i] : 0
            kept += 1
        }
        batch.count = kept
        statistics.received &+= UInt64(kept)
        return kept
    }

    public func send(_ batch: inout PacketBatch) throws(PacketIOError) -> Int {
        guard batch.count > 0 else { return 0 }
        for i in 0..<batch.count {
            precondition(batch.offsets[i] == 0)
            batch.addresses[i] = batch.addresses[i].bigEndian
        }
        defer { batch.removeAll() }
        var done = 0
        var dropped = 0
        while done < batch.count {
            let n = fp_send_batch(
                descriptor, batch.bytes.base + done * batch.stride,
                Int32(batch.stride), batch.lengths.base + done, batch.addresses.base + done, Int32(batch.count - done))
            statistics.sendBatches &+= 1
            if n > 0 {
                done += Int(n)
                continue
            }
            // The first datagram left could not go (no route, or the queue is full): drop it
            // and go on with the rest; FCP retransmits what matters.
            if n == 0 || n == -ENETUNREACH || n == -EHOSTUNREACH || n == -ENOBUFS || n == -EPERM {
                statistics.sendDropped &+= 1
                dropped += 1
                done += 1
                continue
            }
            statistics.sendDropped &+= UInt64(batch.count - done)
            throw PacketIOError(operation: "sendmmsg", code: -n)
        }
        statistics.sent &+= UInt64(done - dropped)
        return done - dropped
    }
}

/// IPv4 helpers.
public enum IPv4 {
    /// Where the payload of the IPv4 packet `packet` starts, if its header is well-formed,
    /// carries FCP's protocol number and its total length fits what arrived.
    public static func payloadOffset(_ packet: UnsafeRawBufferPointer, protocolNumber: UInt8 = 222) -> Int? {
        guard packet.count >= 20 else { return nil }
        let versionAndLength = packet[0]
        guard versionAndLength >> 4 == 4 else { return nil }
        let headerLength = Int(versionAndLength & 0xF) * 4
        guard headerLength >= 20, headerLength <= packet.count else { return nil }
        let total = Int(packet[2]) << 8 | Int(packet[3])
        guard total >= headerLength, total <= packet.count, packet[9] == protocolNumber else { return nil }
        return headerLength
    }

    /// Length of the header ``writeHeader(into:source:destination:payloadLength:dscp:protocolNumber:)`` writes.
    public static let headerLength = 20

    /// Writes a 20-byte IPv4 header at the start of `buffer` for a payload of
    /// `payloadLength` bytes (addresses in host byte order). The kernel fills in the
    /// identification and checksum of a header-included raw packet.
    public static func writeHeader(
        into buffer: UnsafeMutableRawBufferPointer, source: UInt32, destination: UInt32, payloadLength: Int,
        dscp: UInt8 = 46, protocolNumber: UInt8 = 222
    ) {
        precondition(buffer.count >= headerLength && payloadLength <= 65_535 - headerLength)
        let total = UInt16(headerLength + payloadLength)
        buffer[0] = 0x45
        buffer[1] = dscp << 2
        buffer[2] = UInt8(total >> 8)
        buffer[3] = UInt8(total & 0xFF)
        buffer[4] = 0
        buffer[5] = 0
        buffer[6] = 0x40  // don't fragment
        buffer[7] = 0
        buffer[8] = 64
        buffer[9] = protocolNumber
        buffer[10] = 0
        buffer[11] = 0
        buffer.storeBytes(of: source.bigEndian, toByteOffset: 12, as: UInt32.self)
        buffer.storeBytes(of: destination.bigEndian, toByteOffset: 16, as: UInt32.self)
    }

    /// The destination address (host byte order) of an IPv4 header.
    public static func destination(ofHeader header: UnsafeRawBufferPointer) -> UInt32 {
        precondition(header.count >= headerLength)
        return UInt32(bigEndian: header.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
    }

    /// The total length field of a packet ``payloadOffset(_:protocolNumber:)`` accepted.
    static func totalLength(_ packet: UnsafeRawBufferPointer) -> Int { Int(packet[2]) << 8 | Int(packet[3]) }

    /// Dotted-quad text of an address in host byte order.
    public static func format(_ address: UInt32) -> String {
        "\(address >> 24).\((address >> 16) & 0xFF).\((address >> 8) & 0xFF).\(address & 0xFF)"
    }

    /// The address in dotted-quad `text`, in host byte order.
    public static func parse(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for p in parts {
            guard p.count <= 3, let b = UInt8(p), String(b) == p else { return nil }
            value = value << 8 | UInt32(b)
        }
        return value
    }
}
