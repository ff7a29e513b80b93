import DPDKShim
import FixedStorage
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// How to bring up DPDK and its port: the `dpdk:` section of a daemon's configuration.
public struct DPDKSettings: Sendable, Hashable {
    /// The EAL's arguments, without the program name: cores (`-l`), memory (`-m`,
    /// `--no-huge`), devices (`--vdev`, `-a` for the PCI allow-list), `--no-shconf`.
    public var ealArguments: [String]
    /// The port's device name (`net_af_packet0`, a PCI address); nil: the first port.
    public var port: String?
    public var receiveDescriptors = 1024
    public var transmitDescriptors = 1024
    /// Packet buffers in the pool (a power of two minus one suits the mempool best).
    public var buffers = 8191
    /// Send every frame to this MAC (a router's) instead of resolving each address with ARP.
    public var gateway: Ethernet.Address?
    /// While waiting for packets, sleep this long between polls (0: poll without pause,
    /// the usual for a core given to DPDK).
    public var idlePollSleepNanoseconds: Int64 = 0
    /// DSCP of the FCP packets sent.
    public var dscp: UInt8 = RawIPv4Socket.defaultDSCP

    public init(ealArguments: [String], port: String? = nil) {
        self.ealArguments = ealArguments
        self.port = port
    }

    /// The arguments that work without hugepages or PCI, for tests: two cores, 256 MB,
    /// no shared runtime files.
    public static func testArguments(device: String) -> [String] {
        [
            "-l", "0-1", "--no-huge", "--no-pci", "--no-shconf", "-m", "256", "--vdev=\(device)",
            "--log-level=lib.eal:error",
        ]
    }
}

/// DPDK could not start, or a port could not be set up: why, naming the cause.
public struct DPDKError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var code: Int32
    public var description: String { reason }
}

/// The process-wide DPDK environment (EAL): initialised once.
public enum DPDKEnvironment {
    static let initialised = Mutex<[String]?>(nil)

    /// Whether this build links DPDK (`swift build --traits DPDK`).
    public static var isAvailable: Bool { fp_dpdk_available() != 0 }
    public static var version: String { String(cString: fp_dpdk_version()) }

    /// Initialises the EAL with `arguments`. The EAL can start once per process: a second
    /// call with the same arguments does nothing, with others it fails.
    public static func initialize(arguments: [String]) throws(DPDKError) {
        let result: Result<Void, DPDKError> = initialised.withLock { state in
            if let previous = state {
                return previous == arguments
                    ? .success(())
                    : .failure(
                        DPDKError(
                            reason: "DPDK is already initialised with other EAL arguments (\(previous))", code: EALREADY
                        ))
            }
            var error = [CChar](repeating: 0, count: 512)
            let argv = (["fastpass"] + arguments).map { strdup($0) }
            defer { argv.forEach { free($0) } }
            var pointers: [UnsafeMutablePointer<CChar>?] = argv + [nil]
            let r = fp_dpdk_eal_init(Int32(argv.count), &pointers, &error, error.count)
            if r != 0 {
                let text = String(cMessage: error)
                return .failure(
                    DPDKError(reason: "\(text); EAL arguments: \(arguments.joined(separator: " "))", code: -r))
            }
            state = arguments
            return .success(())
        }
        try result.get()
    }
}

/// FCP over a DPDK port: Ethernet + IPv4 (protocol 222) framing done here, ARP answered
/// for the local address and used to find each peer's MAC (learned, too, from every
/// packet that arrives). One RX and one TX queue, polled by the thread that calls
/// ``receive(into:waitingUpTo:)``; the pool is on the port's NUMA node. One thread owns
/// the port: it is not safe to call from two at once.
///
/// A send to an address whose MAC is not yet known asks for it with ARP and drops the
/// datagram (counted in ``PacketIOStatistics/unresolved``): FCP retransmits.
public final class DPDKPort: PacketIO {
    public let settings: DPDKSettings
    /// The local IPv4 address (host byte order): packets to others are not taken.
    public let localAddress: UInt32
    public let mac: Ethernet.Address
    public let portID: UInt16
    public let deviceName: String
    public let driver: String
    public let numaNode: Int
    /// Whether the port fills in IPv4 header checksums.
    public let checksumOffload: Bool
    /// The counters, with the port's own count of frames it dropped (read from the
    /// device: call it per report, not per packet).
    public var statistics: PacketIOStatistics {
        var s = counters
        if !closed { s.receiveMissed = fp_dpdk_receive_missed(portID) }
        return s
    }
    var counters = PacketIOStatistics()
    var neighbours: NeighbourTable
    /// Frames being built for one send call, and a buffer for ARP.
    let frameBytes: FixedBuffer<UInt8>
    let frameLengths: FixedBuffer<Int32>
    let controlBytes: FixedBuffer<UInt8>
    var frames: UnsafeMutableRawPointer { UnsafeMutableRawPointer(frameBytes.base) }
    var control: UnsafeMutableRawPointer { UnsafeMutableRawPointer(controlBytes.base) }
    static let frameStride = 2048
    static let arpInterval: UInt64 = 1_000_000
    private var closed = false

