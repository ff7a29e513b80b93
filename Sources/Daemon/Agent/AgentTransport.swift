import CPlatform
import PacketIO

#if canImport(Glibc)
    import Glibc
#endif

/// What the pacing thread sends and receives through: FCP with the arbiter, and the
/// applications' packets when their slot comes.
protocol AgentTransport: AnyObject {
    /// FCP that has arrived (without waiting).
    func receiveFCP(into batch: inout PacketBatch) throws(PacketIOError) -> Int
    func sendFCP(_ batch: inout PacketBatch) throws(PacketIOError) -> Int
    /// Sends one whole IPv4 packet; 0 or the error number (counted by the caller).
    func sendIPv4Packet(_ packet: UnsafeRawBufferPointer) -> Int32
    /// Sleeps until FCP or `descriptor` may have something to read, at most `timeoutNanoseconds`.
    func wait(orDescriptor descriptor: Int32, timeoutNanoseconds: Int64)
    var fcpStatistics: PacketIOStatistics { get }
}

/// FCP on a raw socket bound to the host's address; the packets through a header-included
/// socket bound to the fabric interface and marked so they skip the TUN device's routes.
final class SocketTransport: AgentTransport {
    let fcp: RawIPv4Socket
    let egress: RawIPv4Socket

    init(_ c: AgentDaemonConfiguration) throws(AgentStartError) {
        do {
            fcp = try openFCPSocket(c.address)
        } catch {
            throw AgentStartError(reason: error.reason)
        }
        do {
            egress = try RawIPv4Socket.headerIncludedSender()
            try egress.setMark(c.mark)
            try egress.bindToInterface(c.interface)
        } catch {
            throw AgentStartError(reason: "cannot open the sending socket on \(c.interface): \(error)")
        }
    }

    func receiveFCP(into batch: inout PacketBatch) throws(PacketIOError) -> Int {
        try fcp.receive(into: &batch, waitingUpTo: 0)
    }
    func sendFCP(_ batch: inout PacketBatch) throws(PacketIOError) -> Int { try fcp.send(&batch) }
    @inline(__always)
    func sendIPv4Packet(_ packet: UnsafeRawBufferPointer) -> Int32 { egress.sendIPv4Packet(packet) }
    func wait(orDescriptor descriptor: Int32, timeoutNanoseconds: Int64) {
        _ = try? fcp.waitReadable(orDescriptor: descriptor, timeoutNanoseconds: timeoutNanoseconds)
    }
    var fcpStatistics: PacketIOStatistics { fcp.statistics }
}

/// FCP and the packets both through one DPDK port, for hosts whose NIC is given to DPDK.
/// The port has no descriptor to sleep on: waiting polls it, sleeping on the TUN device
/// in steps of `dpdk.idle_poll_sleep_ns` (at least 10 µs).
final class DPDKTransport: AgentTransport {
    let port: DPDKPort
    let step: Int64

    init(_ c: AgentDaemonConfiguration, settings: DPDKSettings) throws(AgentStartError) {
        do {
            port = try DPDKPort(
                settings: settings, localAddress: c.address, expectedPeers: c.peers.count + 1, pollingCPU: c.pacingCore)
        } catch {
            throw AgentStartError(reason: "cannot start DPDK: \(error)")
        }
        step = max(10_000, settings.idlePollSleepNanoseconds)
        port.resolveAhead([c.arbiter] + c.peers.map(\.address))
    }

    func receiveFCP(into batch: inout PacketBatch) throws(PacketIOError) -> Int {
        try port.receive(into: &batch, waitingUpTo: 0)
    }
    func sendFCP(_ batch: inout PacketBatch) throws(PacketIOError) -> Int { try port.send(&batch) }
    @inline(__always)
    func sendIPv4Packet(_ packet: UnsafeRawBufferPointer) -> Int32 { port.sendIPv4Packet(packet) }
    func wait(orDescriptor descriptor: Int32, timeoutNanoseconds: Int64) {
        _ = fp_wait_readable(descriptor, min(timeoutNanoseconds, step))
    }
    var fcpStatistics: PacketIOStatistics { port.statistics }
}

/// The transport the configuration asks for.
enum AgentTransportKind: CustomStringConvertible {
    case sockets(SocketTransport)
    case dpdk(DPDKTransport)

    static func open(_ c: AgentDaemonConfiguration) throws(AgentStartError) -> AgentTransportKind {
        switch c.io {
        case .sockets: return .sockets(try SocketTransport(c))
        case .dpdk:
            guard let settings = c.dpdk else { throw AgentStartError(reason: "io: dpdk needs a dpdk section") }
            return .dpdk(try DPDKTransport(c, settings: settings))
        }
    }

    var description: String {
        switch self {
        case .sockets: "raw sockets"
        case .dpdk(let t): t.port.summary
        }
    }
}
