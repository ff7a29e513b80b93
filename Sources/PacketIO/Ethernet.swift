import FixedStorage

/// Ethernet, ARP and IPv4 framing for backends that see whole frames (DPDK). Pure
/// functions over buffers, so they are tested without a port.
public enum Ethernet {
    public static let headerLength = 14
    public static let typeIPv4: UInt16 = 0x0800
    public static let typeARP: UInt16 = 0x0806
    /// An ARP packet for IPv4 over Ethernet, after the Ethernet header.
    public static let arpLength = 28
    /// The shortest frame a NIC sends without padding (without the CRC).
    public static let minimumFrameLength = 60

    /// A MAC address in the low 48 bits, first byte most significant.
    public typealias Address = UInt64
    public static let broadcast: Address = 0xFFFF_FFFF_FFFF

    /// `aa:bb:cc:dd:ee:ff`.
    public static func parse(_ text: String) -> Address? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 6 else { return nil }
        var value: Address = 0
        for p in parts {
            guard p.count == 2, let b = UInt8(p, radix: 16) else { return nil }
            value = value << 8 | Address(b)
        }
        return value
    }

    public static func format(_ address: Address) -> String {
        (0..<6).map { i in
            let b = UInt8((address >> UInt64(40 - 8 * i)) & 0xFF)
            return (b < 16 ? "0" : "") + String(b, radix: 16)
        }.joined(separator: ":")
    }

    /// The address in 6 bytes at `offset`.
    @inline(__always)
    public static func loadAddress(_ p: UnsafeRawPointer, at offset: Int) -> Address {
        var value: Address = 0
        for i in 0..<6 { value = value << 8 | Address(p.load(fromByteOffset: offset + i, as: UInt8.self)) }
        return value
    }

    @inline(__always)
    public static func storeAddress(_ address: Address, _ p: UnsafeMutableRawPointer, at offset: Int) {
        for i in 0..<6 {
            p.storeBytes(of: UInt8((address >> UInt64(40 - 8 * i)) & 0xFF), toByteOffset: offset + i, as: UInt8.self)
        }
    }

    @inline(__always)
    static func load16(_ p: UnsafeRawPointer, _ offset: Int) -> UInt16 {
        UInt16(p.load(fromByteOffset: offset, as: UInt8.self)) << 8
            | UInt16(p.load(fromByteOffset: offset + 1, as: UInt8.self))
    }

    @inline(__always)
    static func store16(_ v: UInt16, _ p: UnsafeMutableRawPointer, _ offset: Int) {
        p.storeBytes(of: UInt8(v >> 8), toByteOffset: offset, as: UInt8.self)
        p.storeBytes(of: UInt8(v & 0xFF), toByteOffset: offset + 1, as: UInt8.self)
    }

    @inline(__always)
    static func load32(_ p: UnsafeRawPointer, _ offset: Int) -> UInt32 {
        UInt32(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// Writes the Ethernet header.
    @inline(__always)
    public static func writeHeader(
        _ p: UnsafeMutableRawPointer, destination: Address, source: Address, type: UInt16
    ) {
        storeAddress(destination, p, at: 0)
        storeAddress(source, p, at: 6)
        store16(type, p, 12)
    }

    /// What a received frame is, for a station with address `ip` and MAC `mac`.
    public enum Frame: Equatable, Sendable {
        /// An IPv4 packet to `ip`, of protocol `protocolNumber`: the packet starts at byte 14,
        /// its payload `headerLength` bytes later and is `payloadLength` long.
        case ipv4(source: UInt32, sourceMAC: Address, protocolNumber: UInt8, headerLength: Int, payloadLength: Int)
        /// An ARP request for `ip`: answer it.
        case arpRequest(senderIP: UInt32, senderMAC: Address)
        /// Another ARP packet whose sender is worth learning (a reply, or a request for
        /// someone else).
        case arpOther(senderIP: UInt32, senderMAC: Address)
        /// For another station, another protocol, or our own frame coming back.
        case foreign
        /// Too short, or an IPv4 header that is malformed or whose checksum is wrong.
        case malformed
    }

    /// Classifies the frame of `length` bytes at `p` (all of it present).
    public static func classify(_ p: UnsafeRawPointer, length: Int, ip: UInt32, mac: Address) -> Frame {
        guard length >= headerLength else { return .malformed }
        let destination = loadAddress(p, at: 0)
        let source = loadAddress(p, at: 6)
        if source == mac { return .foreign }
        switch load16(p, 12) {
        case typeIPv4:
            guard destination == mac || destination == broadcast else { return .foreign }
            // No station sends from a zero or group address: learning one would misdirect replies.
            guard source != 0, source & 0x0100_0000_0000 == 0 else { return .malformed }
            let packet = UnsafeRawBufferPointer(start: p + headerLength, count: length - headerLength)
            guard packet.count >= 20, packet[0] >> 4 == 4 else { return .malformed }
            let ihl = Int(packet[0] & 0xF) * 4
            let total = Int(packet[2]) << 8 | Int(packet[3])
            guard ihl >= 20, ihl <= total, total <= packet.count else { return .malformed }
            guard load32(packet.baseAddress!, 16) == ip else { return .foreign }
            // A fragment is not a whole FCP packet, and nothing here reassembles.
            guard load16(packet.baseAddress!, 6) & 0x3FFF == 0 else { return .malformed }
            guard IPv4.checksum(UnsafeRawBufferPointer(rebasing: packet[0..<ihl])) == 0 else { return .malformed }
            return .ipv4(
                source: load32(packet.baseAddress!, 12), sourceMAC: source, protocolNumber: packet[9],
                headerLength: ihl, payloadLength: total - ihl)
        case typeARP:
            guard length >= headerLength + arpLength else { return .malformed }
            let a = p + headerLength
            // Ethernet (1), IPv4 (0x0800), 6-byte and 4-byte addresses.
            guard load16(a, 0) == 1, load16(a, 2) == typeIPv4, a.load(fromByteOffset: 4, as: UInt8.self) == 6,
                a.load(fromByteOffset: 5, as: UInt8.self) == 4
            else { return .malformed }
            let operation = load16(a, 6)
            let senderMAC = loadAddress(a, at: 8)
            let senderIP = load32(a, 14)
            let targetIP = load32(a, 24)
            if senderIP == 0 || senderMAC == 0 || senderMAC & 0x0100_0000_0000 != 0 { return .foreign }
            if operation == 1 && targetIP == ip { return .arpRequest(senderIP: senderIP, senderMAC: senderMAC) }
            return .arpOther(senderIP: senderIP, senderMAC: senderMAC)
        default:
            return .foreign
        }
    }

    /// Writes an ARP frame (operation 1 request, 2 reply) into `p` (at least 60 bytes) and
    /// returns its length, padded to the minimum.
    public static func writeARP(
        _ p: UnsafeMutableRawPointer, operation: UInt16, senderMAC: Address, senderIP: UInt32, targetMAC: Address,
        targetIP: UInt32
    ) -> Int {
        writeHeader(p, destination: operation == 1 ? broadcast : targetMAC, source: senderMAC, type: typeARP)
        let a = p + headerLength
        store16(1, a, 0)
        store16(typeIPv4, a, 2)
        a.storeBytes(of: UInt8(6), toByteOffset: 4, as: UInt8.self)
        a.storeBytes(of: UInt8(4), toByteOffset: 5, as: UInt8.self)
        store16(operation, a, 6)
        storeAddress(senderMAC, a, at: 8)
        a.storeBytes(of: senderIP.bigEndian, toByteOffset: 14, as: UInt32.self)
        storeAddress(operation == 1 ? 0 : targetMAC, a, at: 18)
        a.storeBytes(of: targetIP.bigEndian, toByteOffset: 24, as: UInt32.self)
        (p + headerLength + arpLength).initializeMemory(
            as: UInt8.self, repeating: 0, count: minimumFrameLength - headerLength - arpLength)
        return minimumFrameLength
    }
}

extension IPv4 {
    /// The Internet checksum of `bytes` (0 over a header that carries a correct one).
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var sum: UInt32 = 0
        var i = 0
        while i + 1 < bytes.count {
            sum &+= UInt32(bytes[i]) << 8 | UInt32(bytes[i + 1])
            i += 2
        }
        if i < bytes.count { sum &+= UInt32(bytes[i]) << 8 }
        while sum >> 16 != 0 { sum = (sum & 0xFFFF) &+ (sum >> 16) }
        return ~UInt16(truncatingIfNeeded: sum)
    }

    /// Fills in the checksum of the 20-byte header at `p`.
    @inline(__always)
    public static func setChecksum(_ p: UnsafeMutableRawPointer) {
        p.storeBytes(of: 0, toByteOffset: 10, as: UInt16.self)
        let c = checksum(UnsafeRawBufferPointer(start: p, count: headerLength))
        Ethernet.store16(c, p, 10)
    }
}