    /// Initialises DPDK (if this process has not) with `settings.ealArguments`, then sets
    /// up and starts the port; `pollingCPU` (the thread that will poll it) places the
    /// pool of a port that has no NUMA node of its own.
    public init(settings: DPDKSettings, localAddress: UInt32, expectedPeers: Int = 1024, pollingCPU: Int? = nil)
        throws(DPDKError)
    {
        guard DPDKEnvironment.isAvailable else {
            throw DPDKError(
                reason:
                    "this build has no DPDK support: build with `swift build -c release --traits DPDK` (needs libdpdk-dev and libnuma-dev)",
                code: ENOTSUP)
        }
        try DPDKEnvironment.initialize(arguments: settings.ealArguments)
        var info = fp_dpdk_port_info()
        var error = [CChar](repeating: 0, count: 512)
        let r = fp_dpdk_port_open(
            settings.port, UInt16(clamping: settings.receiveDescriptors),
            UInt16(clamping: settings.transmitDescriptors),
            UInt32(clamping: settings.buffers), Int32(clamping: pollingCPU ?? -1), &info, &error, error.count)
        guard r == 0 else {
            var text = String(cMessage: error)
            let namesDevice = settings.ealArguments.contains {
                $0.hasPrefix("--vdev") || $0 == "-a" || $0.hasPrefix("--allow")
            }
            if r == -ENODEV && fp_dpdk_port_count() == 0 && namesDevice {
                text =
                    "DPDK found no port: the device in eal_args failed to probe (the EAL's lines above say why: an interface that does not exist, a PCI device not bound to vfio-pci\(geteuid() != 0 ? ", or missing permissions: af_packet, tap and PCI devices need root" : ""))"
            }
            throw DPDKError(reason: text, code: -r)
        }
        self.settings = settings
        self.localAddress = localAddress
        portID = info.port
        mac = withUnsafeBytes(of: info.mac) { Ethernet.loadAddress($0.baseAddress!, at: 0) }
        deviceName = withUnsafeBytes(of: info.name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        driver = withUnsafeBytes(of: info.driver) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        numaNode = Int(info.numa_node)
        checksumOffload = info.ipv4_checksum_offload != 0
        neighbours = NeighbourTable(expected: expectedPeers)
        frameBytes = FixedBuffer(repeating: 0, count: PacketBatch.maximumCapacity * Self.frameStride, alignment: 64)
        frameLengths = FixedBuffer(repeating: 0, count: PacketBatch.maximumCapacity)
        controlBytes = FixedBuffer(repeating: 0, count: 64, alignment: 64)
    }

    deinit {
        close()
    }

    /// Stops the port (the EAL stays: it cannot start twice in one process).
    public func close() {
        guard !closed else { return }
        closed = true
        fp_dpdk_port_close(portID)
    }

    /// Gives the calling thread a DPDK lcore id, so buffers come from its own cache. Call it
    /// from the thread that will poll. Returns 0 or an error number.
    /// Returns why it could not, if it could not (the thread then works from the shared pool).
    @discardableResult
    public func registerPollingThread() -> String? {
        let e = -fp_dpdk_register_thread()
        return e == 0
            ? nil
            : "cannot register the polling thread with DPDK: \(String(cString: strerror(e))); buffers come from the shared pool"
    }

    /// One line for logs: device, driver, MAC, NUMA node, checksum offload.
    public var summary: String {
        "dpdk \(deviceName) (\(driver), \(Ethernet.format(mac)), NUMA node \(numaNode < 0 ? "any" : "\(numaNode)"), IPv4 checksum \(checksumOffload ? "offloaded" : "in software"))"
    }

    /// Peers whose MAC is known.
    public var knownNeighbours: Int { neighbours.count }

    public func receive(into batch: inout PacketBatch, waitingUpTo timeoutNanoseconds: Int64) throws(PacketIOError)
        -> Int
    {
        batch.removeAll()
        guard !closed else { throw PacketIOError(operation: "receive on closed DPDK port \(deviceName)", code: EBADF) }
        var started: UInt64 = 0
        while true {
            let n = receiveOnce(into: &batch)
            if n > 0 || timeoutNanoseconds == 0 { return n }
            let now = RealtimeClock.now()
            if started == 0 {
                started = now
            } else if timeoutNanoseconds > 0 && now &- started >= UInt64(timeoutNanoseconds) {
                return 0
            }
            if settings.idlePollSleepNanoseconds > 0 {
                var t = timespec(tv_sec: 0, tv_nsec: Int(settings.idlePollSleepNanoseconds))
                nanosleep(&t, nil)
            }
        }
    }

    /// One poll of the RX queue: frames land in the batch's buffers, FCP packets stay
    /// (moved to the buffer's start, as sockets deliver them), ARP is answered or learned.
    @inline(__always)
    func receiveOnce(into batch: inout PacketBatch) -> Int {
        let n = Int(
            fp_dpdk_receive(
                portID, batch.bytes.base, UInt32(batch.stride), batch.lengths.base,
                Int32(batch.capacity)))
        guard n > 0 else { return 0 }
        counters.receiveBatches &+= 1
        var kept = 0
        for i in 0..<n {
            let length = Int(batch.lengths[i])
            let base = batch.storage + i * batch.stride
            guard length <= batch.stride else {
                counters.tooLong &+= 1
                continue
            }
            switch Ethernet.classify(base, length: length, ip: localAddress, mac: mac) {
            case .ipv4(let source, let sourceMAC, let protocolNumber, let headerLength, let payloadLength):
                guard protocolNumber == UInt8(RawIPv4Socket.fcpProtocol) else {
                    counters.notForUs &+= 1
                    continue
                }
                neighbours.learn(source, sourceMAC)
                (batch.storage + kept * batch.stride).copyMemory(
                    from: base + Ethernet.headerLength, byteCount: headerLength + payloadLength)
                batch.lengths[kept] = Int32(payloadLength)
                batch.offsets[kept] = Int32(headerLength)
                batch.addresses[kept] = source
                batch.arrivals[kept] = 0
                kept += 1
            case .arpRequest(let ip, let senderMAC):
                neighbours.learn(ip, senderMAC)
                let length = Ethernet.writeARP(
                    control, operation: 2, senderMAC: mac, senderIP: localAddress, targetMAC: senderMAC, targetIP: ip)
                if sendControl(length: length) { counters.arpAnswered &+= 1 }
            case .arpOther(let ip, let senderMAC):
                neighbours.refresh(ip, senderMAC)
            case .foreign:
                counters.notForUs &+= 1
            case .malformed:
                counters.badHeader &+= 1
            }
        }
        batch.count = kept
        counters.received &+= UInt64(kept)
        return kept
    }

    /// Sends the ARP frame in `control`; one the port refuses is counted in `sendDropped`.
    @inline(__always)
    func sendControl(length: Int) -> Bool {
        var l = Int32(length)
        let sent = fp_dpdk_send(portID, controlBytes.base, 64, &l, 1, 0) == 1
        if !sent { counters.sendDropped &+= 1 }
        return sent
    }

    /// The MAC to send to `ip` with, asking for it with ARP if unknown.
    @inline(__always)
    func resolve(_ ip: UInt32) -> Ethernet.Address? {
        if let g = settings.gateway { return g }
        if let m = neighbours.lookup(ip) { return m }
        if neighbours.shouldAsk(ip, now: RealtimeClock.now(), interval: Self.arpInterval) { requestARP(ip) }
        counters.unresolved &+= 1
        return nil
    }

    /// Records that `ip` is at `mac` (a static neighbour; what arrives from it later still
    /// updates it).
    public func addNeighbour(_ ip: UInt32, mac: Ethernet.Address) { neighbours.learn(ip, mac) }

    /// Asks now with ARP for the MACs of `addresses` (the peers it will send to), so the
    /// first packet to each need not be dropped while its address resolves.
    public func resolveAhead(_ addresses: [UInt32]) {
        guard !closed else { return }
        let now = RealtimeClock.now()
        for ip in addresses where settings.gateway == nil && neighbours.lookup(ip) == nil {
            if neighbours.shouldAsk(ip, now: now, interval: Self.arpInterval) { requestARP(ip) }
        }
    }

    /// Broadcasts an ARP request for `ip`.
    func requestARP(_ ip: UInt32) {
        let length = Ethernet.writeARP(
            control, operation: 1, senderMAC: mac, senderIP: localAddress, targetMAC: 0, targetIP: ip)
        if sendControl(length: length) { counters.arpRequestsSent &+= 1 }
    }

    public func send(_ batch: inout PacketBatch) throws(PacketIOError) -> Int {
        guard batch.count > 0 else { return 0 }
        defer { batch.removeAll() }
        guard !closed else { throw PacketIOError(operation: "send on closed DPDK port \(deviceName)", code: EBADF) }
        var n = 0
        for i in 0..<batch.count {
            precondition(batch.offsets[i] == 0)
            let destination = batch.addresses[i]
            let length = Int(batch.lengths[i])
            guard length + Ethernet.headerLength + IPv4.headerLength <= Self.frameStride,
                let to = resolve(destination)
            else {
                counters.sendDropped &+= 1
                continue
            }
            let frame = frames + n * Self.frameStride
            Ethernet.writeHeader(frame, destination: to, source: mac, type: Ethernet.typeIPv4)
            let ip = frame + Ethernet.headerLength
            IPv4.writeHeader(
                into: UnsafeMutableRawBufferPointer(start: ip, count: IPv4.headerLength), source: localAddress,
                destination: destination, payloadLength: length, dscp: settings.dscp)
            if !checksumOffload { IPv4.setChecksum(ip) }
            (ip + IPv4.headerLength).copyMemory(from: batch.storage + i * batch.stride, byteCount: length)
            frameLengths[n] = Int32(Ethernet.headerLength + IPv4.headerLength + length)
            n += 1
        }
        counters.sendBatches &+= 1
        let sent =
            n == 0
            ? 0
            : Int(
                fp_dpdk_send(
                    portID, frameBytes.base, UInt32(Self.frameStride), frameLengths.base,
                    Int32(n), checksumOffload ? 1 : 0))
        counters.sendDropped &+= UInt64(n - sent)
        counters.sent &+= UInt64(sent)
        return sent
    }

    /// Sends one whole IPv4 packet (header included, checksum filled in) to the
    /// destination its header names. Returns 0, or `EHOSTUNREACH` (MAC not yet known:
    /// asked for), `EMSGSIZE` (longer than a frame buffer) or `ENOBUFS` (the port's queue
    /// is full). The caller counts these: they are not FCP, and stay out of the FCP
    /// counters (but for `unresolved`).
    public func sendIPv4Packet(_ packet: UnsafeRawBufferPointer) -> Int32 {
        guard !closed else { return EBADF }
        guard packet.count >= IPv4.headerLength, packet.count + Ethernet.headerLength <= Self.frameStride else {
            return EMSGSIZE
        }
        guard let to = resolve(IPv4.destination(ofHeader: packet)) else { return EHOSTUNREACH }
        Ethernet.writeHeader(frames, destination: to, source: mac, type: Ethernet.typeIPv4)
        (frames + Ethernet.headerLength).copyMemory(from: packet.baseAddress!, byteCount: packet.count)
        var l = Int32(Ethernet.headerLength + packet.count)
        let sent = fp_dpdk_send(portID, frameBytes.base, UInt32(Self.frameStride), &l, 1, 0)
        return sent == 1 ? 0 : ENOBUFS
    }
}

extension String {
    /// The NUL-terminated text a C call wrote into `buffer`.
    init(cMessage buffer: [CChar]) {
        self.init(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
