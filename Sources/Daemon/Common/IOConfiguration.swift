import Foundation
import PacketIO

/// Which packet I/O backend a daemon's data path uses.
public enum IOBackend: String, Sendable, Hashable {
    /// Raw IPv4 sockets (protocol 222) through the kernel.
    case sockets
    /// A DPDK port (the build needs the DPDK trait); settings in the `dpdk:` section.
    case dpdk
}

/// Opens the raw FCP socket a daemon serves or speaks FCP on; the error names the likely
/// cause in one line.
func openFCPSocket(_ address: UInt32) throws(ArbiterStartError) -> RawIPv4Socket {
    do {
        return try RawIPv4Socket(address: address)
    } catch {
        var reason = "cannot open FCP socket on \(IPv4.format(address)): \(error)"
        if error.code == EPERM { reason += " (raw sockets need CAP_NET_RAW)" }
        if error.code == EADDRNOTAVAIL { reason += " (no interface has that address)" }
        throw ArbiterStartError(reason: reason)
    }
}

extension ConfigurationReader {
    /// Reads `io` and the `dpdk:` section, which both daemons share:
    ///
    /// ```yaml
    /// io: dpdk
    /// dpdk:
    ///   eal_args: [-l, "0-1", --no-huge, --no-pci, --no-shconf, -m, "256", "--vdev=net_af_packet0,iface=eth0"]
    ///   port: net_af_packet0        # default: the first port DPDK finds
    ///   rx_descriptors: 1024
    ///   tx_descriptors: 1024
    ///   buffers: 8191
    ///   gateway_mac: "02:00:00:00:00:01"   # default: ARP for each peer
    ///   idle_poll_sleep_ns: 0
    /// ```
    mutating func ioSettings() throws(ConfigurationError) -> (IOBackend, DPDKSettings?) {
        let backend = try choice("io", ["sockets": IOBackend.sockets, "dpdk": .dpdk]) ?? .sockets
        guard var d = try mapping("dpdk") else {
            if backend == .dpdk {
                throw ConfigurationError(
                    field: "dpdk", reason: "missing: io: dpdk needs eal_args (the EAL's arguments, with the device)")
            }
            return (backend, nil)
        }
        let arguments: [String]
        switch d.node("eal_args") {
        case nil:
            throw ConfigurationError(
                field: d.field("eal_args"),
                reason: "missing: the EAL's arguments, e.g. [-l, \"0-1\", -m, \"1024\", -a, \"0000:3b:00.0\"]")
        case .scalar(let s, _)?:
            // One string, as --set gives it: split on spaces.
            arguments = s.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        case .sequence(let items, _)?:
            var list: [String] = []
            for item in items {
                guard case .scalar(let s, _) = item else {
                    throw ConfigurationError(field: d.field("eal_args"), reason: "expected a list of arguments")
                }
                list.append(s)
            }
            arguments = list
        case .mapping?:
            throw ConfigurationError(field: d.field("eal_args"), reason: "expected a list of arguments")
        }
        if arguments.isEmpty {
            throw ConfigurationError(field: d.field("eal_args"), reason: "empty: name at least the device")
        }
        var s = DPDKSettings(ealArguments: arguments, port: try d.string("port").flatMap { $0.isEmpty ? nil : $0 })
        s.receiveDescriptors = try d.integer("rx_descriptors", in: 64...16384) ?? s.receiveDescriptors
        s.transmitDescriptors = try d.integer("tx_descriptors", in: 64...16384) ?? s.transmitDescriptors
        s.buffers = try d.integer("buffers", in: 1023...1_048_575) ?? s.buffers
        if let g = try d.string("gateway_mac") {
            guard let mac = Ethernet.parse(g), mac != 0, mac & 0x0100_0000_0000 == 0 else {
                throw ConfigurationError(
                    field: d.field("gateway_mac"), reason: "'\(g)' is not a unicast MAC address (aa:bb:cc:dd:ee:ff)")
            }
            s.gateway = mac
        }
        s.idlePollSleepNanoseconds = Int64(try d.integer("idle_poll_sleep_ns", in: 0...10_000_000) ?? 0)
        try d.finish()
        if backend == .dpdk && !DPDKEnvironment.isAvailable {
            throw ConfigurationError(
                field: "io",
                reason:
                    "dpdk: this build has no DPDK support; build with `swift build -c release --traits DPDK` (needs libdpdk-dev and libnuma-dev)"
            )
        }
        return (backend, s)
    }
}