/// IPv4 address to MAC, learned from what arrives and from ARP: a fixed-size
/// open-addressing table allocated once, so lookups and updates never allocate.
public struct NeighbourTable: ~Copyable {
    /// Slots (a power of two, at least twice the expected addresses).
    public let capacity: Int
    let keys: FixedBuffer<UInt32>
    let values: FixedBuffer<Ethernet.Address>
    /// When an ARP request for the address was last sent (ns), for addresses not yet known.
    let asked: FixedBuffer<UInt64>
    public private(set) var count = 0
    /// When a question last found no slot (`.max`: never).
    var overflowAsked = UInt64.max
    static let probes = 16

    /// A table for about `expected` addresses.
    public init(expected: Int) {
        var c = 64
        while c < expected * 2 { c <<= 1 }
        capacity = c
        keys = FixedBuffer(repeating: 0, count: c)
        values = FixedBuffer(repeating: 0, count: c)
        asked = FixedBuffer(repeating: 0, count: c)
    }

    /// The home slot: the product's high bits, which depend on every bit of the address
    /// (hosts numbered in the low bits of several subnets must not collide).
    @inline(__always)
    func home(_ ip: UInt32) -> Int {
        Int(truncatingIfNeeded: (UInt64(ip) &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - capacity.trailingZeroBitCount))
    }

