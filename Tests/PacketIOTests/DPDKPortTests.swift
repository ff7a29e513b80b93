import Foundation
import PacketIO
import Testing

/// The DPDK backend in this process: two `net_af_packet` ports on the two ends of a veth
/// pair it creates (and deletes), so what one sends the other receives: ARP, then FCP both
/// ways. Needs root and a build with `--traits DPDK`; the EAL runs without hugepages or PCI.
@Suite("DPDK port on a veth pair", .serialized)
struct DPDKPortTests {
    static let veth = ("fptdpdk0", "fptdpdk1")
    static let arguments = [
        "-l", "0-1", "--no-huge", "--no-pci", "--no-shconf", "-m", "256", "--log-level=lib.eal:error",
        "--vdev=net_af_packet0,iface=\(veth.0)", "--vdev=net_af_packet1,iface=\(veth.1)",
    ]

    static var skipReason: String? {
        if !DPDKEnvironment.isAvailable { return "this build has no DPDK (swift test --traits DPDK)" }
        if getuid() != 0 { return "needs root for the veth pair and af_packet sockets" }
        return nil
    }

    @discardableResult
    static func ip(_ arguments: [String]) -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        p.arguments = arguments
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return -1 }
        p.waitUntilExit()
        return p.terminationStatus
    }

    @Test(
        "without DPDK the backend refuses to start and says how to build it", .enabled(if: !DPDKEnvironment.isAvailable)
    )
    func withoutDPDK() {
        let error = #expect(throws: DPDKError.self) {
            _ = try DPDKPort(settings: DPDKSettings(ealArguments: Self.arguments), localAddress: 1)
        }
        #expect(error?.reason.contains("--traits DPDK") == true)
    }

    @Test(.enabled(if: DPDKPortTests.skipReason == nil, "\(DPDKPortTests.skipReason ?? "")"))
    func arpThenFCPBothWays() throws {
        Self.ip(["link", "del", Self.veth.0])
        try #require(Self.ip(["link", "add", Self.veth.0, "type", "veth", "peer", "name", Self.veth.1]) == 0)
        defer { Self.ip(["link", "del", Self.veth.0]) }
        for name in [Self.veth.0, Self.veth.1] {
            // No IPv6 chatter (router solicitations) on the pair while it runs.
            try? "1".write(toFile: "/proc/sys/net/ipv6/conf/\(name)/disable_ipv6", atomically: false, encoding: .utf8)
            try #require(Self.ip(["link", "set", name, "up"]) == 0)
        }
        let arbiterIP = IPv4.parse("10.0.0.1")!
        let endpointIP = IPv4.parse("10.0.0.2")!
        var arbiterSettings = DPDKSettings(ealArguments: Self.arguments, port: "net_af_packet0")
        arbiterSettings.buffers = 2047
        var endpointSettings = arbiterSettings
        endpointSettings.port = "net_af_packet1"
        let arbiter = try DPDKPort(settings: arbiterSettings, localAddress: arbiterIP)
        let endpoint = try DPDKPort(settings: endpointSettings, localAddress: endpointIP)
        defer {
            arbiter.close()
            endpoint.close()
        }
        #expect(arbiter.mac != endpoint.mac)
        // The EAL starts once: other arguments are refused, the same ones accepted.
        #expect(throws: DPDKError.self) { try DPDKEnvironment.initialize(arguments: ["-l", "0"]) }
        try DPDKEnvironment.initialize(arguments: Self.arguments)

        var tx = PacketBatch(capacity: 8)
        var rx = PacketBatch(capacity: 8)
        func request(_ byte: UInt8) {
            _ = tx.append { b in
                for i in 0..<24 { b[i] = byte &+ UInt8(i) }
                return (arbiterIP, 24)
            }
        }
        // The endpoint does not know the arbiter's MAC: it asks and drops the datagram.
        request(1)
        #expect(try endpoint.send(&tx) == 0)
        #expect(endpoint.statistics.unresolved == 1 && endpoint.statistics.arpRequestsSent == 1)
        // The arbiter answers the request (and learns the endpoint from it).
        let deadline = RealtimeClock.now() + 2_000_000_000
        while arbiter.statistics.arpAnswered == 0 && RealtimeClock.now() < deadline {
            #expect(try arbiter.receive(into: &rx, waitingUpTo: 1_000_000) == 0)
        }
        #expect(arbiter.statistics.arpAnswered == 1)
        // The endpoint learns from the answer; its next datagram goes.
        while endpoint.knownNeighbours == 0 && RealtimeClock.now() < deadline {
            _ = try endpoint.receive(into: &rx, waitingUpTo: 1_000_000)
        }
        #expect(endpoint.knownNeighbours == 1)
        request(7)
        request(9)
        #expect(try endpoint.send(&tx) == 2)
        // The arbiter gets both, with their sender, payloads intact after the IPv4 header.
        var got: [[UInt8]] = []
        while got.count < 2 && RealtimeClock.now() < deadline {
            let n = try arbiter.receive(into: &rx, waitingUpTo: 1_000_000)
            for i in 0..<n {
                #expect(rx.address(i) == endpointIP)
                #expect(rx.header(i).count == 20 && IPv4.destination(ofHeader: rx.header(i)) == arbiterIP)
                got.append(Array(rx.payload(i)))
            }
        }
        #expect(got == [(0..<24).map { 7 &+ UInt8($0) }, (0..<24).map { 9 &+ UInt8($0) }])
        // And back: the arbiter already knows the endpoint's MAC.
        _ = tx.append { b in
            b.storeBytes(of: UInt32(0xFA57_FA57), as: UInt32.self)
            return (endpointIP, 4)
        }
        #expect(try arbiter.send(&tx) == 1)
        var back = 0
        while back == 0 && RealtimeClock.now() < deadline {
            back = try endpoint.receive(into: &rx, waitingUpTo: 1_000_000)
        }
        #expect(back == 1)
        if back == 1 {
            #expect(rx.address(0) == arbiterIP && Array(rx.payload(0)) == [0xFA, 0x57, 0xFA, 0x57].reversed())
        }
        #expect(arbiter.statistics.badHeader == 0 && endpoint.statistics.badHeader == 0)
        #expect(arbiter.statistics.received == 2 && endpoint.statistics.received == 1)
    }
}
