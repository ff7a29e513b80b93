import FastpassArbiter
import FastpassProtocol
import Foundation
import Logging
import PacketIO
import Testing

@testable import FastpassDaemon

/// The arbiter daemon's communication loop, run for real on its thread, over an in-memory
/// network: what the namespace test checks end to end, without root, sockets or sleeps
/// beyond the loop's own waits.
@Suite("Arbiter daemon loop over MemoryPacketIO")
struct ArbiterLoopTests {
    static let yaml = """
        listen: 10.0.0.1
        batch_size: 16
        topology:
          racks: 1
          spines: 1
          host_gbps: 0.1
          hosts:
            - {id: 1, address: 10.0.0.11, rack: 0}
            - {id: 2, address: 10.0.0.12, rack: 0}
        """

    @Test(
        "an extended endpoint gets exactly its demand through the daemon's loop; junk is counted and the loop serves on"
    )
    func servesOverMemory() throws {
        let configuration = try ArbiterDaemonConfiguration.parse(yaml: Self.yaml, file: "loop.yaml")
        let runtime = try ArbiterRuntime(configuration: configuration, logger: Logger(label: "test"))
        let topology = runtime.topology
        let start = RealtimeClock.now()
        let core = try ArbiterCore(
            topology: topology, configuration: configuration.coreConfiguration(authenticator: nil), now: start)
        let network = MemoryPacketIO()
        runtime.serve(core: core, io: network)
        defer { #expect(runtime.stop(timeout: 5), "the loop stops when asked") }

        var c = EndpointSessionConfiguration()
        c.node = topology.nodeIDs[0]
        c.address = topology.addresses[0]
        // Slots of 123 µs (0.1 Gbit/s): a debug build's loop keeps up with them, and the
        // reference window (16 slots late) is 2 ms on a machine that may be busy.
        var endpoint = EndpointSession(configuration: c, now: start)
        let demand: UInt64 = 200
        let added = endpoint.addDemand(to: topology.nodeIDs[1], slots: demand)
        #expect(added)
        // Junk from the endpoint's own address: refused by its connection, counted.
        network.deliver([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], from: topology.addresses[0])
        // Junk from an address outside the topology.
        network.deliver([1, 2, 3], from: IPv4.parse("10.0.0.99")!)

        var got: UInt64 = 0
        var buffer = [UInt8](repeating: 0, count: 2048)
        let deadline = start + 10_000_000_000
        while got < demand && RealtimeClock.now() < deadline {
            let now = RealtimeClock.now()
            while endpoint.wantsToSend {
                guard case .success(let n) = buffer.withUnsafeMutableBytes({ endpoint.send(now: now, into: $0) }),
                    n > 0
                else { break }
                network.deliver(Array(buffer[0..<n]), from: topology.addresses[0])
            }
            for (address, payload) in network.takeSent() where address == topology.addresses[0] {
                payload.withUnsafeBytes { _ = endpoint.receive($0, now: RealtimeClock.now()) }
            }
            if let d = endpoint.timerDeadline, d <= RealtimeClock.now() {
                endpoint.handleTimeout(now: RealtimeClock.now())
            }
            while endpoint.takeEarliestAllocation(now: RealtimeClock.now()) != nil { got += 1 }
            Thread.sleep(forTimeInterval: 0.000_2)
        }
        #expect(got == demand, "allocations used: \(got) of \(demand)")
        #expect(endpoint.flow(to: topology.nodeIDs[1])?.need == 0)

        // The loop publishes what it saw: wait for a snapshot that includes it.
        var snapshot = runtime.snapshot()
        while snapshot.allocator.allocatedSlots < demand && RealtimeClock.now() < deadline {
            Thread.sleep(forTimeInterval: 0.05)
            snapshot = runtime.snapshot()
        }
        #expect(snapshot.allocator.allocatedSlots >= demand)
        #expect(snapshot.core.packetsFromUnknownHosts == 1)
        #expect(snapshot.endpoints[0].connected && snapshot.endpoints[0].extended)
        #expect(snapshot.endpoints[0].connection.rxPackets > 0)
        #expect(network.statistics.received > 2)
    }
}