    /// The slot of `ip`, or where it would go: an empty slot, else one whose MAC is still
    /// being asked for, else (the window is full of known peers) its home slot, taken
    /// over: the table forgets rather than grows.
    @inline(__always)
    func slot(_ ip: UInt32) -> (index: Int, found: Bool) {
        let h = home(ip)
        var pending = -1
        for k in 0..<Self.probes {
            let i = (h + k) & (capacity - 1)
            if keys[i] == ip { return (i, true) }
            if keys[i] == 0 { return (i, false) }
            if pending < 0 && values[i] == 0 { pending = i }
        }
        return (pending >= 0 ? pending : h, false)
    }

    /// The MAC of `ip`, if known.
    @inline(__always)
    public func lookup(_ ip: UInt32) -> Ethernet.Address? {
        let (i, found) = slot(ip)
        return found && values[i] != 0 ? values[i] : nil
    }

    /// Records that `ip` is at `mac`.
    @inline(__always)
    public mutating func learn(_ ip: UInt32, _ mac: Ethernet.Address) {
        guard ip != 0, mac != 0 else { return }
        let (i, found) = slot(ip)
        if found && values[i] == mac { return }
        let wasKnown = keys[i] != 0 && values[i] != 0
        keys[i] = ip
        values[i] = mac
        if !wasKnown { count += 1 }
    }

    /// Updates `ip`'s MAC only if the table already holds it (asked for or known): what
    /// other hosts' ARP traffic says is worth that much, not a slot of its own.
    @inline(__always)
    public mutating func refresh(_ ip: UInt32, _ mac: Ethernet.Address) {
        guard ip != 0, mac != 0 else { return }
        let (i, found) = slot(ip)
        guard found else { return }
        if values[i] == 0 { count += 1 }
        values[i] = mac
    }

    /// Whether to ask for `ip` now (at most once per `interval` ns per address); notes
    /// the question.
    public mutating func shouldAsk(_ ip: UInt32, now: UInt64, interval: UInt64) -> Bool {
        guard ip != 0 else { return false }
        let (i, found) = slot(ip)
        if found && values[i] != 0 { return false }
        if found && now &- asked[i] < interval { return false }
        // Never push a known peer out for an address that may not answer: questions that
        // find no slot share one rate limit instead.
        if !found && keys[i] != 0 && values[i] != 0 {
            guard overflowAsked == .max || now &- overflowAsked >= interval else { return false }
            overflowAsked = now
            return true
        }
        keys[i] = ip
        values[i] = 0
        asked[i] = now
        return true
    }
}
